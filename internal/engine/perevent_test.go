package engine_test

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/rules"
)

const pantherRule = "Kubernetes.API.AnonymousAccess"

// anonRule is an anonymous-request rule in KQL (language left to its
// default) or ES|QL with head (type, firing, dedup) before its query.
func anonRule(id, head, language string) string {
	q := `query: 'kubernetes.audit.user.username:"system:anonymous"'` + "\n"
	if language == rule.LangESQL {
		q = "language: esql\nquery: |\n  from logs-*\n  | where kubernetes.audit.user.username == \"system:anonymous\"\n  | keep kubernetes.audit.userAgent\n"
	}
	return "id: " + id + "\nname: anonymous request\nseverity: info\nrisk_score: 1\n" + head + q
}

// anonBurst returns anonymous requests one second apart from stT0 (all in
// the run 09:59-10:05 of a 5m/now-6m schedule while there are fewer than
// 300), interleaved by user agent: agent k sends counts[k] requests.
func anonBurst(prefix string, agents []string, counts []int) []stEv {
	var evs []stEv
	for round := 0; ; round++ {
		n := len(evs)
		for k, ua := range agents {
			if round < counts[k] {
				evs = append(evs, stEv{id: fmt.Sprintf("%s-%d", prefix, len(evs)), at: stT0.Add(time.Duration(len(evs)) * time.Second), ua: ua})
			}
		}
		if len(evs) == n {
			return evs
		}
	}
}

// memStore returns an in-memory store closed when t ends.
func memStore(t *testing.T) state.Store {
	s := mem.New()
	t.Cleanup(func() { s.Close() })
	return s
}

func agentNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("agent-%d/1.0", i)
	}
	return out
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// TestPerEventHasNoMaxSignals feeds 150 matching events of one 5-minute
// run: a per-event rule (KQL or ES|QL) alerts on every one, while the same
// query as Elastic's scheduled rule stops at max_signals, 100 per run
// (Elastic's quirk, kept for Elastic's rules).
func TestPerEventHasNoMaxSignals(t *testing.T) {
	evs := anonBurst("e", []string{"curl/8.5.0"}, []int{150})
	cases := []struct {
		name, head, language    string
		firing, typ             string
		wantAlerts, wantDropped int64
	}{
		{"per-event KQL", "", rule.LangKuery, rule.FiringPerEvent, "", 150, 0},
		{"per-event ES|QL", "", rule.LangESQL, rule.FiringPerEvent, "", 150, 0},
		{"per-event KQL, firing given", "firing: per_event\n", rule.LangKuery, rule.FiringPerEvent, "", 150, 0},
		{"Elastic's query rule", "type: query\n", rule.LangKuery, rule.FiringScheduled, rule.TypeQuery, 100, 50},
		{"Elastic's esql rule", "type: esql\n", rule.LangESQL, rule.FiringScheduled, rule.TypeESQL, 100, 50},
		{"scheduled KQL without Elastic's type", "firing: scheduled\n", rule.LangKuery, rule.FiringScheduled, "", 100, 50},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := stRule(t, anonRule("anon", c.head, c.language))
			as, st := stRun(t, []*rule.Compiled{r}, memStore(t), engine.Options{}, evs...)
			rs := st.Rules["anon"]
			if rs.Matched != 150 || rs.Alerts != c.wantAlerts || rs.Dropped != c.wantDropped || int64(len(as)) != c.wantAlerts {
				t.Fatalf("%d alerts, stats %+v; want %d alerts and %d dropped of 150 matched", len(as), *rs, c.wantAlerts, c.wantDropped)
			}
			ids := map[string]bool{}
			for _, a := range as {
				ids[a.ID] = true
				if a.Rule.Language != c.language || a.Rule.Firing != c.firing || a.Rule.Type != c.typ {
					t.Fatalf("alert's rule: language %q firing %q type %q; want %q %q %q", a.Rule.Language, a.Rule.Firing, a.Rule.Type, c.language, c.firing, c.typ)
				}
				// A scheduled rule's alert says which run raised it, and
				// the run's cap; a per-event rule has no runs.
				scheduled := c.firing == rule.FiringScheduled
				if a.Event == nil || (a.Window != nil) != scheduled {
					t.Fatalf("an alert per event has no event, or a window (%+v) when it should not: %+v", a.Window, a)
				}
				if scheduled && (a.Window.MaxSignals != 100 || a.Timestamp.Before(a.Window.Start) || !a.Timestamp.Before(a.Window.End)) {
					t.Fatalf("alert at %v in run %+v", a.Timestamp, *a.Window)
				}
			}
			if int64(len(ids)) != c.wantAlerts {
				t.Fatalf("%d distinct alert ids for %d alerts", len(ids), len(as))
			}
		})
	}
}

