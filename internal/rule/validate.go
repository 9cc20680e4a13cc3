package rule

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
	"gopkg.in/yaml.v3"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// checker validates one decoded rule, section by section: each check
// reports its errors at their place in the rule file and goes on, so that
// every error of a file is reported at once.
type checker struct {
	r   *Rule
	src *pos.Source
	// root is the rule's YAML mapping; nil for a rule not read from YAML
	// (Elastic's TOML), whose key positions come from keyAt.
	root  *yaml.Node
	keyAt func(key string) pos.Span
	errs  *pos.ErrorList
	// failed are the YAML nodes the decoder could not decode: their errors
	// are reported, and checks of the fields they leave zero are skipped.
	failed map[*yaml.Node]bool
}

// validate checks a decoded rule, fills defaults, and parses its queries
// and templates with file positions. The kinds of firing are validated
// apart (perEvent, scheduled, newTermsFiring), once type, language and
// firing agree.
func validate(c *checker) {
	c.identity()
	kindOK := c.kind()
	c.threat()
	c.query()
	if kindOK {
		switch c.r.Firing {
		case FiringPerEvent:
			c.perEvent()
		case FiringScheduled:
			c.scheduled()
		case FiringNewTerms:
			c.newTermsFiring()
		}
	}
	c.titles()
	c.dedup()
	c.tests()
}

// at returns the span of key in the rule file (the key itself).
func (c *checker) at(key string) pos.Span {
	if c.root == nil {
		if c.keyAt != nil {
			return c.keyAt(key)
		}
		return pos.Span{}
	}
	n := keyNode(c.root, key)
	if n == nil {
		return pos.Span{}
	}
	off := c.src.Offset(n.Line, n.Column)
	return pos.Span{Start: off, End: off + max(1, len(n.Value))}
}

// has reports whether the rule file sets key.
func (c *checker) has(key string) bool { return node(c.root, key) != nil }

// decoded reports whether key, if present, was decoded without error.
func (c *checker) decoded(key string) bool {
	if c.root == nil {
		return true
	}
	return !c.failed[node(c.root, key)] && !c.failed[keyNode(c.root, key)]
}

// bad reports an error at key, unless the key could not be decoded (its
// error says why, and its zero value proves nothing).
func (c *checker) bad(key string, format string, args ...any) {
	if c.decoded(key) {
		c.errs.Add(pos.Errorf(c.src, c.at(key), ErrInvalid, format, args...))
	}
}

// identity checks the id, name, severity and risk score.
func (c *checker) identity() {
	r := c.r
	if n := keyNode(c.root, "id"); n != nil {
		r.Positions.ID = c.src.Position(c.src.Offset(n.Line, n.Column))
	}
	if r.ID == "" {
		c.bad("id", "rule has no id")
	} else if !idPattern.MatchString(r.ID) {
		c.bad("id", "rule id %q may hold only letters, digits and . _ : -", r.ID)
	}
	if strings.TrimSpace(r.Name) == "" {
		c.bad("name", "rule has no name")
	}
	if SeverityRank(r.Severity) < 0 {
		c.bad("severity", "severity %q is not one of %s", r.Severity, strings.Join(Severities, ", "))
	}
	if r.RiskScore < 0 || r.RiskScore > 100 {
		c.bad("risk_score", "risk_score %d is outside 0..100", r.RiskScore)
	}
}

// kind checks type, language and firing, and fills the language and the
// firing the rule leaves out: from Elastic's type when it has one, else
// kuery and per_event. It reports whether the three agree.
func (c *checker) kind() bool {
	r := c.r
	ok := true
	lang, fire := TypeLanguage(r.Type), TypeFiring(r.Type)
	if r.Type != "" && fire == "" {
		c.bad("type", "unknown rule type %q (Elastic's types are %s; or leave type out and set firing)", r.Type, strings.Join(Types, ", "))
		ok = false
	}
	switch {
	case r.Firing == "":
		r.Firing = orDefault(fire, FiringPerEvent)
	case !slices.Contains(Firings, r.Firing):
		c.bad("firing", "unknown firing %q (%s)", r.Firing, strings.Join(Firings, ", "))
		ok = false
	case fire != "" && r.Firing != fire:
		c.bad("firing", "firing %s contradicts type %s: Elastic's %s rules fire %s (leave type out for a %s rule)", r.Firing, r.Type, r.Type, fire, r.Firing)
		ok = false
	}
	switch {
	case r.Language == "":
		r.Language = orDefault(lang, LangKuery)
	case !slices.Contains(Languages, r.Language):
		c.bad("language", "unknown language %q (%s)", r.Language, strings.Join(Languages, ", "))
		ok = false
	case lang != "" && r.Language != lang:
		c.bad("language", "a%s %s rule takes language %s, not %q", article(r.Type), r.Type, lang, r.Language)
		ok = false
	case r.Firing == FiringNewTerms && r.Language != LangKuery:
		c.bad("language", "a new_terms rule takes language kuery, not %q", r.Language)
		ok = false
	}
	return ok
}

