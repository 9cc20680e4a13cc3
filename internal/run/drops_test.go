package run_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/prometheus/client_golang/prometheus"
)

// cappedRule alerts on anonymous requests, at most two per run.
const cappedRule = `id: capped
name: anonymous requests, two per run
type: query
language: kuery
query: 'kubernetes.audit.user.username:"system:anonymous"'
severity: low
risk_score: 1
schedule: {interval: 5m, from: now-6m, max_signals: 2}
`

func compileRule(t *testing.T, src string) *rule.Compiled {
	t.Helper()
	r, err := rule.Parse("rule.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// metric returns the value of the counter or gauge name whose labels
// include want, and whether it exists.
func metric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// syncBuffer is a log destination for the driver's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lockedCollector keeps alerts for a test that reads them while the
// driver runs.
type lockedCollector struct {
	mu     sync.Mutex
	alerts []*alert.Alert
}

func (c *lockedCollector) Write(_ context.Context, a *alert.Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = append(c.alerts, a)
	return nil
}

func (c *lockedCollector) Close() error { return nil }

func (c *lockedCollector) Snapshot() []*alert.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*alert.Alert(nil), c.alerts...)
}

// feed submits the log two records at a time and waits for each batch.
func feed(t *testing.T, d *run.Driver, log []string) {
	t.Helper()
	fr := ingest.NewFramer("log", 0)
	for i := 0; i < len(log); i += 2 {
		var recs []ingest.Record
		for j := i; j < min(i+2, len(log)); j++ {
			recs = fr.Line(int64(j+1), []byte(log[j]), recs)
		}
		if res, err := d.SubmitWait(context.Background(), &run.Batch{Input: "log", Cluster: "lab", Records: recs}, true); err != nil || res.Err != nil {
			t.Fatalf("batch at line %d: %+v, %v", i+1, res, err)
		}
	}
}