// groupCounts returns the group count of each dedup key, and their sum.
func groupCounts(t *testing.T, as []*alert.Alert) (map[string]int64, int64) {
	t.Helper()
	out := map[string]int64{}
	var total int64
	for _, g := range groupsOf(t, as) {
		if _, dup := out[g.key]; dup {
			t.Fatalf("key %s delivered twice: %+v", g.key, groupsOf(t, as))
		}
		out[g.key] = g.count
		total += g.count
	}
	return out, total
}

// TestPerEventDedupCountsEveryEvent checks Panther's dedup on a per-event
// rule with more than 100 matching events in one 5-minute window: every
// event joins the group of its key, so each group's count is exact.
func TestPerEventDedupCountsEveryEvent(t *testing.T) {
	const dedup = "dedup:\n  key: anonymous_access_{{ kubernetes.audit.userAgent }}\n  period: 60m\n"
	agents := agentNames(7)
	counts := []int{10, 15, 20, 25, 30, 35, 40} // 175 events
	distinct := anonBurst("d", agents, counts)
	single := anonBurst("s", []string{"curl/8.5.0"}, []int{150})
	perEvent := []*rule.Compiled{stRule(t, anonRule("anon", dedup, rule.LangKuery))}
	for name, rs := range map[string][]*rule.Compiled{"KQL": perEvent, "Panther's rule": {stRule(t, pantherRule)}} {
		id := rs[0].ID
		stStores(t, func(t *testing.T, newStore func() state.Store) {
			t.Run(name+", distinct user agents", func(t *testing.T) {
				as, st := stRun(t, rs, newStore(), engine.Options{}, distinct...)
				got, total := groupCounts(t, as)
				if len(got) != len(agents) || total != int64(sum(counts)) {
					t.Fatalf("groups %v (sum %d); want one per agent, summing to %d", got, total, sum(counts))
				}
				for k, ua := range agents {
					if got["anonymous_access_"+ua] != int64(counts[k]) {
						t.Fatalf("group of %s counts %d, want %d (groups %v)", ua, got["anonymous_access_"+ua], counts[k], got)
					}
				}
				if s := st.Rules[id]; s.Alerts != 7 || s.Grouped != int64(sum(counts)-7) || s.Dropped != 0 {
					t.Fatalf("stats %+v", *s)
				}
			})
			t.Run(name+", one user agent", func(t *testing.T) {
				as, st := stRun(t, rs, newStore(), engine.Options{}, single...)
				if got, total := groupCounts(t, as); len(got) != 1 || total != 150 {
					t.Fatalf("groups %v; want one group of 150", got)
				}
				if as[0].Origin != "s-0" || !as[0].Group.FirstSeen.Equal(stT0) || !as[0].Group.LastSeen.Equal(stT0.Add(149*time.Second)) {
					t.Fatalf("group alert from %s, %s-%s; want the first event's, over the burst", as[0].Origin, as[0].Group.FirstSeen, as[0].Group.LastSeen)
				}
				if s := st.Rules[id]; s.Alerts != 1 || s.Grouped != 149 || s.Dropped != 0 {
					t.Fatalf("stats %+v", *s)
				}
			})
		})
	}
	// Elastic's scheduled query rule with the same dedup key counts the
	// alerts of each run against max_signals before grouping: 100 events
	// of the 175 reach the groups (Elastic's quirk, kept for Elastic's
	// semantics).
	sched := []*rule.Compiled{stRule(t, anonRule("anon", "type: query\n"+dedup, rule.LangKuery))}
	as, st := stRun(t, sched, memStore(t), engine.Options{}, distinct...)
	if _, total := groupCounts(t, as); total != 100 || st.Rules["anon"].Dropped != 75 {
		t.Fatalf("scheduled rule: groups sum to %d, %d dropped; want 100 and 75", total, st.Rules["anon"].Dropped)
	}
}

