package rule

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
	"gopkg.in/yaml.v3"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]*$`)

// validate checks a decoded rule, fills defaults, and parses its queries
// and templates with file positions.
func validate(r *Rule, root *yaml.Node, src *pos.Source, errs *pos.ErrorList) {
	at := func(key string) pos.Span {
		n := keyNode(root, key)
		if n == nil {
			return pos.Span{}
		}
		off := src.Offset(n.Line, n.Column)
		return pos.Span{Start: off, End: off + max(1, len(n.Value))}
	}
	bad := func(key string, format string, args ...any) {
		errs.Add(pos.Errorf(src, at(key), ErrInvalid, format, args...))
	}
	if n := keyNode(root, "id"); n != nil {
		r.Positions.ID = src.Position(src.Offset(n.Line, n.Column))
	}
	if r.ID == "" {
		bad("id", "rule has no id")
	} else if !idPattern.MatchString(r.ID) {
		bad("id", "rule id %q may hold only letters, digits and . _ : -", r.ID)
	}
	if strings.TrimSpace(r.Name) == "" {
		bad("name", "rule has no name")
	}
	switch r.Type {
	case TypeQuery, TypeNewTerms:
		if r.Language == "" {
			r.Language = LangKuery
		}
		if r.Language != LangKuery {
			bad("language", "a %s rule takes language kuery, not %q", r.Type, r.Language)
		}
	case TypeESQL:
		if r.Language == "" {
			r.Language = LangESQL
		}
		if r.Language != LangESQL {
			bad("language", "an esql rule takes language esql, not %q", r.Language)
		}
	case "":
		bad("type", "rule has no type (query, esql or new_terms)")
	default:
		bad("type", "unknown rule type %q (query, esql or new_terms)", r.Type)
	}
	if SeverityRank(r.Severity) < 0 {
		bad("severity", "severity %q is not one of %s", r.Severity, strings.Join(Severities, ", "))
	}
	if r.RiskScore < 0 || r.RiskScore > 100 {
		bad("risk_score", "risk_score %d is outside 0..100", r.RiskScore)
	}
	if r.Schedule.Interval == 0 {
		r.Schedule.Interval = Duration(DefaultInterval)
	}
	if r.Schedule.From == "" {
		r.Schedule.From = DefaultFrom
	}
	if r.Schedule.MaxSignals == 0 {
		r.Schedule.MaxSignals = DefaultMaxSignals
	}
	if r.Schedule.MaxSignals < 0 {
		bad("schedule", "max_signals must be positive")
	}
	if lb, err := ParseDateMath(r.Schedule.From); err != nil {
		bad("schedule", "schedule.from: %v", err)
	} else if lb < r.Schedule.Interval.D() {
		bad("schedule", "schedule.from (%s) looks back less than the interval (%s): events between runs would never be read", r.Schedule.From, r.Schedule.Interval.D())
	}
	for i, th := range r.Threat {
		if th.Framework == "" {
			r.Threat[i].Framework = "MITRE ATT&CK"
		}
		if th.Tactic.ID == "" {
			bad("threat", "threat entry %d has no tactic id", i+1)
		}
	}

	// The query, parsed with positions in the rule file (a loader that is
	// not reading YAML sets QuerySrc itself).
	qn := node(root, "query")
	if qn != nil {
		r.QuerySrc = embeddedSource(src, qn)
	} else if r.QuerySrc == nil && r.Query != "" {
		r.QuerySrc = pos.NewSource(src.Name, r.Query)
	}
	if strings.TrimSpace(r.Query) == "" {
		bad("query", "rule has no query")
	} else if r.QuerySrc != nil {
		r.Positions.Query = r.QuerySrc.Position(0)
		switch r.Language {
		case LangKuery:
			e, err := kql.Parse(r.QuerySrc)
			addErr(errs, err, src, qn)
			r.KQL = e
		case LangESQL:
			q, err := esql.Parse(r.QuerySrc)
			addErr(errs, err, src, qn)
			r.ESQL = q
		}
	}

	// Templates.
	if r.Title.Template != "" {
		t, err := ParseTemplate(r.Title.Template)
		if err != nil {
			bad("title", "title: %v", err)
		} else {
			r.TitleTmpl = []TitleTemplate{{Template: t}}
		}
	}
	tn := node(root, "title")
	for i, c := range r.Title.Cases {
		t, err := ParseTemplate(c.Template)
		if err != nil {
			bad("title", "title case %d: %v", i+1, err)
			continue
		}
		if c.Template == "" {
			bad("title", "title case %d has no title", i+1)
		}
		tt := TitleTemplate{Template: t}
		if c.When != "" {
			var whenNode *yaml.Node
			if tn != nil && tn.Kind == yaml.SequenceNode && i < len(tn.Content) {
				whenNode = node(tn.Content[i], "when")
			}
			wsrc := pos.NewSource(src.Name, c.When)
			if whenNode != nil {
				wsrc = embeddedSource(src, whenNode)
			}
			e, err := kql.Parse(wsrc)
			addErr(errs, err, src, whenNode)
			tt.When = e
			r.Title.Cases[i].WhenSrc = wsrc
		}
		r.TitleTmpl = append(r.TitleTmpl, tt)
	}
	if r.Dedup != nil {
		if r.Dedup.Key == "" {
			bad("dedup", "dedup has no key")
		} else if t, err := ParseTemplate(r.Dedup.Key); err != nil {
			bad("dedup", "dedup.key: %v", err)
		} else {
			r.DedupTmpl = t
		}
		if r.Dedup.Period <= 0 {
			bad("dedup", "dedup has no period")
		}
	}
	if r.Type == TypeNewTerms {
		if r.NewTerms == nil || len(r.NewTerms.Fields) == 0 {
			bad("new_terms", "a new_terms rule needs new_terms.fields")
		} else {
			if r.NewTerms.HistoryWindowStart == "" {
				bad("new_terms", "a new_terms rule needs new_terms.history_window_start (e.g. now-7d)")
			} else if _, err := ParseDateMath(r.NewTerms.HistoryWindowStart); err != nil {
				bad("new_terms", "new_terms.history_window_start: %v", err)
			}
			if len(r.NewTerms.Fields) > 3 {
				bad("new_terms", "new_terms takes at most 3 fields, as Elastic's")
			}
		}
	} else if r.NewTerms != nil {
		bad("new_terms", "new_terms is only for rules of type new_terms")
	}

	// Tests.
	testsNode := node(root, "tests")
	for i := range r.Tests {
		t := &r.Tests[i]
		var tnode *yaml.Node
		if testsNode != nil && i < len(testsNode.Content) {
			tnode = testsNode.Content[i]
			t.Line, t.Col = tnode.Line, tnode.Column
		}
		tbad := func(format string, args ...any) {
			sp := pos.Span{}
			if tnode != nil {
				off := src.Offset(tnode.Line, tnode.Column)
				sp = pos.Span{Start: off, End: off + 1}
			}
			errs.Add(pos.Errorf(src, sp, ErrInvalid, "test %d: "+format, append([]any{i + 1}, args...)...))
		}
		panther := t.PantherName != "" || t.ExpectedResult != nil || t.Log != nil
		kanon := t.Name != "" || t.Expect != "" || len(t.Events) > 0 || t.Alerts != nil || t.Fields != nil || len(t.History) > 0
		switch {
		case panther && kanon:
			tbad("mixes kanon's keys (name, expect, events) with Panther's (Name, ExpectedResult, Log)")
		case panther:
			if t.PantherName == "" || t.ExpectedResult == nil || t.Log == nil {
				tbad("a Panther-style test needs Name, ExpectedResult and Log")
			}
			if len(t.PantherMocks) > 0 {
				tbad("Mocks are not supported: kanon rules have no external lookups")
			}
		default:
			if t.Name == "" {
				tbad("test has no name")
			}
			if t.Expect != "alert" && t.Expect != "no_alert" {
				tbad("expect must be alert or no_alert, not %q", t.Expect)
			}
			if len(t.Events) == 0 {
				tbad("test has no events")
			}
			if t.Alerts != nil && (*t.Alerts < 0 || *t.Alerts == 0 && t.Expect == "alert" || *t.Alerts > 0 && t.Expect == "no_alert") {
				tbad("alerts: %d contradicts expect: %s", *t.Alerts, t.Expect)
			}
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
