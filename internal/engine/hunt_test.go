package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestDroppedHits: the hits a run drops at max_signals are handed to
// Hunt.DroppedHits marked dropped, with their run; they are counted per
// run, never as raised, and never recorded in the store (a later engine
// on the same store raises them).
func TestDroppedHits(t *testing.T) {
	evs := anonBurst("e", []string{"curl/8.5.0"}, []int{150})
	for _, c := range []struct{ name, head, language string }{
		{"Elastic's query rule", "type: query\n", rule.LangKuery},
		{"Elastic's esql rule", "type: esql\n", rule.LangESQL},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := stRule(t, anonRule("anon", c.head, c.language))
			store := memStore(t)
			var dropped alert.Collector
			counts := &engine.HuntCounts{}
			as, st := stRun(t, []*rule.Compiled{r}, store, engine.Options{Hunt: engine.Hunt{DroppedHits: &dropped, Counts: counts}}, evs...)
			rs := st.Rules["anon"]
			if len(as) != 100 || rs.Alerts != 100 || rs.Dropped != 50 || len(dropped.Alerts) != 50 {
				t.Fatalf("%d alerts, %d dropped hits delivered, stats %+v", len(as), len(dropped.Alerts), *rs)
			}
			end := time.Date(2025, 6, 2, 10, 5, 0, 0, time.UTC)
			if got := counts.RunDrops["anon"]; len(got) != 1 || counts.Dropped("anon", end) != 50 || counts.Runs() != 1 {
				t.Fatalf("run tally %v, want 50 in the run ending %v", got, end)
			}
			raised := map[string]bool{}
			for _, a := range as {
				raised[a.ID] = true
				if a.Dropped || a.Window == nil || !a.Window.End.Equal(end) {
					t.Fatalf("raised alert: dropped %v, window %+v", a.Dropped, a.Window)
				}
			}
			for _, a := range dropped.Alerts {
				if !a.Dropped || a.Window == nil || !a.Window.End.Equal(end) || a.Window.MaxSignals != 100 || a.Event == nil || raised[a.ID] {
					t.Fatalf("dropped hit %s: dropped %v, window %+v, event %v", a.ID, a.Dropped, a.Window, a.Event != nil)
				}
			}
			// Not recorded: the same input on the same store with the cap
			// lifted raises the 50 and suppresses the 100.
			as, st = stRun(t, []*rule.Compiled{r}, store, engine.Options{Hunt: engine.Hunt{NoMaxSignals: true}}, evs...)
			rs = st.Rules["anon"]
			if len(as) != 50 || rs.Suppressed != 100 || rs.Dropped != 0 {
				t.Fatalf("second scan: %d alerts, stats %+v", len(as), *rs)
			}
			for _, a := range as {
				if a.Window == nil || a.Window.MaxSignals != 0 {
					t.Fatalf("with the cap lifted, window %+v", a.Window)
				}
			}
		})
	}
}

// TestNoMaxSignals: with the cap lifted every hit of every rule kind is
// raised: query rules, new_terms rules and the rows of aggregating ES|QL.
func TestNoMaxSignals(t *testing.T) {
	evs := anonBurst("e", agentNames(150), repeat(1, 150))
	nt := withMaxSignals(stRule(t, seed001), 100)
	for _, hunt := range []engine.Hunt{{}, {NoMaxSignals: true}} {
		as, st := stRun(t, []*rule.Compiled{nt}, memStore(t), engine.Options{Hunt: hunt}, evs...)
		want := int64(100)
		if hunt.NoMaxSignals {
			want = 150
		}
		if rs := st.Rules[seed001]; int64(len(as)) != want || rs.Dropped != 150-want {
			t.Fatalf("new terms, %+v: %d alerts, stats %+v", hunt, len(as), *rs)
		}
	}
	r := withMaxSignals(builtin(t, seed004), 2)
	var log []string
	for i := range 5 {
		log = append(log, burst(fmt.Sprint("s", i), fmt.Sprintf("203.0.113.%d", 7+i), probes, 8, t0, time.Second)...)
	}
	var dropped alert.Collector
	res := runHunt(t, r, engine.Hunt{DroppedHits: &dropped}, log)
	if len(res.alerts) != 2 || len(dropped.Alerts) != 3 {
		t.Fatalf("%d alerts, %d dropped rows", len(res.alerts), len(dropped.Alerts))
	}
	for _, a := range append(res.alerts, dropped.Alerts...) {
		// The run's tally is known when it closes: every row says it.
		if a.Window.Dropped != 3 || a.Window.MaxSignals != 2 || a.Evidence == nil || a.Evidence.Total != 8 || len(a.Evidence.Events) != 8 {
			t.Fatalf("window %+v, evidence %+v", a.Window, a.Evidence)
		}
	}
	if res = runHunt(t, r, engine.Hunt{NoMaxSignals: true}, log); len(res.alerts) != 5 || res.stats.Rules[seed004].Dropped != 0 {
		t.Fatalf("lifted: %d alerts", len(res.alerts))
	}
}

