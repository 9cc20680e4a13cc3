package report_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/report"
	"github.com/kanon-dev/kanon/internal/run"
)

// rawEvent is what the tests read of an audit event, with encoding/json,
// to count independently of the readers and the collector.
type rawEvent struct {
	AuditID, Stage, Verb, RequestURI, UserAgent string
	User                                        struct{ Username string }
	SourceIPs                                   []string
	ObjectRef                                   *struct{ Resource, APIGroup, Subresource string }
	ResponseStatus                              *struct{ Code int64 }
	Annotations                                 map[string]string
	StageTimestamp, RequestReceivedTimestamp    time.Time
}

func (e *rawEvent) anonymous() bool {
	switch e.User.Username {
	case "", "system:anonymous", "system:unauthenticated":
		return true
	}
	return false
}

func (e *rawEvent) time() time.Time {
	if !e.StageTimestamp.IsZero() {
		return e.StageTimestamp
	}
	return e.RequestReceivedTimestamp
}

// independent counts what the collector should have counted in logs of
// JSON lines, dropping repeated deliveries (same auditID and stage) as
// the driver does.
type independent struct {
	events                      int
	anon, allowed, forbidden    int64
	perMinute                   map[int64][3]int64 // anonymous by decision (allow, forbid, none)
	sources, agents, verbs, res map[string]int64
	first, last                 time.Time
}

func countLogs(t testing.TB, paths ...string) *independent {
	t.Helper()
	n := &independent{perMinute: map[int64][3]int64{}, sources: map[string]int64{}, agents: map[string]int64{},
		verbs: map[string]int64{}, res: map[string]int64{}}
	seen := map[string]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			var e rawEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if key := e.AuditID + "\x00" + e.Stage; e.AuditID != "" {
				if seen[key] {
					continue
				}
				seen[key] = true
			}
			n.events++
			at := e.time()
			if n.first.IsZero() || at.Before(n.first) {
				n.first = at
			}
			if at.After(n.last) {
				n.last = at
			}
			if !e.anonymous() {
				continue
			}
			n.anon++
			d := 2
			switch e.Annotations["authorization.k8s.io/decision"] {
			case "allow":
				n.allowed++
				d = 0
			case "forbid":
				n.forbidden++
				d = 1
			}
			m := at.Unix() / 60
			c := n.perMinute[m]
			c[d]++
			n.perMinute[m] = c
			ip := ""
			if len(e.SourceIPs) > 0 {
				ip = e.SourceIPs[0]
			}
			n.sources[ip]++
			n.agents[e.UserAgent]++
			n.verbs[e.Verb]++
			if e.ObjectRef != nil && e.ObjectRef.Resource != "" {
				k := e.ObjectRef.Resource
				if e.ObjectRef.APIGroup != "" {
					k += "." + e.ObjectRef.APIGroup
				}
				if e.ObjectRef.Subresource != "" {
					k += "/" + e.ObjectRef.Subresource
				}
				n.res[k]++
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return n
}

func rowsOf(tb report.Table) map[string]int64 {
	m := map[string]int64{}
	for _, r := range tb.Rows {
		m[r.Key] = r.Requests
	}
	return m
}

func sameCounts(t *testing.T, what string, got, want map[string]int64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d: %v, want %v", what, len(got), len(want), got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s %q: %d requests, want %d", what, k, got[k], n)
		}
	}
}

