package engine_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

const dedupRule = `
id: anon-dedup
name: anonymous access
type: query
language: kuery
query: 'kubernetes.audit.user.username:"system:anonymous"'
severity: info
risk_score: 1
dedup:
  key: anonymous_access_{{ kubernetes.audit.userAgent }}
  period: 60m
tests: []
`

// groupsOf summarises delivered alerts as id/key/count.
type delivered struct {
	id    string
	key   string
	count int64
	first time.Time
	last  time.Time
	nsamp int
}

func groupsOf(t *testing.T, as []*alert.Alert) []delivered {
	t.Helper()
	var out []delivered
	for _, a := range as {
		if a.Group == nil {
			t.Fatalf("alert %s of a dedup rule has no group", a.ID)
		}
		out = append(out, delivered{a.ID, a.Group.Key, a.Group.Count, a.Group.FirstSeen, a.Group.LastSeen, len(a.Group.Samples)})
	}
	return out
}

func TestDedupHeldUntilClose(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, dedupRule)}
	stStores(t, func(t *testing.T, newStore func() state.Store) {
		s := newStore()
		var evs []stEv
		for i := range 8 { // 8 curl requests within 35 minutes
			evs = append(evs, stEv{id: "c" + string(rune('0'+i)), at: stT0.Add(time.Duration(i) * 5 * time.Minute), ua: "curl"})
		}
		evs = append(evs,
			stEv{id: "w0", at: stT0.Add(time.Minute), ua: "wget"},
			stEv{id: "c8", at: stT0.Add(61 * time.Minute), ua: "curl"}) // after the period: a new group
		as, st := stRun(t, rs, s, engine.Options{}, evs...)
		gs := groupsOf(t, as)
		if len(gs) != 3 {
			t.Fatalf("delivered %d alerts (%+v), want 3 groups", len(gs), gs)
		}
		// The first curl group is delivered when the 61st-minute alert
		// closes it; the others at Close, in key order.
		byKey := map[string][]delivered{}
		for _, g := range gs {
			byKey[g.key] = append(byKey[g.key], g)
		}
		c := byKey["anonymous_access_curl"]
		if len(c) != 2 || c[0].count != 8 || !c[0].first.Equal(stT0) || !c[0].last.Equal(stT0.Add(35*time.Minute)) || c[0].nsamp != state.DefaultMaxSamples {
			t.Fatalf("first curl group: %+v", c)
		}
		if c[1].count != 1 || !c[1].first.Equal(stT0.Add(61*time.Minute)) || c[1].id == c[0].id {
			t.Fatalf("second curl group: %+v", c)
		}
		if w := byKey["anonymous_access_wget"]; len(w) != 1 || w[0].count != 1 {
			t.Fatalf("wget group: %+v", w)
		}
		rst := st.Rules["anon-dedup"]
		if rst.Alerts != 3 || rst.Grouped != 7 || rst.Updates != 0 {
			t.Fatalf("stats %+v, want 3 alerts, 7 grouped, 0 updates", rst)
		}
		// The group's alert is its first alert: fields and event of c0.
		if as[0].Origin != "c0" || as[0].Event == nil {
			t.Fatalf("group alert origin %q, want c0 with its event", as[0].Origin)
		}

		// The same input again: every member is known, nothing is
		// delivered, nothing recounted.
		as, st = stRun(t, rs, s, engine.Options{}, evs...)
		if len(as) != 0 || st.Rules["anon-dedup"].Suppressed != int64(len(evs)) {
			t.Fatalf("re-run delivered %d alerts, stats %+v", len(as), st.Rules["anon-dedup"])
		}
		// New logs within the open curl group's period add to it: it is
		// delivered again with the larger count, same id.
		as, st = stRun(t, rs, s, engine.Options{}, stEv{id: "c9", at: stT0.Add(70 * time.Minute), ua: "curl"})
		if gs := groupsOf(t, as); len(gs) != 1 || gs[0].id != c[1].id || gs[0].count != 2 || st.Rules["anon-dedup"].Updates != 1 {
			t.Fatalf("later scan: %+v, stats %+v; want the open group again with count 2", gs, st.Rules["anon-dedup"])
		}
		// Groups expire one period after their end.
		n, err := s.DeleteExpired(stCtx, stT0.Add(61*time.Minute+2*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("DeleteExpired = %d, %v; want the 3 groups minus the last", n, err)
		}
	})
}

