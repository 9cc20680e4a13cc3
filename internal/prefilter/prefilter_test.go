package prefilter_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/prefilter"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
)

func compile(t testing.TB, yamls ...string) []*rule.Compiled {
	t.Helper()
	var out []*rule.Compiled
	for i, y := range yamls {
		r, err := rule.Parse("r.yaml", []byte(y))
		if err != nil {
			t.Fatalf("rule %d: %v", i, err)
		}
		c, err := rule.Compile(r)
		if err != nil {
			t.Fatalf("rule %d: %v", i, err)
		}
		out = append(out, c)
	}
	return out
}

func kqlRule(id, q string) string {
	return "id: " + id + "\nname: x\nlanguage: kuery\nquery: '" + strings.ReplaceAll(q, "'", "''") + "'\nseverity: low\nrisk_score: 1\n"
}

func esqlRule(id, q string) string {
	return "id: " + id + "\nname: x\nlanguage: esql\nquery: |\n  " + strings.ReplaceAll(q, "\n", "\n  ") + "\nseverity: low\nrisk_score: 1\n"
}

// The projection of each rule onto the fields it is made on, in negation
// normal form, with what cannot be told on them replaced by true; a rule
// that does not test the candidate fields leaves nothing to filter on.
func TestProjections(t *testing.T) {
	f := func(yaml, want string) {
		t.Helper()
		p := prefilter.New(compile(t, yaml))
		got := "none"
		if p != nil {
			line := strings.SplitN(p.String(), "\n  ", 2)[1]
			got = line[strings.Index(line, ": ")+2:]
		}
		if got != want {
			t.Errorf("%s\n got %s\nwant %s", yaml, got, want)
		}
	}
	f(kqlRule("a", `kubernetes.audit.user.username:"system:anonymous" and kubernetes.audit.verb:get`),
		`kubernetes.audit.user.username:"system:anonymous"`)
	// NOT pushed down: not (a and b) is not a or not b.
	f(kqlRule("a", `not (kubernetes.audit.user.username:alice and kubernetes.audit.verb:get)`), `not kubernetes.audit.user.username:alice or not kubernetes.audit.verb:get`)
	f(kqlRule("a", `not (kubernetes.audit.user.username:alice and kubernetes.audit.requestURI:/x)`), `none`)
	f(kqlRule("a", `not (kubernetes.audit.user.username:alice or kubernetes.audit.verb:get)`), `not kubernetes.audit.user.username:alice`)
	// A missing field is a predicate on the field.
	f(kqlRule("a", `not kubernetes.audit.user.username:* and kubernetes.audit.verb:get`), `not kubernetes.audit.user.username:*`)
	// An or with a branch on other fields only: a second field is tried.
	f(kqlRule("a", `kubernetes.audit.user.username:alice or kubernetes.audit.verb:get`), `kubernetes.audit.user.username:alice or kubernetes.audit.verb:get`)
	f(kqlRule("a", `kubernetes.audit.user.username:alice or kubernetes.audit.requestURI:/x`), `none`)
	// ES|QL: the leading WHEREs only; functions are unknown.
	f(esqlRule("e", "from logs\n| where kubernetes.audit.user.username == \"system:anonymous\" and to_lower(kubernetes.audit.verb) == \"get\"\n| eval x = 1\n| where kubernetes.audit.user.username != \"x\""),
		`FROM logs | WHERE kubernetes.audit.user.username == "system:anonymous"`)
	f(esqlRule("e", "from logs\n| where not (kubernetes.audit.user.username is not null and kubernetes.audit.requestURI == \"/x\")"),
		`none`)
	f(esqlRule("e", "from logs\n| where not (kubernetes.audit.user.username is not null or kubernetes.audit.verb == \"get\")"),
		`FROM logs | WHERE NOT kubernetes.audit.user.username IS NOT NULL`)
	f(esqlRule("e", "from logs\n| where KQL(\"\"\"kubernetes.audit.user.username:x and not kubernetes.audit.verb:get\"\"\")"),
		`FROM logs | WHERE KQL("kubernetes.audit.user.username:x")`)
	f(strings.Replace(esqlRule("e", "from logs\n| stats n = count()"), "language: esql", "type: esql", 1), `none`)
}

// Every built-in rule is made on the username, so the pack filters.
func TestBuiltinPackFilters(t *testing.T) {
	rs, err := rule.Load(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	p := prefilter.New(rs)
	if p == nil || len(p.Names) != 1 || p.Names[0] != "kubernetes.audit.user.username" {
		t.Fatalf("prefilter of the built-in pack: %v", p)
	}
}

// readAll decodes data in full (every field) and returns the events.
func readAll(t testing.TB, data []byte, fields event.FieldSet) []*event.Event {
	rd, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	var out []*event.Event
	rd.ReadStream(context.Background(), "in", bytes.NewReader(data), func(e *event.Event) error {
		out = append(out, e.Clone())
		return nil
	})
	return out
}

// elasticRules are the built-in pack and Elastic's Kubernetes rules of the
// reference material.
func elasticRules(t testing.TB) []*rule.Compiled {
	t.Helper()
	rs, err := rule.LoadFS(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "..", "shared", "anchors", "elastic-rules")
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Elastic's rules are missing from %s: %v", dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rule.ParseElastic(f, data)
		if err != nil {
			continue // a type kanon does not run
		}
		rs = append(rs, r)
	}
	var out []*rule.Compiled
	for _, r := range rs {
		if c, err := rule.Compile(r); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// FuzzPrefilterIsSound: for any event and any rule — the built-in pack and
// Elastic's Kubernetes rules — a rule that matches the event makes the
// prefilter pass it, whether the event was read with the rule's fields or
// with the prefilter's alone (the prefilter reads nothing else).
func FuzzPrefilterIsSound(f *testing.F) {
	log, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(log), []byte("\n"))[:60] {
		f.Add(l)
	}
	f.Add([]byte(`{"kind":"Event","auditID":"x","stage":"ResponseComplete","verb":"get","user":{},"annotations":{"authorization.k8s.io/decision":"allow"},"stageTimestamp":"2025-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"kind":"Event","auditID":"y","stage":"ResponseComplete","verb":"get","user":{"username":""},"level":"Request","stageTimestamp":"2025-01-01T00:00:00Z"}`))
	all := elasticRules(f)
	for _, r := range all {
		p := prefilter.New([]*rule.Compiled{r})
		if p == nil {
			continue
		}
		f.Logf("%s", p)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		for _, r := range all {
			p := prefilter.New([]*rule.Compiled{r})
			if p == nil {
				continue
			}
			light := p.Fields
			lights := readAll(t, rec, light)
			fulls := readAll(t, rec, r.Fields)
			chk := p.NewChecker()
			for i, e := range fulls {
				if !matches(r, e) {
					continue
				}
				if !chk.Candidate(e) || i < len(lights) && len(lights) == len(fulls) && !chk.Candidate(lights[i]) {
					t.Fatalf("rule %s matches %q but the prefilter (%s) rules it out", r.ID, rec, p)
				}
			}
		}
	})
}

// matches reports whether r's query (its per-event part) matches e.
func matches(r *rule.Compiled, e *event.Event) bool {
	if r.Matcher != nil {
		return r.Matcher.Match(e)
	}
	ev := r.Program.NewEvaluator(esqlEnv(e))
	rows, err := ev.Eval(e)
	return err == nil && len(rows) > 0
}

func esqlEnv(e *event.Event) esqleval.Env { return esqleval.Env{Now: e.Time()} }
