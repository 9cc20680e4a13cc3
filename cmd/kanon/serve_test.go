package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/server/servertest"
)

var (
	serveBinOnce sync.Once
	serveBin     string
	serveBinErr  error
)

// kanonBinary builds the kanon binary once for the serve tests.
func kanonBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the kanon binary")
	}
	serveBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kanon-serve-test")
		if err != nil {
			serveBinErr = err
			return
		}
		serveBin = filepath.Join(dir, "kanon")
		if out, err := exec.Command("go", "build", "-o", serveBin, ".").CombinedOutput(); err != nil {
			serveBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if serveBinErr != nil {
		t.Fatal(serveBinErr)
	}
	return serveBin
}

// replayLines are the lines of testdata/serve/replay.log: the bundled
// example log with a burst of anonymous Request-level 403s at 09:20 that
// the ES|QL rule of seed 004 alerts on.
func replayLines(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/serve/replay.log")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func eventListBody(items [][]byte) []byte {
	return append(append([]byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`), bytes.Join(items, []byte(","))...), "]}\n"...)
}

// scanAlertIDs runs kanon scan on the lines and returns the distinct
// alert ids.
func scanAlertIDs(t *testing.T, bin string, lines [][]byte) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scan.log")
	if err := os.WriteFile(path, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "scan", "--no-state", "-o", "json", "-q", path)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("kanon scan: %v", err)
	}
	ids := alertIDs(t, out)
	return distinct(ids)
}

func alertIDs(t *testing.T, ndjson []byte) []string {
	t.Helper()
	var ids []string
	for _, l := range bytes.Split(ndjson, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var a struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

func distinct(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// serveProc is a running kanon serve.
type serveProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []string
	addr chan string
	done chan error
}

// startServe starts kanon serve with JSON logs and waits until it listens
// (when it has a listener).
func startServe(t *testing.T, bin string, listens bool, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{addr: make(chan string, 2), done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"serve", "--log-format", "json", "--log-level", "debug"}, args...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "webhook listening" {
				p.addr <- m["addr"].(string)
			}
		}
		p.done <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
		}
	})
	return p
}

func (p *serveProc) waitAddr(t *testing.T) string {
	t.Helper()
	select {
	case a := <-p.addr:
		return a
	case err := <-p.done:
		t.Fatalf("kanon serve exited: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("kanon serve did not listen\n%s", p.log())
	}
	return ""
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// waitLog waits for a log line containing s.
func (p *serveProc) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.log(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q:\n%s", s, p.log())
}

// stop sends SIGTERM and waits for a clean exit.
func (p *serveProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("kanon serve after SIGTERM: %v\n%s", err, p.log())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("kanon serve did not stop\n%s", p.log())
	}
}

func postBody(c *http.Client, url string, body []byte, hdr ...string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

type serveEnv struct {
	dir, state, alerts, token string
	pki                       *servertest.PKI
}

func newServeEnv(t *testing.T) *serveEnv {
	dir := t.TempDir()
	e := &serveEnv{dir: dir, state: filepath.Join(dir, "state"), alerts: filepath.Join(dir, "alerts.ndjson"), token: filepath.Join(dir, "token")}
	e.pki = servertest.WritePKI(t, dir)
	if err := os.WriteFile(e.token, []byte("t0ken-of-the-apiserver\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *serveEnv) tlsArgs() []string {
	return []string{"--listen", "127.0.0.1:0", "--tls-cert", e.pki.ServerCert, "--tls-key", e.pki.ServerKey,
		"--client-ca", e.pki.CAFile, "--token-file", e.token, "--state-dir", e.state, "--output", "file:" + e.alerts}
}

func (e *serveEnv) client(cert string) *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: e.pki.ClientTLS(cert)}}
}

// alertIDs returns the ids of the alerts in the alerts file, once per
// alert: serve delivers a dedup group's first alert at once and its
// update (same id, larger group count) when the group closes, where kanon
// scan delivers the group once; the update is left out. A delivery
// written twice (same id and group count) fails the test.
func (e *serveEnv) alertIDs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(e.alerts)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	seen := map[string]bool{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var a struct {
			ID    string `json:"id"`
			Group *struct {
				Count int64 `json:"count"`
			} `json:"group"`
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		key := a.ID
		if a.Group != nil {
			key = fmt.Sprintf("%s#%d", a.ID, a.Group.Count)
		}
		if seen[key] {
			t.Fatalf("alert %s delivered twice", key)
		}
		if !seen[a.ID] {
			ids = append(ids, a.ID)
		}
		seen[key], seen[a.ID] = true, true
	}
	return ids
}

// kanon serve over TLS with client authentication: EventList batches
// from a client certificate and a bearer token are evaluated, an
// unauthenticated batch is refused, and the alerts are those of kanon scan
// on the same log, with the same ids.
func TestServeWebhookTLS(t *testing.T) {
	bin := kanonBinary(t)
	e := newServeEnv(t)
	p := startServe(t, bin, true, append(e.tlsArgs(), "--cluster", "lab")...)
	url := "https://" + p.waitAddr(t) + "/audit/lab"
	lines := replayLines(t)
	mtls, anon := e.client("client"), e.client("")
	if code, body, err := postBody(anon, url, eventListBody(lines[:5])); err != nil || code != 401 {
		t.Fatalf("unauthenticated batch: %d %s %v", code, body, err)
	}
	if code, body, err := postBody(anon, url, eventListBody(lines[:5]), "Authorization", "Bearer wrong"); err != nil || code != 403 {
		t.Fatalf("wrong token: %d %s %v", code, body, err)
	}
	for i := 0; i < len(lines); i += 20 {
		c, hdr := mtls, []string(nil)
		if i/20%2 == 1 {
			c, hdr = anon, []string{"Authorization", "Bearer t0ken-of-the-apiserver"}
		}
		batch := lines[i:min(i+20, len(lines))]
		code, body, err := postBody(c, url, eventListBody(batch), hdr...)
		if err != nil || code != 200 || !strings.Contains(body, fmt.Sprintf(`"events":%d,`, len(batch))) {
			t.Fatalf("batch at line %d: %d %s %v", i+1, code, body, err)
		}
	}
	p.stop(t)
	got, want := e.alertIDs(t), scanAlertIDs(t, bin, lines)
	if !slices.Equal(distinct(got), want) || len(got) != len(want) {
		t.Fatalf("serve raised %d alerts (%d distinct), scan %d:\nserve %v\nscan  %v", len(got), len(distinct(got)), len(want), got, want)
	}
	if !strings.Contains(p.log(), `"status":401`) {
		t.Fatalf("the refused request is not logged:\n%s", p.log())
	}
}

// kanon serve killed with SIGKILL while a batch is in flight and
// restarted on the same state directory and alerts file: the sender sends
// every batch not acknowledged again (as kube-apiserver does); every
// acknowledged event was evaluated, no alert is lost and none is written
// twice (the file output drops ids it holds). The kill happens before the
// ES|QL burst: open ES|QL runs live in memory (see the report).
func TestServeKillRestart(t *testing.T) {
	bin := kanonBinary(t)
	e := newServeEnv(t)
	lines := replayLines(t)
	var batches [][]byte
	for i := 0; i < len(lines); i += 10 {
		batches = append(batches, eventListBody(lines[i:min(i+10, len(lines))]))
	}
	p := startServe(t, bin, true, e.tlsArgs()...)
	url := "https://" + p.waitAddr(t) + "/audit/lab"
	c := e.client("client")
	acked := 0
	for ; acked < 8; acked++ {
		if code, body, err := postBody(c, url, batches[acked]); err != nil || code != 200 {
			t.Fatalf("batch %d: %d %s %v", acked, code, body, err)
		}
	}
	// The ninth is in flight when the process is killed.
	inflight := make(chan int, 1)
	go func() {
		code, _, _ := postBody(c, url, batches[acked])
		inflight <- code
	}()
	time.Sleep(5 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if code := <-inflight; code == 200 {
		acked++ // it made it before the kill
	}
	before := e.alertIDs(t)
	if len(before) == 0 {
		t.Fatal("no alert before the kill")
	}

	p = startServe(t, bin, true, e.tlsArgs()...)
	url = "https://" + p.waitAddr(t) + "/audit/lab"
	for i := acked; i < len(batches); i++ {
		if code, body, err := postBody(c, url, batches[i]); err != nil || code != 200 {
			t.Fatalf("batch %d after restart: %d %s %v", i, code, body, err)
		}
	}
	p.stop(t)
	got, want := e.alertIDs(t), scanAlertIDs(t, bin, lines)
	if !slices.Equal(distinct(got), want) || len(got) != len(want) {
		t.Fatalf("after the restart: %d alerts (%d distinct), scan %d:\nserve %v\nscan  %v", len(got), len(distinct(got)), len(want), got, want)
	}
	for _, id := range before {
		if !slices.Contains(got, id) {
			t.Fatalf("alert %s written before the kill is gone", id)
		}
	}
}

var evaluatedRe = regexp.MustCompile(`kanon_events_evaluated_total\{cluster="_none",input="tail"\} (\d+)`)

// waitEvaluated polls /metrics until n events of the tail were evaluated.
func waitEvaluated(t *testing.T, p *serveProc, base string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if m := evaluatedRe.FindSubmatch(b); m != nil {
				got, _ = strconv.Atoi(string(m[1]))
				if got == n {
					return
				}
				if got > n {
					t.Fatalf("%d events evaluated, want %d", got, n)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d events evaluated, want %d\n%s", got, n, p.log())
}

func appendLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		f.Write(append(l, '\n'))
	}
}

// kanon serve following an audit log through a rename rotation, a
// copy-truncate rotation, a restart, and a rotation while it was down:
// every line is evaluated once, and the alerts are those of kanon scan.
func TestServeTailRotation(t *testing.T) {
	bin := kanonBinary(t)
	e := newServeEnv(t)
	lines := replayLines(t)
	log := filepath.Join(e.dir, "audit.log")
	args := []string{"--listen", "", "--insecure-listen", "127.0.0.1:0", "--input", log, "--tail-poll", "20ms",
		"--state-dir", e.state, "--output", "file:" + e.alerts}
	appendLines(t, log, lines[:60])
	p := startServe(t, bin, true, args...)
	base := "http://" + p.waitAddr(t)
	waitEvaluated(t, p, base, 60)

	// Rename rotation; the old file gets its last lines after the rename.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log+".1", lines[60:70])
	appendLines(t, log, lines[70:120])
	waitEvaluated(t, p, base, 120)
	p.waitLog(t, `"rotation":"renamed"`)

	// Copy-truncate rotation.
	old, _ := os.ReadFile(log)
	os.WriteFile(log+".2", old, 0o600)
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	appendLines(t, log, lines[120:170])
	waitEvaluated(t, p, base, 170)
	p.waitLog(t, `"rotation":"truncated"`)
	p.stop(t)

	// Written while kanon is down, then rotated: the restart finishes the
	// old file from the stored position, then reads the new one.
	appendLines(t, log, lines[170:200])
	if err := os.Rename(log, log+".3"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, log, lines[200:])
	p = startServe(t, bin, true, args...)
	base = "http://" + p.waitAddr(t)
	waitEvaluated(t, p, base, len(lines)-170)
	p.stop(t)

	got, want := e.alertIDs(t), scanAlertIDs(t, bin, lines)
	if !slices.Equal(distinct(got), want) || len(got) != len(want) {
		t.Fatalf("tail raised %d alerts (%d distinct), scan %d:\nserve %v\nscan  %v", len(got), len(distinct(got)), len(want), got, want)
	}
}

// SIGHUP reloads the rules: a rule file with an error is refused and the
// old rules keep running; a good one replaces them.
func TestServeReload(t *testing.T) {
	bin := kanonBinary(t)
	e := newServeEnv(t)
	rulesDir := filepath.Join(e.dir, "rules")
	os.MkdirAll(rulesDir, 0o700)
	ruleFile := filepath.Join(rulesDir, "r.yaml")
	writeRule := func(id, user string) {
		r := fmt.Sprintf("id: %s\nname: requests by %s\ntype: query\nlanguage: kuery\nquery: 'kubernetes.audit.user.username:%q'\nseverity: low\nrisk_score: 10\n", id, user, user)
		if err := os.WriteFile(ruleFile, []byte(r), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeRule("by-alice", "alice")
	p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--no-builtin", "--rules", rulesDir,
		"--state-dir", e.state, "--output", "file:"+e.alerts)
	url := "http://" + p.waitAddr(t) + "/audit"
	event := func(n int, user string) []byte {
		return []byte(fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"reload-%d","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":%q},"sourceIPs":["10.0.0.1"],"responseStatus":{"code":200},"requestReceivedTimestamp":"2025-05-14T10:00:%02d.000000Z","stageTimestamp":"2025-05-14T10:00:%02d.000000Z"}`, n, user, n, n))
	}
	send := func(n int, user string) {
		t.Helper()
		if code, body, err := postBody(http.DefaultClient, url, eventListBody([][]byte{event(n, user)})); err != nil || code != 200 {
			t.Fatalf("post: %d %s %v", code, body, err)
		}
	}
	send(1, "alice")
	os.WriteFile(ruleFile, []byte("id: broken\nname: broken\ntype: query\nlanguage: kuery\nquery: 'user.name:('\nseverity: low\nrisk_score: 1\n"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "rules not reloaded")
	send(2, "alice") // the old rule still runs
	writeRule("by-bob", "bob")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "rules reloaded")
	send(3, "alice")
	send(4, "bob")
	p.stop(t)
	b, _ := os.ReadFile(e.alerts)
	var rules []string
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var a struct {
			Rule struct{ ID string } `json:"rule"`
		}
		json.Unmarshal(l, &a)
		rules = append(rules, a.Rule.ID)
	}
	if want := []string{"by-alice", "by-alice", "by-bob"}; !slices.Equal(rules, want) {
		t.Fatalf("alerts by rule %v, want %v\n%s", rules, want, p.log())
	}
}

