package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state/bolt"
)

// bigState scans 3000 events with ntRule and restartDedupRule into a new
// state directory and returns it with the number of entries learned.
func bigState(t *testing.T) (dir string, entries int) {
	t.Helper()
	work := t.TempDir()
	rulesDir := filepath.Join(work, "rules")
	os.Mkdir(rulesDir, 0o700)
	if err := os.WriteFile(filepath.Join(rulesDir, "dedup.yaml"), []byte(restartDedupRule), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(work, "audit.log")
	genLog(t, log, time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC), 3000, 0)
	dir = filepath.Join(work, "state")
	_, stderr, code := runCLI(t, "", "scan", "--rules", rulesDir, "--rule", ntRule, "--rule", "restart-anon-by-ip",
		"--state-dir", dir, "-o", "json", "--progress", "never", log)
	if code != 2 {
		t.Fatalf("scan exited %d:\n%s", code, stderr)
	}
	return dir, countEntries(t, dir)
}

// countEntries returns the number of entries `kanon state export` lists.
func countEntries(t *testing.T, dir string) int {
	t.Helper()
	out, stderr, code := runCLI(t, "", "state", "export", "--state-dir", dir)
	if code != 0 {
		t.Fatalf("state export exited %d: %s", code, stderr)
	}
	return strings.Count(out, "\n")
}

// damageStore zeroes the first leaf page of raised-alert entries whose
// loss kanon notices (an unused page is not damage), and returns the
// damaged file.
func damageStore(t *testing.T, dir string) []byte {
	t.Helper()
	path := filepath.Join(dir, bolt.FileName)
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	for pg := 2; (pg+1)*ps <= len(clean); pg++ {
		p := clean[pg*ps : (pg+1)*ps]
		pos := 16 + int(p[20]) // the first key: element 0's position is relative to it
		if p[8] != 0x02 || p[10] < 10 || pos >= ps || p[pos] != 'a' {
			continue
		}
		b := append([]byte(nil), clean...)
		clear(b[pg*ps : (pg+1)*ps])
		os.WriteFile(path, b, 0o600)
		if _, stderr, code := runCLI(t, "", "state", "show", "--state-dir", dir); code == 1 {
			if !strings.Contains(stderr, "is damaged") || !strings.Contains(stderr, "kanon state repair --state-dir "+dir) {
				t.Fatalf("state show of a damaged store says:\n%s", stderr)
			}
			return b
		}
		os.WriteFile(path, clean, 0o600)
	}
	t.Fatal("no leaf page of alerts whose loss is noticed")
	return nil
}

// TestStateRepair: kanon state repair salvages most entries of a damaged
// store, keeps the damaged file, says what it kept and lost, and leaves a
// store that kanon opens.
func TestStateRepair(t *testing.T) {
	dir, before := bigState(t)
	damaged := damageStore(t, dir)
	out, stderr, code := runCLI(t, "", "state", "repair", "--state-dir", dir)
	if code != 0 {
		t.Fatalf("state repair exited %d: %s", code, stderr)
	}
	t.Logf("before: %d entries; repair says:\n%s", before, out)
	path := filepath.Join(dir, bolt.FileName)
	m := regexp.MustCompile(`kept a copy of the damaged file: (\S+)\n`).FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(m[1], path+".damaged-") {
		t.Fatalf("repair does not name the copy of the damaged file:\n%s", out)
	}
	if b, err := os.ReadFile(m[1]); err != nil || string(b) != string(damaged) {
		t.Fatalf("the copy %s is not the damaged file (%v)", m[1], err)
	}
	for _, want := range []string{"state store " + path + " was damaged: ", " terms, ", " alerts", "lost: ", " are missing"} {
		if !strings.Contains(out, want) {
			t.Errorf("repair output lacks %q", want)
		}
	}
	kept := regexp.MustCompile(`salvaged (\d+) entries`).FindStringSubmatch(out)
	if kept == nil {
		t.Fatalf("repair does not say how many entries it salvaged:\n%s", out)
	}
	n, _ := strconv.Atoi(kept[1])
	if after := countEntries(t, dir); after != n || n < before*9/10 || n >= before {
		t.Fatalf("repair salvaged %d, the store holds %d, of %d before; want most but not all", n, after, before)
	}
	out, _, code = runCLI(t, "", "state", "repair", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "is sound: nothing to repair") {
		t.Fatalf("second repair: exit %d:\n%s", code, out)
	}
}

// TestStateResetDamaged: kanon state reset --yes sets a damaged store
// aside and starts an empty one; without --yes, or in part, it refuses.
func TestStateResetDamaged(t *testing.T) {
	work, _, _ := scanState(t)
	dir := filepath.Join(work, "state")
	path := filepath.Join(dir, bolt.FileName)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)/2], 0o600)
	_, stderr, code := runCLI(t, "", "state", "reset", "--state-dir", dir)
	if code != 1 || !strings.Contains(stderr, "is damaged") || !strings.Contains(stderr, "kanon state reset --yes sets the damaged file aside") {
		t.Fatalf("reset without --yes: exit %d:\n%s", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "state", "reset", "--state-dir", dir, "--rule", ntRule, "--yes")
	if code != 1 || !strings.Contains(stderr, "cannot be reset in part") {
		t.Fatalf("reset of one rule: exit %d:\n%s", code, stderr)
	}
	out, stderr, code := runCLI(t, "", "state", "reset", "--state-dir", dir, "--yes")
	if code != 0 || !strings.Contains(out, "started an empty state store") {
		t.Fatalf("reset --yes: exit %d:\n%s%s", code, out, stderr)
	}
	m := regexp.MustCompile(`kept a copy of the damaged file: (\S+)\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("reset does not name the copy:\n%s", out)
	}
	if c, _ := os.ReadFile(m[1]); string(c) != string(b[:len(b)/2]) {
		t.Fatal("the copy is not the damaged file")
	}
	if out, _, _ := runCLI(t, "", "state", "show", "--state-dir", dir); !strings.Contains(out, "nothing learned yet") {
		t.Fatalf("after reset --yes:\n%s", out)
	}
}

// TestStateRepairLocked: repair says so, within its lock timeout, while
// another kanon holds the store.
func TestStateRepairLocked(t *testing.T) {
	work, _, _ := scanState(t)
	dir := filepath.Join(work, "state")
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, stderr, code := runCLI(t, "", "state", "repair", "--state-dir", dir)
	if code != 1 || !strings.Contains(stderr, "in use by another kanon process") || !strings.Contains(stderr, "stop it, then run kanon state repair again") {
		t.Fatalf("repair of a store in use: exit %d:\n%s", code, stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("repair gave up after %s", d)
	}
}