func TestDedupImmediateWithUpdates(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, dedupRule)}
	stStores(t, func(t *testing.T, newStore func() state.Store) {
		var sink alert.Collector
		h := newHarness(t, rs, engine.Options{Sink: &sink, Store: newStore(), GroupUpdates: true}, watermark{lateness: 0})
		h.feedEvents(stEv{id: "a", at: stT0, ua: "curl"})
		if gs := groupsOf(t, sink.Alerts); len(gs) != 1 || gs[0].count != 1 {
			t.Fatalf("after the first event: %+v, want the alert at once with count 1", gs)
		}
		h.feedEvents(stEv{id: "b", at: stT0.Add(10 * time.Minute), ua: "curl"}, stEv{id: "c", at: stT0.Add(20 * time.Minute), ua: "curl"})
		if len(sink.Alerts) != 1 {
			t.Fatalf("joining alerts were delivered: %+v", groupsOf(t, sink.Alerts))
		}
		// Event time passes the group's end: Advance (lateness 0) closes it
		// and delivers the update, before Close.
		h.feedEvents(stEv{id: "z", at: stT0.Add(time.Hour), ua: "wget"})
		gs := groupsOf(t, sink.Alerts)
		if len(gs) != 3 || gs[2].id != gs[0].id || gs[2].count != 3 || !gs[2].last.Equal(stT0.Add(20*time.Minute)) || gs[2].nsamp != 3 {
			t.Fatalf("after the period: %+v; want wget's alert then curl's update with count 3", gs)
		}
		h.close()
		if len(sink.Alerts) != 3 {
			t.Fatalf("Close delivered again: %+v", groupsOf(t, sink.Alerts))
		}
		if st := h.eng.Stats().Rules["anon-dedup"]; st.Alerts != 2 || st.Grouped != 2 || st.Updates != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestDedupCrashBeforeCommit checks that a group member whose commit fails
// is counted exactly once after a re-run.
func TestDedupCrashBeforeCommit(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, dedupRule)}
	stStores(t, func(t *testing.T, newStore func() state.Store) {
		s := newStore()
		evs := []stEv{{id: "a", at: stT0, ua: "curl"}, {id: "b", at: stT0.Add(time.Minute), ua: "curl"}, {id: "c", at: stT0.Add(2 * time.Minute), ua: "curl"}}
		fl := &flakyStore{Store: s}
		var sink alert.Collector
		h := newHarness(t, rs, engine.Options{Sink: &sink, Store: fl}, untilClose)
		h.feedEvents(evs[:2]...)
		fl.fail = true // dies while counting c
		if err := h.readEvent(evs[2]); err == nil {
			t.Fatal("a failing commit did not fail the engine")
		}
		as, _ := stRun(t, rs, s, engine.Options{}, evs...)
		if gs := groupsOf(t, as); len(gs) != 1 || gs[0].count != 3 {
			t.Fatalf("after the re-run: %+v, want one group of 3", gs)
		}
	})
}

// A group is delivered with its count when the next alert of its key comes
// after the group's entry has expired (two periods later), not replaced
// and lost: a log with a 3-hour gap between two bursts of one client.
func TestDedupGroupReplacedAfterExpiry(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, dedupRule)}
	stStores(t, func(t *testing.T, newStore func() state.Store) {
		var evs []stEv
		for i := range 5 {
			evs = append(evs, stEv{id: fmt.Sprintf("a%d", i), at: stT0.Add(time.Duration(i) * time.Minute), ua: "zgrab"})
		}
		for i := range 3 {
			evs = append(evs, stEv{id: fmt.Sprintf("b%d", i), at: stT0.Add(3*time.Hour + time.Duration(i)*time.Minute), ua: "zgrab"})
		}
		as, st := stRun(t, rs, newStore(), engine.Options{}, evs...)
		gs := groupsOf(t, as)
		if len(gs) != 2 || gs[0].count != 5 || gs[1].count != 3 {
			t.Fatalf("groups %+v, want one of 5 then one of 3", gs)
		}
		if r := st.Rules["anon-dedup"]; r.Alerts != 2 || r.Grouped != 6 {
			t.Fatalf("stats %+v", r)
		}
	})
}