func repeat(n, k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = n
	}
	return out
}

// runHunt is runLog with a hunt's options.
func runHunt(t *testing.T, r *rule.Compiled, hunt engine.Hunt, records []string) result {
	t.Helper()
	store := mem.New()
	defer store.Close()
	h := newHarness(t, []*rule.Compiled{r}, engine.Options{Store: store, Materialize: formats.Registry().Materialize, Hunt: hunt,
		OnError: func(id string, err error) { t.Errorf("rule %s: %v", id, err) }}, untilClose)
	h.feed(records)
	h.close()
	return result{alerts: h.sink.Alerts, stats: h.eng.Stats()}
}

// TestEvidenceOfAggregateAlerts: an aggregating ES|QL alert names the
// events it counts, earliest first, with their origins and the total.
func TestEvidenceOfAggregateAlerts(t *testing.T) {
	log := burst("s", "203.0.113.7", probes, 30, t0, time.Second)
	res := runHunt(t, builtin(t, seed004), engine.Hunt{}, log)
	if len(res.alerts) != 1 {
		t.Fatalf("%d alerts", len(res.alerts))
	}
	ev := res.alerts[0].Evidence
	if ev == nil || ev.Total != 30 || len(ev.Events) != 10 {
		t.Fatalf("evidence %+v", ev)
	}
	for i, r := range ev.Events {
		if r.AuditID != fmt.Sprint("s-", i) || r.Origin != fmt.Sprint("log:", i+1) || !r.Timestamp.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
}

// TestHuntRangeAndCluster: events outside Since and Until are not judged
// and are counted; events without a cluster get the hunt's, which rules
// and alerts see; an event's own cluster is kept.
func TestHuntRangeAndCluster(t *testing.T) {
	evs := anonBurst("e", []string{"curl/8.5.0"}, []int{10}) // 10:00:00 .. 10:00:09
	r := stRule(t, anonRule("anon", "firing: per_event\n", rule.LangKuery))
	hunt := engine.Hunt{Since: stT0.Add(2 * time.Second), Until: stT0.Add(5 * time.Second), Cluster: "prod-eu", Counts: &engine.HuntCounts{}}
	as, st := stRun(t, []*rule.Compiled{r}, memStore(t), engine.Options{Hunt: hunt}, evs...)
	if len(as) != 3 || hunt.Counts.OutOfRange != 7 || st.Events != 3 {
		t.Fatalf("%d alerts, %d out of range, %d events; want 3, 7, 3", len(as), hunt.Counts.OutOfRange, st.Events)
	}
	for i, a := range as {
		if want := stT0.Add(time.Duration(2+i) * time.Second); !a.Timestamp.Equal(want) {
			t.Errorf("alert %d at %v, want %v", i, a.Timestamp, want)
		}
		if c, _ := a.Fields.Get("cluster"); c != "prod-eu" {
			t.Errorf("cluster field %v", c)
		}
		if orch, _ := a.Event["orchestrator"].(map[string]any); orch == nil || orch["cluster"].(map[string]any)["name"] != "prod-eu" {
			t.Errorf("event document: %v", a.Event["orchestrator"])
		}
	}
	// A rule on the cluster name sees it.
	onCluster := stRule(t, "id: c\nname: c\nseverity: low\nrisk_score: 1\nfiring: per_event\nquery: 'orchestrator.cluster.name:\"prod-eu\"'\n")
	if as, _ := stRun(t, []*rule.Compiled{onCluster}, memStore(t), engine.Options{Hunt: engine.Hunt{Cluster: "prod-eu"}}, evs...); len(as) != 10 {
		t.Fatalf("a rule on the cluster name raised %d alerts, want 10", len(as))
	}
}
