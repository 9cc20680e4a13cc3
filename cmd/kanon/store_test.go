package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// TestScanWithRedisStore scans into a Redis store (--store), checks that a
// second scan of the same log raises nothing again, and that kanon state
// reads the same store; the state directory stays empty.
func TestScanWithRedisStore(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "pw")
	work := t.TempDir()
	pwFile := filepath.Join(work, "pw")
	os.WriteFile(pwFile, []byte("pw\n"), 0o600)
	rulesDir := filepath.Join(work, "rules")
	os.Mkdir(rulesDir, 0o700)
	if err := os.WriteFile(filepath.Join(rulesDir, "dedup.yaml"), []byte(restartDedupRule), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(work, "audit.log")
	genLog(t, log, time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC), 21, 0)
	url := "redis://" + srv.Addr + "/0?prefix=scan-test&password_file=" + pwFile
	stateDir := filepath.Join(work, "state")
	scan := func() (string, string, int) {
		return runCLI(t, "", "scan", "--rules", rulesDir, "--rule", ntRule, "--rule", "restart-anon-by-ip",
			"--store", url, "--state-dir", stateDir, "-o", "json", "--progress", "never", log)
	}
	out, stderr, code := scan()
	if code != 2 {
		t.Fatalf("first scan exited %d:\n%s", code, stderr)
	}
	if n := len(alertsOf(t, out)); n == 0 {
		t.Fatal("first scan raised no alert")
	}
	if _, err := os.Stat(stateDir); err == nil {
		t.Errorf("a scan with --store created the state directory %s", stateDir)
	}
	out, stderr, code = scan()
	if code != 0 || len(alertsOf(t, out)) != 0 {
		t.Fatalf("second scan exited %d with alerts %s:\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "state: redis "+srv.Addr+" db 0 prefix scan-test") {
		t.Errorf("the summary does not name the Redis store:\n%s", stderr)
	}
	out, stderr, code = runCLI(t, "", "state", "show", "--store", url)
	if code != 0 {
		t.Fatalf("state show exited %d: %s", code, stderr)
	}
	for _, want := range []string{"rule " + ntRule + ": 3 terms, 0 groups, 3 alerts raised", "rule restart-anon-by-ip: 0 terms, 5 groups, 16 alerts raised"} {
		if !strings.Contains(out, want) {
			t.Errorf("state show lacks %q:\n%s", want, out)
		}
	}
	if _, stderr, code = runCLI(t, "", "state", "show", "--store", "redis://"+srv.Addr+"/0?prefix=scan-test"); code != 1 || !strings.Contains(stderr, "NOAUTH") && !strings.Contains(stderr, "auth") {
		t.Errorf("state show without the password exited %d: %s", code, stderr)
	}
}

// TestServeKillRestartRedis is TestServeKillRestart with the state in
// Redis: kanon serve (--store) is killed with SIGKILL with a batch in
// flight and restarted (the key store: of its configuration file); the
// alerts are those of kanon scan, each once, and the state is in Redis,
// not under the state directory.
func TestServeKillRestartRedis(t *testing.T) {
	srv := redistest.Start(t)
	bin := kanonBinary(t)
	e := newServeEnv(t)
	url := "redis://" + srv.Addr + "/0?prefix=serve-test"
	batches := tenLineBatches(replayLines(t))
	p := startServe(t, bin, true, append(e.tlsArgs(), "--store", url)...)
	addr := "https://" + p.waitAddr(t) + "/audit/lab"
	c := e.client("client")
	postBatches(t, c, addr, batches, 0, 8)
	acked := 8
	inflight := make(chan int, 1)
	go func() {
		code, _, _ := postBody(c, addr, batches[acked])
		inflight <- code
	}()
	time.Sleep(5 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	if code := <-inflight; code == 200 {
		acked++
	}
	if !strings.Contains(p.log(), "redis "+srv.Addr) {
		t.Errorf("serve does not log its Redis store:\n%s", p.log())
	}

	cfg := filepath.Join(e.dir, "kanon.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("store: %q\n", url)), 0o600)
	p = startServe(t, bin, true, append(e.tlsArgs(), "--config", cfg)...)
	addr = "https://" + p.waitAddr(t) + "/audit/lab"
	postBatches(t, c, addr, batches, acked, len(batches))
	p.stop(t)
	got, want := e.alertIDs(t), scanAlertIDs(t, bin, replayLines(t))
	if !slices.Equal(distinct(got), want) || len(got) != len(want) {
		t.Fatalf("serve on Redis: %d alerts (%d distinct), scan %d:\nserve %v\nscan  %v", len(got), len(distinct(got)), len(want), got, want)
	}
	if _, err := os.Stat(filepath.Join(e.state, "kanon.db")); err == nil {
		t.Error("serve with a Redis store wrote the state file")
	}
	out, stderr, code := runCLI(t, "", "state", "show", "--store", url)
	if code != 0 || !strings.Contains(out, "alerts raised") {
		t.Fatalf("state show of serve's Redis store exited %d:\n%s%s", code, out, stderr)
	}
}
