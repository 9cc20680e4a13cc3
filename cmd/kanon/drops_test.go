package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// cappedQueryRule raises at most two alerts per run for anonymous
// requests: the handover events make it drop alerts at max_signals.
const cappedQueryRule = `id: capped-anonymous
name: anonymous requests, two per run
type: query
language: kuery
query: 'kubernetes.audit.user.username:"system:anonymous"'
severity: low
risk_score: 1
schedule: {interval: 5m, from: now-6m, max_signals: 2}
`

// kanon serve counts every drop from the start: /metrics has the drop
// and late counters at zero before any event, then the alerts dropped at
// max_signals and the events that came after their runs closed, the
// alerts by cluster, the latency by rule type and since what, and the
// build; the log has a line for each; kanon state show prints the same
// counts once serve has stopped.
func TestServeCountsDrops(t *testing.T) {
	bin := kanonBinary(t)
	dir := t.TempDir()
	rulesDir := filepath.Join(dir, "rules")
	os.Mkdir(rulesDir, 0o700)
	if err := os.WriteFile(filepath.Join(rulesDir, "capped.yaml"), []byte(cappedQueryRule), 0o600); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, "state")
	p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--rules", rulesDir,
		"--state-dir", stateDir, "--output", "file:"+filepath.Join(dir, "alerts.ndjson"))
	base := "http://" + p.waitAddr(t)
	metrics := func() string {
		t.Helper()
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	has := func(m string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !regexp.MustCompile(w).MatchString(m) {
				t.Errorf("/metrics has no line matching %s", w)
			}
		}
	}
	has(metrics(),
		`(?m)^kanon_events_late_total\{rule="`+enumerationRule+`"\} 0$`,
		`(?m)^kanon_alerts_dropped_total\{reason="late",rule="`+enumerationRule+`"\} 0$`,
		`(?m)^kanon_alerts_dropped_total\{reason="budget",rule="`+enumerationRule+`"\} 0$`,
		`(?m)^kanon_alerts_dropped_total\{reason="max_signals",rule="capped-anonymous"\} 0$`,
		`(?m)^kanon_alerts_total\{cluster="",rule="capped-anonymous",severity="low"\} 0$`,
		`(?m)^kanon_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1$`,
		`(?m)^kanon_webhook_requests_total\{code="429"\} 0$`,
	)
	lines, bursts := handoverEvents()
	batches := tenLineBatches(lines)
	// A probe of the first burst sent again once its run has closed (the
	// last event is a day later): late.
	batches = append(batches, eventListBody([][]byte{bytes.Replace(lines[bursts[0][0]+2], []byte(`"handover-`), []byte(`"late-`), 1)}))
	postBatches(t, http.DefaultClient, base+"/audit/lab", batches, 0, len(batches))
	m := metrics()
	has(m,
		`(?m)^kanon_events_late_total\{rule="`+enumerationRule+`"\} 1$`,
		`(?m)^kanon_alerts_dropped_total\{reason="late",rule="`+enumerationRule+`"\} 1$`,
		`(?m)^kanon_alerts_dropped_total\{reason="max_signals",rule="capped-anonymous"\} [1-9][0-9]*$`,
		`(?m)^kanon_alerts_total\{cluster="lab",rule="capped-anonymous",severity="low"\} [1-9]`,
		`(?m)^kanon_alert_latency_seconds_count\{since="window_end",type="esql"\} 6$`,
		`(?m)^kanon_alert_latency_seconds_count\{since="last_event",type="query"\} [1-9]`,
		`(?m)^kanon_alert_latency_seconds_count\{since="last_event",type="per_event"\} [1-9]`,
	)
	var kanonLines []string
	for _, l := range strings.Split(m, "\n") {
		if strings.HasPrefix(l, "kanon_") && !strings.Contains(l, "_bucket{") {
			kanonLines = append(kanonLines, l)
		}
	}
	t.Logf("/metrics after the run:\n%s", strings.Join(kanonLines, "\n"))
	p.stop(t)
	for _, want := range []string{`"msg":"run dropped alerts at max_signals","rule":"capped-anonymous"`,
		`"msg":"late events dropped: their runs had closed","rule":"` + enumerationRule + `","events":1`} {
		if !strings.Contains(p.log(), want) {
			t.Errorf("no log line with %s:\n%s", want, p.log())
		}
	}
	var out, errb bytes.Buffer
	cmd := newRootCmd(&streams{in: strings.NewReader(""), out: &out, err: &errb})
	cmd.SetArgs([]string{"state", "show", "--state-dir", stateDir})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("kanon state show: %v\n%s", err, errb.String())
	}
	show := out.String()
	for _, want := range []string{
		`newest event time of the last run: 2025-06-03T08:00:00Z`,
		`rule ` + enumerationRule + `: 0 terms, 0 groups, 6 alerts raised, 1 other entries; dropped: 1 late events, 0 alerts over max_signals, 0 runs over the memory budget`,
		`rule capped-anonymous: 0 terms, 0 groups, `,
	} {
		if !strings.Contains(show, want) {
			t.Errorf("kanon state show lacks %q:\n%s", want, show)
		}
	}
	if !regexp.MustCompile(`rule capped-anonymous: .*; dropped: 0 late events, [1-9][0-9]* alerts over max_signals`).MatchString(show) {
		t.Errorf("kanon state show lacks the capped rule's drops:\n%s", show)
	}
}
