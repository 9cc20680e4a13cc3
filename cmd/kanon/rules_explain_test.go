package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRulesExplainText(t *testing.T) {
	out, errOut, code := runCLI(t, "", "rules", "explain", "elastic-k8s-anonymous-request-authorized")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Kubernetes Anonymous Request Authorized",
		"Detection logic",
		`kubernetes.audit.objectRef.resource  eq     "healthz", "livez", "readyz"`,
		"kubernetes.audit.user.username", "system:anonymous",
		"Output fields (10)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRulesExplainUserRuleJSON(t *testing.T) {
	dir := t.TempDir()
	rule := `id: user-anon-secrets
name: Anonymous secret reads
type: esql
severity: high
risk_score: 73
query: |
  FROM logs-kubernetes.audit_logs-*
  | WHERE kubernetes.audit.user.username == "system:anonymous" AND kubernetes.audit.objectRef.resource == "secrets"
    AND NOT STARTS_WITH(kubernetes.audit.userAgent, "kube-probe/")
  | KEEP kubernetes.audit.requestURI
`
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "", "rules", "explain", "--rules", dir, "-o", "json", "user-anon-secrets")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var x struct {
		Exclusions []struct {
			Position string
			Matches  []struct{ Field, Kind string }
		}
		Indicators []struct {
			Field, Value string
			OtherRules   int `json:"other_rules"`
		}
		Outputs []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(x.Exclusions) != 1 || x.Exclusions[0].Matches[0].Kind != "starts_with" || !strings.HasSuffix(x.Exclusions[0].Position, "r.yaml:9:13") {
		t.Errorf("exclusions %+v", x.Exclusions)
	}
	// system:anonymous is used by the built-in anonymous rules too.
	if len(x.Indicators) != 2 || x.Indicators[0].Value != "system:anonymous" || x.Indicators[0].OtherRules < 2 || x.Indicators[1].OtherRules != 0 {
		t.Errorf("indicators %+v", x.Indicators)
	}
	if len(x.Outputs) != 11 || x.Outputs[0].Name != "kubernetes.audit.requestURI" || x.Outputs[1].Name != "username" {
		t.Errorf("outputs %+v", x.Outputs)
	}
}

func TestRulesExplainUnknown(t *testing.T) {
	_, errOut, code := runCLI(t, "", "rules", "explain", "no-such-rule")
	if code != 1 || !strings.Contains(errOut, "no rule with id no-such-rule") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
