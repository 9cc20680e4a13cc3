package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildKanon builds the kanon binary into a temporary directory.
func buildKanon(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the kanon binary")
	}
	bin := filepath.Join(t.TempDir(), "kanon")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// restartDedupRule groups anonymous requests by source IP: the restart
// test covers grouped alerts too.
const restartDedupRule = `id: restart-anon-by-ip
name: anonymous requests by source
type: query
language: kuery
query: 'kubernetes.audit.user.username:"system:anonymous"'
severity: info
risk_score: 1
dedup:
  key: "{{ kubernetes.audit.sourceIPs[0] }}"
  period: 30m
tests: []
`

// genLog writes n audit events, 10 s apart from start: anonymous requests
// with a user agent that changes every 7 events (new terms), from 5 source
// IPs (groups), and every fourth request authenticated.
func genLog(t *testing.T, path string, start time.Time, n, uaOffset int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := range n {
		user := "system:anonymous"
		if i%4 == 3 {
			user = "alice"
		}
		at := start.Add(time.Duration(i) * 10 * time.Second).Format(time.RFC3339Nano)
		m := map[string]any{
			"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
			"auditID": fmt.Sprintf("%s-%d", start.Format("0102"), i), "stage": "ResponseComplete",
			"requestURI": fmt.Sprintf("/api/v1/namespaces/ns%d/pods", i%3), "verb": "list",
			"user": map[string]any{"username": user}, "sourceIPs": []string{fmt.Sprintf("198.51.100.%d", i%5)},
			"userAgent": fmt.Sprintf("tool-%d/1.0", uaOffset+i/7), "objectRef": map[string]any{"resource": "pods"},
			"responseStatus": map[string]any{"code": 200}, "requestReceivedTimestamp": at, "stageTimestamp": at,
			"annotations": map[string]any{"authorization.k8s.io/decision": "allow"},
		}
		b, _ := json.Marshal(m)
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// scanCmd returns the command of one scan with state in dir and alerts
// appended to file.
func scanCmd(bin, rulesDir, dir, file string, logs ...string) *exec.Cmd {
	args := []string{"scan", "--rules", rulesDir, "--rule", "elastic-k8s-anonymous-request-authorized",
		"--rule", "elastic-k8s-anonymous-request-authorized-unusual-user-agent", "--rule", "restart-anon-by-ip",
		"--state-dir", dir, "--alerts-file", file, "-o", "jsonl", "--progress", "never"}
	cmd := exec.Command(bin, append(args, logs...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return cmd
}

// deliveries reads an alerts file: the delivery keys in order, failing on
// a duplicate.
func deliveries(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	seen := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var a struct {
			ID    string `json:"id"`
			Group *struct {
				Count int64 `json:"count"`
			} `json:"group"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("%s:%d: %v", file, i+1, err)
		}
		k := a.ID
		if a.Group != nil {
			k += fmt.Sprintf("#%d", a.Group.Count)
		}
		if seen[k] {
			t.Fatalf("%s:%d: alert %s delivered twice", file, i+1, k)
		}
		seen[k] = true
		keys = append(keys, k)
	}
	return keys
}

func countLines(file string) int {
	data, _ := os.ReadFile(file)
	return strings.Count(string(data), "\n")
}

// exitCode runs cmd and returns its exit code.
func runExit(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("run %v: %v", cmd.Args, err)
	return -1, ""
}

// TestRestartAfterSIGKILL kills scans part-way with SIGKILL and runs them
// again over the same input with the same state directory and alerts file:
// the file must end up with exactly the alerts of one uninterrupted scan,
// none twice.
func TestRestartAfterSIGKILL(t *testing.T) {
	bin := buildKanon(t)
	work := t.TempDir()
	rulesDir := filepath.Join(work, "rules")
	os.Mkdir(rulesDir, 0o700)
	if err := os.WriteFile(filepath.Join(rulesDir, "dedup.yaml"), []byte(restartDedupRule), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(work, "audit.log")
	genLog(t, log, time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC), 700, 0)

	// One uninterrupted scan with a fresh state directory.
	want := filepath.Join(work, "want.ndjson")
	if code, stderr := runExit(t, scanCmd(bin, rulesDir, filepath.Join(work, "state-want"), want, log)); code != 2 {
		t.Fatalf("uninterrupted scan exited %d, want 2:\n%s", code, stderr)
	}
	wantKeys := deliveries(t, want)
	slices.Sort(wantKeys)
	if len(wantKeys) < 100 {
		t.Fatalf("the uninterrupted scan raised only %d alerts", len(wantKeys))
	}
	groups := 0
	for _, k := range wantKeys {
		if strings.Contains(k, "#") {
			groups++
		}
	}
	if groups == 0 {
		t.Fatal("the uninterrupted scan delivered no groups")
	}

	// Scans killed when the file holds k lines (one kill each, then a run
	// to completion), and one run killed three times in a row.
	for _, kills := range [][]int{{1}, {len(wantKeys) / 2}, {len(wantKeys) - 3}, {10, 60, 150}} {
		t.Run(fmt.Sprint(kills), func(t *testing.T) {
			dir, file := t.TempDir(), filepath.Join(t.TempDir(), "alerts.ndjson")
			for _, k := range kills {
				cmd := scanCmd(bin, rulesDir, dir, file, log)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				deadline := time.After(60 * time.Second)
			wait:
				for {
					select {
					case <-exited:
						t.Logf("kill at %d lines: the scan finished first", k)
						break wait
					case <-deadline:
						cmd.Process.Kill()
						t.Fatalf("scan did not reach %d alerts in 60s", k)
					case <-time.After(time.Millisecond):
						if countLines(file) >= k {
							cmd.Process.Signal(syscall.SIGKILL)
							<-exited
							break wait
						}
					}
				}
			}
			if code, stderr := runExit(t, scanCmd(bin, rulesDir, dir, file, log)); code != 0 && code != 2 {
				t.Fatalf("final scan exited %d:\n%s", code, stderr)
			}
			got := deliveries(t, file)
			slices.Sort(got)
			if !slices.Equal(got, wantKeys) {
				missing, extra := diffKeys(wantKeys, got), diffKeys(got, wantKeys)
				t.Fatalf("after kills at %v: %d alerts, want %d; missing %v, extra %v", kills, len(got), len(wantKeys), clipList(missing), clipList(extra))
			}
		})
	}
}

// TestScanTwice checks that scanning the same file twice with one state
// directory raises nothing the second time, and that a scan of new logs
// does not re-alert the user agents learned in the first.
func TestScanTwice(t *testing.T) {
	bin := buildKanon(t)
	work := t.TempDir()
	rulesDir := filepath.Join(work, "rules")
	os.Mkdir(rulesDir, 0o700)
	os.WriteFile(filepath.Join(rulesDir, "dedup.yaml"), []byte(restartDedupRule), 0o600)
	day1, day2 := filepath.Join(work, "day1.log"), filepath.Join(work, "day2.log")
	genLog(t, day1, time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC), 70, 0) // agents tool-0..9
	genLog(t, day2, time.Date(2025, 6, 3, 8, 0, 0, 0, time.UTC), 14, 9) // agents tool-9 (known), tool-10 (new)
	dir := filepath.Join(work, "state")
	scan := func(file, log string) (int, string) {
		cmd := exec.Command(bin, "scan", "--rule", "elastic-k8s-anonymous-request-authorized-unusual-user-agent",
			"--state-dir", dir, "--alerts-file", file, "-o", "jsonl", "--progress", "never", log)
		var out strings.Builder
		cmd.Stdout = &out
		code, stderr := runExit(t, cmd)
		return code, out.String() + stderr
	}
	if code, out := scan(filepath.Join(work, "a1"), day1); code != 2 || len(deliveries(t, filepath.Join(work, "a1"))) != 10 {
		t.Fatalf("first scan: exit %d, %d alerts; want 2 and 10:\n%s", code, len(deliveries(t, filepath.Join(work, "a1"))), out)
	}
	code, out := scan(filepath.Join(work, "a2"), day1)
	if code != 0 || countLines(filepath.Join(work, "a2")) != 0 || !strings.Contains(out, "already raised") {
		t.Fatalf("second scan of the same file: exit %d, %d alerts; want 0, none, and 'already raised' in the summary:\n%s", code, countLines(filepath.Join(work, "a2")), out)
	}
	code, out = scan(filepath.Join(work, "a3"), day2)
	var a struct {
		Fields map[string]any `json:"fields"`
	}
	data, _ := os.ReadFile(filepath.Join(work, "a3"))
	json.Unmarshal(data, &a)
	if code != 2 || countLines(filepath.Join(work, "a3")) != 1 || fmt.Sprint(a.Fields["new_terms"]) != "[tool-10/1.0]" {
		t.Fatalf("scan of new logs: exit %d, alerts:\n%s\n%s", code, data, out)
	}
}

func diffKeys(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			out = append(out, x)
		}
	}
	return out
}

func clipList(s []string) []string {
	if len(s) > 5 {
		return append(s[:5:5], fmt.Sprintf("... %d more", len(s)-5))
	}
	return s
}
