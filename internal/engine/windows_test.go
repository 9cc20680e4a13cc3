package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/rules"
)

// windowLog is a log in time order whose ES|QL alerts come from runs that
// stay open across many events: bursts of several sources spread over
// three runs (one spans the 09:14-09:15 overlap), a per-event rule's
// documents, and a filler source that never reaches the threshold.
func windowLog() []string {
	at := func(m, s int) time.Time { return time.Date(2025, 5, 14, 9, m, s, 0, time.UTC) }
	var log []string
	log = append(log, burst("a", "203.0.113.7", probes, 8, at(12, 0), 20*time.Second)...)
	log = append(log, burst("b", "203.0.113.8", probes, 12, at(13, 30), 10*time.Second)...)
	log = append(log, burst("c", "203.0.113.9", probes[:5], 5, at(16, 0), 30*time.Second)...)
	log = append(log, burst("d", "203.0.113.10", probes, 8, at(18, 0), 15*time.Second)...)
	log = append(log, burst("e", "203.0.113.11", probes, 9, at(21, 0), 20*time.Second)...)
	slices.SortStableFunc(log, func(a, b string) int {
		return strings.Compare(timeOf(a), timeOf(b))
	})
	return log
}

func timeOf(rec string) string {
	var m struct {
		T string `json:"stageTimestamp"`
	}
	json.Unmarshal([]byte(rec), &m)
	return m.T
}

// windowRules are the rules the durable-window tests run: seed 004 (STATS)
// and the per-event rule with max_signals 3 (run counters).
func windowRules(t *testing.T) []*rule.Compiled {
	return []*rule.Compiled{builtin(t, seed004), withMaxSignals(compileYAML(t, "per-event.yaml", nonAggregating), 3)}
}

// alertKeys returns "id fields" of each alert, sorted.
func alertKeys(as []*alert.Alert) []string {
	var out []string
	for _, a := range as {
		b, _ := json.Marshal(a.Fields)
		out = append(out, a.ID+" "+string(b))
	}
	slices.Sort(out)
	return out
}