// orDefault returns a, or b when a is empty.
func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// article is "n" before a type starting with a vowel ("an esql rule").
func article(typ string) string {
	if typ != "" && strings.ContainsRune("aeiou", rune(typ[0])) {
		return "n"
	}
	return ""
}

// schedule fills Elastic's defaults of a rule with runs and checks them.
func (c *checker) schedule() {
	s := &c.r.Schedule
	if s.Interval == 0 {
		s.Interval = Duration(DefaultInterval)
	}
	if s.From == "" {
		s.From = DefaultFrom
	}
	if s.MaxSignals == 0 {
		s.MaxSignals = DefaultMaxSignals
	}
	if s.MaxSignals < 0 {
		c.bad("schedule", "max_signals must be positive")
	}
	if lb, err := ParseDateMath(s.From); err != nil {
		c.bad("schedule", "schedule.from: %v", err)
	} else if lb < s.Interval.D() {
		c.bad("schedule", "schedule.from (%s) looks back less than the interval (%s): events between runs would never be read", s.From, s.Interval.D())
	}
}

// threat fills the framework of the MITRE ATT&CK mappings and checks them.
func (c *checker) threat() {
	for i, th := range c.r.Threat {
		if th.Framework == "" {
			c.r.Threat[i].Framework = "MITRE ATT&CK"
		}
		if th.Tactic.ID == "" {
			c.bad("threat", "threat entry %d has no tactic id", i+1)
		}
	}
}

// query parses the query in its language, with positions in the rule file
// (a loader that is not reading YAML sets QuerySrc itself).
func (c *checker) query() {
	r := c.r
	qn := node(c.root, "query")
	if qn != nil {
		r.QuerySrc = embeddedSource(c.src, qn)
	} else if r.QuerySrc == nil && r.Query != "" {
		r.QuerySrc = pos.NewSource(c.src.Name, r.Query)
	}
	if strings.TrimSpace(r.Query) == "" {
		c.bad("query", "rule has no query")
		return
	}
	if r.QuerySrc == nil {
		return
	}
	r.Positions.Query = r.QuerySrc.Position(0)
	switch r.Language {
	case LangKuery:
		e, err := kql.Parse(r.QuerySrc)
		addErr(c.errs, err, c.src, qn)
		r.KQL = e
	case LangESQL:
		q, err := esql.Parse(r.QuerySrc)
		addErr(c.errs, err, c.src, qn)
		r.ESQL = q
	}
}

// perEvent checks a per-event rule: it has no runs, so no schedule and no
// new terms, and its ES|QL query (evaluated on each event) cannot need a
// run's rows.
func (c *checker) perEvent() {
	r := c.r
	if c.has("schedule") || c.root == nil && r.Schedule != (Schedule{}) {
		c.bad("schedule", "a per-event rule has no runs, so no schedule: schedule (interval, from, max_signals) is for firing: scheduled or new_terms, or Elastic's type")
	}
	if r.NewTerms != nil {
		c.bad("new_terms", "new_terms is only for rules with firing new_terms (Elastic's type new_terms)")
	}
	if r.ESQL == nil {
		return
	}
	for _, cmd := range r.ESQL.Commands {
		var why string
		switch cmd.(type) {
		case *esql.StatsCmd:
			why = "aggregates the rows of a run"
		case *esql.SortCmd:
			why = "orders the rows of a run"
		case *esql.LimitCmd:
			why = "bounds the rows of a run"
		default:
			continue
		}
		c.errs.Add(pos.Errorf(r.QuerySrc, cmd.Span(), ErrInvalid,
			"query: %s %s, and a per-event rule has no runs: it needs firing: scheduled (Elastic's runs)", cmd.Name(), why))
		return
	}
}

// scheduled checks a rule on Elastic's runs.
func (c *checker) scheduled() {
	c.schedule()
	if c.r.NewTerms != nil {
		c.bad("new_terms", "new_terms is only for rules with firing new_terms (Elastic's type new_terms)")
	}
}

// newTermsFiring checks a new_terms rule: Elastic's runs and its new_terms
// block.
func (c *checker) newTermsFiring() {
	c.schedule()
	c.newTerms()
}

// newTerms checks the new_terms block of a new_terms rule.
func (c *checker) newTerms() {
	nt := c.r.NewTerms
	switch {
	case nt == nil || len(nt.Fields) == 0:
		c.bad("new_terms", "a new_terms rule needs new_terms.fields")
		return
	case len(nt.Fields) > 3:
		c.bad("new_terms", "new_terms takes at most 3 fields, as Elastic's")
	}
	if nt.HistoryWindowStart == "" {
		c.bad("new_terms", "a new_terms rule needs new_terms.history_window_start (e.g. now-7d)")
	} else if _, err := ParseDateMath(nt.HistoryWindowStart); err != nil {
		c.bad("new_terms", "new_terms.history_window_start: %v", err)
	}
}

