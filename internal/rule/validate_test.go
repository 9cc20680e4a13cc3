package rule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kanon-dev/kanon/internal/pos"
)

// ruleWith is a rule file with head (type, language, firing, schedule ...)
// after its identity and query q.
func ruleWith(head, q string) string {
	return "id: r\nname: R\nseverity: low\nrisk_score: 1\n" + head + "query: |\n" + q
}

const (
	kqlQuery  = "  kubernetes.audit.user.username:\"system:anonymous\"\n"
	esqlQuery = "  from logs-*\n  | where kubernetes.audit.user.username == \"system:anonymous\"\n"
	statsTail = "  | stats n = count() by kubernetes.audit.userAgent\n"
	newTerms  = "new_terms: {fields: [kubernetes.audit.userAgent], history_window_start: now-7d}\n"
)

// TestKinds checks the language and firing a rule gets from its keys:
// Elastic's type declares both, and Elastic's schedule defaults are filled
// only for rules with runs.
func TestKinds(t *testing.T) {
	elasticDefaults := Schedule{Interval: Duration(DefaultInterval), From: DefaultFrom, MaxSignals: DefaultMaxSignals}
	f := func(head, q, lang, firing string, sched Schedule) {
		t.Helper()
		r, err := Parse("r.yaml", []byte(ruleWith(head, q)))
		if err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		if r.Language != lang || r.Firing != firing || r.Schedule != sched {
			t.Fatalf("%q: language %q, firing %q, schedule %+v; want %q, %q, %+v", head, r.Language, r.Firing, r.Schedule, lang, firing, sched)
		}
		if r.HasRuns() != (firing != FiringPerEvent) {
			t.Fatalf("%q: HasRuns = %v", head, r.HasRuns())
		}
		c, err := Compile(r)
		if err != nil {
			t.Fatalf("%q: %v", head, err)
		}
		if (c.Matcher != nil) != (lang == LangKuery) || (c.Program != nil) != (lang == LangESQL) {
			t.Fatalf("%q: compiled matcher %v, program %v", head, c.Matcher != nil, c.Program != nil)
		}
	}
	// Elastic's types.
	f("type: query\n", kqlQuery, LangKuery, FiringScheduled, elasticDefaults)
	f("type: esql\n", esqlQuery+statsTail, LangESQL, FiringScheduled, elasticDefaults)
	f("type: new_terms\n"+newTerms, kqlQuery, LangKuery, FiringNewTerms, elasticDefaults)
	f("type: query\nfiring: scheduled\nlanguage: kuery\n", kqlQuery, LangKuery, FiringScheduled, elasticDefaults)
	f("type: query\nschedule: {interval: 10m, from: now-11m, max_signals: 5}\n", kqlQuery, LangKuery, FiringScheduled,
		Schedule{Interval: Duration(10 * 60e9), From: "now-11m", MaxSignals: 5})
	// Neither type nor firing: per event, no schedule.
	f("", kqlQuery, LangKuery, FiringPerEvent, Schedule{})
	f("language: esql\n", esqlQuery, LangESQL, FiringPerEvent, Schedule{})
	f("language: esql\nfiring: per_event\n", esqlQuery+"  | eval x = 1\n  | keep x\n", LangESQL, FiringPerEvent, Schedule{})
	// A firing without Elastic's type.
	f("language: esql\nfiring: scheduled\n", esqlQuery+statsTail, LangESQL, FiringScheduled, elasticDefaults)
	f("firing: new_terms\n"+newTerms, kqlQuery, LangKuery, FiringNewTerms, elasticDefaults)
}

