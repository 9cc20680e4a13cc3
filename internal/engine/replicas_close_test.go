package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// TestReplicaLateAfterClose has replica a close an ES|QL run while
// replica b still reads events of it: b's part as b had committed it is
// in a's merge, and what b read after is counted late by b when it finds
// the run closed — the events b committed after the close (its slot,
// rewritten after the merge deleted it) and those it had not committed.
// Nothing is raised from b's later part, and no slot is left.
func TestReplicaLateAfterClose(t *testing.T) {
	srv := redistest.Start(t)
	rs := []*rule.Compiled{builtin(t, seed004)}
	at := time.Date(2025, 5, 14, 9, 12, 0, 0, time.UTC)
	log := burst("a", "203.0.113.7", probes, 12, at, 10*time.Second)
	later := burst("z", "203.0.113.99", probes[:1], 1, at.Add(30*time.Minute), 0)

	// What one engine raises from the events a's merge counts: b's
	// first four, a's four.
	var whole alert.Collector
	h := newHarness(t, rs, engine.Options{Sink: &whole, Store: mem.New(), Windows: engine.WindowsRestore}, watermark{lateness: time.Minute})
	h.feed(append(slices.Clone(log[:8]), later...))
	h.close()
	want := deliveries(whole.Alerts)
	if len(want) == 0 {
		t.Fatal("one engine raised nothing: the burst should be an enumeration")
	}

	stores := redisReplicas(t, srv, 2)
	clk := &clock{t: time.Now()}
	var notices []string
	mk := func(i int, name string) *replica {
		r := &replica{t: t, shared: stores[i], sink: &alert.Collector{}}
		r.ov = overlay.New(stores[i], nil)
		r.h = newHarness(t, rs, engine.Options{Sink: r.sink, Store: r.ov, Shared: stores[i], Replica: name, GroupUpdates: true,
			Windows: engine.WindowsRestore, Materialize: formats.Registry().Materialize, Now: clk.now,
			OnError: func(_ string, err error) { notices = append(notices, name+": "+err.Error()) }}, watermark{lateness: time.Minute})
		return r
	}
	a, b := mk(0, "a"), mk(1, "b")
	b.h.feed(log[:4])
	b.settle()
	a.h.feed(log[4:8])
	a.h.feed(later) // a's watermark passes the run: a closes it, with b's four
	a.settle()
	b.h.feed(log[8:10]) // b's watermark is behind: it takes them into the run
	b.settle()          // and commits its slot again, after the close
	b.h.feed(log[10:12])
	b.closeInput() // b closes the run: marked closed, its last four are late
	a.closeInput()

	if got := deliveries(append(a.sink.Alerts, b.sink.Alerts...)); !slices.Equal(got, want) {
		t.Fatalf("replicas raised\n%s\none engine raises from the events merged\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if late := b.h.eng.Stats().Rules[seed004].Late; late != 4 {
		t.Fatalf("b counted %d events late, want 4 (notices: %v)", late, notices)
	}
	if late := a.h.eng.Stats().Rules[seed004].Late; late != 0 {
		t.Fatalf("a counted %d events late, want 0", late)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "b: ") || !strings.Contains(notices[0], "4 events") {
		t.Fatalf("notices: %v, want one of b's 4 late events", notices)
	}
	if left := leftRuns(t, stores[0]); len(left) > 0 {
		t.Fatalf("runs left in the store after both closed: %v", left)
	}
}