// TestCollectorCountsRealLogs scans the real-shaped logs (the bundled
// example and the serve replay, whose events repeat the example's and add
// an enumeration burst) and checks every count against one made here from
// the JSON lines.
func TestCollectorCountsRealLogs(t *testing.T) {
	paths := realLogs(t)
	r, alerts := scan(t, report.Options{}, paths...)
	want := countLogs(t, paths...)
	if r.Events != int64(want.events) || r.Stats.Events != int64(want.events) || r.Stats.Duplicates == 0 {
		t.Errorf("events %d (stats %d, duplicates %d), want %d", r.Events, r.Stats.Events, r.Stats.Duplicates, want.events)
	}
	if r.Anonymous.Requests != want.anon || r.Anonymous.Allowed != want.allowed || r.Anonymous.Forbidden != want.forbidden {
		t.Errorf("anonymous %+v, want %d (%d allowed, %d forbidden)", r.Anonymous, want.anon, want.allowed, want.forbidden)
	}
	if !r.Start.Equal(want.first) || !r.End.Equal(want.last) {
		t.Errorf("period %s – %s, want %s – %s", r.Start, r.End, want.first, want.last)
	}
	sameCounts(t, "source", rowsOf(r.Sources), want.sources)
	sameCounts(t, "user agent", rowsOf(r.UserAgents), want.agents)
	sameCounts(t, "verb", rowsOf(r.Verbs), want.verbs)
	sameCounts(t, "resource", rowsOf(r.Resources), want.res)
	if r.Timeline.Width != time.Minute {
		t.Fatalf("timeline width %s", r.Timeline.Width)
	}
	for _, b := range r.Timeline.Buckets {
		w := want.perMinute[b.Start.Unix()/60]
		if b.Allowed != w[0] || b.Forbidden != w[1] || b.NoDecision != w[2] {
			t.Errorf("minute %s: %d/%d/%d, want %v", b.Start, b.Allowed, b.Forbidden, b.NoDecision, w)
		}
		delete(want.perMinute, b.Start.Unix()/60)
	}
	if len(want.perMinute) > 0 {
		t.Errorf("minutes missing from the timeline: %v", want.perMinute)
	}
	// The burst source: 30 forbidden requests from 203.0.113.50.
	if top := r.Sources.Rows[0]; top.Key != "203.0.113.50" || top.Forbidden != 30 || top.Allowed != 0 {
		t.Errorf("top source %+v", top)
	}
	// Every alert is counted in its rule and on the timeline, and kept.
	var total, onTimeline int64
	for _, rr := range r.Rules {
		total += rr.AlertsSeen
		if int64(len(rr.Alerts)) != rr.AlertsSeen {
			t.Errorf("rule %s: %d alerts kept of %d", rr.ID, len(rr.Alerts), rr.AlertsSeen)
		}
		if rr.AlertsSeen != rr.Stats.Alerts {
			t.Errorf("rule %s: %d alerts seen, the engine raised %d", rr.ID, rr.AlertsSeen, rr.Stats.Alerts)
		}
	}
	for _, b := range r.Timeline.Buckets {
		onTimeline += b.Alerts
	}
	if total != int64(len(alerts)) || r.AlertsTotal != total || onTimeline != total {
		t.Errorf("alerts: %d in rules, %d total, %d on the timeline, %d written", total, r.AlertsTotal, onTimeline, len(alerts))
	}
	if len(r.Rules) != 4 || r.Rules[len(r.Rules)-1].From() != "Panther's rule" || r.Rules[0].From() != "Elastic's rule" {
		t.Errorf("rules: %+v", r.Rules)
	}
	// A per-event alert keeps its event; an ES|QL run its window.
	for _, rr := range r.Rules {
		for _, a := range rr.Alerts {
			switch {
			case rr.Firing == "per_event" && (a.Event == "" || a.SourceIP == "" || a.Origin == ""):
				t.Errorf("per-event alert without its event: %+v", a)
			case rr.Language == "esql" && rr.Firing == "scheduled" && a.Window == nil:
				t.Errorf("ES|QL alert without its window: %+v", a)
			}
		}
	}
	if len(r.Inputs) != 2 || r.Inputs[0].Name != paths[0] || r.Inputs[0].Formats[0].Name != "k8s" {
		t.Errorf("inputs %+v", r.Inputs)
	}
	if cuts := r.Cuts(); len(cuts) != 0 {
		t.Errorf("cuts on a small input: %v", cuts)
	}
}

