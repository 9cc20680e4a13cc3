package rule_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/ruletest"
)

// readmeRule returns the example rule of the README's "Write a rule".
func readmeRule(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### Write a rule")
	if i < 0 {
		t.Fatal("README.md has no \"Write a rule\" section")
	}
	s = s[i:]
	start := strings.Index(s, "```yaml\n")
	if start < 0 {
		t.Fatal("no YAML example in \"Write a rule\"")
	}
	s = s[start+len("```yaml\n"):]
	end := strings.Index(s, "```")
	if end < 0 {
		t.Fatal("unclosed YAML example")
	}
	return s[:end]
}

// TestReadmeRule loads the README's example rule, checks that it fires per
// event and that its tests pass; and that with Elastic's type instead of
// its firing it gets Elastic's schedule, and refuses a schedule without.
func TestReadmeRule(t *testing.T) {
	text := readmeRule(t)
	r, err := rule.Parse("README.md", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if r.Firing != rule.FiringPerEvent || r.Language != rule.LangKuery || r.Type != "" || r.HasRuns() {
		t.Fatalf("README's rule: firing %q, language %q, type %q", r.Firing, r.Language, r.Type)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	results := ruletest.Run(context.Background(), []*rule.Compiled{c}, formats.Registry())
	if len(results) != 2 {
		t.Fatalf("%d tests, want 2", len(results))
	}
	for _, res := range results {
		if !res.Pass {
			t.Errorf("%s: %v", res.Test, res.Problems)
		}
	}

	elastic := strings.Replace(text, "firing: per_event ", "type: query       ", 1)
	r, err = rule.Parse("README.md", []byte(elastic))
	if err != nil {
		t.Fatal(err)
	}
	if r.Firing != rule.FiringScheduled || r.Schedule.Interval.D() != rule.DefaultInterval || r.Schedule.From != rule.DefaultFrom || r.Schedule.MaxSignals != rule.DefaultMaxSignals {
		t.Fatalf("with type: query: firing %q, schedule %+v", r.Firing, r.Schedule)
	}
	withSchedule := strings.Replace(text, "risk_score: 73\n", "risk_score: 73\nschedule: {interval: 5m, from: now-6m, max_signals: 100}\n", 1)
	if _, err := rule.Parse("README.md", []byte(withSchedule)); err == nil || !strings.Contains(err.Error(), "a per-event rule has no runs, so no schedule") {
		t.Fatalf("a per-event rule with a schedule: %v", err)
	}
}
