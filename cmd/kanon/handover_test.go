package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// enumerationRule is Elastic's ES|QL rule of endpoint permission
// enumeration by anonymous users (R4 of the issue): it aggregates each run.
const enumerationRule = "elastic-k8s-anonymous-endpoint-permission-enumeration"

// handoverEvents is an hour and three quarters of audit events from 08:00:
// an authenticated controller every 20 s, three enumeration bursts by
// anonymous scanners (25 forbidden requests 2 s apart on distinct URIs, at
// 08:10:05, 08:25:05 and 08:40:05, and by a second scanner two minutes
// after each, all four inside one run of the enumeration rule), anonymous
// requests that were allowed (the query, new_terms and
// Panther's grouped rule), and one authenticated event a day later that
// moves the watermark past every run and group. It returns the events in
// time order and, per burst, the indexes of its first and last events
// (of the first scanner).
func handoverEvents() ([][]byte, [][2]int) {
	t0 := time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)
	type ev struct {
		at   time.Time
		line []byte
	}
	var evs []ev
	n := 0
	add := func(at time.Time, user, ua, ip, uri, resource, level, decision string, code int) {
		n++
		ts := at.Format(time.RFC3339Nano)
		m := map[string]any{
			"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level,
			"auditID": fmt.Sprintf("handover-%04d", n), "stage": "ResponseComplete",
			"requestURI": uri, "verb": "get", "user": map[string]any{"username": user},
			"sourceIPs": []string{ip}, "userAgent": ua, "objectRef": map[string]any{"resource": resource},
			"responseStatus": map[string]any{"code": code}, "requestReceivedTimestamp": ts, "stageTimestamp": ts,
			"annotations": map[string]any{"authorization.k8s.io/decision": decision},
		}
		b, _ := json.Marshal(m)
		evs = append(evs, ev{at, b})
	}
	for i := 0; i < 105*3; i++ {
		add(t0.Add(time.Duration(i)*20*time.Second), "system:kube-controller-manager", "kube-controller-manager/v1.33.13",
			"10.0.0.4", "/api/v1/namespaces/kube-system/configmaps", "configmaps", "Metadata", "allow", 200)
	}
	resources := []string{"pods", "secrets", "configmaps", "services", "deployments"}
	var bursts []time.Time
	for k := range 3 {
		start := t0.Add(time.Duration(10+15*k)*time.Minute + 5*time.Second)
		bursts = append(bursts, start)
		for i := range 25 {
			res := resources[i%len(resources)]
			add(start.Add(time.Duration(i)*2*time.Second), "system:anonymous", fmt.Sprintf("zgrab/0.%d", k),
				fmt.Sprintf("203.0.113.%d", 10+k), fmt.Sprintf("/api/v1/namespaces/ns%d/%s", i, res), res, "Request", "forbid", 403)
			// A second scanner two minutes later, in the same run.
			add(start.Add(2*time.Minute+time.Duration(i)*2*time.Second), "system:anonymous", fmt.Sprintf("masscan/1.%d", k),
				fmt.Sprintf("203.0.113.%d", 20+k), fmt.Sprintf("/apis/apps/v1/namespaces/ns%d/%s", i, res), res, "Request", "forbid", 403)
		}
		// Allowed anonymous requests around each burst.
		for i := range 3 {
			add(start.Add(time.Duration(-90+i*120)*time.Second), "system:anonymous", fmt.Sprintf("curl/8.%d.%d", k, i),
				"198.51.100.7", "/api/v1/namespaces/default/pods", "pods", "Metadata", "allow", 200)
		}
	}
	add(t0.Add(24*time.Hour), "system:kube-controller-manager", "kube-controller-manager/v1.33.13",
		"10.0.0.4", "/api/v1/namespaces/kube-system/configmaps", "configmaps", "Metadata", "allow", 200)
	slices.SortStableFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	lines := make([][]byte, len(evs))
	spans := make([][2]int, len(bursts))
	for i, e := range evs {
		lines[i] = e.line
		for k := range bursts {
			if bytes.Contains(e.line, fmt.Appendf(nil, "zgrab/0.%d", k)) {
				if spans[k][1] == 0 {
					spans[k][0] = i
				}
				spans[k][1] = i
			}
		}
	}
	return lines, spans
}

