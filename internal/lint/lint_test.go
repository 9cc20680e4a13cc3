package lint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/lint"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
)

// want is an expected warning: its position, code and a part of its
// message.
type want struct {
	pos, code, text string
}

// parseWants reads the "# want: LINE:COL CODE: TEXT" lines of a test rule
// ("# want: none" expects no warning).
func parseWants(t *testing.T, data string) []want {
	t.Helper()
	var out []want
	none := false
	for _, line := range strings.Split(data, "\n") {
		rest, ok := strings.CutPrefix(line, "# want: ")
		if !ok {
			continue
		}
		if rest == "none" {
			none = true
			continue
		}
		head, text, ok := strings.Cut(rest, ": ")
		p, code, ok2 := strings.Cut(head, " ")
		if !ok || !ok2 {
			t.Fatalf("bad want line %q", line)
		}
		out = append(out, want{pos: p, code: code, text: text})
	}
	if len(out) == 0 && !none {
		t.Fatal("no # want lines (write # want: none)")
	}
	return out
}

// TestLintCases runs every testdata/*.yaml rule through the linter and
// compares its warnings with the rule's "# want:" lines, in order.
func TestLintCases(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no test rules")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wants := parseWants(t, string(data))
			r, err := rule.Parse(f, data)
			if err != nil {
				t.Fatalf("rule does not load: %v", err)
			}
			got := lint.Rule(r)
			for i := 0; i < len(got) || i < len(wants); i++ {
				switch {
				case i >= len(got):
					t.Errorf("missing warning %s %s: %s", wants[i].pos, wants[i].code, wants[i].text)
				case i >= len(wants):
					t.Errorf("unexpected warning %s", got[i])
				default:
					w, g := wants[i], got[i]
					if p := fmt.Sprintf("%d:%d", g.Line, g.Col); p != w.pos || g.Code != w.code || !strings.Contains(g.Message, w.text) {
						t.Errorf("warning %d:\n got  %s\n want %s %s: …%s…", i+1, g, w.pos, w.code, w.text)
					}
					if g.File != f || g.Rule != r.ID {
						t.Errorf("warning names %s / rule %s", g.File, g.Rule)
					}
				}
			}
		})
	}
}

func builtin(t *testing.T, file string) *rule.Rule {
	t.Helper()
	data, err := rules.FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r, err := rule.Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestLintSeed004 checks the required finding on seed 004: its level list
// names a stage, so Metadata-level audit logs never reach the rule.
func TestLintSeed004(t *testing.T) {
	file := "elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml"
	ws := lint.Rule(builtin(t, file))
	var found bool
	for _, w := range ws {
		if strings.Contains(w.Message, `"ResponseComplete" is a stage, not a level`) && strings.Contains(w.Message, "Metadata-level audit logs never reach the rule") {
			found = true
			if w.String() != file+":21:51: "+w.Message+" [impossible-value, rule elastic-k8s-anonymous-endpoint-permission-enumeration]" {
				t.Errorf("warning at %s", w)
			}
			if !strings.Contains(w.Pretty(), "\n      kubernetes.audit.level in (\"RequestResponse\", \"ResponseComplete\", \"Request\")\n                                                    ^^^^^^^^^^^^^^^^^^") {
				t.Errorf("pretty:\n%s", w.Pretty())
			}
		}
	}
	if !found || len(ws) != 2 {
		t.Fatalf("warnings on seed 004 (want the level and the empty username):\n%v", ws)
	}
}

// TestLintSeed000 checks the required finding on seed 000: objectRef.resource
// is never healthz, livez or readyz, so its exclusion never matches.
func TestLintSeed000(t *testing.T) {
	file := "elastic/kubernetes_anonymous_request_authorized.yaml"
	ws := lint.Rule(builtin(t, file))
	var got []string
	for _, w := range ws {
		got = append(got, fmt.Sprintf("%d:%d %s", w.Line, w.Col, w.Code))
		if !strings.Contains(w.Message, "objectRef.resource is never") || !strings.Contains(w.Message, "no objectRef") {
			t.Errorf("message %q", w.Message)
		}
	}
	if s := strings.Join(got, ", "); s != "17:50 never-matching-exclusion, 17:63 never-matching-exclusion, 17:74 never-matching-exclusion" {
		t.Fatalf("warnings %s", s)
	}
	for i, name := range []string{"healthz", "livez", "readyz"} {
		if !strings.Contains(ws[i].Message, `"`+name+`"`) {
			t.Errorf("warning %d does not name %s: %s", i, name, ws[i].Message)
		}
	}
}

// TestLintSorted checks that Rules sorts by file and position.
func TestLintSorted(t *testing.T) {
	a := builtin(t, "elastic/kubernetes_anonymous_request_authorized.yaml")
	b := builtin(t, "elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml")
	ws := lint.Rules([]*rule.Rule{a, b})
	if len(ws) != 5 || ws[0].Rule != b.ID || ws[4].Rule != a.ID || ws[0].Line != 19 {
		t.Fatalf("order: %v", ws)
	}
}

// TestLintCompiled checks that linting a compiled rule (the lineage of its
// program) and a parsed one (the compiler's analysis) agree.
func TestLintCompiled(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatal("no test rules")
	}
	var parsed []*rule.Rule
	var compiled []*rule.Compiled
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rule.Parse(f, data)
		if err != nil {
			t.Fatal(err)
		}
		c, err := rule.Compile(r)
		if err != nil {
			t.Fatalf("%s does not compile: %v", f, err)
		}
		parsed, compiled = append(parsed, r), append(compiled, c)
	}
	a, b := lint.Rules(parsed), lint.CompiledRules(compiled)
	if fmt.Sprint(a) != fmt.Sprint(b) || len(a) == 0 {
		t.Fatalf("parsed:\n%v\ncompiled:\n%v", a, b)
	}
}

// TestLintUncompilable checks that a rule whose query does not compile is
// still linted, with the columns of the part that compiled.
func TestLintUncompilable(t *testing.T) {
	r, err := rule.Parse("bad.yaml", []byte(`id: bad
name: Bad
type: esql
severity: low
risk_score: 1
query: |
  FROM logs-kubernetes.audit_logs-*
  | EVAL lvl = kubernetes.audit.level, n = NO_SUCH_FUNCTION(kubernetes.audit.verb)
  | WHERE lvl == "Panic" AND kubernetes.audit.nosuch == 1 AND n > 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rule.Compile(r); err == nil {
		t.Fatal("the rule compiles")
	}
	var got []string
	for _, w := range lint.Rule(r) {
		got = append(got, fmt.Sprintf("%d:%d %s", w.Line, w.Col, w.Code))
	}
	if s := strings.Join(got, ", "); s != "9:18 impossible-value, 9:30 unknown-field" {
		t.Fatalf("warnings %s", s)
	}
}
