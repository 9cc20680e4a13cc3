package main

import (
	"os"
	"path/filepath"
	"strings"
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