// titles parses the title template, or the title cases with their
// conditions (KQL, with positions in the rule file).
func (c *checker) titles() {
	r := c.r
	if r.Title.Template != "" {
		t, err := ParseTemplate(r.Title.Template)
		if err != nil {
			c.bad("title", "title: %v", err)
		} else {
			r.TitleTmpl = []TitleTemplate{{Template: t}}
		}
	}
	tn := node(c.root, "title")
	for i, tc := range r.Title.Cases {
		t, err := ParseTemplate(tc.Template)
		if err != nil {
			c.bad("title", "title case %d: %v", i+1, err)
			continue
		}
		if tc.Template == "" {
			c.bad("title", "title case %d has no title", i+1)
		}
		tt := TitleTemplate{Template: t}
		if tc.When != "" {
			var whenNode *yaml.Node
			if tn != nil && tn.Kind == yaml.SequenceNode && i < len(tn.Content) {
				whenNode = node(tn.Content[i], "when")
			}
			wsrc := pos.NewSource(c.src.Name, tc.When)
			if whenNode != nil {
				wsrc = embeddedSource(c.src, whenNode)
			}
			e, err := kql.Parse(wsrc)
			addErr(c.errs, err, c.src, whenNode)
			tt.When = e
			r.Title.Cases[i].WhenSrc = wsrc
		}
		r.TitleTmpl = append(r.TitleTmpl, tt)
	}
}

// dedup parses the dedup key and checks the period.
func (c *checker) dedup() {
	d := c.r.Dedup
	if d == nil {
		return
	}
	if d.Key == "" {
		c.bad("dedup", "dedup has no key")
	} else if t, err := ParseTemplate(d.Key); err != nil {
		c.bad("dedup", "dedup.key: %v", err)
	} else {
		c.r.DedupTmpl = t
	}
	if d.Period <= 0 {
		c.bad("dedup", "dedup has no period")
	}
}

// tests checks the embedded tests, each in kanon's form or Panther's.
func (c *checker) tests() {
	testsNode := node(c.root, "tests")
	for i := range c.r.Tests {
		var tnode *yaml.Node
		if testsNode != nil && testsNode.Kind == yaml.SequenceNode && i < len(testsNode.Content) {
			tnode = testsNode.Content[i]
		}
		c.test(i, tnode)
	}
}

// test checks test i, at tnode in the file (nil when not read from YAML).
func (c *checker) test(i int, tnode *yaml.Node) {
	t := &c.r.Tests[i]
	if tnode != nil {
		t.Line, t.Col = tnode.Line, tnode.Column
		if c.failed[tnode] {
			return // its decoding errors are reported
		}
	}
	bad := func(format string, args ...any) {
		sp := pos.Span{}
		if tnode != nil {
			off := c.src.Offset(tnode.Line, tnode.Column)
			sp = pos.Span{Start: off, End: off + 1}
		}
		c.errs.Add(pos.Errorf(c.src, sp, ErrInvalid, "test %d: "+format, append([]any{i + 1}, args...)...))
	}
	panther := t.PantherName != "" || t.ExpectedResult != nil || t.Log != nil
	kanon := t.Name != "" || t.Expect != "" || len(t.Events) > 0 || t.Alerts != nil || t.Fields != nil || len(t.History) > 0
	switch {
	case panther && kanon:
		bad("mixes kanon's keys (name, expect, events) with Panther's (Name, ExpectedResult, Log)")
	case panther:
		if t.PantherName == "" || t.ExpectedResult == nil || t.Log == nil {
			bad("a Panther-style test needs Name, ExpectedResult and Log")
		}
		if len(t.PantherMocks) > 0 {
			bad("Mocks are not supported: kanon rules have no external lookups")
		}
	default:
		if t.Name == "" {
			bad("test has no name")
		}
		if t.Expect != "alert" && t.Expect != "no_alert" {
			bad("expect must be alert or no_alert, not %q", t.Expect)
		}
		if len(t.Events) == 0 {
			bad("test has no events")
		}
		if t.Alerts != nil && (*t.Alerts < 0 || *t.Alerts == 0 && t.Expect == "alert" || *t.Alerts > 0 && t.Expect == "no_alert") {
			bad("alerts: %d contradicts expect: %s", *t.Alerts, t.Expect)
		}
	}
}

// addErr adds a parse error (a *pos.Error or *pos.ErrorList, already in
// file positions) to errs.
func addErr(errs *pos.ErrorList, err error, src *pos.Source, n *yaml.Node) {
	if err == nil {
		return
	}
	switch e := err.(type) {
	case *pos.Error:
		e.Msg = "query: " + e.Msg
		errs.Add(e)
		return
	case *pos.ErrorList:
		for _, x := range e.Errs {
			errs.Add(x)
		}
		return
	}
	sp := pos.Span{}
	if n != nil {
		off := src.Offset(n.Line, n.Column)
		sp = pos.Span{Start: off, End: off + 1}
	}
	errs.Add(pos.Errorf(src, sp, ErrQuery, "query: %v", err))
}

// String describes the rule for messages.
func (r *Rule) String() string { return fmt.Sprintf("%s (%s)", r.ID, r.Name) }
