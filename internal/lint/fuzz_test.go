package lint_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kanon-dev/kanon/internal/explain"
	"github.com/kanon-dev/kanon/internal/lint"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
)

// FuzzLint checks that linting and explaining any rule that loads never
// panics, and that every warning is positioned inside the rule file.
func FuzzLint(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, file := range []string{"elastic/kubernetes_anonymous_request_authorized.yaml", "elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml"} {
		data, err := rules.FS.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := rule.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		lines := 1
		for _, b := range data {
			if b == '\n' {
				lines++
			}
		}
		for _, w := range lint.Rule(r) {
			if w.Line < 1 || w.Line > lines || w.Col < 1 || w.File != "fuzz.yaml" || w.Message == "" {
				t.Fatalf("warning out of the file (%d lines): %s", lines, w)
			}
			_ = w.Pretty()
		}
		c := &rule.Compiled{Rule: r}
		x := explain.Explain(c, []*rule.Compiled{c})
		if len(x.Conditions) == 0 && (r.KQL != nil) {
			t.Fatalf("no conditions for %q", r.Query)
		}
	})
}
