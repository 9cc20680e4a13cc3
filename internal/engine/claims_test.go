package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// clock is a wall clock the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// replica is one engine of a set of replicas on one Redis: its own client
// (shared), its write overlay over it (as the driver's), and its alerts.
type replica struct {
	t      *testing.T
	h      *harness
	ov     *overlay.Store
	shared state.Store
	sink   *alert.Collector
}

// newReplica builds replica name on shared; claims chooses whether it
// takes its decisions on the shared store (Options.Shared) or, as before,
// through its overlay alone.
func newReplica(t *testing.T, rs []*rule.Compiled, shared state.Store, name string, claims bool, clk *clock) *replica {
	r := &replica{t: t, shared: shared, sink: &alert.Collector{}}
	r.ov = overlay.New(shared, nil)
	opts := engine.Options{Sink: r.sink, Store: r.ov, Replica: name, GroupUpdates: true, Windows: engine.WindowsRestore,
		Materialize: formats.Registry().Materialize, Now: clk.now,
		OnError: func(id string, err error) { t.Errorf("replica %s: rule %s: %v", name, id, err) }}
	if claims {
		opts.Shared = shared
	}
	r.h = newHarness(t, rs, opts, watermark{lateness: time.Minute})
	return r
}

// read processes events, as a batch the driver has not finished yet.
func (r *replica) read(evs ...stEv) { r.h.feedEvents(evs...) }

// settle finishes the batches read: the decisions, the checkpoint and the
// overlay's commit, as the driver's commit does.
func (r *replica) settle() {
	r.t.Helper()
	ctx := context.Background()
	if err := r.h.eng.Settle(ctx); err != nil {
		r.t.Fatal(err)
	}
	r.h.checkpoint()
	if err := r.ov.Commit(ctx); err != nil {
		r.t.Fatal(err)
	}
}

// closeInput ends the replica's input and commits.
func (r *replica) closeInput() {
	r.t.Helper()
	r.h.close()
	r.settle()
}

// alone runs the events through one engine with a store of its own, as
// kanon serve alone would, and returns its alerts.
func alone(t *testing.T, rs []*rule.Compiled, evs ...stEv) []*alert.Alert {
	t.Helper()
	var sink alert.Collector
	h := newHarness(t, rs, engine.Options{Sink: &sink, Store: mem.New(), GroupUpdates: true, Windows: engine.WindowsRestore,
		Materialize: formats.Registry().Materialize}, watermark{lateness: time.Minute})
	h.feedEvents(evs...)
	h.close()
	return sink.Alerts
}

// deliveries lists alerts as id, origin and group count, sorted.
func deliveries(as []*alert.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		n := int64(0)
		if a.Group != nil {
			n = a.Group.Count
		}
		out[i] = fmt.Sprintf("%s %s %s n=%d", a.Rule.ID, a.ID[:12], a.Origin, n)
	}
	slices.Sort(out)
	return out
}

// compareClaims checks that run(true), replicas deciding on the shared
// store, raises want, what one engine raises, and that run(false), the
// replicas deciding through their overlays alone, does not: the scenario
// shows the race that deciding on the shared store prevents.
func compareClaims(t *testing.T, run func(claims bool) []string, want []string) {
	t.Helper()
	if got := run(true); !slices.Equal(got, want) {
		t.Errorf("two replicas deciding on the shared store raised\n%s\none engine raises\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := run(false); slices.Equal(got, want) {
		t.Errorf("two replicas deciding through their overlays raised what one engine raises: the test shows no race\n%s", strings.Join(got, "\n"))
	}
}

// TestReplicasDecideOnce gives two replicas on one Redis events that
// decide the same thing in batches they evaluate at the same time (each
// reads its batch before either settles): the first events of one new
// user agent (Elastic's new_terms rule), and alerts of one dedup group
// (Panther's rule). Taking the decisions on the shared store, the two
// raise together exactly what one engine raises alone: one alert per new
// term, one group opened and counted whole. Through their overlays alone
// (as before Options.Shared) they raise the term twice and open the group
// twice: the test checks that too, so that it shows the race it guards
// against.
func TestReplicasDecideOnce(t *testing.T) {
	srv := redistest.Start(t)
	ev := func(id string, sec int, ua string) stEv {
		return stEv{id: id, at: stT0.Add(time.Duration(sec) * time.Second), ua: ua}
	}
	// a gets the odd events, b the even ones, in batches of three.
	evs := []stEv{
		ev("e1", 1, "zgrab/0.x"), ev("e2", 2, "zgrab/0.x"), ev("e3", 3, "curl/8.5.0"),
		ev("e4", 4, "curl/8.5.0"), ev("e5", 5, "zgrab/0.x"), ev("e6", 6, "zgrab/0.x"),
		ev("e7", 7, "masscan/1.3"), ev("e8", 8, "masscan/1.3"), ev("e9", 9, "zgrab/0.x"),
		ev("e10", 10, "zgrab/0.x"), ev("e11", 11, "python-requests/2.31"), ev("e12", 12, "python-requests/2.31"),
	}
	for _, c := range []struct {
		name string
		rule string
		n    int // alerts one engine raises
	}{
		{"new terms", seed001, 4},            // one per user agent
		{"dedup groups", pantherRule, 4 + 4}, // a group per user agent, opened and then counted
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := []*rule.Compiled{stRule(t, c.rule)}
			want := deliveries(alone(t, rs, evs...))
			if len(want) != c.n {
				t.Fatalf("one engine raised\n%s\nwant %d alerts", strings.Join(want, "\n"), c.n)
			}
			run := func(claims bool) []string {
				stores := redisReplicas(t, srv, 2)
				clk := &clock{t: time.Now()}
				a := newReplica(t, rs, stores[0], "a", claims, clk)
				b := newReplica(t, rs, stores[1], "b", claims, clk)
				for i := 0; i < len(evs); i += 6 {
					a.read(evs[i], evs[i+2], evs[i+4])
					b.read(evs[i+1], evs[i+3], evs[i+5])
					a.settle()
					b.settle()
				}
				a.closeInput()
				b.closeInput()
				return deliveries(append(a.sink.Alerts, b.sink.Alerts...))
			}
			compareClaims(t, run, want)
		})
	}
}

