package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

var redisPrefixes atomic.Int64

// redisReplicas opens n stores on srv with one prefix of their own, each
// with a client of its own, as n replicas would.
func redisReplicas(t *testing.T, srv *redistest.Server, n int) []state.Store {
	prefix := fmt.Sprintf("engine-%d", redisPrefixes.Add(1))
	out := make([]state.Store, n)
	for i := range out {
		s, err := redis.Open(context.Background(), redis.Options{Addr: srv.Addr, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

// replicaLog is windowLog with a late filler burst, so that the watermark
// of a replica that goes on alone passes every run of the log.
func replicaLog() []string {
	return append(windowLog(), burst("f", "203.0.113.12", probes[:2], 3, time.Date(2025, 5, 14, 9, 40, 0, 0, time.UTC), 10*time.Second)...)
}

// leftRuns returns the runs and replicas' slots left in the store.
func leftRuns(t *testing.T, s state.Store) []string {
	var left []string
	err := s.Scan(context.Background(), []byte{byte(state.NSWindows)}, time.Time{}, func(e state.Entry) error {
		if wk, err := state.ParseWindowKey(e.Key); err != nil || !wk.Meta && !wk.Closed {
			left = append(left, fmt.Sprintf("%+v %v", wk, err))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// TestReplicasMergeRuns runs two engines as replicas on one Redis server,
// each given half of a log's events and checkpointing after each (as the
// driver checkpoints at each commit), and checks that their alerts
// together are exactly those of one engine that read the whole log: the
// replica that closes a run merges the other's part into it, and the
// other raises nothing for it.
func TestReplicasMergeRuns(t *testing.T) {
	srv := redistest.Start(t)
	rs := windowRules(t)[:1] // seed 004: per-event max_signals is per replica
	log := replicaLog()
	const lateness = 30 * time.Second
	var whole alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, watermark{lateness: lateness})
	f.feed(log)
	f.close()
	want := alertKeys(whole.Alerts)
	if len(want) < 4 {
		t.Fatalf("one engine raised %d alerts; the log should raise more", len(want))
	}

	for _, split := range []struct {
		name string
		toB  func(i int, rec string) bool
	}{
		{"alternate", func(i int, _ string) bool { return i%2 == 1 }},
		{"by source", func(_ int, rec string) bool {
			return strings.Contains(rec, "203.0.113.8") || strings.Contains(rec, "203.0.113.10")
		}},
		{"runs of one replica only", func(_ int, rec string) bool { return strings.Contains(rec, `"e-`) }},
	} {
		t.Run(split.name, func(t *testing.T) {
			stores := redisReplicas(t, srv, 2)
			var errs []string
			onErr := func(id string, err error) { errs = append(errs, err.Error()) }
			var a, b alert.Collector
			ha := newHarness(t, rs, engine.Options{Sink: &a, Store: stores[0], Windows: engine.WindowsRestore, Replica: "a", OnError: onErr}, watermark{lateness: lateness})
			hb := newHarness(t, rs, engine.Options{Sink: &b, Store: stores[1], Windows: engine.WindowsRestore, Replica: "b", OnError: onErr}, watermark{lateness: lateness})
			for i, rec := range log {
				h := ha
				if split.toB(i, rec) {
					h = hb
				}
				h.feed([]string{rec})
				h.checkpoint()
			}
			hb.close()
			hb.checkpoint()
			ha.close()
			ha.checkpoint()
			got := alertKeys(append(a.Alerts, b.Alerts...))
			if !slices.Equal(got, want) {
				t.Fatalf("alerts of the two replicas\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if left := leftRuns(t, stores[0]); len(left) > 0 {
				t.Fatalf("runs left in the store after both closed: %v", left)
			}
		})
	}
}

// TestReplicaDies kills one of two replicas mid-log: its slots stay in
// Redis, the other replica gets the rest of the log (as a rebalance gives
// it the dead one's partitions), merges the dead one's parts into the runs
// it closes and closes the runs only the dead one saw.
func TestReplicaDies(t *testing.T) {
	srv := redistest.Start(t)
	rs := windowRules(t)[:1]
	log := replicaLog()
	const lateness = 30 * time.Second
	var whole alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, watermark{lateness: lateness})
	f.feed(log)
	f.close()
	want := alertKeys(whole.Alerts)

	// b gets the source of burst e (09:21-09:24), then dies before its
	// watermark passes e's runs; a gets everything else.
	stores := redisReplicas(t, srv, 2)
	var errs []string
	onErr := func(id string, err error) { errs = append(errs, err.Error()) }
	var a, b alert.Collector
	ha := newHarness(t, rs, engine.Options{Sink: &a, Store: stores[0], Windows: engine.WindowsRestore, Replica: "a", OnError: onErr}, watermark{lateness: lateness})
	hb := newHarness(t, rs, engine.Options{Sink: &b, Store: stores[1], Windows: engine.WindowsRestore, Replica: "b", OnError: onErr}, watermark{lateness: lateness})
	for _, rec := range log {
		if strings.Contains(rec, "203.0.113.11") {
			hb.feed([]string{rec})
			hb.checkpoint()
			continue
		}
		ha.feed([]string{rec})
		ha.checkpoint()
	}
	stores[1].Close() // b is killed: no Close
	ha.close()
	ha.checkpoint()
	// b may have closed runs it adopted from a (its watermark passed
	// them); the runs of e's source it held were closed by a.
	if got := alertKeys(append(a.Alerts, b.Alerts...)); !slices.Equal(got, want) {
		t.Fatalf("alerts of the two replicas\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fromE := 0
	for _, k := range alertKeys(a.Alerts) {
		if strings.Contains(k, "203.0.113.11") {
			fromE++
		}
	}
	if fromE == 0 {
		t.Fatalf("the surviving replica raised no alert of the source only the dead one saw: %v", alertKeys(a.Alerts))
	}
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	if left := leftRuns(t, stores[0]); len(left) > 0 {
		t.Fatalf("runs left in the store: %v", left)
	}
}

// TestReplicaRestores restarts a replica: the new engine restores its own
// slots only, adopts the runs of the other replica it does not hold, and
// the two together still raise what one engine would.
func TestReplicaRestores(t *testing.T) {
	srv := redistest.Start(t)
	rs := windowRules(t)[:1]
	log := replicaLog()
	const lateness = 30 * time.Second
	var whole alert.Collector
	f := newHarness(t, rs, engine.Options{Sink: &whole}, watermark{lateness: lateness})
	f.feed(log)
	f.close()
	want := alertKeys(whole.Alerts)

	stores := redisReplicas(t, srv, 3)
	var errs []string
	onErr := func(id string, err error) { errs = append(errs, err.Error()) }
	var a1, a2, b alert.Collector
	opts := func(sink alert.Sink, s state.Store, name string) engine.Options {
		return engine.Options{Sink: sink, Store: s, Windows: engine.WindowsRestore, Replica: name, OnError: onErr}
	}
	ha := newHarness(t, rs, opts(&a1, stores[0], "a"), watermark{lateness: lateness})
	hb := newHarness(t, rs, opts(&b, stores[1], "b"), watermark{lateness: lateness})
	half := len(log) / 2
	for i, rec := range log[:half] {
		h := ha
		if i%3 == 0 {
			h = hb
		}
		h.feed([]string{rec})
		h.checkpoint()
	}
	// a restarts: a new engine on a new client, restoring a's slots.
	stores[0].Close()
	ha = newHarness(t, rs, opts(&a2, stores[2], "a"), watermark{lateness: lateness})
	for i, rec := range log[half:] {
		h := ha
		if (half+i)%3 == 0 {
			h = hb
		}
		h.feed([]string{rec})
		h.checkpoint()
	}
	hb.close()
	hb.checkpoint()
	ha.close()
	ha.checkpoint()
	got := alertKeys(slices.Concat(a1.Alerts, a2.Alerts, b.Alerts))
	if !slices.Equal(got, want) {
		t.Fatalf("alerts of the replicas\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
}
