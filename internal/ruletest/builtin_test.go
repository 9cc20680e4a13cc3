package ruletest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/ruletest"
	"github.com/kanon-dev/kanon/rules"
)

// TestBuiltinPack runs the tests embedded in every built-in rule.
func TestBuiltinPack(t *testing.T) {
	compiled, err := rule.Load(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(compiled) == 0 {
		t.Fatal("no built-in rules")
	}
	results := ruletest.Run(context.Background(), compiled, formats.Registry())
	var buf bytes.Buffer
	ruletest.WritePretty(&buf, results, true)
	p, f := ruletest.Summary(results)
	if f > 0 || p == 0 {
		t.Fatalf("built-in rule tests:\n%s", buf.String())
	}
	for _, r := range compiled {
		if len(r.Tests) == 0 {
			t.Errorf("built-in rule %s has no tests", r.ID)
		}
	}
}

// TestFailureIsReported checks that a wrong expectation fails with a
// readable difference (the test runner can fail).
func TestFailureIsReported(t *testing.T) {
	r, err := rule.Parse("wrong.yaml", []byte(`id: wrong
name: Wrong
type: query
query: kubernetes.audit.verb:get
severity: low
risk_score: 21
tests:
  - name: expects nothing but gets an alert
    expect: no_alert
    events:
      - {"kind":"Event","auditID":"x","stage":"ResponseComplete","verb":"get","stageTimestamp":"2025-01-01T00:00:00Z"}
  - name: wrong field value
    expect: alert
    fields: {verb: list}
    events:
      - {"kind":"Event","auditID":"y","stage":"ResponseComplete","verb":"get","stageTimestamp":"2025-01-01T00:00:00Z"}
`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	results := ruletest.Run(context.Background(), []*rule.Compiled{c}, formats.Registry())
	var buf bytes.Buffer
	ruletest.WritePretty(&buf, results, false)
	out := buf.String()
	for _, want := range []string{"FAIL  expects nothing but gets an alert", "expected no alert, got 1", `field verb: got "get", want "list"`, "0 passed, 2 failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
