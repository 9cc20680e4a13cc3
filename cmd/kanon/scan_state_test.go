package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolateState points every default state location into a temporary
// directory and returns it, so that a test sees whether anything is
// written there.
func isolateState(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_STATE_HOME", filepath.Join(home, "state"))
	t.Setenv("KANON_STATE_DIR", "")
	return home
}

// TestScanIsStatelessByDefault: the same log scanned twice gives the same
// alerts and exit 2 both times, and nothing is written to the default
// state directory.
func TestScanIsStatelessByDefault(t *testing.T) {
	home := isolateState(t)
	const log = "testdata/scan/hunt.log"
	out1, err1, code1 := runCLI(t, "", "scan", "-o", "jsonl", log)
	out2, err2, code2 := runCLI(t, "", "scan", "-o", "jsonl", log)
	if code1 != 2 || code2 != 2 || out1 != out2 || len(alertsOf(t, out1)) == 0 {
		t.Fatalf("two scans: exit %d and %d, same alerts %v\n%s\n%s", code1, code2, out1 == out2, err1, err2)
	}
	if strings.Contains(err2, "not raised again") || strings.Contains(err2, "state:") {
		t.Fatalf("a stateless scan speaks of state:\n%s", err2)
	}
	if _, err := os.Stat(filepath.Join(home, "state", "kanon")); !os.IsNotExist(err) {
		t.Fatalf("the default state directory was created: %v", err)
	}
	// The bundled examples are no special case.
	if _, _, code := runCLI(t, "", "scan", "-o", "jsonl"); code != 2 {
		t.Fatalf("bundled examples: exit %d", code)
	}
}

// TestScanStateDirIsIncremental: --state-dir remembers what was raised, so
// a second scan of the same log raises nothing and says why; another
// directory is another investigation; --resume uses the default directory.
func TestScanStateDirIsIncremental(t *testing.T) {
	home := isolateState(t)
	const log = "testdata/scan/hunt.log"
	dir := filepath.Join(t.TempDir(), "case-1")
	out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--state-dir", dir, log)
	n := len(alertsOf(t, out))
	if code != 2 || n == 0 || !strings.Contains(errOut, "state: "+dir) {
		t.Fatalf("first scan: exit %d, %d alerts\n%s", code, n, errOut)
	}
	out, errOut, code = runCLI(t, "", "scan", "-o", "jsonl", "--state-dir", dir, log)
	if code != 0 || strings.TrimSpace(out) != "" || !strings.Contains(errOut, "not raised again") {
		t.Fatalf("second scan: exit %d\n%s\n%s", code, out, errOut)
	}
	// Another investigation is not suppressed by the first.
	if out, _, code := runCLI(t, "", "scan", "-o", "jsonl", "--state-dir", filepath.Join(t.TempDir(), "case-2"), log); code != 2 || len(alertsOf(t, out)) != n {
		t.Fatalf("another state directory: exit %d", code)
	}
	// --resume: the default directory ($XDG_STATE_HOME/kanon).
	if _, _, code := runCLI(t, "", "scan", "-o", "jsonl", "--resume", log); code != 2 {
		t.Fatalf("--resume, first: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(home, "state", "kanon")); err != nil {
		t.Fatalf("--resume did not use the default directory: %v", err)
	}
	if _, _, code := runCLI(t, "", "scan", "-o", "jsonl", "--resume", log); code != 0 {
		t.Fatalf("--resume, second: exit %d", code)
	}
}

// TestScanNoStateIsDeprecated: --no-state is still accepted, says it is
// the default now, and contradicts --state-dir.
func TestScanNoStateIsDeprecated(t *testing.T) {
	isolateState(t)
	_, errOut, code := runCLI(t, "", "scan", "--no-state", "-o", "jsonl", "testdata/scan/hunt.log")
	if code != 2 || !strings.Contains(errOut, "deprecated") {
		t.Fatalf("--no-state: exit %d\n%s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "scan", "--no-state", "--state-dir", t.TempDir(), "testdata/scan/hunt.log")
	if code != 1 || !strings.Contains(errOut, "contradict") {
		t.Fatalf("--no-state with --state-dir: exit %d\n%s", code, errOut)
	}
}

// TestServeStaysStateful: serve keeps its state in the default directory
// unless told otherwise.
func TestServeStaysStateful(t *testing.T) {
	home := isolateState(t)
	c := newServeConfig()
	if c.NoState || c.StateDir != filepath.Join(home, "state", "kanon") {
		t.Fatalf("serve's state: no-state %v, dir %q", c.NoState, c.StateDir)
	}
}
