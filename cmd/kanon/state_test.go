package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ntRule is the new_terms rule the state tests scan with.
const ntRule = "elastic-k8s-anonymous-request-authorized-unusual-user-agent"

// scanState scans a generated log with ntRule and restartDedupRule into a
// new state directory, and returns the work directory, the rules directory
// and the log.
func scanState(t *testing.T) (work, rulesDir, log string) {
	t.Helper()
	work = t.TempDir()
	rulesDir = filepath.Join(work, "rules")
	os.Mkdir(rulesDir, 0o700)
	if err := os.WriteFile(filepath.Join(rulesDir, "dedup.yaml"), []byte(restartDedupRule), 0o600); err != nil {
		t.Fatal(err)
	}
	log = filepath.Join(work, "audit.log")
	genLog(t, log, time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC), 21, 0) // agents tool-0..2, 5 IPs
	_, stderr, code := runCLI(t, "", "scan", "--rules", rulesDir, "--rule", ntRule, "--rule", "restart-anon-by-ip",
		"--state-dir", filepath.Join(work, "state"), "-o", "jsonl", "--progress", "never", log)
	if code != 2 {
		t.Fatalf("scan exited %d:\n%s", code, stderr)
	}
	return work, rulesDir, log
}

// TestStateCommands scans logs into a state directory, then shows, exports
// and resets what was learned.
func TestStateCommands(t *testing.T) {
	work, rulesDir, log := scanState(t)
	dir := filepath.Join(work, "state")
	const nt = ntRule

	out, stderr, code := runCLI(t, "", "state", "show", "--state-dir", dir)
	if code != 0 {
		t.Fatalf("state show exited %d: %s", code, stderr)
	}
	for _, want := range []string{
		"rule " + nt + ": 3 terms, 0 groups, 3 alerts raised",
		"rule restart-anon-by-ip: 0 terms, 5 groups, 16 alerts raised",
		"tool-0/1.0  2025-06-02T08:00:00Z  2025-06-02T08:00:00Z  2025-06-09T08:00:00Z", // last seen is rewritten at most hourly
		"198.51.100.0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("state show lacks %q:\n%s", want, out)
		}
	}

	out, _, code = runCLI(t, "", "state", "export", "--state-dir", dir, "--rule", nt)
	if code != 0 {
		t.Fatalf("state export exited %d", code)
	}
	var kinds = map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e stateEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		if e.Rule != nt {
			t.Fatalf("export --rule %s gave an entry of rule %s", nt, e.Rule)
		}
		kinds[e.Kind]++
		if e.Kind == "terms" && e.Term[0] == "tool-1/1.0" && !e.FirstSeen.Equal(time.Date(2025, 6, 2, 8, 1, 20, 0, time.UTC) /* event 7 is authenticated */) {
			t.Fatalf("tool-1 first seen %v", e.FirstSeen)
		}
	}
	if kinds["terms"] != 3 || kinds["alerts"] != 3 || len(kinds) != 2 {
		t.Fatalf("exported kinds %v, want 3 terms and 3 alerts", kinds)
	}

	// Reset needs --yes; with it, one rule's state goes and the other's stays.
	_, stderr, code = runCLI(t, "", "state", "reset", "--state-dir", dir, "--rule", nt)
	if code != 1 || !strings.Contains(stderr, "would delete 6 entries of rule "+nt) {
		t.Fatalf("reset without --yes: exit %d, %s", code, stderr)
	}
	out, _, code = runCLI(t, "", "state", "reset", "--state-dir", dir, "--rule", nt, "--yes")
	if code != 0 || !strings.Contains(out, "deleted 6 entries") {
		t.Fatalf("reset --yes: exit %d, %s", code, out)
	}
	out, _, _ = runCLI(t, "", "state", "show", "--state-dir", dir)
	if strings.Contains(out, nt) || !strings.Contains(out, "restart-anon-by-ip") {
		t.Fatalf("after reset of one rule:\n%s", out)
	}
	// The forgotten agents alert again; the other rule's alerts do not.
	_, _, code = runCLI(t, "", "scan", "--rules", rulesDir, "--rule", nt, "--rule", "restart-anon-by-ip",
		"--state-dir", dir, "-o", "jsonl", "--progress", "never", log)
	if code != 2 {
		t.Fatalf("scan after reset exited %d, want 2 (alerts again)", code)
	}
	out, _, _ = runCLI(t, "", "state", "reset", "--state-dir", dir, "--yes")
	if !strings.Contains(out, "of every rule") {
		t.Fatalf("reset of everything: %s", out)
	}
	out, _, _ = runCLI(t, "", "state", "show", "--state-dir", dir)
	if !strings.Contains(out, "nothing learned yet") {
		t.Fatalf("after reset:\n%s", out)
	}
	if _, stderr, code := runCLI(t, "", "state", "show", "--state-dir", filepath.Join(work, "missing")); code != 1 || !strings.Contains(stderr, "no state store") {
		t.Fatalf("show of a missing directory: exit %d, %s", code, stderr)
	}
}

// TestStateKinds: --kind narrows show, export and reset to some kinds of
// state; a reset of one rule's terms leaves its alert ids and the other
// rule's state.
func TestStateKinds(t *testing.T) {
	work, _, _ := scanState(t)
	dir := filepath.Join(work, "state")
	out, _, code := runCLI(t, "", "state", "show", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "  groups  5 ") || !strings.Contains(out, "  alerts  19 ") {
		t.Fatalf("show lacks the per-kind summary (exit %d):\n%s", code, out)
	}
	out, _, _ = runCLI(t, "", "state", "export", "--state-dir", dir, "--kind", "groups")
	if n := strings.Count(out, "\n"); n != 5 || strings.Contains(out, `"terms"`) {
		t.Fatalf("export --kind groups gave %d lines:\n%s", n, out)
	}
	_, stderr, code := runCLI(t, "", "state", "reset", "--state-dir", dir, "--rule", ntRule, "--kind", "terms")
	if code != 1 || !strings.Contains(stderr, "would delete 3 entries of rule "+ntRule+" (terms)") {
		t.Fatalf("reset --kind terms without --yes: exit %d, %s", code, stderr)
	}
	out, _, code = runCLI(t, "", "state", "reset", "--state-dir", dir, "--rule", ntRule, "--kind", "terms", "--yes")
	if code != 0 || !strings.Contains(out, "deleted 3 entries of rule "+ntRule+" (terms): 3 terms") {
		t.Fatalf("reset --kind terms: exit %d, %s", code, out)
	}
	out, _, _ = runCLI(t, "", "state", "show", "--state-dir", dir)
	for _, want := range []string{
		"rule " + ntRule + ": 0 terms, 0 groups, 3 alerts raised",
		"rule restart-anon-by-ip: 0 terms, 5 groups, 16 alerts raised",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("after resetting the terms, show lacks %q:\n%s", want, out)
		}
	}
	if _, stderr, code := runCLI(t, "", "state", "show", "--state-dir", dir, "--kind", "term"); code != 1 || !strings.Contains(stderr, `unknown kind of state "term"`) {
		t.Fatalf("show --kind term: exit %d, %s", code, stderr)
	}
}
