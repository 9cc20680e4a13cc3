package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesLintBuiltin(t *testing.T) {
	out, errOut, code := runCLI(t, "", "rules", "lint")
	if code != 0 {
		t.Fatalf("exit %d without --strict: %s", code, errOut)
	}
	for _, want := range []string{
		`builtin:elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml:21:51: kubernetes.audit.level is never "ResponseComplete": "ResponseComplete" is a stage, not a level`,
		"so Metadata-level audit logs never reach the rule",
		`builtin:elastic/kubernetes_anonymous_request_authorized.yaml:17:50: kubernetes.audit.objectRef.resource is never "healthz"`,
		"                                                   ^^^^^^^^^",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "warning(s)") {
		t.Errorf("stderr: %s", errOut)
	}
	_, _, code = runCLI(t, "", "rules", "lint", "--strict")
	if code != 2 {
		t.Errorf("exit %d with --strict and warnings, want 2", code)
	}
}

func TestRulesLintFilesJSON(t *testing.T) {
	dir := t.TempDir()
	bad := `id: bad-stage
name: Bad stage
type: query
severity: low
risk_score: 1
query: kubernetes.audit.stage:Metadata and kubernetes.audit.verbb:get
`
	good := `id: good
name: Good
type: query
severity: low
risk_score: 1
query: kubernetes.audit.stage:ResponseComplete
`
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	goodFile := filepath.Join(t.TempDir(), "good.yaml")
	if err := os.WriteFile(goodFile, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "", "rules", "lint", "-o", "json", "--strict", dir)
	if code != 2 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ws []struct {
		Rule, File, Code, Message string
		Line, Col                 int
	}
	if err := json.Unmarshal([]byte(out), &ws); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(ws) != 2 || ws[0].Col != 31 || ws[0].Code != "impossible-value" || ws[1].Code != "unknown-field" || ws[1].Col != 44 ||
		ws[0].Line != 6 || ws[0].Rule != "bad-stage" || !strings.HasSuffix(ws[0].File, "bad.yaml") {
		t.Fatalf("warnings %+v", ws)
	}
	out, _, code = runCLI(t, "", "rules", "lint", "-o", "json", "--strict", goodFile)
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("exit %d, out %s", code, out)
	}
	_, errOut, code = runCLI(t, "", "rules", "lint", filepath.Join(dir, "missing.yaml"))
	if code != 1 {
		t.Fatalf("exit %d for a missing file: %s", code, errOut)
	}
}