// TestReplicaOutbox kills a replica between its decisions and its commit
// (the alerts handed to its outputs, nothing durable): its alerts wait in
// the outbox. Another replica leaves them to it until the lease ends,
// then delivers them under the same ids; a restarted replica of the same
// name delivers its own at once. Nothing is delivered twice by the
// survivors, and the events, sent again to the survivor, raise nothing new.
func TestReplicaOutbox(t *testing.T) {
	srv := redistest.Start(t)
	rs := []*rule.Compiled{stRule(t, seed001), stRule(t, pantherRule)}
	evs := []stEv{
		{id: "o1", at: stT0, ua: "zgrab/0.x"},
		{id: "o2", at: stT0.Add(time.Second), ua: "curl/8.5.0"},
	}
	want := deliveries(alone(t, rs, evs...)) // two new terms, two groups opened

	for _, who := range []string{"another replica", "the same replica restarted"} {
		t.Run(who, func(t *testing.T) {
			stores := redisReplicas(t, srv, 3)
			clk := &clock{t: time.Now()}
			dead := newReplica(t, rs, stores[0], "a", true, clk)
			dead.read(evs...)
			if err := dead.h.eng.Settle(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := deliveries(dead.sink.Alerts); !slices.Equal(got, want) {
				t.Fatalf("the replica delivered, before it died,\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Killed: its overlay (the outbox deletions) is never
			// committed.
			clk.t = clk.t.Add(time.Second)
			name := "b"
			if who != "another replica" {
				name = "a"
			}
			next := newReplica(t, rs, stores[1], name, true, clk)
			n, err := next.h.eng.Redeliver(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if name == "b" {
				if n != 0 {
					t.Fatalf("another replica delivered %d alerts within the lease", n)
				}
				clk.t = clk.t.Add(engine.DefaultOutboxLease)
				if n, err = next.h.eng.Redeliver(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if n != len(want) {
				t.Fatalf("delivered %d alerts of the outbox, want %d", n, len(want))
			}
			next.settle()
			if got := deliveries(next.sink.Alerts); !slices.Equal(got, want) {
				t.Fatalf("alerts delivered from the outbox\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// Once delivered and committed, the outbox is empty: a third
			// replica finds nothing, even past the lease.
			clk.t = clk.t.Add(2 * engine.DefaultOutboxLease)
			third := newReplica(t, rs, stores[2], "c", true, clk)
			if n, err := third.h.eng.Redeliver(context.Background()); err != nil || n != 0 {
				t.Fatalf("a third replica delivered %d alerts (%v) of an outbox already delivered", n, err)
			}
			// The batch sent again (the dead replica never acknowledged
			// it) raises nothing new: the decisions were taken.
			next.read(evs...)
			next.settle()
			if n := len(next.sink.Alerts); n != len(want) {
				t.Fatalf("the batch sent again delivered %d more alerts", n-len(want))
			}
		})
	}
}

// TestReplicasCloseRunOnce has two replicas close the same ES|QL run at
// the same time: each read half of a burst and checkpointed its part,
// then both read an event that takes their watermarks past the run's end
// before either commits. Deciding on the shared store, the run's closed
// mark is written by the transaction that decides who closes it, as the
// run closes, so one replica raises the run's alerts, from both parts,
// and the other raises nothing; through their overlays alone the mark
// waits for the commit and both raise them.
func TestReplicasCloseRunOnce(t *testing.T) {
	srv := redistest.Start(t)
	rs := []*rule.Compiled{builtin(t, seed004)}
	at := time.Date(2025, 5, 14, 9, 12, 0, 0, time.UTC)
	log := burst("a", "203.0.113.7", probes, 12, at, 10*time.Second)
	later := burst("z", "203.0.113.99", probes[:1], 1, at.Add(30*time.Minute), 0)
	var whole alert.Collector
	h := newHarness(t, rs, engine.Options{Sink: &whole, Store: mem.New(), Windows: engine.WindowsRestore}, watermark{lateness: time.Minute})
	h.feed(append(slices.Clone(log), later...))
	h.close()
	want := deliveries(whole.Alerts)
	if len(want) == 0 {
		t.Fatal("one engine raised nothing: the burst should be an enumeration")
	}
	run := func(claims bool) []string {
		stores := redisReplicas(t, srv, 2)
		clk := &clock{t: time.Now()}
		a := newReplica(t, rs, stores[0], "a", claims, clk)
		b := newReplica(t, rs, stores[1], "b", claims, clk)
		for i, rec := range log {
			r := a
			if i%2 == 1 {
				r = b
			}
			r.h.feed([]string{rec})
			r.settle()
		}
		// Both close the run before either commits.
		a.h.feed(later)
		b.h.feed(later)
		a.settle()
		b.settle()
		a.closeInput()
		b.closeInput()
		return deliveries(append(a.sink.Alerts, b.sink.Alerts...))
	}
	compareClaims(t, run, want)
}

// TestReplicasShareMaxSignals gives two replicas on one Redis the hits of
// one run of a rule capped at max_signals (lowered to 3 for Elastic's
// query rule, 2 for its new_terms rule), the first half to one and the
// second to the other, evaluated at the same time. Together they raise
// what one engine raises alone: the first max_signals hits of the run,
// the others dropped and counted so. Counting each its own run (as
// before the counts were shared), they raise max_signals each.
func TestReplicasShareMaxSignals(t *testing.T) {
	srv := redistest.Start(t)
	ev := func(i int, ua string) stEv {
		return stEv{id: fmt.Sprintf("e%d", i), at: stT0.Add(time.Duration(i) * time.Second), ua: ua}
	}
	var evs []stEv
	for i := range 8 {
		evs = append(evs, ev(i+1, fmt.Sprintf("scanner/%d", i+1)))
	}
	for _, c := range []struct {
		name, rule string
		max        int
	}{
		{"query", "elastic-k8s-anonymous-request-authorized", 3},
		{"new terms", seed001, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			capped := func() []*rule.Compiled {
				r := stRule(t, c.rule)
				r.Schedule.MaxSignals = c.max
				return []*rule.Compiled{r}
			}
			alone := alone(t, capped(), evs...)
			want := deliveries(alone)
			if len(want) != c.max {
				t.Fatalf("one engine raised\n%s\nwant max_signals (%d) alerts", strings.Join(want, "\n"), c.max)
			}
			var dropped int64
			run := func(claims bool) []string {
				stores := redisReplicas(t, srv, 2)
				clk := &clock{t: time.Now()}
				a := newReplica(t, capped(), stores[0], "a", claims, clk)
				b := newReplica(t, capped(), stores[1], "b", claims, clk)
				a.read(evs[:4]...)
				b.read(evs[4:]...)
				a.settle()
				b.settle()
				a.closeInput()
				b.closeInput()
				dropped = 0
				for _, r := range []*replica{a, b} {
					dropped += r.h.eng.Stats().Rules[c.rule].Dropped
				}
				return deliveries(append(a.sink.Alerts, b.sink.Alerts...))
			}
			compareClaims(t, run, want)
			run(true)
			if want := int64(len(evs) - c.max); dropped != want {
				t.Errorf("the replicas dropped %d hits at max_signals, one engine %d", dropped, want)
			}

			// Settling at the same time, the replicas' transactions
			// conflict on the run's count: which hits are raised depends
			// on which commits first, how many does not. The events sent
			// again to the other replica take no second slot.
			stores := redisReplicas(t, srv, 2)
			clk := &clock{t: time.Now()}
			a := newReplica(t, capped(), stores[0], "a", true, clk)
			b := newReplica(t, capped(), stores[1], "b", true, clk)
			a.read(evs[0], evs[2], evs[4], evs[6])
			b.read(evs[1], evs[3], evs[5], evs[7])
			done := make(chan error, 2)
			for _, r := range []*replica{a, b} {
				go func() { done <- r.h.eng.Settle(context.Background()) }()
			}
			for range 2 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			a.settle()
			b.settle()
			b.read(evs[0], evs[2], evs[4], evs[6])
			b.settle()
			a.closeInput()
			b.closeInput()
			if got := deliveries(append(a.sink.Alerts, b.sink.Alerts...)); len(got) != c.max {
				t.Errorf("replicas settling at once raised %d alerts, want max_signals (%d):\n%s", len(got), c.max, strings.Join(got, "\n"))
			}
		})
	}
}