// TestCollectorBounds checks each cap: tables keep MaxKeys values and
// count the rest as other, the timeline widens its buckets past
// MaxBuckets without losing a request, alerts past MaxAlerts are counted
// but not kept, event documents are cut, bad records past MaxBad are
// counted; and the report says so.
func TestCollectorBounds(t *testing.T) {
	paths := append(realLogs(t), generatedLog(t, 20000, 5))
	full, _ := scan(t, report.Options{}, paths...)
	r, _ := scan(t, report.Options{MaxKeys: 2, MaxBuckets: 20, MaxAlerts: 5, MaxEventBytes: 100}, paths...)
	for name, tb := range map[string]report.Table{"sources": r.Sources, "agents": r.UserAgents, "uris": r.URIs, "resources": r.Resources} {
		if len(tb.Rows) != 2 || !tb.Full {
			t.Errorf("%s: %d rows, full %v", name, len(tb.Rows), tb.Full)
		}
		var n int64
		for _, row := range tb.Rows {
			n += row.Requests
		}
		if n+tb.Other.Requests != r.Anonymous.Requests && name != "uris" && name != "resources" {
			t.Errorf("%s: %d + other %d != %d anonymous requests", name, n, tb.Other.Requests, r.Anonymous.Requests)
		}
	}
	if r.Timeline.Width <= time.Minute || len(r.Timeline.Buckets) > 20 {
		t.Errorf("timeline: width %s, %d buckets", r.Timeline.Width, len(r.Timeline.Buckets))
	}
	sum := func(tl report.Timeline) (anon, all, alerts int64) {
		for _, b := range tl.Buckets {
			anon += b.Anonymous()
			all += b.All
			alerts += b.Alerts
		}
		return
	}
	a1, e1, al1 := sum(full.Timeline)
	a2, e2, al2 := sum(r.Timeline)
	if a1 != a2 || e1 != e2 || al1 != al2 || a1 != full.Anonymous.Requests || e1 != full.Events {
		t.Errorf("timeline totals: %d/%d/%d widened, %d/%d/%d per minute", a2, e2, al2, a1, e1, al1)
	}
	var kept int
	for _, rr := range r.Rules {
		kept += len(rr.Alerts)
		for _, a := range rr.Alerts {
			if len(a.Event) > 100 || (a.Event != "" && !a.EventCut) {
				t.Errorf("event of %d bytes, cut %v", len(a.Event), a.EventCut)
			}
		}
	}
	if kept != 5 || r.AlertsCut != r.AlertsTotal-5 || r.AlertsTotal != full.AlertsTotal {
		t.Errorf("alerts: %d kept, %d cut, %d total (unbounded: %d)", kept, r.AlertsCut, r.AlertsTotal, full.AlertsTotal)
	}
	cuts := strings.Join(r.Cuts(), "\n")
	for _, want := range []string{"source IPs: only the first 2 distinct values", "widened to", "alerts: the first 5 are kept", "cut at 100 B"} {
		if !strings.Contains(cuts, want) {
			t.Errorf("cuts do not say %q:\n%s", want, cuts)
		}
	}
}

