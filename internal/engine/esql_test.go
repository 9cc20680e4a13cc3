package engine_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/rules"
)

const seed004 = "elastic-k8s-anonymous-endpoint-permission-enumeration"

// builtin returns a compiled rule of the built-in pack, read from its own
// file (so that the test does not depend on the other files of the pack).
func builtin(t testing.TB, id string) *rule.Compiled {
	t.Helper()
	files := map[string]string{seed004: "elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml"}
	data, err := rules.FS.ReadFile(files[id])
	if err != nil {
		t.Fatalf("no built-in rule %s: %v", id, err)
	}
	c := compileYAML(t, files[id], string(data))
	if c.ID != id {
		t.Fatalf("%s holds rule %s, not %s", files[id], c.ID, id)
	}
	return c
}

// compileYAML compiles a rule file's text.
func compileYAML(t testing.TB, name, text string) *rule.Compiled {
	t.Helper()
	r, err := rule.Parse(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withMaxSignals returns a copy of c whose runs raise at most n alerts.
func withMaxSignals(c *rule.Compiled, n int) *rule.Compiled {
	r := *c.Rule
	r.Schedule.MaxSignals = n
	cc := *c
	cc.Rule = &r
	return &cc
}

// probe is one request of an enumeration burst.
type probe struct {
	uri, resource, verb string
	code                int
	decision            string
}

// probes are the requests of a scripted sweep: 8 URIs over 7 resources,
// mostly forbidden, one 401 and one 404.
var probes = []probe{
	{"/api/v1/namespaces/default/pods", "pods", "list", 403, "forbid"},
	{"/api/v1/secrets", "secrets", "list", 403, "forbid"},
	{"/api/v1/namespaces", "namespaces", "list", 401, ""},
	{"/apis/apps/v1/deployments", "deployments", "list", 404, ""},
	{"/api/v1/nodes", "nodes", "get", 403, "forbid"},
	{"/api/v1/configmaps", "configmaps", "list", 403, "forbid"},
	{"/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "customresourcedefinitions", "list", 403, "forbid"},
	{"/api/v1/namespaces/kube-system/secrets", "secrets", "list", 403, "forbid"},
}

// auditLine renders one anonymous audit event (level Request) as a JSON
// line of the Kubernetes audit format.
func auditLine(id, user, ip, ua string, p probe, at time.Time) string {
	ev := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": id,
		"stage": "ResponseComplete", "requestURI": p.uri, "verb": p.verb,
		"user":      map[string]any{"username": user, "groups": []string{"system:unauthenticated"}},
		"sourceIPs": []string{ip}, "userAgent": ua,
		"responseStatus":           map[string]any{"metadata": map[string]any{}, "code": p.code},
		"requestReceivedTimestamp": at.Format(time.RFC3339Nano),
		"stageTimestamp":           at.Format(time.RFC3339Nano),
	}
	if p.resource != "" {
		ev["objectRef"] = map[string]any{"resource": p.resource, "apiVersion": "v1"}
	}
	if p.decision != "" {
		ev["annotations"] = map[string]any{"authorization.k8s.io/decision": p.decision}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// burst returns n anonymous requests from ip cycling over ps, one every
// step from start.
func burst(tag, ip string, ps []probe, n int, start time.Time, step time.Duration) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = auditLine(fmt.Sprintf("%s-%d", tag, i), "system:anonymous", ip, "kubectl-enum/0.1", ps[i%len(ps)], start.Add(time.Duration(i)*step))
	}
	return out
}

var t0 = time.Date(2025, 5, 14, 9, 12, 0, 0, time.UTC) // inside the run ending 09:15 only

func field(t *testing.T, a *alert.Alert, name string) any {
	t.Helper()
	v, ok := a.Fields.Get(name)
	if !ok {
		t.Fatalf("alert lacks field %s: %v", name, a.Fields)
	}
	return v
}

func wantField(t *testing.T, a *alert.Alert, name string, want any) {
	t.Helper()
	got := field(t, a, name)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func wantWindow(t *testing.T, a *alert.Alert, start, end string) {
	t.Helper()
	if a.Window == nil {
		t.Fatal("alert has no run window")
	}
	if got := a.Window.Start.Format("15:04:05") + "-" + a.Window.End.Format("15:04:05"); got != start+"-"+end {
		t.Errorf("run window %s, want %s-%s", got, start, end)
	}
}

// TestSeed004Bursts runs the cases of the rule's embedded tests through
// the engine and checks every alert and count.
func TestSeed004Bursts(t *testing.T) {
	r := builtin(t, seed004)
	t.Run("burst alerts once with the counts", func(t *testing.T) {
		res := runLog(t, []*rule.Compiled{r}, -1, burst("a", "203.0.113.7", probes, 8, t0, 3*time.Second))
		if len(res.alerts) != 1 {
			t.Fatalf("%d alerts, want 1", len(res.alerts))
		}
		a := res.alerts[0]
		wantField(t, a, "Esql.document_count", 8)
		wantField(t, a, "Esql.kubernetes_audit_requestURI_count_distinct", 8)
		wantField(t, a, "Esql.kubernetes_audit_objectRef_resource_count_distinct", 7)
		wantField(t, a, "Esql.authz_forbid_count", 6)
		wantField(t, a, "Esql.status_fail_count", 1)
		wantField(t, a, "Esql.not_found_count", 1)
		wantField(t, a, "Esql.success_count", 0)
		wantField(t, a, "Esql.kubernetes_audit_verb_values", []any{"get", "list"})
		wantField(t, a, "Esql.kubernetes_audit_outcome_values", []any{"authn_authz_failed", "authz_forbid", "not_found"})
		wantField(t, a, "kubernetes.audit.sourceIPs", "203.0.113.7")
		wantField(t, a, "kubernetes.audit.userAgent", "kubectl-enum/0.1")
		wantWindow(t, a, "09:09:00", "09:15:00")
		if a.Rule.ID != seed004 || a.Title != r.Name || !a.Timestamp.Equal(a.Window.End) {
			t.Errorf("alert rule %s title %q at %s", a.Rule.ID, a.Title, a.Timestamp)
		}
		st := res.stats.Rules[seed004]
		if st.Matched != 8 || st.Alerts != 1 || st.Dropped != 0 || st.Late != 0 {
			t.Errorf("stats %+v", *st)
		}
	})
	t.Run("fifty requests do not alert", func(t *testing.T) {
		res := runLog(t, []*rule.Compiled{r}, -1, burst("b", "203.0.113.7", probes, 50, t0, time.Second))
		if len(res.alerts) != 0 || res.stats.Rules[seed004].Matched != 50 {
			t.Fatalf("%d alerts, %d matched; want none of 50", len(res.alerts), res.stats.Rules[seed004].Matched)
		}
	})
	t.Run("forty-nine requests alert", func(t *testing.T) {
		res := runLog(t, []*rule.Compiled{r}, -1, burst("b", "203.0.113.7", probes, 49, t0, time.Second))
		if len(res.alerts) != 1 {
			t.Fatalf("%d alerts, want 1", len(res.alerts))
		}
		wantField(t, res.alerts[0], "Esql.document_count", 49)
	})
	t.Run("three URIs do not alert", func(t *testing.T) {
		res := runLog(t, []*rule.Compiled{r}, -1, burst("c", "203.0.113.7", probes[:3], 9, t0, time.Second))
		if len(res.alerts) != 0 {
			t.Fatalf("%d alerts, want none", len(res.alerts))
		}
	})
	t.Run("two sources alert twice", func(t *testing.T) {
		log := append(burst("d1", "203.0.113.7", probes, 8, t0, time.Second), burst("d2", "198.51.100.23", probes, 8, t0, time.Second)...)
		res := runLog(t, []*rule.Compiled{r}, -1, log)
		if len(res.alerts) != 2 {
			t.Fatalf("%d alerts, want 2", len(res.alerts))
		}
		// Groups in key order.
		wantField(t, res.alerts[0], "kubernetes.audit.sourceIPs", "198.51.100.23")
		wantField(t, res.alerts[1], "kubernetes.audit.sourceIPs", "203.0.113.7")
		for _, a := range res.alerts {
			wantField(t, a, "Esql.document_count", 8)
		}
		if res.alerts[0].ID == res.alerts[1].ID {
			t.Error("the two groups share an alert id")
		}
	})
	t.Run("authenticated and Metadata-level requests never reach the rule", func(t *testing.T) {
		var log []string
		for i := range 8 {
			log = append(log, auditLine(fmt.Sprintf("e%d", i), "alice", "203.0.113.7", "kubectl-enum/0.1", probes[i], t0))
			meta := strings.Replace(auditLine(fmt.Sprintf("f%d", i), "system:anonymous", "203.0.113.7", "kubectl-enum/0.1", probes[i], t0), `"level":"Request"`, `"level":"Metadata"`, 1)
			log = append(log, meta)
		}
		res := runLog(t, []*rule.Compiled{r}, -1, log)
		if len(res.alerts) != 0 || res.stats.Rules[seed004].Matched != 0 {
			t.Fatalf("%d alerts, %d matched; want none", len(res.alerts), res.stats.Rules[seed004].Matched)
		}
	})
}

// TestSeed004RunBoundary documents what Elastic's overlapping runs do with
// a burst that spans a run boundary. Runs end at multiples of 5 minutes
// and look back 6: the run ending 09:15 reads [09:09, 09:15), the run
// ending 09:20 reads [09:14, 09:20). Each run aggregates only its own
// window, as each Elastic rule execution queries its own time range.
func TestSeed004RunBoundary(t *testing.T) {
	r := builtin(t, seed004)
	at := func(hms string) time.Time {
		tm, err := time.Parse("15:04:05", hms)
		if err != nil {
			t.Fatal(err)
		}
		return time.Date(2025, 5, 14, tm.Hour(), tm.Minute(), tm.Second(), 0, time.UTC)
	}
	t.Run("split so that no run sees enough: no alert", func(t *testing.T) {
		// 4 URIs before the overlap, 4 after it: the whole burst has 8
		// URIs, but run 09:15 sees 4 and run 09:20 sees 4.
		log := append(burst("g", "203.0.113.7", probes[:4], 4, at("09:12:00"), 10*time.Second),
			burst("h", "203.0.113.7", probes[4:], 4, at("09:15:10"), 10*time.Second)...)
		res := runLog(t, []*rule.Compiled{r}, -1, log)
		if len(res.alerts) != 0 {
			t.Fatalf("%d alerts, want none: %v", len(res.alerts), res.alerts[0].Fields)
		}
	})
	t.Run("overlap minute: both runs alert, with different ids", func(t *testing.T) {
		// 2 requests at 09:13 (run 09:15 only), 6 in the overlap minute
		// 09:14-09:15 (both runs).
		log := append(burst("i", "203.0.113.7", probes[:2], 2, at("09:13:00"), 10*time.Second),
			burst("j", "203.0.113.7", probes[2:], 6, at("09:14:00"), 5*time.Second)...)
		res := runLog(t, []*rule.Compiled{r}, -1, log)
		if len(res.alerts) != 2 {
			t.Fatalf("%d alerts, want 2", len(res.alerts))
		}
		first, second := res.alerts[0], res.alerts[1]
		wantWindow(t, first, "09:09:00", "09:15:00")
		wantField(t, first, "Esql.document_count", 8)
		wantField(t, first, "Esql.kubernetes_audit_requestURI_count_distinct", 8)
		wantWindow(t, second, "09:14:00", "09:20:00")
		wantField(t, second, "Esql.document_count", 6)
		wantField(t, second, "Esql.kubernetes_audit_requestURI_count_distinct", 6)
		if first.ID == second.ID {
			t.Error("two runs gave the same alert id")
		}
	})
	t.Run("identical rows in two runs still alert twice", func(t *testing.T) {
		// The whole burst in the overlap minute: both runs compute the same
		// row; the ids differ by the run window, as Elastic's.
		res := runLog(t, []*rule.Compiled{r}, -1, burst("k", "203.0.113.7", probes, 8, at("09:14:10"), 5*time.Second))
		if len(res.alerts) != 2 {
			t.Fatalf("%d alerts, want 2", len(res.alerts))
		}
		if res.alerts[0].ID == res.alerts[1].ID {
			t.Error("two runs gave the same alert id")
		}
		a, _ := json.Marshal(res.alerts[0].Fields)
		b, _ := json.Marshal(res.alerts[1].Fields)
		if string(a) != string(b) {
			t.Errorf("rows differ:\n%s\n%s", a, b)
		}
	})
	t.Run("a run that ends mid-burst alerts on its part only", func(t *testing.T) {
		// 8 URIs before 09:14, 3 more in 09:15-09:16: run 09:15 alerts on 8
		// requests; run 09:20 sees 3 URIs and does not.
		log := append(burst("l", "203.0.113.7", probes, 8, at("09:12:00"), 10*time.Second),
			burst("m", "203.0.113.7", probes[:3], 3, at("09:15:30"), 10*time.Second)...)
		res := runLog(t, []*rule.Compiled{r}, 0, log)
		if len(res.alerts) != 1 {
			t.Fatalf("%d alerts, want 1", len(res.alerts))
		}
		wantWindow(t, res.alerts[0], "09:09:00", "09:15:00")
		wantField(t, res.alerts[0], "Esql.document_count", 8)
	})
	t.Run("re-scan with the same store raises nothing new", func(t *testing.T) {
		log := burst("n", "203.0.113.7", probes, 8, at("09:14:10"), 5*time.Second)
		store := mem.New()
		defer store.Close()
		var total []*alert.Alert
		var suppressed int64
		for range 2 {
			var sink alert.Collector
			h := newHarness(t, []*rule.Compiled{r}, engine.Options{Sink: &sink, Store: store}, untilClose)
			h.feed(log)
			h.close()
			total = append(total, sink.Alerts...)
			suppressed += h.eng.Stats().Rules[seed004].Suppressed
		}
		if len(total) != 2 || suppressed != 2 {
			t.Fatalf("%d alerts and %d suppressed over two scans, want 2 and 2", len(total), suppressed)
		}
	})
}

// TestESQLMaxSignals checks that a run raises at most max_signals alerts
// and counts the rest as dropped.
func TestESQLMaxSignals(t *testing.T) {
	r := withMaxSignals(builtin(t, seed004), 2)
	var log []string
	for i, ip := range []string{"203.0.113.7", "203.0.113.8", "203.0.113.9", "203.0.113.10", "203.0.113.11"} {
		log = append(log, burst(fmt.Sprint("s", i), ip, probes, 8, t0, time.Second)...)
	}
	res := runLog(t, []*rule.Compiled{r}, -1, log)
	st := res.stats.Rules[seed004]
	if len(res.alerts) != 2 || st.Alerts != 2 || st.Dropped != 3 {
		t.Fatalf("%d alerts, stats %+v; want 2 alerts and 3 dropped", len(res.alerts), *st)
	}
	// A second run has its own max_signals.
	log = append(log, burst("t", "203.0.113.12", probes, 8, t0.Add(10*time.Minute), time.Second)...)
	res = runLog(t, []*rule.Compiled{r}, -1, log)
	st = res.stats.Rules[seed004]
	if st.Alerts != 3 || st.Dropped != 3 {
		t.Fatalf("stats %+v; want 3 alerts and 3 dropped", *st)
	}
}

// nonAggregating is a per-event ES|QL rule: one alert per document.
const nonAggregating = `id: esql-anon-per-event
name: Anonymous request (per event)
type: esql
severity: low
risk_score: 21
query: |
  FROM logs-kubernetes.audit_logs-*
  | WHERE kubernetes.audit.user.username == "system:anonymous" AND STARTS_WITH(kubernetes.audit.requestURI, "/api")
  | EVAL Esql.path_length = LENGTH(kubernetes.audit.requestURI)
  | KEEP kubernetes.audit.requestURI, Esql.path_length
`

// TestESQLNonAggregating checks that a query without STATS alerts once per
// document, also for documents that two overlapping runs read, and that
// max_signals applies per run.
func TestESQLNonAggregating(t *testing.T) {
	r := compileYAML(t, "per-event.yaml", nonAggregating)
	// 2 documents only in run 09:15, then 3 in the overlap minute
	// 09:14-09:15 (runs 09:15 and 09:20), in time order.
	log := append(burst("p", "203.0.113.7", probes[3:5], 2, t0, time.Second),
		burst("o", "203.0.113.7", probes[:3], 3, time.Date(2025, 5, 14, 9, 14, 10, 0, time.UTC), time.Second)...)
	log = append(log, auditLine("q", "system:anonymous", "203.0.113.7", "curl/8", probe{uri: "/healthz", verb: "get", code: 200}, t0))
	res := runLog(t, []*rule.Compiled{r}, -1, log)
	if len(res.alerts) != 5 {
		t.Fatalf("%d alerts, want 5 (one per /api document)", len(res.alerts))
	}
	seen := map[string]bool{}
	for _, a := range res.alerts {
		if seen[a.ID] {
			t.Errorf("alert id %s raised twice", a.ID)
		}
		seen[a.ID] = true
		uri := field(t, a, "kubernetes.audit.requestURI").(string)
		wantField(t, a, "Esql.path_length", len(uri))
		// The alert names the run that raised it (it has no evidence: it
		// is its event).
		if a.Window == nil || a.Evidence != nil || a.Event == nil || a.Timestamp.Before(a.Window.Start) || !a.Timestamp.Before(a.Window.End) {
			t.Errorf("a per-event alert lacks its run or its event, or has evidence: %+v", a)
		}
	}
	// max_signals 2: an alert counts in the earliest run that reads the
	// document and has room. The two documents only in run 09:15 fill it;
	// two overlap documents go to run 09:20; the third is dropped. (The
	// assignment follows arrival order: overlap documents read first would
	// fill run 09:15 and leave the earlier ones without room.)
	res = runLog(t, []*rule.Compiled{withMaxSignals(r, 2)}, -1, log)
	st := res.stats.Rules[r.ID]
	if st.Alerts != 4 || st.Dropped != 1 {
		t.Fatalf("stats %+v; want 4 alerts and 1 dropped", *st)
	}
}

// TestESQLMemoryBudget checks that a run whose state outgrows the rule's
// budget is dropped with an error naming the rule, and raises nothing.
func TestESQLMemoryBudget(t *testing.T) {
	r := builtin(t, seed004)
	p, err := esqleval.Compile(r.ESQL, esqleval.WithName("rule "+r.ID), esqleval.WithMemoryBudget(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	small := *r
	small.Program = p
	var log []string
	for i := range 40 {
		log = append(log, burst(fmt.Sprint("u", i), fmt.Sprintf("203.0.113.%d", i), probes, 8, t0, time.Second)...)
	}
	res := runLog(t, []*rule.Compiled{&small}, -1, log)
	if len(res.errs) != 1 {
		t.Fatalf("%d errors, want 1 (the run is dropped once): %v", len(res.errs), res.errs)
	}
	err = res.errs[0]
	if !errors.Is(err, esqleval.ErrBudgetExceeded) || !strings.Contains(err.Error(), "rule "+seed004) {
		t.Errorf("error %q does not name the rule or wrap ErrBudgetExceeded", err)
	}
	if !strings.Contains(err.Error(), "09:09:00Z–2025-05-14T09:15:00Z") {
		t.Errorf("error %q does not name the run", err)
	}
	if len(res.alerts) != 0 || res.stats.Rules[seed004].Errors != 1 {
		t.Errorf("%d alerts and %d errors from a dropped run", len(res.alerts), res.stats.Rules[seed004].Errors)
	}
	// The same log within the default budget alerts on every source.
	res = runLog(t, []*rule.Compiled{r}, -1, log)
	if len(res.errs) != 0 || len(res.alerts) != 40 {
		t.Fatalf("%d alerts and errors %v with the default budget, want 40 alerts", len(res.alerts), res.errs)
	}
}

// TestESQLLateEvents checks that events whose runs have closed are counted
// as late and do not reach any run, also runs that had received no rows.
func TestESQLLateEvents(t *testing.T) {
	r := builtin(t, seed004)
	later := auditLine("w", "alice", "192.0.2.1", "kubectl/1.30", probes[0], time.Date(2025, 5, 14, 9, 30, 0, 0, time.UTC))
	t.Run("runs without rows close too", func(t *testing.T) {
		// An authenticated event at 09:30 closes every run ending by 09:30;
		// the burst at 09:12 then arrives late.
		log := append([]string{later}, burst("x", "203.0.113.7", probes, 8, t0, time.Second)...)
		res := runLog(t, []*rule.Compiled{r}, 0, log)
		st := res.stats.Rules[seed004]
		if len(res.alerts) != 0 || st.Late != 8 {
			t.Fatalf("%d alerts, stats %+v; want none and 8 late", len(res.alerts), *st)
		}
	})
	t.Run("an event of two closed runs is late once", func(t *testing.T) {
		log := append(burst("y", "203.0.113.7", probes, 8, t0, time.Second), later,
			auditLine("z", "system:anonymous", "203.0.113.7", "kubectl-enum/0.1", probes[1], time.Date(2025, 5, 14, 9, 14, 30, 0, time.UTC)))
		res := runLog(t, []*rule.Compiled{r}, 0, log)
		st := res.stats.Rules[seed004]
		if len(res.alerts) != 1 || st.Late != 1 {
			t.Fatalf("%d alerts, stats %+v; want 1 alert and 1 late", len(res.alerts), *st)
		}
		wantField(t, res.alerts[0], "Esql.document_count", 8)
	})
	t.Run("lateness keeps runs open", func(t *testing.T) {
		log := append([]string{later}, burst("x", "203.0.113.7", probes, 8, t0, time.Second)...)
		res := runLog(t, []*rule.Compiled{r}, 30*time.Minute, log)
		if st := res.stats.Rules[seed004]; len(res.alerts) != 1 || st.Late != 0 {
			t.Fatalf("%d alerts, stats %+v; want 1 alert, none late", len(res.alerts), *st)
		}
	})
}
