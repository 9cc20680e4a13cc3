package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parityLog is the replay log with CloudWatch Logs subscription payloads
// in the mix (as the EKS export of the same cluster would bring them):
// every fifth anonymous event is delivered again inside a payload, and one
// payload is delivered twice, as CloudWatch does at least once. The lines
// are in the order a scan, the webhook and the tail all see them.
func parityLog(t *testing.T) [][]byte {
	t.Helper()
	lines := replayLines(t)
	var out [][]byte
	var redeliver []string
	n := 0
	for _, l := range lines {
		out = append(out, l)
		if !bytes.Contains(l, []byte(`"system:anonymous"`)) {
			continue
		}
		if n++; n%5 == 0 {
			redeliver = append(redeliver, string(l))
		}
		if len(redeliver) == 3 {
			p := cloudWatchPayload(t, n, redeliver)
			out = append(out, p)
			if n%2 == 1 {
				out = append(out, p) // the same payload delivered again
			}
			redeliver = nil
		}
	}
	return out
}

// cloudWatchPayload is a CloudWatch Logs subscription payload (decoded:
// what a Firehose or Lambda hands on) holding the given audit events.
func cloudWatchPayload(t *testing.T, seq int, messages []string) []byte {
	t.Helper()
	type logEvent struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	p := struct {
		MessageType         string     `json:"messageType"`
		Owner               string     `json:"owner"`
		LogGroup            string     `json:"logGroup"`
		LogStream           string     `json:"logStream"`
		SubscriptionFilters []string   `json:"subscriptionFilters"`
		LogEvents           []logEvent `json:"logEvents"`
	}{"DATA_MESSAGE", "123456789012", "/aws/eks/parity/cluster", "kube-apiserver-audit-0123", []string{"kanon"}, nil}
	for i, m := range messages {
		p.LogEvents = append(p.LogEvents, logEvent{fmt.Sprintf("%d%03d", seq, i), 1714986000000 + int64(seq), m})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// normalAlerts reads NDJSON alerts into id -> what must agree: rule, title,
// fields (output fields, or an ES|QL rule's row), window and group count.
// Of several deliveries of one id (serve's group updates) the one with the
// largest count stands. Origins differ by input and are left out.
func normalAlerts(t *testing.T, ndjson []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	counts := map[string]int64{}
	for _, l := range bytes.Split(ndjson, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var a struct {
			ID     string `json:"id"`
			Title  string `json:"title"`
			Rule   struct{ ID string }
			Fields json.RawMessage `json:"fields"`
			Window json.RawMessage `json:"window"`
			Group  *struct {
				Count int64 `json:"count"`
			} `json:"group"`
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		n := int64(0)
		if a.Group != nil {
			n = a.Group.Count
		}
		if _, seen := out[a.ID]; seen && n <= counts[a.ID] {
			continue
		}
		counts[a.ID] = n
		out[a.ID] = fmt.Sprintf("rule=%s title=%q group=%d window=%s fields=%s", a.Rule.ID, a.Title, n, a.Window, a.Fields)
	}
	return out
}

func diffAlerts(want, got map[string]string) string {
	var b strings.Builder
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		if want[id] != got[id] {
			fmt.Fprintf(&b, "%s\n  want %s\n  got  %s\n", id, want[id], got[id])
		}
	}
	return b.String()
}

// One log three ways through the production driver — kanon scan of the
// file; the same records posted to kanon serve's webhook (the audit events
// as EventList batches, the CloudWatch payloads as they are); and the file
// followed by kanon serve --input while it grows, a line cut across two
// writes — raise identical alerts: ids, rules, titles, group counts,
// fields and ES|QL rows. The CloudWatch redeliveries are dropped the same
// way by all three.
func TestParityScanWebhookTail(t *testing.T) {
	bin := kanonBinary(t)
	lines := parityLog(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "parity.log")
	if err := os.WriteFile(logPath, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "scan", "-o", "jsonl", logPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("kanon scan: %v\n%s", err, stderr.String())
	}
	scanned := normalAlerts(t, out)
	m := scannedRe.FindStringSubmatch(stderr.String())
	if m == nil || !strings.Contains(stderr.String(), "repeated deliveries dropped") {
		t.Fatalf("the scan's summary names no events or no repeated deliveries:\n%s", stderr.String())
	}
	events, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", ""))
	if len(scanned) < 10 {
		t.Fatalf("the scan raised %d alerts: the log should raise more", len(scanned))
	}

	// The webhook.
	e := newServeEnv(t)
	p := startServe(t, bin, true, e.tlsArgs()...)
	url := "https://" + p.waitAddr(t) + "/audit"
	c := e.client("client")
	var batch [][]byte
	flush := func() {
		if len(batch) > 0 {
			postOK(t, c, url, eventListBody(batch))
			batch = nil
		}
	}
	for _, l := range lines {
		if bytes.HasPrefix(l, []byte(`{"messageType"`)) {
			flush()
			postOK(t, c, url, l)
			continue
		}
		if batch = append(batch, l); len(batch) == 25 {
			flush()
		}
	}
	flush()
	p.stop(t)
	posted, err := os.ReadFile(e.alerts)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffAlerts(scanned, normalAlerts(t, posted)); d != "" {
		t.Fatalf("the webhook's alerts differ from the scan's:\n%s", d)
	}

	// The followed file, growing.
	f := newServeEnv(t)
	follow := filepath.Join(f.dir, "audit.log")
	p = startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--input", follow, "--tail-poll", "20ms",
		"--state-dir", f.state, "--output", "file:"+f.alerts)
	base := "http://" + p.waitAddr(t)
	data := append(bytes.Join(lines, []byte("\n")), '\n')
	for i, step := 0, len(data)/7+1; i < len(data); i += step {
		end := min(i+step, len(data))
		w, err := os.OpenFile(follow, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data[i:end]) // chunk ends fall inside lines
		w.Close()
		time.Sleep(30 * time.Millisecond)
	}
	waitTailed(t, p, base, events)
	p.stop(t)
	tailed, err := os.ReadFile(f.alerts)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffAlerts(scanned, normalAlerts(t, tailed)); d != "" {
		t.Fatalf("the followed file's alerts differ from the scan's:\n%s", d)
	}
}

func postOK(t *testing.T, c *http.Client, url string, body []byte) {
	t.Helper()
	code, resp, err := postBody(c, url, body)
	if err != nil || code != 200 {
		t.Fatalf("post: %d %s %v", code, resp, err)
	}
}

var scannedRe = regexp.MustCompile(`scanned ([0-9,]+) events`)

// waitTailed polls /metrics until n events of the followed file were
// evaluated.
func waitTailed(t *testing.T, p *serveProc, base string, n int) {
	t.Helper()
	waitEvaluated(t, p, base, n)
}