// TestCollectorBadRecords counts bad records and records read with a
// warning per input, and keeps the first MaxBad of each as text.
func TestCollectorBadRecords(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(realLogs(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	bad := filepath.Join(dir, "bad.log")
	warned := strings.Replace(lines[2], `"verb":"get"`, `"verb":"get","verb":"list"`, 1)
	if warned == lines[2] {
		t.Fatalf("line 3 of the example has no get: %s", lines[2])
	}
	text := lines[0] + "{not json\n" + lines[1] + `{"kind":"Event","verb":` + "\n" + `{"kind":"Event","verb":"get"}` + "\n" + warned
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := scan(t, report.Options{MaxBad: 2}, bad)
	if r.BadTotal != 3 || len(r.Bad) != 2 || r.Inputs[0].Bad != 3 || r.Inputs[0].Events != 3 || r.Stats.Bad != 3 {
		t.Fatalf("bad %d (%d kept), input %+v, stats %+v", r.BadTotal, len(r.Bad), r.Inputs, r.Stats)
	}
	if !strings.HasPrefix(r.Bad[0], bad+":2: ") {
		t.Errorf("bad record text %q", r.Bad[0])
	}
	if r.WarningsTotal != 1 || r.Inputs[0].Warned != 1 || r.Stats.Warnings != 1 || !strings.HasPrefix(r.Warnings[0], bad+":6: ") {
		t.Errorf("warnings %d %q, input %+v", r.WarningsTotal, r.Warnings, r.Inputs[0])
	}
	if cuts := strings.Join(r.Cuts(), "\n"); !strings.Contains(cuts, "the first 2 of 3") {
		t.Errorf("cuts: %s", cuts)
	}
}

// TestAttachKeepsHooks checks that Attach calls the hooks already set.
func TestAttachKeepsHooks(t *testing.T) {
	var alerts, bad int
	cfg := run.Config{
		OnAlert: func(*alert.Alert, time.Duration) { alerts++ },
		OnBad:   func(string, ingest.BadRecord) { bad++ },
	}
	c := report.New(report.Options{})
	c.Attach(&cfg)
	if len(cfg.Observers) != 1 {
		t.Fatalf("observers %v", cfg.Observers)
	}
	cfg.OnAlert(&alert.Alert{Rule: alert.Rule{ID: "r", Severity: "high"}, Timestamp: time.Unix(600, 0)}, 0)
	cfg.OnBad("file", ingest.BadRecord{Origin: event.Origin{Name: "f", Line: 3}, Err: os.ErrInvalid})
	r := c.Report(run.Stats{})
	if alerts != 1 || bad != 1 || r.AlertsTotal != 1 || r.BadTotal != 1 || r.Timeline.Buckets[0].Severity != "high" {
		t.Errorf("hooks %d %d, report %d alerts %d bad %+v", alerts, bad, r.AlertsTotal, r.BadTotal, r.Timeline)
	}
}

// TestObserveDoesNotAllocate: once its values are in the tables, an
// event costs no allocation.
func TestObserveDoesNotAllocate(t *testing.T) {
	c := report.New(report.Options{})
	e := &event.Event{Verb: "list", RequestURI: "/api/v1/secrets?limit=500", UserAgent: "curl/8.5.0",
		SourceIPs: []string{"203.0.113.9"}, ObjectRef: event.ObjectRef{Resource: "secrets"},
		ResponseStatus: event.ResponseStatus{Code: 403, HasCode: true},
		Annotations:    []event.Annotation{{Key: "authorization_k8s_io/decision", Value: "forbid"}},
		StageTimestamp: event.Timestamp{T: time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC)}, Format: "k8s",
		Origin: event.Origin{Name: "audit.log", Line: 1}}
	c.Observe(e)
	if n := testing.AllocsPerRun(1000, func() { c.Observe(e) }); n != 0 {
		t.Errorf("Observe allocates %.1f times per event", n)
	}
	e.User.Username = "system:serviceaccount:kube-system:x"
	if n := testing.AllocsPerRun(1000, func() { c.Observe(e) }); n != 0 {
		t.Errorf("Observe allocates %.1f times per non-anonymous event", n)
	}
	r := c.Report(run.Stats{})
	if r.Anonymous.Forbidden != 1002 || r.Events != 2003 || r.URIs.Rows[0].Key != "/api/v1/secrets" || r.URIs.Rows[0].Codes[0].Code != 403 {
		t.Errorf("counts %+v, events %d, uris %+v", r.Anonymous, r.Events, r.URIs.Rows)
	}
}

// TestTimelinePoints checks the widths Points picks and that they keep
// every count.
func TestTimelinePoints(t *testing.T) {
	t0 := time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC)
	tl := report.Timeline{Width: time.Minute}
	for _, m := range []int{0, 1, 7, 59, 61, 299} {
		tl.Buckets = append(tl.Buckets, report.Point{Start: t0.Add(time.Duration(m) * time.Minute), Allowed: 1, All: 2, Alerts: int64(m % 2)})
	}
	for _, c := range []struct {
		max   int
		width time.Duration
		n     int
	}{{1000, time.Minute, 300}, {300, time.Minute, 300}, {299, 2 * time.Minute, 150}, {100, 10 * time.Minute, 30},
		{10, 30 * time.Minute, 10}, {5, time.Hour, 5}, {2, 6 * time.Hour, 2}, {1, 24 * time.Hour, 1}} {
		w, pts := tl.Points(c.max)
		if w != c.width || len(pts) != c.n {
			t.Errorf("Points(%d): %d points of %s, want %d of %s", c.max, len(pts), w, c.n, c.width)
			continue
		}
		var allowed, all, alerts int64
		for i, p := range pts {
			allowed += p.Allowed
			all += p.All
			alerts += p.Alerts
			if !p.Start.Equal(pts[0].Start.Add(time.Duration(i) * w)) {
				t.Errorf("point %d starts at %s", i, p.Start)
			}
		}
		if allowed != 6 || all != 12 || alerts != 5 {
			t.Errorf("Points(%d) sums %d %d %d", c.max, allowed, all, alerts)
		}
	}
}
