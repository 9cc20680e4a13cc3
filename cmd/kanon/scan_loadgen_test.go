package main

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kanon-dev/kanon/internal/loadgen"
)

// loadgenClients are the clients of a generated log's enumeration
// bursts (its anonymous Request-level events) as "IP user-agent", with
// their number of requests.
func loadgenClients(t *testing.T, log []byte) map[string]int {
	t.Helper()
	clients := map[string]int{}
	for _, l := range bytes.Split(bytes.TrimSuffix(log, []byte("\n")), []byte("\n")) {
		var e struct {
			Level, UserAgent string
			SourceIPs        []string
			User             struct{ Username string }
		}
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatal(err)
		}
		if e.Level == "Request" && e.User.Username == "system:anonymous" {
			clients[e.SourceIPs[0]+" "+e.UserAgent]++
		}
	}
	return clients
}

// kanon scan of a kanon-loadgen log with enumeration bursts raises
// Elastic's enumeration rule on every burst and on nothing else; without
// bursts the rule is silent on the same traffic.
func TestScanLoadgenBursts(t *testing.T) {
	opts := loadgen.DefaultOptions(20_000, 4)
	opts.Rate, opts.Bursts, opts.AnonymousRatio = 20, 20, 0.005
	scan := func(opts loadgen.Options) (map[string]int64, []byte) {
		var buf bytes.Buffer
		if _, err := loadgen.Generate(&buf, opts); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--rule", enumerationRule, path)
		if code != 0 && code != 2 {
			t.Fatalf("kanon scan: exit %d\n%s", code, errOut)
		}
		docs := map[string]int64{}
		for _, a := range alertsOf(t, out) {
			f := a["fields"].(map[string]any)
			docs[f["kubernetes.audit.sourceIPs"].(string)+" "+f["kubernetes.audit.userAgent"].(string)] += int64(f["Esql.document_count"].(float64))
		}
		return docs, buf.Bytes()
	}
	alerted, log := scan(opts)
	clients := loadgenClients(t, log)
	if len(clients) < 3 {
		t.Fatalf("%d bursts in the log, want several", len(clients))
	}
	for c, n := range clients {
		// A burst spanning two runs alerts in each (their windows overlap
		// by a minute), counting the overlap twice; the last burst may be
		// cut by the end of the log.
		if alerted[c] < int64(n) && alerted[c] != 0 || alerted[c] == 0 && n >= 10 {
			t.Errorf("burst of %s: %d requests, its alerts count %d", c, n, alerted[c])
		}
	}
	for c := range alerted {
		if clients[c] == 0 {
			t.Errorf("enumeration alert on %s, not a burst", c)
		}
	}
	t.Logf("%d bursts, %d alerted: %v", len(clients), len(alerted), slices.Sorted(maps.Keys(alerted)))
	opts.Bursts = 0
	if none, _ := scan(opts); len(none) != 0 {
		t.Errorf("enumeration alerts without bursts: %v", none)
	}
}