func openBolt(t *testing.T, dir string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(dir, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWindowsRestore kills an engine (drops it without Close) at every
// point of a log, with checkpoints every few events, and restarts a new
// engine on the same bolt store from the last checkpoint, as kanon serve
// resumes from the last acknowledged batch: the alerts of the two engines
// together are those of one engine that read the log without stopping,
// each raised once.
func TestWindowsRestore(t *testing.T) {
	rs := windowRules(t)
	log := windowLog()
	const lateness = 30 * time.Second
	var whole alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, watermark{lateness: lateness})
	f.feed(log)
	f.close()
	want := alertKeys(whole.Alerts)
	if n := len(want); n < 4 {
		t.Fatalf("the uninterrupted engine raised %d alerts; the log should raise more", n)
	}
	const every = 5
	for kill := 1; kill < len(log); kill += 3 {
		dir := t.TempDir()
		var a, b alert.Collector
		var errs []error
		onErr := func(id string, err error) { errs = append(errs, err) }
		store := openBolt(t, dir)
		f := newHarness(t, rs, engine.Options{Sink: &a, Store: store, Windows: engine.WindowsRestore, OnError: onErr}, watermark{lateness: lateness})
		last := 0
		for i := 0; i < kill; i++ {
			f.feed(log[i : i+1])
			if (i+1)%every == 0 {
				f.checkpoint()
				last = i + 1
			}
		}
		store.Close() // killed: no Close, no checkpoint of the events since last
		store = openBolt(t, dir)
		g := newHarness(t, rs, engine.Options{Sink: &b, Store: store, Windows: engine.WindowsRestore, OnError: onErr}, watermark{lateness: lateness})
		g.feed(log[last:])
		g.close()
		g.checkpoint()
		got := alertKeys(append(a.Alerts, b.Alerts...))
		if !slices.Equal(got, want) {
			t.Fatalf("killed after %d events, resumed at %d: alerts\n%s\nwant\n%s", kill, last, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if len(errs) > 0 {
			t.Fatalf("killed after %d events: errors %v", kill, errs)
		}
		// Every run closed: nothing is left in the windows namespace but
		// each rule's watermark.
		var left []string
		store.Scan(context.Background(), []byte{byte(state.NSWindows)}, time.Time{}, func(e state.Entry) error {
			if wk, err := state.ParseWindowKey(e.Key); err != nil || !wk.Meta {
				left = append(left, fmt.Sprintf("%+v %v", wk, err))
			}
			return nil
		})
		if len(left) > 0 {
			t.Fatalf("runs left in the store after Close: %v", left)
		}
		store.Close()
	}
}

// Without restoring, an engine that resumes mid-log loses the partial
// runs: the test above would fail. This checks that it can fail.
func TestWindowsLostWithoutRestore(t *testing.T) {
	rs := windowRules(t)
	log := windowLog()
	var whole, a, b alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, watermark{lateness: 30 * time.Second})
	f.feed(log)
	f.close()
	dir := t.TempDir()
	store := openBolt(t, dir)
	f = newHarness(t, rs, engine.Options{Sink: &a, Store: store, Windows: engine.WindowsRebuild}, watermark{lateness: 30 * time.Second})
	f.feed(log[:10])
	f.checkpoint()
	store.Close()
	store = openBolt(t, dir)
	defer store.Close()
	g := newHarness(t, rs, engine.Options{Sink: &b, Store: store, Windows: engine.WindowsRebuild}, watermark{lateness: 30 * time.Second})
	g.feed(log[10:])
	g.close()
	if got := alertKeys(append(a.Alerts, b.Alerts...)); slices.Equal(got, alertKeys(whole.Alerts)) {
		t.Fatal("resuming without the stored runs gave the same alerts: the log does not exercise open runs")
	}
}

// WindowsRebuild (kanon scan) re-reads the whole input after a crash: the
// stored runs are deleted, not restored, so no event counts twice.
func TestWindowsRebuild(t *testing.T) {
	rs := windowRules(t)
	log := windowLog()
	var whole alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, untilClose)
	f.feed(log)
	f.close()
	want := alertKeys(whole.Alerts)

	dir := t.TempDir()
	store := openBolt(t, dir)
	var a, b alert.Collector
	f = newHarness(t, rs, engine.Options{Sink: &a, Store: store, Windows: engine.WindowsRebuild}, untilClose)
	f.feed(log[:len(log)/2])
	f.checkpoint()
	stored := countRuns(t, store)
	if stored == 0 {
		t.Fatal("no run checkpointed")
	}
	store.Close()
	store = openBolt(t, dir)
	defer store.Close()
	g := newHarness(t, rs, engine.Options{Sink: &b, Store: store, Windows: engine.WindowsRebuild}, untilClose)
	if n := countRuns(t, store); n != 0 {
		t.Fatalf("%d stored runs left after building a rebuilding engine", n)
	}
	g.feed(log)
	g.close()
	if got := alertKeys(append(a.Alerts, b.Alerts...)); !slices.Equal(got, want) {
		t.Fatalf("alerts\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func countRuns(t *testing.T, s state.Store) int {
	n := 0
	err := s.Scan(context.Background(), []byte{byte(state.NSWindows)}, time.Time{}, func(e state.Entry) error {
		if wk, err := state.ParseWindowKey(e.Key); err == nil && !wk.Meta {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A stored run of a rule whose query changed is not restored: it is
// deleted and reported.
func TestWindowsChangedQuery(t *testing.T) {
	r := builtin(t, seed004)
	dir := t.TempDir()
	store := openBolt(t, dir)
	var a alert.Collector
	f := newHarness(t, []*rule.Compiled{r}, engine.Options{Sink: &a, Store: store, Windows: engine.WindowsRestore}, untilClose)
	f.feed(burst("a", "203.0.113.7", probes, 8, t0, time.Second))
	f.checkpoint()
	if countRuns(t, store) == 0 {
		t.Fatal("no run checkpointed")
	}
	store.Close()
	store = openBolt(t, dir)
	defer store.Close()
	changed := compileYAML(t, "changed.yaml", strings.Replace(string(mustRead(t)), "count_distinct > 5 and", "count_distinct > 6 and", 1))
	if changed.ID != r.ID || changed.Program.Query().String() == r.Program.Query().String() {
		t.Fatal("the changed rule has another id or the same query")
	}
	var b alert.Collector
	var errs []error
	g := newHarness(t, []*rule.Compiled{changed}, engine.Options{Sink: &b, Store: store, Windows: engine.WindowsRestore,
		OnError: func(id string, err error) { errs = append(errs, err) }}, untilClose)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "query or schedule changed") {
		t.Fatalf("errors %v; want one saying the query changed", errs)
	}
	if n := countRuns(t, store); n != 0 {
		t.Fatalf("%d runs of the old query left", n)
	}
	g.close()
	if len(b.Alerts) != 0 {
		t.Fatalf("%d alerts from runs of another query", len(b.Alerts))
	}
}

func mustRead(t *testing.T) []byte {
	t.Helper()
	b, err := rules.FS.ReadFile("elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Handover carries the open runs of unchanged rules to a new engine (a
// rule reload): the alerts are those of one engine that never reloaded.
func TestWindowsHandover(t *testing.T) {
	rs := windowRules(t)
	log := windowLog()
	var whole alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, watermark{lateness: 30 * time.Second})
	f.feed(log)
	f.close()
	want := alertKeys(whole.Alerts)
	for _, mode := range []engine.WindowMode{engine.WindowsInMemory, engine.WindowsRestore} {
		for at := 1; at < len(log); at += 4 {
			store := openBolt(t, t.TempDir())
			var sink alert.Collector
			opts := engine.Options{Sink: &sink, Store: store, Windows: mode,
				OnError: func(id string, err error) { t.Errorf("rule %s: %v", id, err) }}
			f := newHarness(t, rs, opts, watermark{lateness: 30 * time.Second})
			f.feed(log[:at])
			f.checkpoint()
			f.feed(log[at : at+1]) // not checkpointed: only the handover carries it
			g := newHarness(t, rs, opts, watermark{lateness: 30 * time.Second})
			moved := f.handover(g)
			f.close()
			f.checkpoint()
			g.feed(log[at+1:])
			g.close()
			g.checkpoint()
			if got := alertKeys(sink.Alerts); !slices.Equal(got, want) {
				t.Fatalf("%s, reload after %d events (%d runs moved): alerts\n%s\nwant\n%s", mode, at+1, moved, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if n := countRuns(t, store); n != 0 {
				t.Fatalf("%s: %d runs left in the store", mode, n)
			}
			store.Close()
		}
	}
}

// A checkpoint store failure is returned, and the runs are written by the
// next checkpoint.
func TestWindowsCheckpointRetry(t *testing.T) {
	r := builtin(t, seed004)
	dir := t.TempDir()
	store := openBolt(t, dir)
	fs := &failOnce{Store: store}
	var a alert.Collector
	f := newHarness(t, []*rule.Compiled{r}, engine.Options{Sink: &a, Store: fs, Windows: engine.WindowsRestore}, untilClose)
	f.feed(burst("a", "203.0.113.7", probes, 8, t0, time.Second))
	fs.fail = true
	if err := f.eng.Checkpoint(context.Background()); err == nil {
		t.Fatal("checkpoint on a failing store returned nil")
	}
	f.checkpoint()
	store.Close()
	store = openBolt(t, dir)
	defer store.Close()
	var b alert.Collector
	g := newHarness(t, []*rule.Compiled{r}, engine.Options{Sink: &b, Store: store, Windows: engine.WindowsRestore}, untilClose)
	g.close()
	if len(b.Alerts) != 1 {
		t.Fatalf("%d alerts from the restored run, want 1", len(b.Alerts))
	}
	wantField(t, b.Alerts[0], "Esql.document_count", 8)
}

type failOnce struct {
	state.Store
	fail bool
}

func (f *failOnce) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if f.fail {
		f.fail = false
		return errors.New("disk full")
	}
	return f.Store.Update(ctx, now, fn)
}

// BenchmarkSeed004Windows measures seed 004 per event as BenchmarkSeed004Engine
// does, in memory and with durable runs on a bolt store (no fsync)
// checkpointed every 5000 events (serve checkpoints once per commit group,
// up to 50000 events): the per-event cost is marking a run changed; the
// checkpoint exports each changed run once.
func BenchmarkSeed004Windows(b *testing.B) {
	r := builtin(b, seed004)
	lines := benchLog(1024)
	for _, mode := range []engine.WindowMode{engine.WindowsInMemory, engine.WindowsRestore} {
		b.Run(mode.String(), func(b *testing.B) {
			store, err := bolt.Open(b.TempDir(), bolt.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			var sink countSink
			h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink, Store: store, Windows: mode}, watermark{lateness: 0})
			var events []*event.Event
			for i, l := range lines {
				events = h.decode(events, event.Origin{Name: "bench", Line: int64(i + 1)}, []byte(l))
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			at := t0
			for i := 0; i < b.N; i++ {
				e := events[i%len(events)]
				e.Timestamp = at
				at = at.Add(time.Second)
				if err := h.process(e); err != nil {
					b.Fatal(err)
				}
				if i%5000 == 4999 {
					if err := h.eng.Checkpoint(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			h.close()
			h.checkpoint()
		})
	}
}
