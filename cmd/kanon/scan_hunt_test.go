package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const authorizedRule = "elastic-k8s-anonymous-request-authorized"

// burstLog writes n anonymous, allowed requests one second apart from
// 09:00:00, all in the one run of Elastic's schedule (5m, now-6m) that
// ends at 09:05.
func burstLog(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	start := time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC)
	for i := range n {
		at := start.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		fmt.Fprintf(&b, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"b-%03d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/secrets","verb":"list","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.7"],"userAgent":"curl/8.5.0","objectRef":{"resource":"secrets","namespace":"kube-system"},"responseStatus":{"code":200},"requestReceivedTimestamp":%q,"stageTimestamp":%q,"annotations":{"authorization.k8s.io/decision":"allow"}}`+"\n", i, at, at)
	}
	path := filepath.Join(t.TempDir(), "burst.log")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// jsonDoc is what -o json writes.
type jsonDoc struct {
	Alerts []map[string]any          `json:"alerts"`
	Rules  map[string]map[string]any `json:"rules"`
}

func docOf(t *testing.T, out string) jsonDoc {
	t.Helper()
	var d jsonDoc
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("-o json is not one document: %v\n%.300s", err, out)
	}
	return d
}

// TestScanMaxSignals: Elastic's run semantics by default (100 alerts of
// 150 hits), with the 50 dropped said in the summary and in every alert of
// the run; --dropped-hits outputs them, marked and not counted; and
// --no-max-signals raises them all, saying so.
func TestScanMaxSignals(t *testing.T) {
	log := burstLog(t, 150)
	out, errOut, code := runCLI(t, "", "scan", "-o", "json", "--rule", authorizedRule, log)
	d := docOf(t, out)
	if code != 2 || len(d.Alerts) != 100 || !strings.Contains(errOut, "(50 dropped at max_signals)") ||
		!strings.Contains(errOut, "50 hits not raised: over max_signals in 1 run,") || !strings.Contains(errOut, "--dropped-hits") {
		t.Fatalf("default: exit %d, %d alerts\n%s", code, len(d.Alerts), errOut)
	}
	for _, a := range d.Alerts {
		w := a["window"].(map[string]any)
		if w["dropped"] != float64(50) || w["max_signals"] != float64(100) || w["end"] != "2025-05-14T09:05:00Z" || a["dropped"] != nil {
			t.Fatalf("alert %s: window %v, dropped %v", a["id"], w, a["dropped"])
		}
	}

	out, errOut, code = runCLI(t, "", "scan", "-o", "json", "--dropped-hits", "--rule", authorizedRule, log)
	d = docOf(t, out)
	dropped := 0
	for _, a := range d.Alerts {
		if a["dropped"] == true {
			dropped++
		}
	}
	if code != 2 || len(d.Alerts) != 150 || dropped != 50 || !strings.Contains(errOut, "total alerts: 100") || !strings.Contains(errOut, `marked "dropped"`) {
		t.Fatalf("--dropped-hits: exit %d, %d entries, %d dropped\n%s", code, len(d.Alerts), dropped, errOut)
	}
	// jsonl streams them too, marked.
	out, _, _ = runCLI(t, "", "scan", "-o", "jsonl", "--dropped-hits", "--rule", authorizedRule, log)
	if n := strings.Count(out, `"dropped":true`); n != 50 || len(alertsOf(t, out)) != 150 {
		t.Fatalf("jsonl --dropped-hits: %d marked of %d", n, len(alertsOf(t, out)))
	}
	// The alerts file holds only what was raised.
	file := filepath.Join(t.TempDir(), "alerts.ndjson")
	runCLI(t, "", "scan", "-o", "jsonl", "-q", "--dropped-hits", "--alerts-file", file, "--rule", authorizedRule, log)
	if b, err := os.ReadFile(file); err != nil || strings.Count(string(b), "\n") != 100 || strings.Contains(string(b), `"dropped":true`) {
		t.Fatalf("alerts file: %v, %d lines", err, strings.Count(string(b), "\n"))
	}

	out, errOut, code = runCLI(t, "", "scan", "-o", "jsonl", "--no-max-signals", "--rule", authorizedRule, log)
	if code != 2 || len(alertsOf(t, out)) != 150 || !strings.Contains(errOut, "max_signals lifted (--no-max-signals)") || strings.Contains(errOut, "dropped at max_signals") {
		t.Fatalf("--no-max-signals: exit %d, %d alerts\n%s", code, len(alertsOf(t, out)), errOut)
	}
}

// TestScanAggregateEvidence: the ES|QL rule's alert names the events it
// counts, with their origins and the total.
func TestScanAggregateEvidence(t *testing.T) {
	out, _, _ := runCLI(t, "", "scan", "-o", "json", "--rule", "elastic-k8s-anonymous-endpoint-permission-enumeration", "testdata/scan/hunt.log")
	d := docOf(t, out)
	if len(d.Alerts) != 1 {
		t.Fatalf("%d alerts", len(d.Alerts))
	}
	ev := d.Alerts[0]["evidence"].(map[string]any)
	events := ev["events"].([]any)
	first := events[0].(map[string]any)
	if ev["total"] != float64(10) || len(events) != 10 || first["audit_id"] != "hunt-008" || first["origin"] != "testdata/scan/hunt.log:8" {
		t.Fatalf("evidence %v", ev)
	}
}