// pantherBurst is the shape of the kube-apiserver log of the issue: a
// burst of 133 anonymous requests from 9 user agents within a few minutes,
// with health checks and localhost requests (excluded by the rule) among
// them.
func pantherBurst() (events []stEv, agents []string, counts []int) {
	agents = []string{"kubectl/v1.29.2", "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1",
		"Mozilla/5.0 zgrab/0.x", "masscan/1.3", "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
		"kube-hunter", "Wget/1.21.4"}
	counts = []int{40, 25, 18, 14, 11, 9, 7, 5, 4}
	events = anonBurst("p", agents, counts)
	for i := range 12 {
		at := stT0.Add(time.Duration(i)*10*time.Second + 500*time.Millisecond)
		events = append(events,
			stEv{id: fmt.Sprintf("probe-%d", i), at: at, ua: "kube-probe/1.29", uri: "/healthz"},
			stEv{id: fmt.Sprintf("local-%d", i), at: at, ua: "kube-apiserver/v1.29.2", ips: []string{"127.0.0.1"}})
	}
	return events, agents, counts
}

// TestPantherRuleBurst runs Panther's built-in rule over a burst like the
// issue's real log: 133 matching events from 9 user agents in one run.
// Panther's rule fires per event and its dedup groups every event, so it
// raises 9 alerts covering all 133; run on Elastic's schedule (type: esql,
// as the built-in rule was before), max_signals would leave 33 uncounted.
func TestPantherRuleBurst(t *testing.T) {
	events, agents, counts := pantherBurst()
	r := stRule(t, pantherRule)
	if r.Firing != rule.FiringPerEvent || r.Language != rule.LangESQL || r.Type != "" || r.HasRuns() {
		t.Fatalf("Panther's rule: firing %q, language %q, type %q", r.Firing, r.Language, r.Type)
	}
	as, st := stRun(t, []*rule.Compiled{r}, memStore(t), engine.Options{}, events...)
	got, total := groupCounts(t, as)
	if len(as) != 9 || total != 133 || st.Rules[pantherRule].Matched != 133 {
		t.Fatalf("%d alerts covering %d events (%d matched); want 9 covering 133: %v", len(as), total, st.Rules[pantherRule].Matched, got)
	}
	for k, ua := range agents {
		if got["anonymous_access_"+ua] != int64(counts[k]) {
			t.Fatalf("group of %s counts %d, want %d", ua, got["anonymous_access_"+ua], counts[k])
		}
	}
	for _, a := range as {
		if a.Rule.Firing != rule.FiringPerEvent || a.Rule.Language != rule.LangESQL || a.Rule.Type != "" {
			t.Fatalf("alert's rule description: %+v", a.Rule)
		}
	}

	// The same file with Elastic's type instead of firing: per_event.
	text, err := fs.ReadFile(rules.FS, "panther/kubernetes_anonymous_api_access.yaml")
	if err != nil {
		t.Fatal(err)
	}
	elastic := strings.Replace(string(text), "firing: per_event\n", "type: esql\n", 1)
	if elastic == string(text) {
		t.Fatal("Panther's rule file has no firing: per_event")
	}
	as, st = stRun(t, []*rule.Compiled{stRule(t, elastic)}, memStore(t), engine.Options{}, events...)
	if _, total := groupCounts(t, as); total != 100 || st.Rules[pantherRule].Dropped != 33 {
		t.Fatalf("on Elastic's schedule: groups sum to %d, %d dropped; want 100 and 33", total, st.Rules[pantherRule].Dropped)
	}
}

// TestPerEventNoAllocs checks that the per-event runners read an event
// that does not match without allocating (KQL, and Panther's ES|QL).
func TestPerEventNoAllocs(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, pantherRule), stRule(t, anonRule("anon-kql", "", rule.LangKuery)), stRule(t, anonRule("anon-esql", "", rule.LangESQL))}
	var sink countSink
	h := newHarness(t, rs, engine.Options{Sink: &sink, Store: memStore(t)}, untilClose)
	line := auditLine("n", "kubernetes-admin", "10.0.1.23", "kubectl/v1.30.2", probes[0], t0)
	evs := h.decode(nil, event.Origin{Name: "log", Line: 1}, []byte(line))
	if len(evs) != 1 {
		t.Fatalf("%d events in one audit line", len(evs))
	}
	ev := evs[0]
	// AllocsPerRun counts every allocation of the process: a goroutine
	// of another test that has not ended yet can add one. The path is
	// allocation-free if one of three measurements says so.
	n := 0.0
	for range 3 {
		if n = testing.AllocsPerRun(100, func() {
			if err := h.process(ev); err != nil {
				t.Fatal(err)
			}
		}); n == 0 {
			break
		}
	}
	if n != 0 {
		t.Fatalf("%v allocations per event", n)
	}
	for _, r := range rs {
		if st := h.eng.Stats().Rules[r.ID]; st.Matched != 0 || st.Errors != 0 {
			t.Fatalf("rule %s: stats %+v", r.ID, *st)
		}
	}
}
