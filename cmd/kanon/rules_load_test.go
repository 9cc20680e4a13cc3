package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuleErrorsOfEveryFile checks that the errors of every rule file are
// reported in one run: files in two --rules folders and a --rules file,
// with validation, compile and duplicate-id errors, and several errors in
// one file.
func TestRuleErrorsOfEveryFile(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const head = "name: X\nseverity: low\nrisk_score: 1\n"
	write(filepath.Join(a, "two.yaml"), "id: two\n"+head+"schedule: {interval: 5m}\nquery: 'kubernetes.audit.verb:(get or'\n")
	write(filepath.Join(a, "dup.yaml"), "id: Kubernetes.API.AnonymousAccess\n"+head+"query: 'kubernetes.audit.verb:get'\n")
	write(filepath.Join(b, "esql.yaml"), "id: esql\n"+head+"language: esql\nquery: 'from logs-* | where nosuch(kubernetes.audit.verb)'\n")
	file := filepath.Join(t.TempDir(), "one.yaml")
	write(file, "id: one\n"+head+"type: query\nfiring: per_event\nquery: 'kubernetes.audit.verb:get'\n")
	_, errOut, code := runCLI(t, "", "rules", "list", "--rules", a, "--rules", b, "--rules", file)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		filepath.Join(a, "two.yaml") + ":5:1: a per-event rule has no runs",
		filepath.Join(a, "two.yaml") + ":6:",
		filepath.Join(a, "dup.yaml") + `:1:1: rule id "Kubernetes.API.AnonymousAccess" is defined twice: in builtin:panther/kubernetes_anonymous_api_access.yaml:`,
		filepath.Join(b, "esql.yaml") + ":6:",
		"unknown function NOSUCH",
		file + ":6:1: firing per_event contradicts type query",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("no %q in\n%s", want, errOut)
		}
	}
}