// alertCounts reads NDJSON alerts: per id, the largest group count
// delivered (1 for an ungrouped alert), and the document counts of the
// enumeration rule's alerts.
func alertCounts(t *testing.T, ndjson []byte) (map[string]int64, []int64) {
	t.Helper()
	counts := map[string]int64{}
	var docs []int64
	for _, l := range bytes.Split(ndjson, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var a struct {
			ID   string `json:"id"`
			Rule struct {
				ID string `json:"id"`
			} `json:"rule"`
			Fields map[string]any `json:"fields"`
			Group  *struct {
				Count int64 `json:"count"`
			} `json:"group"`
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		c := int64(1)
		if a.Group != nil {
			c = a.Group.Count
		}
		counts[a.ID] = max(counts[a.ID], c)
		if a.Rule.ID == enumerationRule {
			n, _ := a.Fields["Esql.document_count"].(float64)
			docs = append(docs, int64(n))
		}
	}
	slices.Sort(docs)
	return counts, docs
}

// kanon serve stopped with SIGTERM before, in the middle of and after an
// enumeration burst (and three times in one run), and started again on
// the same state directory each time, raises exactly what kanon scan
// raises on the same events: the same alert ids, the same group counts,
// and every burst's alert counts its 25 requests. A stop that closed the
// open runs instead (what serve did before) raises a partial alert at a
// stop in the middle of a burst, and after one drops the second scanner's
// requests in the same run as late.
func TestServeSIGTERMHandover(t *testing.T) {
	bin := kanonBinary(t)
	lines, bursts := handoverEvents()
	batches := tenLineBatches(lines)
	batchOf := func(line int) int { return line / 10 }

	path := filepath.Join(t.TempDir(), "handover.log")
	if err := os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "scan", "-o", "jsonl", "-q", path).Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("kanon scan: %v", err)
	}
	want, wantDocs := alertCounts(t, out)
	if !slices.Equal(wantDocs, []int64{25, 25, 25, 25, 25, 25}) {
		t.Fatalf("kanon scan: enumeration alerts counting %v events, want six of 25", wantDocs)
	}

	cases := []struct {
		name  string
		stops []int // batches posted before each SIGTERM
	}{
		{"before the burst", []int{batchOf(bursts[0][0])}},
		{"in the middle of the burst", []int{batchOf(bursts[0][0]+16) + 1}},
		{"after the burst, its run open", []int{batchOf(bursts[0][1]) + 1}},
		{"three times", []int{batchOf(bursts[0][0]+5) + 1, batchOf(bursts[1][0]+12) + 1, batchOf(bursts[2][0]+20) + 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			alerts := filepath.Join(dir, "alerts.ndjson")
			args := []string{"--listen", "", "--insecure-listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, "state"),
				"--output", "file:" + alerts}
			next := 0
			for _, stop := range append(c.stops, len(batches)) {
				p := startServe(t, bin, true, args...)
				url := "http://" + p.waitAddr(t) + "/audit/lab"
				for ; next < stop; next++ {
					if code, body, err := postBody(http.DefaultClient, url, batches[next]); err != nil || code != 200 {
						t.Fatalf("batch %d: %d %s %v\n%s", next, code, body, err, p.log())
					}
				}
				p.stop(t)
				if stop < len(batches) && !strings.Contains(p.log(), "open windows and groups checkpointed for the next run") {
					t.Fatalf("the stop does not say it handed the open runs over:\n%s", p.log())
				}
			}
			b, err := os.ReadFile(alerts)
			if err != nil {
				t.Fatal(err)
			}
			got, docs := alertCounts(t, b)
			t.Logf("stops after batches %v: %d alerts (scan %d); enumeration alerts counting %v events", c.stops, len(got), len(want), docs)
			if !maps.Equal(got, want) {
				var missing, extra []string
				for id, n := range want {
					if got[id] != n {
						missing = append(missing, fmt.Sprintf("%s#%d", id, n))
					}
				}
				for id, n := range got {
					if want[id] != n {
						extra = append(extra, fmt.Sprintf("%s#%d", id, n))
					}
				}
				slices.Sort(missing)
				slices.Sort(extra)
				t.Fatalf("serve raised %d alerts, scan %d; missing %v, extra %v; enumeration alerts counting %v events", len(got), len(want), missing, extra, docs)
			}
		})
	}
}
