package rule

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func elasticRulesDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../shared/anchors/elastic-rules")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("reference rules missing (%v): the tests need ../shared next to the repository", err)
	}
	return dir
}

// TestElasticTOML loads every Elastic Kubernetes rule of the reference
// folder as it is: query, esql and new_terms rules load and compile; EQL
// rules are refused as an unsupported type, and do not stop the others.
func TestElasticTOML(t *testing.T) {
	dir := elasticRulesDir(t)
	rules, skipped, err := LoadFSSkipping(os.DirFS(dir), ".", "")
	if err == nil {
		err = CheckUnique(rules)
	}
	if err == nil || !errors.Is(err, ErrDuplicate) {
		// history/ holds older versions of the same rules: same rule_id.
		t.Fatalf("loading the folder with its history/: want a duplicate-id error, got %v", err)
	}
	sub := t.TempDir()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".toml") {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(sub, e.Name()), b, 0o600)
		}
	}
	rules, skipped, err = LoadFSSkipping(os.DirFS(sub), ".", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 40 || len(skipped) != 5 {
		t.Fatalf("%d rules loaded, %d skipped; want 40 and 5", len(rules), len(skipped))
	}
	for _, s := range skipped {
		if !errors.Is(s, ErrUnsupportedType) || !strings.Contains(s.Error(), "type eql") {
			t.Fatalf("skipped: %v", s)
		}
	}
	compiled, err := CompileAll(rules)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Compiled{}
	for _, c := range compiled {
		byID[c.ID] = c
	}
	anon := byID["63c057cc-339a-11ed-a261-0242ac120002"]
	if anon == nil || anon.Type != TypeNewTerms || anon.NewTerms.HistoryWindowStart != "now-7d" || len(anon.TermFields) != 1 {
		t.Fatalf("new_terms rule: %+v", anon)
	}
	if anon.Threat[0].Technique[0].Subtechnique[0].ID != "T1078.001" || anon.Severity != "medium" || !strings.Contains(anon.Notes, "event.ingested") {
		t.Fatalf("metadata: %+v", anon.Rule)
	}
	enum := byID["2dd0d4fd-0cc9-4d18-8b46-1a507e28bbc0"]
	if enum == nil || enum.Program == nil || enum.Interval().Minutes() != 5 {
		t.Fatalf("esql rule: %+v", enum)
	}
}

// TestElasticTOMLErrors: a broken query points into the TOML file.
func TestElasticTOMLErrors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(elasticRulesDir(t), "initial_access_anonymous_request_authorized.toml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), `kubernetes.audit.user.username:(`, `kubernetes.audit.user.username:((`, 1)
	_, err = ParseElastic("r.toml", []byte(broken))
	if err == nil || !strings.Contains(err.Error(), "r.toml:") || strings.Contains(err.Error(), "r.toml:1:") {
		t.Fatalf("want an error inside the query's lines, got %v", err)
	}
	if _, err := ParseElastic("x.toml", []byte("[rule\n")); !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "x.toml:2:1:") {
		t.Fatalf("syntax: %v", err)
	}
}
