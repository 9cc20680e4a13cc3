package run_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

const enumRule = "elastic-k8s-anonymous-endpoint-permission-enumeration"

// lateLine renders one audit event of the watermark test: an anonymous,
// forbidden request for uri (resource res) from ip, or, with user set, an
// authenticated one that only moves event time on.
func lateLine(id, user, ip, uri, res string, at time.Time) string {
	ev := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": id,
		"stage": "ResponseComplete", "requestURI": uri, "verb": "list",
		"user":      map[string]any{"username": user},
		"sourceIPs": []string{ip}, "userAgent": "kubectl-enum/0.1",
		"objectRef":                map[string]any{"resource": res, "apiVersion": "v1"},
		"responseStatus":           map[string]any{"code": 403},
		"annotations":              map[string]any{"authorization.k8s.io/decision": "forbid"},
		"requestReceivedTimestamp": at.Format(time.RFC3339Nano),
		"stageTimestamp":           at.Format(time.RFC3339Nano),
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// outOfOrderLog is a log whose event times go back, by less than the
// lateness and by more. Elastic's enumeration rule runs every 5 minutes
// looking back 6: the run ending 09:15 reads [09:09, 09:15). A source
// probes 8 endpoints from 09:12; an authenticated request at 09:15:20
// moves the newest event time on, but with a lateness of 30s the run
// stays open, so the sixth probe (09:12:50, arriving after it) counts;
// one at 09:15:40 closes the run, so the last two probes (09:13) are late.
// Events hours later close every dedup group and let sweeps run.
func outOfOrderLog() []string {
	at := func(h, m, s int) time.Time { return time.Date(2025, 5, 14, h, m, s, 0, time.UTC) }
	uris := []struct{ uri, res string }{
		{"/api/v1/namespaces/default/pods", "pods"}, {"/api/v1/secrets", "secrets"},
		{"/api/v1/namespaces", "namespaces"}, {"/apis/apps/v1/deployments", "deployments"},
		{"/api/v1/nodes", "nodes"}, {"/api/v1/configmaps", "configmaps"},
		{"/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "customresourcedefinitions"},
		{"/api/v1/namespaces/kube-system/secrets", "secrets"},
	}
	probe := func(id string, i int, t time.Time) string {
		return lateLine(id, "system:anonymous", "203.0.113.7", uris[i].uri, uris[i].res, t)
	}
	tick := func(id string, t time.Time) string {
		return lateLine(id, "kubernetes-admin", "10.0.1.23", "/api/v1/pods", "pods", t)
	}
	var log []string
	for i := range 5 {
		log = append(log, probe(fmt.Sprint("p", i), i, at(9, 12, 10*i)))
	}
	log = append(log,
		tick("t1", at(9, 15, 20)),
		probe("p5", 5, at(9, 12, 50)), // 2m30s behind the newest, its run still open: counted
		tick("t2", at(9, 15, 40)),
		probe("p6", 6, at(9, 13, 0)), // its only run closed: late
		probe("p7", 7, at(9, 13, 10)),
		tick("t3", at(11, 0, 0)),
		probe("q0", 0, at(10, 59, 50)), // within the lateness of a later run
		tick("t4", at(13, 0, 0)),
	)
	return log
}

// engineScan reads records in order through an engine alone, as the
// engine's tests do (internal/engine/harness_test.go): after each event
// whose time is the newest seen, Advance to it minus pol.Lateness (unless
// negative) and Sweep each pol.SweepEvery of event time; Close, then
// Sweep, at the end. swept[i] is the count of entries swept once records
// up to i were read.
func engineScan(t *testing.T, cfg run.Config, records []string) (alerts []*alert.Alert, st engine.Stats, swept []int64) {
	t.Helper()
	ctx := context.Background()
	var col alert.Collector
	store := mem.New()
	defer store.Close()
	reg := formats.Registry()
	eng, err := engine.New(cfg.Rules, engine.Options{Sink: &col, Store: store, Materialize: reg.Materialize, GroupUpdates: cfg.GroupUpdates})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := ingest.NewReader(reg, ingest.Options{Fields: eng.Fields()})
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Policy
	var newest, sweptAt time.Time
	for i, rec := range records {
		err := rd.Record(event.Origin{Name: "log", Line: int64(i + 1)}, []byte(rec), func(e *event.Event) error {
			if err := eng.Process(ctx, e); err != nil {
				return err
			}
			if !e.Time().After(newest) {
				return nil
			}
			newest = e.Time()
			if pol.Lateness >= 0 {
				if err := eng.Advance(ctx, newest.Add(-pol.Lateness)); err != nil {
					return err
				}
			}
			if pol.SweepEvery > 0 && newest.Sub(sweptAt) >= pol.SweepEvery {
				sweptAt = newest
				return eng.Sweep(ctx)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		swept = append(swept, eng.Stats().Swept)
	}
	if err := eng.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if pol.SweepEvery > 0 {
		if err := eng.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return col.Alerts, eng.Stats(), swept
}

// TestWatermarkMatchesEngine: the driver moves the event-time watermark
// by the rule the engine's tests apply (internal/engine/harness_test.go),
// so that what those tests check is what kanon runs do. A live run fed
// one small batch at a time raises the same alerts, and counts the same
// events late, as the engine fed directly by that rule, on a log whose
// events go back in time by less than the lateness and by more.
func TestWatermarkMatchesEngine(t *testing.T) {
	log := outOfOrderLog()
	pol := run.LivePolicy(30 * time.Second)
	pol.IdleCheck = 0 // the wall clock plays no part: only event time
	pol.Windows = engine.WindowsInMemory
	cfg := run.Config{Rules: builtinRules(t), Policy: pol, GroupUpdates: true}

	want, wantStats, wantSwept := engineScan(t, cfg, log)

	d, col := newDriver(t, cfg)
	ctx := context.Background()
	fr := ingest.NewFramer("log", 0)
	for i := 0; i < len(log); i += 2 {
		var recs []ingest.Record
		for j := i; j < min(i+2, len(log)); j++ {
			recs = fr.Line(int64(j+1), []byte(log[j]), recs)
		}
		if res, err := d.SubmitWait(ctx, &run.Batch{Input: "log", Records: recs}, true); err != nil || res.Err != nil {
			t.Fatalf("batch at line %d: %+v, %v", i+1, res, err)
		}
		// Sweeps happen as event time moves on, not only at the end.
		last := min(i+2, len(log)) - 1
		if g, w := d.Stats().Engine.Swept, wantSwept[last]; g != w {
			t.Fatalf("after line %d the driver swept %d expired entries, the engine %d", last+1, g, w)
		}
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, gotStats := col.Alerts, d.Stats().Engine
	if g, w := strings.Join(ids(got), " "), strings.Join(ids(want), " "); len(want) == 0 || g != w {
		t.Fatalf("alerts differ:\ndriver %v\nengine %v", ids(got), ids(want))
	}
	if gotStats.Swept != wantStats.Swept || wantSwept[len(log)-1] == 0 {
		t.Fatalf("the driver swept %d expired entries, the engine %d (%d before the end)", gotStats.Swept, wantStats.Swept, wantSwept[len(log)-1])
	}
	for id, w := range wantStats.Rules {
		if g := gotStats.Rules[id]; g == nil || *g != *w {
			t.Fatalf("rule %s: driver's stats %+v, the engine's %+v", id, g, *w)
		}
	}
	// The log does what it is meant to: the probe within the lateness is
	// counted in the run's alert, the two beyond it are late.
	st := gotStats.Rules[enumRule]
	var enum []*alert.Alert
	for _, a := range got {
		if a.Rule.ID == enumRule {
			enum = append(enum, a)
		}
	}
	if len(enum) != 1 || st.Late != 2 {
		t.Fatalf("%d alerts of %s, %d events late; want 1 alert and 2 late", len(enum), enumRule, st.Late)
	}
	if n, _ := enum[0].Fields.Get("Esql.document_count"); fmt.Sprint(n) != "6" {
		t.Fatalf("the run's alert counts %v documents, want 6 (5 in order, 1 within the lateness)", n)
	}
}
