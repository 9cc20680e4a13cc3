package engine_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"

	"github.com/kanon-dev/kanon/internal/rule"
)

// elasticAnchors returns ../shared/anchors/elastic-rules beside the
// repository root (the directory holding go.mod).
func elasticAnchors(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared", "anchors", "elastic-rules")
}

// elasticTOML is the part of an Elastic detection-rules TOML file a kanon
// rule takes.
type elasticTOML struct {
	Rule struct {
		RuleID      string   `toml:"rule_id"`
		Name        string   `toml:"name"`
		Description string   `toml:"description"`
		Type        string   `toml:"type"`
		Language    string   `toml:"language"`
		Query       string   `toml:"query"`
		Severity    string   `toml:"severity"`
		RiskScore   int      `toml:"risk_score"`
		Interval    string   `toml:"interval"`
		From        string   `toml:"from"`
		MaxSignals  int      `toml:"max_signals"`
		Tags        []string `toml:"tags"`
		Threat      []struct {
			Framework string `toml:"framework"`
			Tactic    struct {
				ID, Name, Reference string
			} `toml:"tactic"`
			Technique []struct {
				ID, Name, Reference string
			} `toml:"technique"`
		} `toml:"threat"`
	} `toml:"rule"`
}

// convertElastic turns an Elastic rule TOML into the text of a kanon rule
// file, parsed by rule.Parse like any user rule.
func convertElastic(t testing.TB, path string) ([]byte, string) {
	t.Helper()
	var doc elasticTOML
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r := doc.Rule
	type threat struct {
		Framework string              `yaml:"framework"`
		Tactic    map[string]string   `yaml:"tactic"`
		Technique []map[string]string `yaml:"technique,omitempty"`
	}
	out := map[string]any{
		"id":          "elastic-" + r.RuleID,
		"name":        r.Name,
		"description": strings.TrimSpace(r.Description),
		"type":        r.Type,
		"language":    r.Language,
		"query":       r.Query,
		"severity":    r.Severity,
		"risk_score":  r.RiskScore,
		"tags":        r.Tags,
		"source":      map[string]string{"vendor": "elastic", "rule_id": r.RuleID},
	}
	sched := map[string]any{}
	if r.Interval != "" {
		sched["interval"] = r.Interval
	}
	if r.From != "" {
		sched["from"] = r.From
	}
	if r.MaxSignals != 0 {
		sched["max_signals"] = r.MaxSignals
	}
	if len(sched) > 0 {
		out["schedule"] = sched
	}
	var ths []threat
	for _, th := range r.Threat {
		x := threat{Framework: th.Framework, Tactic: map[string]string{"id": th.Tactic.ID, "name": th.Tactic.Name, "reference": th.Tactic.Reference}}
		for _, tech := range th.Technique {
			x.Technique = append(x.Technique, map[string]string{"id": tech.ID, "name": tech.Name, "reference": tech.Reference})
		}
		ths = append(ths, x)
	}
	if len(ths) > 0 {
		out["threat"] = ths
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b, r.Type
}

// readLines returns the non-empty lines of a test log.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return out
}

// TestElasticESQLRules converts each ES|QL rule of Elastic's Kubernetes
// pack into a kanon rule and runs it through the engine on a log crafted to
// match it (testdata/esql/<rule>.match.jsonl: at least one alert) and on a
// near miss (<rule>.nomatch.jsonl: none).
func TestElasticESQLRules(t *testing.T) {
	dir := elasticAnchors(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Elastic rules in %s: the tests need ../shared next to the repository", dir)
	}
	n := 0
	for _, f := range files {
		text, typ := convertElastic(t, f)
		if typ != "esql" {
			continue
		}
		n++
		base := strings.TrimSuffix(filepath.Base(f), ".toml")
		t.Run(base, func(t *testing.T) {
			r, err := rule.Parse(base+".yaml", text)
			if err != nil {
				t.Fatalf("parse:\n%v\n%s", err, text)
			}
			c, err := rule.Compile(r)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			rs := []*rule.Compiled{c}
			match := runLog(t, rs, -1, readLines(t, filepath.Join("testdata", "esql", base+".match.jsonl")))
			if len(match.errs) > 0 {
				t.Errorf("rule errors: %v", match.errs)
			}
			if len(match.alerts) == 0 {
				t.Errorf("crafted log raised no alert (matched %d events)", match.stats.Rules[c.ID].Matched)
			}
			for _, a := range match.alerts {
				if len(a.Fields) == 0 {
					t.Errorf("alert %s has no fields", a.ID)
				}
			}
			miss := runLog(t, rs, -1, readLines(t, filepath.Join("testdata", "esql", base+".nomatch.jsonl")))
			if len(miss.alerts) != 0 {
				t.Errorf("near miss raised %d alerts: %v", len(miss.alerts), miss.alerts[0].Fields)
			}
			t.Logf("%d alert(s) on the crafted log; %d event(s) of the near miss passed the per-event part", len(match.alerts), miss.stats.Rules[c.ID].Matched)
		})
	}
	if n != 11 {
		t.Errorf("found %d ES|QL rules, want 11", n)
	}
}
