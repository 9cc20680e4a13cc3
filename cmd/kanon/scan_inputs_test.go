package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/examples"
)

func exampleLog(t *testing.T) []byte {
	t.Helper()
	b, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// scanIDs scans args (stateless) and returns the sorted alert ids,
// stderr and the exit code.
func scanIDs(t *testing.T, args ...string) ([]string, string, int) {
	t.Helper()
	out, errOut, code := runCLI(t, "", append([]string{"scan", "-o", "jsonl"}, args...)...)
	var ids []string
	for _, a := range alertsOf(t, out) {
		ids = append(ids, a["id"].(string))
	}
	slices.Sort(ids)
	return ids, errOut, code
}

// A stray "{" in the middle of a real log (a line a crash or an editor
// left) costs nothing: the same alerts as the clean log.
func TestScanStrayBraceLosesNothing(t *testing.T) {
	dir := t.TempDir()
	log := exampleLog(t)
	lines := bytes.SplitAfter(log, []byte("\n"))
	var broken []byte
	for i, l := range lines {
		if i == len(lines)/2 {
			broken = append(broken, "{\n"...)
		}
		broken = append(broken, l...)
	}
	clean, broke := filepath.Join(dir, "clean.log"), filepath.Join(dir, "broken.log")
	os.WriteFile(clean, log, 0o600)
	os.WriteFile(broke, broken, 0o600)
	want, _, _ := scanIDs(t, clean)
	got, errOut, code := scanIDs(t, broke)
	if len(want) == 0 || !slices.Equal(got, want) || code != 2 {
		t.Fatalf("with a stray '{': %d alerts (exit %d), clean: %d\n%s", len(got), code, len(want), errOut)
	}
	if !strings.Contains(errOut, "bad records: 1") {
		t.Fatalf("the stray line is not reported:\n%s", errOut)
	}
}

// A directory given through a symbolic link, and links to files and
// directories inside it (the /var/log/containers layout), are read; a
// link loop and hidden files are not, and the summary says so.
func TestScanFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	pods := filepath.Join(dir, "pods")
	os.MkdirAll(real, 0o700)
	os.MkdirAll(pods, 0o700)
	log := exampleLog(t)
	half := bytes.IndexByte(log[len(log)/2:], '\n') + len(log)/2 + 1
	os.WriteFile(filepath.Join(pods, "a.log"), log[:half], 0o600)
	os.WriteFile(filepath.Join(pods, "b.log"), log[half:], 0o600)
	os.WriteFile(filepath.Join(real, ".hidden.log"), log, 0o600)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(pods, "a.log"), filepath.Join(real, "a.log")))
	must(os.Symlink(pods, filepath.Join(real, "more")))
	must(os.Symlink(real, filepath.Join(real, "loop")))
	must(os.Symlink(filepath.Join(dir, "gone"), filepath.Join(real, "broken.log")))
	link := filepath.Join(dir, "link")
	must(os.Symlink(real, link))
	whole := filepath.Join(dir, "whole.log")
	os.WriteFile(whole, log, 0o600)
	want, _, _ := scanIDs(t, whole)
	// a.log is read twice (by its link and through "more"): its alerts
	// are the same ids, raised once.
	got, errOut, code := scanIDs(t, link)
	if len(want) == 0 || !slices.Equal(slices.Compact(got), want) || code != 2 {
		t.Fatalf("through links: %d alerts (exit %d), want %d\n%s", len(got), code, len(want), errOut)
	}
	for _, w := range []string{"scanned", "3 inputs", "not read: 3 paths", ".hidden.log: hidden", "loop: a directory already read", "broken.log: a broken symbolic link"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("summary lacks %q:\n%s", w, errOut)
		}
	}
}

// Exit status: 3 when no alert was raised but records could not be read;
// --exit-zero makes it 0; a missing input is an error (1) before any
// summary; standard input counts as an input.
func TestScanExitStatus(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.log")
	os.WriteFile(bad, []byte("not json\n{\"kind\":\"Event\",\"auditID\":\"x\",\"stage\":\"ResponseComplete\",\"verb\":\"get\",\"requestURI\":\"/api\",\"user\":{\"username\":\"alice\"},\"stageTimestamp\":\"2025-01-01T00:00:00Z\"}\n"), 0o600)
	if _, errOut, code := scanIDs(t, bad); code != 3 || !strings.Contains(errOut, "bad records: 1") {
		t.Fatalf("bad records, no alert: exit %d, want 3\n%s", code, errOut)
	}
	if _, _, code := scanIDs(t, "--exit-zero", bad); code != 0 {
		t.Fatalf("--exit-zero: exit %d", code)
	}
	if _, errOut, code := scanIDs(t, bad, filepath.Join(dir, "missing.log")); code != 1 || strings.Contains(errOut, "scanned") || !strings.Contains(errOut, "missing.log") {
		t.Fatalf("missing input: exit %d, want 1 before any summary\n%s", code, errOut)
	}
	_, errOut, _ := runCLI(t, string(exampleLog(t)), "scan", "-o", "jsonl", "-")
	if !strings.Contains(errOut, "from 1 input") {
		t.Fatalf("standard input is not counted:\n%s", errOut)
	}
}

// A UTF-8 byte order mark costs nothing; UTF-16 text is refused with a
// message that says what to do.
func TestScanEncodings(t *testing.T) {
	dir := t.TempDir()
	log := exampleLog(t)
	bom := filepath.Join(dir, "bom.log")
	os.WriteFile(bom, append([]byte{0xef, 0xbb, 0xbf}, log...), 0o600)
	plain := filepath.Join(dir, "plain.log")
	os.WriteFile(plain, log, 0o600)
	want, _, _ := scanIDs(t, plain)
	got, errOut, _ := scanIDs(t, bom)
	if !slices.Equal(got, want) || strings.Contains(errOut, "bad records") {
		t.Fatalf("with a BOM: %d alerts, want %d\n%s", len(got), len(want), errOut)
	}
	u16 := filepath.Join(dir, "u16.log")
	var b []byte
	b = append(b, 0xff, 0xfe)
	for _, c := range string(log[:200]) {
		b = append(b, byte(c), 0)
	}
	os.WriteFile(u16, b, 0o600)
	if _, errOut, code := scanIDs(t, u16); code != 1 || !strings.Contains(errOut, "UTF-16") || !strings.Contains(errOut, "convert it to UTF-8") {
		t.Fatalf("UTF-16: exit %d\n%s", code, errOut)
	}
}