// TestKindErrors checks that each kind of firing is validated on its own,
// with the error at its place in the file.
func TestKindErrors(t *testing.T) {
	f := func(name, text, want string) {
		t.Helper()
		_, err := Parse("r.yaml", []byte(text))
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v is not ErrInvalid", name, err)
		}
		if err.Error() != want {
			t.Fatalf("%s: error\n%s\nwant\n%s", name, err, want)
		}
	}
	f("schedule on a per-event rule", ruleWith("schedule: {interval: 5m}\n", kqlQuery),
		"r.yaml:5:1: a per-event rule has no runs, so no schedule: schedule (interval, from, max_signals) is for firing: scheduled or new_terms, or Elastic's type")
	f("type contradicts firing", ruleWith("type: query\nfiring: per_event\n", kqlQuery),
		"r.yaml:6:1: firing per_event contradicts type query: Elastic's query rules fire scheduled (leave type out for a per_event rule)")
	f("new_terms type, scheduled firing", ruleWith("type: new_terms\nfiring: scheduled\n"+newTerms, kqlQuery),
		"r.yaml:6:1: firing scheduled contradicts type new_terms: Elastic's new_terms rules fire new_terms (leave type out for a scheduled rule)")
	f("type contradicts language", ruleWith("type: esql\nlanguage: kuery\n", kqlQuery),
		`r.yaml:6:1: an esql rule takes language esql, not "kuery"`)
	f("unknown firing", ruleWith("firing: sometimes\n", kqlQuery),
		`r.yaml:5:1: unknown firing "sometimes" (per_event, scheduled, new_terms)`)
	f("unknown language", ruleWith("language: lucene\n", kqlQuery),
		`r.yaml:5:1: unknown language "lucene" (kuery, esql)`)
	f("new_terms in ES|QL", ruleWith("firing: new_terms\nlanguage: esql\n"+newTerms, esqlQuery),
		`r.yaml:6:1: a new_terms rule takes language kuery, not "esql"`)
	f("new_terms without its fields", ruleWith("firing: new_terms\n", kqlQuery),
		"r.yaml:1:1: a new_terms rule needs new_terms.fields")
	f("new_terms block on a per-event rule", ruleWith(newTerms, kqlQuery),
		"r.yaml:5:1: new_terms is only for rules with firing new_terms (Elastic's type new_terms)")
	f("new_terms block on a scheduled rule", ruleWith("type: query\n"+newTerms, kqlQuery),
		"r.yaml:6:1: new_terms is only for rules with firing new_terms (Elastic's type new_terms)")
	// The ES|QL command that needs a run is pointed at, in the file.
	f("per-event STATS", ruleWith("language: esql\n", esqlQuery+statsTail),
		"r.yaml:9:5: query: STATS aggregates the rows of a run, and a per-event rule has no runs: it needs firing: scheduled (Elastic's runs)")
	f("per-event LIMIT", ruleWith("language: esql\nfiring: per_event\n", esqlQuery+"  | limit 10\n"),
		"r.yaml:10:5: query: LIMIT bounds the rows of a run, and a per-event rule has no runs: it needs firing: scheduled (Elastic's runs)")
	f("per-event SORT", ruleWith("language: esql\n", esqlQuery+"  | sort kubernetes.audit.verb\n"),
		"r.yaml:9:5: query: SORT orders the rows of a run, and a per-event rule has no runs: it needs firing: scheduled (Elastic's runs)")
}

// errorLines returns the messages of a *pos.ErrorList, one per error.
func errorLines(t *testing.T, err error) []string {
	t.Helper()
	var l *pos.ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("%v (%T) is not a *pos.ErrorList", err, err)
	}
	var out []string
	for _, e := range l.Errs {
		out = append(out, e.Error())
	}
	return out
}

