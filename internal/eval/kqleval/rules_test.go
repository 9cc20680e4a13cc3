package kqleval

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/kanon-dev/kanon/internal/pos"
)

// elasticRuleQueries reads the kuery queries of the Elastic rules shared
// beside the repository (<repo>/../shared/anchors/elastic-rules).
func elasticRuleQueries(t *testing.T) map[string]string {
	dir := filepath.Join(repoRoot(t), "..", "shared", "anchors", "elastic-rules")
	files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	hist, _ := filepath.Glob(filepath.Join(dir, "history", "*.toml"))
	out := map[string]string{}
	for _, name := range append(files, hist...) {
		var rule struct {
			Rule struct {
				Language string `toml:"language"`
				Query    string `toml:"query"`
			} `toml:"rule"`
		}
		if _, err := toml.DecodeFile(name, &rule); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rule.Rule.Language == "kuery" {
			out[name] = rule.Rule.Query
		}
	}
	return out
}

func newRuleSource(name, query string) *pos.Source { return pos.NewSource(name, query) }

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