// --check validates the configuration file, the rules and the
// certificates; errors name the file and line.
func TestServeCheck(t *testing.T) {
	e := newServeEnv(t)
	cfg := filepath.Join(e.dir, "kanon.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good := fmt.Sprintf(`listen: "127.0.0.1:8443"
tls:
  cert_file: %s
  key_file: %s
  client_ca_file: %s
token_files: [%s]
cluster: prod
lateness: 45s
max_body_bytes: 16MiB
state_dir: %s
outputs:
  - type: stdout
  - type: file
    path: %s
    min_severity: medium
`, e.pki.ServerCert, e.pki.ServerKey, e.pki.CAFile, e.token, e.state, e.alerts)
	write(good)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		cmd := newRootCmd(&streams{in: strings.NewReader(""), out: &out, err: &errb})
		cmd.SetArgs(args)
		err := cmd.Execute()
		code := 0
		if err != nil {
			code = 1
			errb.WriteString(err.Error())
		}
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("serve", "--check", "--config", cfg); code != 0 || !strings.Contains(out, "configuration OK: 4 rules, HTTPS webhook on 127.0.0.1:8443, 2 outputs") {
		t.Fatalf("good config: %d %q %q", code, out, errs)
	}
	// Plain HTTP beyond loopback, meant and with tokens, is accepted.
	if code, out, errs := run("serve", "--check", "--config", cfg, "--insecure-listen", "0.0.0.0:8080", "--insecure-non-loopback"); code != 0 || !strings.Contains(out, "plain-HTTP webhook on 0.0.0.0:8080") {
		t.Fatalf("meant plain HTTP: %d %q %q", code, out, errs)
	}
	// A flag overrides the file.
	if code, out, _ := run("serve", "--check", "--config", cfg, "--listen", "127.0.0.1:9443"); code != 0 || !strings.Contains(out, "127.0.0.1:9443") {
		t.Fatalf("flag over file: %d %q", code, out)
	}
	cases := []struct{ name, cfg, want string }{
		{"unknown key", good + "bogus: 1\n", "kanon.yaml:16: field bogus not found in type main.serveConfig"},
		{"bad duration", strings.Replace(good, "45s", "45 parsecs", 1), "kanon.yaml:8: cannot unmarshal"},
		{"bad size", strings.Replace(good, "16MiB", "lots", 1), "cannot parse size"},
		{"bad output", strings.Replace(good, "min_severity: medium", "min_severity: dire", 1), "min_severity"},
		{"missing cert", strings.Replace(good, e.pki.ServerCert, filepath.Join(e.dir, "nope.crt"), 1), "cannot load the TLS certificate"},
		{"no client auth", strings.Replace(strings.Replace(good, "  client_ca_file: "+e.pki.CAFile+"\n", "", 1), "token_files: ["+e.token+"]\n", "", 1), "no client authentication"},
		{"bad tail_from", good + "tail_from: middle\n", "tail_from"},
		{"bad store", good + "store: redis://h:1/x\n", "store: invalid redis store URL"},
		{"plain HTTP beyond loopback", good + "insecure_listen: 0.0.0.0:8080\n", "insecure_listen: \"0.0.0.0:8080\" is not a loopback address"},
		{"plain HTTP beyond loopback without tokens", strings.Replace(good, "token_files: ["+e.token+"]\n", "", 1) + "insecure_listen: 0.0.0.0:8080\ninsecure_non_loopback: true\n", "it takes only bearer tokens"},
	}
	for _, c := range cases {
		write(c.cfg)
		if code, _, errs := run("serve", "--check", "--config", cfg); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d, errors %q; want %q", c.name, code, errs, c.want)
		}
	}
	write(good)
	rules := filepath.Join(e.dir, "bad-rules")
	os.MkdirAll(rules, 0o700)
	os.WriteFile(filepath.Join(rules, "x.yaml"), []byte("id: x\nname: x\ntype: query\nlanguage: kuery\nquery: 'a:('\nseverity: low\nrisk_score: 1\n"), 0o600)
	if code, _, errs := run("serve", "--check", "--config", cfg, "--rules", rules); code == 0 || !strings.Contains(errs, "x.yaml:5") {
		t.Errorf("bad rule: exit %d, errors %q", code, errs)
	}
}

// postBatches posts batches[from:to] and fails on any answer but 200.
func postBatches(t *testing.T, c *http.Client, url string, batches [][]byte, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if code, body, err := postBody(c, url, batches[i]); err != nil || code != 200 {
			t.Fatalf("batch %d: %d %s %v", i, code, body, err)
		}
	}
}

// tenLineBatches splits lines into EventList bodies of ten.
func tenLineBatches(lines [][]byte) [][]byte {
	var batches [][]byte
	for i := 0; i < len(lines); i += 10 {
		batches = append(batches, eventListBody(lines[i:min(i+10, len(lines))]))
	}
	return batches
}

// kanon serve killed with SIGKILL in the middle of the ES|QL burst of the
// replay log (09:20:15-09:21:13, lines 107-140): the batches acknowledged
// before the kill hold its first part, whose partial aggregation was
// committed with them; the restarted serve restores the open run, gets the
// rest (the batch in flight sent again) and raises the burst's alert once,
// with the id (so the counts) kanon scan gives on the whole log.
func TestServeKillRestartESQLBurst(t *testing.T) {
	bin := kanonBinary(t)
	e := newServeEnv(t)
	lines := replayLines(t)
	batches := tenLineBatches(lines)
	p := startServe(t, bin, true, e.tlsArgs()...)
	url := "https://" + p.waitAddr(t) + "/audit/lab"
	c := e.client("client")
	acked := 12 // lines 1-120: the burst up to 09:20:39
	postBatches(t, c, url, batches, 0, acked)
	inflight := make(chan int, 1)
	go func() {
		code, _, _ := postBody(c, url, batches[acked])
		inflight <- code
	}()
	time.Sleep(5 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if code := <-inflight; code == 200 {
		acked++
	}
	p = startServe(t, bin, true, e.tlsArgs()...)
	url = "https://" + p.waitAddr(t) + "/audit/lab"
	postBatches(t, c, url, batches, acked, len(batches))
	p.stop(t)
	got, want := e.alertIDs(t), scanAlertIDs(t, bin, lines)
	if !slices.Equal(distinct(got), want) || len(got) != len(want) {
		t.Fatalf("after the restart: %d alerts (%d distinct), scan %d:\nserve %v\nscan  %v\n%s", len(got), len(distinct(got)), len(want), got, want, p.log())
	}
	if !esqlAlerted(t, e.alerts) {
		t.Fatal("no alert of the ES|QL rule")
	}
}

// esqlAlerted reports whether the alerts file holds an alert of the
// ES|QL enumeration rule (seed 004).
func esqlAlerted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var a struct {
			Rule struct{ Type string } `json:"rule"`
		}
		if json.Unmarshal(l, &a) == nil && a.Rule.Type == "esql" {
			return true
		}
	}
	return false
}

// SIGHUP in the middle of the ES|QL burst: the rules are unchanged, so
// the open run carries over to the new engine and the burst alerts as if
// no reload happened (the ids of kanon scan).
func TestServeReloadKeepsESQLRun(t *testing.T) {
	bin := kanonBinary(t)
	e := newServeEnv(t)
	lines := replayLines(t)
	batches := tenLineBatches(lines)
	p := startServe(t, bin, true, e.tlsArgs()...)
	url := "https://" + p.waitAddr(t) + "/audit/lab"
	c := e.client("client")
	postBatches(t, c, url, batches, 0, 12)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "rules reloaded")
	if !regexp.MustCompile(`"msg":"ES\|QL runs carried over to the new rules","runs":[1-9]`).MatchString(p.log()) {
		t.Fatalf("no open ES|QL run carried over:\n%s", p.log())
	}
	postBatches(t, c, url, batches, 12, len(batches))
	p.stop(t)
	got, want := e.alertIDs(t), scanAlertIDs(t, bin, lines)
	if !slices.Equal(distinct(got), want) || len(got) != len(want) {
		t.Fatalf("after the reload: %d alerts (%d distinct), scan %d:\nserve %v\nscan  %v", len(got), len(distinct(got)), len(want), got, want)
	}
	if !esqlAlerted(t, e.alerts) {
		t.Fatal("no alert of the ES|QL rule")
	}
}