// TestDedupLatestSample checks the samples a group delivers when most of
// its alerts join it with its samples full (counted without being encoded,
// and for per-event rules without being built; the newest written as the
// latest sample at checkpoints): the first DefaultMaxSamples-1 alerts and
// the newest, whether or not checkpoints fell in between, each sample the
// event document the alert of its event has when it opens a group.
func TestDedupLatestSample(t *testing.T) {
	var evs []stEv
	for i := range 20 {
		evs = append(evs, stEv{id: fmt.Sprintf("s%02d", i), at: stT0.Add(time.Duration(i) * time.Minute), ua: "zgrab", uri: fmt.Sprintf("/api/v1/namespaces/ns%d/secrets", i)})
	}
	opts := func(sink alert.Sink) engine.Options {
		return engine.Options{Sink: sink, Store: mem.New(), GroupUpdates: true, Materialize: formats.Registry().Materialize}
	}
	for _, r := range []string{dedupRule, pantherRule} {
		rs := []*rule.Compiled{stRule(t, r)}
		// The document of each event's alert, from alerts that open groups.
		docs := map[string]string{}
		for _, e := range []stEv{evs[0], evs[1], evs[2], evs[3], evs[19]} {
			var sink alert.Collector
			h := newHarness(t, rs, opts(&sink), untilClose)
			h.feedEvents(e)
			h.close()
			b, _ := json.Marshal(sink.Alerts[0].Event)
			docs[e.id] = string(b)
		}
		for _, every := range []int{0, 1, 3, 7} {
			t.Run(fmt.Sprintf("%s/checkpoint every %d", rs[0].ID, every), func(t *testing.T) {
				var sink alert.Collector
				h := newHarness(t, rs, opts(&sink), untilClose)
				for i, e := range evs {
					h.feedEvents(e)
					if every > 0 && i%every == 0 {
						h.checkpoint()
					}
				}
				h.close()
				if len(sink.Alerts) != 2 {
					t.Fatalf("%d deliveries, want the opening alert and the update", len(sink.Alerts))
				}
				g := sink.Alerts[1].Group
				if g == nil || g.Count != 20 || len(g.Samples) != state.DefaultMaxSamples {
					t.Fatalf("update: %+v", g)
				}
				for i, id := range []string{"s00", "s01", "s02", "s03", "s19"} {
					b, _ := json.Marshal(g.Samples[i])
					if string(b) != docs[id] {
						t.Fatalf("sample %d is\n%s\nwant the document of %s\n%s", i, b, id, docs[id])
					}
				}
			})
		}
	}
}

// TestDedupUpdateEvery checks GroupUpdateEvery: a group that grows is
// delivered again at most once per interval of event time while it is
// open, with its count so far, and once more when it closes; a group that
// stopped growing is not delivered again until it closes.
func TestDedupUpdateEvery(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, dedupRule)}
	var evs []stEv
	for i := range 30 { // one request every 10 seconds for 5 minutes
		evs = append(evs, stEv{id: fmt.Sprintf("z%02d", i), at: stT0.Add(time.Duration(i) * 10 * time.Second), ua: "zgrab"})
	}
	// One more an hour later, after a quiet 55 minutes: it closes the
	// group (its period is 60 minutes) and opens the next.
	evs = append(evs, stEv{id: "z99", at: stT0.Add(61 * time.Minute), ua: "zgrab"})
	for _, c := range []struct {
		every time.Duration
		want  []int64
	}{
		{0, []int64{1, 30, 1}},
		{2 * time.Minute, []int64{1, 13, 25, 30, 1}},
		{time.Hour, []int64{1, 30, 1}},
	} {
		t.Run(c.every.String(), func(t *testing.T) {
			var sink alert.Collector
			h := newHarness(t, rs, engine.Options{Sink: &sink, Store: mem.New(), GroupUpdates: true, GroupUpdateEvery: c.every}, watermark{lateness: 0})
			h.feedEvents(evs...)
			h.close()
			var got []int64
			for _, a := range sink.Alerts {
				got = append(got, a.Group.Count)
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("delivered counts %v, want %v", got, c.want)
			}
			if st := h.eng.Stats().Rules["anon-dedup"]; st.Updates != int64(len(c.want)-2) { // all but the two openings
				t.Errorf("%d updates counted, want %d", st.Updates, len(c.want)-2)
			}
		})
	}
}

// TestDedupGroupsCloseAfterRestart stops an engine with a group open and
// starts another on the same store (serve restarted, restore mode): the
// new engine's watermark closes the group and delivers its count, without
// any new event of its key and without a sweep.
func TestDedupGroupsCloseAfterRestart(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, dedupRule)}
	store := mem.New()
	var a, b alert.Collector
	opts := func(sink alert.Sink) engine.Options {
		return engine.Options{Sink: sink, Store: store, GroupUpdates: true, Windows: engine.WindowsRestore}
	}
	h := newHarness(t, rs, opts(&a), watermark{lateness: 0})
	h.feedEvents(stEv{id: "r1", at: stT0, ua: "zgrab"}, stEv{id: "r2", at: stT0.Add(time.Minute), ua: "zgrab"}, stEv{id: "r3", at: stT0.Add(2 * time.Minute), ua: "zgrab"})
	h.checkpoint() // stopped: the group stays open in the store
	if len(a.Alerts) != 1 || a.Alerts[0].Group.Count != 1 {
		t.Fatalf("before the stop: %d deliveries, want the opening alert", len(a.Alerts))
	}
	g := newHarness(t, rs, opts(&b), watermark{lateness: 0})
	if err := g.eng.Advance(stCtx, stT0.Add(61*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(b.Alerts) != 1 || b.Alerts[0].Group.Count != 3 || b.Alerts[0].ID != a.Alerts[0].ID {
		t.Fatalf("after the restart, the watermark past the group's end delivered %d alerts, want its count 3 under the opening alert's id", len(b.Alerts))
	}
}