// Every drop is counted from zero, logged and stored: the late events of
// the enumeration rule and the alerts over the capped rule's max_signals
// in kanon_events_late_total and kanon_alerts_dropped_total (which exist
// at zero before any event), a log line per rule's late events and per
// run that dropped alerts, and the counts in the store (state.NSRun),
// summed over the runs on it. A rule whose runs outgrow its memory budget
// counts each dropped run.
func TestDropsCountedLoggedStored(t *testing.T) {
	store := mem.New()
	defer store.Close()
	rules := append(builtinRules(t), compileRule(t, cappedRule))
	pol := run.LivePolicy(30 * time.Second)
	pol.IdleCheck = 0
	var logs syncBuffer
	newRun := func(store state.Store, budget int64) (*run.Driver, *prometheus.Registry) {
		reg := prometheus.NewRegistry()
		d, _ := newDriver(t, run.Config{Rules: rules, Policy: pol, Store: store, GroupUpdates: true, Metrics: reg,
			RuleMemoryBudget: budget, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		return d, reg
	}
	d, reg := newRun(store, 0)
	zero := []struct {
		name   string
		labels map[string]string
	}{
		{"kanon_events_late_total", map[string]string{"rule": enumRule}},
		{"kanon_alerts_dropped_total", map[string]string{"rule": enumRule, "reason": "late"}},
		{"kanon_alerts_dropped_total", map[string]string{"rule": enumRule, "reason": "budget"}},
		{"kanon_alerts_dropped_total", map[string]string{"rule": enumRule, "reason": "max_signals"}},
		{"kanon_alerts_dropped_total", map[string]string{"rule": "capped", "reason": "max_signals"}},
		{"kanon_alerts_total", map[string]string{"rule": "capped", "severity": "low", "cluster": ""}},
		{"kanon_rule_errors_total", map[string]string{"rule": "capped"}},
		{"kanon_rule_reloads_total", map[string]string{"result": "refused"}},
	}
	for _, z := range zero {
		if v, ok := metric(t, reg, z.name, z.labels); !ok || v != 0 {
			t.Errorf("before any event: %s%v = %v (exists %v), want 0", z.name, z.labels, v, ok)
		}
	}
	if _, ok := metric(t, reg, "kanon_alerts_dropped_total", map[string]string{"rule": "capped", "reason": "late"}); ok {
		t.Error("a query rule has a late counter: it never drops late events")
	}
	log := outOfOrderLog()
	feed(t, d, log)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kanon_events_late_total", map[string]string{"rule": enumRule}, 2},
		{"kanon_alerts_dropped_total", map[string]string{"rule": enumRule, "reason": "late"}, 2},
		{"kanon_alerts_dropped_total", map[string]string{"rule": "capped", "reason": "max_signals"}, 6},
		{"kanon_alerts_total", map[string]string{"rule": "capped", "severity": "low", "cluster": "lab"}, 3},
		{"kanon_alert_latency_seconds", map[string]string{"type": "esql", "since": "window_end"}, 1},
		{"kanon_alert_latency_seconds", map[string]string{"type": "query", "since": "last_event"}, 3},
	} {
		if v, ok := metric(t, reg, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v (exists %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`msg="late events dropped: their runs had closed" rule=` + enumRule + ` events=2`,
		// When the watermark passes the run's end, and again for the two
		// probes that come after it (a query rule counts them in the run).
		`msg="run dropped alerts at max_signals" rule=capped run_end=2025-05-14T09:15:00.000Z dropped=4`,
		`msg="run dropped alerts at max_signals" rule=capped run_end=2025-05-14T09:15:00.000Z dropped=2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no log line %q in\n%s", want, out)
		}
	}
	stored := func(store state.Store) map[string]state.RunDrops {
		t.Helper()
		m := map[string]state.RunDrops{}
		err := state.Each(context.Background(), store, state.Selection{Namespaces: []state.Namespace{state.NSRun}}, func(it *state.Item) error {
			if string(it.Part) == "drops" {
				m[it.Rule] = it.Drops
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if got := stored(store); got[enumRule] != (state.RunDrops{Late: 2}) || got["capped"] != (state.RunDrops{MaxSignals: 6}) {
		t.Fatalf("stored drop counts %+v", got)
	}

	// The same log again, on the same store: the counts add up. All nine
	// anonymous events are late for the enumeration rule this time: the
	// store holds its runs as closed up to 13:00. The capped rule's runs
	// are restored with the alerts they raised (a restart changes no
	// run's max_signals): 8 of the nine hits fall in its full run and are
	// dropped, one also in the next run, which has room.
	d, _ = newRun(store, 0)
	feed(t, d, log)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := stored(store); got[enumRule] != (state.RunDrops{Late: 2 + 9}) || got["capped"] != (state.RunDrops{MaxSignals: 6 + 8}) {
		t.Fatalf("stored drop counts after a second run %+v", got)
	}

	// A budget no run fits in, on a new store: the enumeration rule's
	// runs are dropped.
	fresh := mem.New()
	defer fresh.Close()
	d, reg = newRun(fresh, 1)
	feed(t, d, log)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := metric(t, reg, "kanon_alerts_dropped_total", map[string]string{"rule": enumRule, "reason": "budget"}); v < 1 {
		t.Fatalf("no run dropped for the memory budget counted")
	}
	if got := stored(fresh); got[enumRule].Budget < 1 {
		t.Fatalf("stored drop counts after a budget drop %+v", got)
	}
}

// A live driver stopped with a run open leaves its newest event time in
// the store; a driver started on that store goes on with its clock: with
// no new event, the idle clock closes the restored run once the wall
// clock has gone past the run's end plus the lateness, as it would have
// in the stopped driver, and the run's alert is raised.
func TestStopHandsOverTheWatermark(t *testing.T) {
	store := mem.New()
	defer store.Close()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	pol := run.LivePolicy(30 * time.Second)
	pol.IdleCheck = 10 * time.Millisecond
	cfg := run.Config{Rules: builtinRules(t), Policy: pol, Store: store, GroupUpdates: true, Now: clock}

	col := &lockedCollector{}
	cfg.Sink = col
	d, _ := newDriver(t, cfg)
	// Six probes from 09:12 to 09:12:50: the run ending 09:15 is open.
	feed(t, d, append(outOfOrderLog()[:5], lateLine("p5", "system:anonymous", "203.0.113.7", "/api/v1/configmaps", "configmaps",
		time.Date(2025, 5, 14, 9, 12, 50, 0, time.UTC))))
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range col.Snapshot() {
		if a.Rule.ID == enumRule {
			t.Fatal("the run closed at Stop")
		}
	}
	mark, err := store.Get(context.Background(), state.AppendWatermarkKey(nil), time.Time{})
	if err != nil {
		t.Fatalf("no newest event time stored: %v", err)
	}
	if w, _ := state.DecodeWatermark(mark); !w.Equal(time.Date(2025, 5, 14, 9, 12, 50, 0, time.UTC)) {
		t.Fatalf("stored newest event time %v", w)
	}

	col = &lockedCollector{}
	cfg.Sink = col
	d, _ = newDriver(t, cfg)
	defer d.Close(context.Background())
	mu.Lock()
	now = now.Add(3 * time.Minute) // 09:12:50 + 3m - 30s is past 09:15
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, a := range col.Snapshot() {
			if a.Rule.ID == enumRule {
				if n, _ := a.Fields.Get("Esql.document_count"); n != int64(6) {
					t.Fatalf("the restored run's alert counts %v events, want 6", n)
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the restored run did not close by the idle clock")
}
