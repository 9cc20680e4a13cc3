package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// ntEvents decodes n matching seed-001 events with user agents ua(i).
func ntEvents(h *harness, n int, ua func(i int) string) []*event.Event {
	events := make([]*event.Event, 0, n)
	for i := range n {
		events = h.decode(events, event.Origin{Name: "bench"}, stEv{id: fmt.Sprint("b", i), at: stT0, ua: ua(i)}.record())
	}
	return events
}

func ntStores() map[string]func(b *testing.B) state.Store {
	return map[string]func(b *testing.B) state.Store{
		"mem": func(b *testing.B) state.Store { return mem.New() },
		"bolt": func(b *testing.B) state.Store {
			s, err := bolt.Open(b.TempDir(), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		"bolt-nosync": func(b *testing.B) state.Store {
			s, err := bolt.Open(b.TempDir(), bolt.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
}

// BenchmarkNewTermsKnown is the cost of the new-terms check per matching
// event whose term is known (the common case): match, build the term, one
// store read.
func BenchmarkNewTermsKnown(b *testing.B) {
	r := stRule(b, seed001)
	for _, name := range []string{"mem", "bolt"} {
		b.Run(name, func(b *testing.B) {
			s := ntStores()[name](b)
			defer s.Close()
			var sink countSink
			h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink, Store: s}, untilClose)
			events := ntEvents(h, 1000, func(i int) string { return fmt.Sprintf("agent-%d/1.0", i%100) })
			for _, e := range events[:100] { // learn the 100 agents
				if err := h.process(e); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				e := events[i%len(events)]
				e.Timestamp = stT0.Add(time.Duration(i%1000) * time.Millisecond)
				if err := h.process(e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if sink.n != 100 {
				b.Fatalf("%d alerts, want 100 (the agents, once)", sink.n)
			}
		})
	}
}

// BenchmarkNewTermsNew is the cost per matching event whose term is new:
// the check, the alert written to a sink, and the term and alert mark
// committed in one transaction (synced to disk with bolt).
func BenchmarkNewTermsNew(b *testing.B) {
	r := stRule(b, seed001)
	for _, name := range []string{"mem", "bolt-nosync", "bolt"} {
		b.Run(name, func(b *testing.B) {
			s := ntStores()[name](b)
			defer s.Close()
			var sink countSink
			h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink, Store: s}, untilClose)
			events := ntEvents(h, b.N, func(i int) string { return fmt.Sprintf("agent-%d/1.0", i) })
			b.ReportAllocs()
			b.ResetTimer()
			for i, e := range events {
				// 10 s apart: each 5-minute run stays under max_signals.
				e.Timestamp = stT0.Add(time.Duration(i) * 10 * time.Second)
				if err := h.process(e); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if sink.n != b.N {
				b.Fatalf("%d alerts, want %d", sink.n, b.N)
			}
		})
	}
}

// BenchmarkTermBytesOnDisk learns terms into a bolt store and reports the
// bytes per learned term: on disk (the file's pages) and as keys and values
// (what a Redis store would hold, before its own overhead).
func BenchmarkTermBytesOnDisk(b *testing.B) {
	r := stRule(b, seed001)
	const terms = 20000
	for i := 0; i < b.N; i++ {
		s, err := bolt.Open(b.TempDir(), bolt.Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		var sink countSink
		h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink, Store: s, LearnOnly: true}, untilClose)
		events := ntEvents(h, terms, func(i int) string {
			return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) tool-%d/1.%d", i, i%10)
		})
		for j, e := range events {
			e.Timestamp = stT0.Add(time.Duration(j) * time.Second)
			if err := h.process(e); err != nil {
				b.Fatal(err)
			}
		}
		st, err := s.Stats(stCtx)
		if err != nil {
			b.Fatal(err)
		}
		if st.Entries != terms {
			b.Fatalf("%d entries, want %d", st.Entries, terms)
		}
		b.ReportMetric(float64(st.DiskBytes)/terms, "disk-bytes/term")
		b.ReportMetric(float64(st.Bytes)/terms, "kv-bytes/term")
		s.Close()
	}
}
