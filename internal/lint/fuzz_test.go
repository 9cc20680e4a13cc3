package lint_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/explain"
	"github.com/kanon-dev/kanon/internal/lint"
	"github.com/kanon-dev/kanon/internal/rule"
)

// FuzzLint checks that linting and explaining any rule that loads never
// panics, and that every warning is positioned inside the rule file.
//
// Its seeds are small rules: Go's fuzzer spends up to a minute minimising
// each new input, and on rules of several KB it then makes almost no
// progress (the built-in pack and testdata/*.yaml are linted by the other
// tests). Run it with a short -fuzzminimizetime (scripts/fuzz.sh does).
func FuzzLint(f *testing.F) {
	for _, seed := range []string{
		"id: a\nname: a\ntype: query\nquery: 'kubernetes.audit.verbb:get and not kubernetes.audit.level:Nope'\nseverity: low\nrisk_score: 1\n",
		"id: b\nname: b\nlanguage: esql\nquery: |\n  from x | where kubernetes.audit.verb == \"get\" | eval y = kubernetes.audit.userAgent | keep y\nseverity: low\nrisk_score: 1\n",
		"id: c\nname: c\ntype: esql\nquery: 'from x | grok kubernetes.audit.requestURI \"%{WORD:w}\" | stats n = count() by w'\nseverity: low\nrisk_score: 1\n",
		"id: d\nname: d\ntype: new_terms\nquery: 'kubernetes.audit.user.username:*'\nnew_terms: {fields: [kubernetes.audit.userAgent], history_window_start: now-7d}\nseverity: low\nrisk_score: 1\n",
	} {
		f.Add([]byte(seed))
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