// checkLines checks that got has one line per want, each starting with it.
func checkLines(t *testing.T, got, want []string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Fatalf("errors:\n%s\nwant (prefixes):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// manyErrors has independent errors in every section: decoding (an unknown
// key, values of the wrong type), identity, the query, the schedule of a
// per-event rule, a title, the dedup key and two tests.
const manyErrors = `id: bad id
name: Many errors
risk: 3
severity: urgent
risk_score: high
query: 'kubernetes.audit.verb:(get or'
schedule: {interval: 5m}
title: 'from {{ kubernetes.audit.sourceIPs[x] }}'
dedup: {key: "{{", period: 1h}
tests:
  - name: t
    expect: maybe
    events: [{}]
  - name: u
    expect: alert
    alerts: many
    events: [{}]
  - name: v
    expect: alert
`

// TestParseReportsAllErrors checks that one run reports every error of a
// rule file, each at its position, sorted.
func TestParseReportsAllErrors(t *testing.T) {
	_, err := Parse("r.yaml", []byte(manyErrors))
	if err == nil {
		t.Fatal("no error")
	}
	checkLines(t, errorLines(t, err), []string{
		`r.yaml:1:1: rule id "bad id" may hold only letters`,
		`r.yaml:3:1: unknown key "risk"`,
		`r.yaml:4:1: severity "urgent" is not one of`,
		"r.yaml:5:13: cannot unmarshal !!str `high` into int",
		`r.yaml:6:`, // the KQL error, inside the query
		`r.yaml:7:1: a per-event rule has no runs, so no schedule`,
		`r.yaml:8:1: title: bad index in template placeholder`,
		`r.yaml:9:1: dedup.key: unclosed {{`,
		`r.yaml:11:5: test 1: expect must be alert or no_alert, not "maybe"`,
		"r.yaml:16:13: cannot unmarshal !!str `many` into int",
		`r.yaml:18:5: test 3: test has no events`,
	})
	if !errors.Is(err, ErrUnknown) || !errors.Is(err, ErrType) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("categories missing from %v", err)
	}
}

// TestParseSkipsFailedKeys checks that a key whose value cannot be decoded
// is reported once: its zero value raises no second error.
func TestParseSkipsFailedKeys(t *testing.T) {
	text := "id: r\nname: {a: 1}\nseverity: [low]\nrisk_score: 1\nquery: [a]\ntests:\n  - name: t\n    expect: alert\n    alerts: x\n"
	_, err := Parse("r.yaml", []byte(text))
	checkLines(t, errorLines(t, err), []string{
		`r.yaml:2:7: expected a string, got a mapping`,
		`r.yaml:3:11: expected a string, got a list`,
		`r.yaml:5:8: expected a string, got a list`,
		"r.yaml:9:13: cannot unmarshal !!str `x` into int",
	})
}

// TestLoadReportsEveryFile checks that loading a folder reports the errors
// of every bad file (validation, decoding, compilation, a duplicate id)
// together, and that LoadFS returns the rules that loaded with them.
func TestLoadReportsEveryFile(t *testing.T) {
	fsys := fstest.MapFS{
		"a.yaml":    {Data: []byte(ruleWith("schedule: {interval: 5m}\n", kqlQuery))},
		"b.yaml":    {Data: []byte(strings.Replace(ruleWith("", kqlQuery), "id: r", "id: b\nrisk: 2", 1))},
		"c.yaml":    {Data: []byte(strings.Replace(ruleWith("language: esql\n", "  from logs-*\n  | where nosuch(kubernetes.audit.verb) == \"get\"\n"), "id: r", "id: c", 1))},
		"d.yaml":    {Data: []byte(strings.Replace(ruleWith("", kqlQuery), "id: r", "id: good", 1))},
		"e.yaml":    {Data: []byte(strings.Replace(ruleWith("", kqlQuery), "id: r", "id: good", 1))},
		"f.yaml":    {Data: []byte("id: [x\n")},
		"ok/g.yaml": {Data: []byte(strings.Replace(ruleWith("type: esql\n", esqlQuery+statsTail), "id: r", "id: g", 1))},
	}
	rules, err := LoadFS(fsys, ".")
	if err == nil {
		t.Fatal("no error")
	}
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"c", "good", "good", "g"}) {
		t.Fatalf("rules loaded with the error: %v", ids)
	}
	_, err = Load(fsys, ".")
	if err == nil {
		t.Fatal("no error")
	}
	checkLines(t, errorLines(t, err), []string{
		`a.yaml:5:1: a per-event rule has no runs`,
		`b.yaml:2:1: unknown key "risk"`,
		`c.yaml:8:11: unknown function NOSUCH`,
		`e.yaml:1:1: rule id "good" is defined twice: in d.yaml:1:1 and here`,
		`f.yaml:1:1: cannot parse rule file`,
	})
	if !errors.Is(err, ErrDuplicate) || !errors.Is(err, ErrSyntax) {
		t.Fatalf("categories missing from %v", err)
	}
}

// TestElasticTOMLReportsAllErrors: the errors of an Elastic rule file are
// reported together, at their keys.
func TestElasticTOMLReportsAllErrors(t *testing.T) {
	toml := `[metadata]
creation_date = "2024/01/01"

[rule]
name = "x"
rule_id = "x"
type = "query"
language = "kuery"
description = "d"
interval = "5x"
severity = "urgent"
risk_score = 210
query = '''
kubernetes.audit.verb:(get or
'''
`
	r, err := ParseElastic("r.toml", []byte(toml))
	if err == nil {
		t.Fatalf("no error: %+v", r)
	}
	checkLines(t, errorLines(t, err), []string{
		`r.toml:10:1: interval: invalid duration "5x"`,
		`r.toml:11:1: severity "urgent" is not one of`,
		`r.toml:12:1: risk_score 210 is outside 0..100`,
		`r.toml:14:`,
	})
}

// TestElasticTOMLFiring: an imported Elastic rule has Elastic's semantics.
func TestElasticTOMLFiring(t *testing.T) {
	toml := "[rule]\nname = \"x\"\nrule_id = \"x\"\ntype = \"%s\"\nseverity = \"low\"\nrisk_score = 1\nquery = '''\n%s\n'''\n%s"
	f := func(typ, q, extra, lang, firing string) {
		t.Helper()
		r, err := ParseElastic("r.toml", []byte(fmt.Sprintf(toml, typ, q, extra)))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if r.Type != typ || r.Language != lang || r.Firing != firing || !r.HasRuns() || r.Schedule.MaxSignals != DefaultMaxSignals {
			t.Fatalf("%s: type %q language %q firing %q schedule %+v", typ, r.Type, r.Language, r.Firing, r.Schedule)
		}
	}
	f("query", "a:b", "", LangKuery, FiringScheduled)
	f("esql", "from logs-* | stats n = count()", "", LangESQL, FiringScheduled)
	f("new_terms", "a:b", "[rule.new_terms]\nfield = \"new_terms_fields\"\nvalue = [\"a\"]\n[[rule.new_terms.history_window_start]]\nfield = \"history_window_start\"\nvalue = \"now-7d\"\n", LangKuery, FiringNewTerms)
}
