// Package prefilter derives from the loaded rules a cheap test that every
// event a rule could match passes: only the events that pass are
// evaluated by the rules. On an audit log where 2 % of the events are
// anonymous and every rule is about anonymous access, 98 % of the events
// are decoded (their bad records reported as ever) but never evaluated.
//
// The test is the projection of each rule's condition onto a small set of
// fields F: the condition is put in negation normal form (NOT pushed down
// to the predicates, by De Morgan's laws, which hold in KQL's two-valued
// and ES|QL's three-valued logic alike), and every predicate that reads a
// field outside F — or that cannot be told apart on F alone — is replaced
// by true. In negation normal form a condition is monotone in its
// predicates, so the projection is true wherever the condition is: no
// event a rule could match fails the test. The predicates kept are
// evaluated by the languages' own evaluators, with their own semantics
// (a missing field included: `not user.username:*` is a predicate on F).
//
// Which conditions: a KQL rule's query (query and new_terms rules); an
// ES|QL rule's leading WHERE commands (those before any other processing
// command, which read the event's fields as they are), with KQL() calls
// inside them projected as KQL. A rule whose projection is true for every
// event (a query that does not test the fields of F) makes the test pass
// everything: New then returns nil, and nothing is filtered.
package prefilter

import (
	"fmt"
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/eval/kqleval"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/rule"
)

// Prefilter is the test derived from a set of rules. It is safe for
// concurrent use; each goroutine tests events with a Checker of its own.
type Prefilter struct {
	// Fields are the fields the test reads (F).
	Fields event.FieldSet
	// Names are F's fields by name, for messages and explain.
	Names []string
	tests []test
}

// test is one rule's projected condition: a KQL matcher or an ES|QL
// program of one WHERE.
type test struct {
	rule  string
	never bool // the rule matches nothing
	kql   *kqleval.Matcher
	esql  *esqleval.Program
	text  string
}

// candidates are the fields F may be made of, in the order they are tried:
// those that anonymous-access rules test, which are what tells the few
// interesting events of an audit log from the rest.
var candidates = []string{
	"kubernetes.audit.user.username",
	"kubernetes.audit.user.groups",
	"kubernetes.audit.annotations.authorization_k8s_io/decision",
	"kubernetes.audit.verb",
	"kubernetes.audit.objectRef.resource",
}

// maxFields bounds F: more fields would cost as much as decoding the event.
const maxFields = 2

// New derives the prefilter of rules, or returns nil when no small set of
// fields lets it rule any event out (some rule does not test them).
func New(rules []*rule.Compiled) *Prefilter {
	if len(rules) == 0 {
		return nil
	}
	var f []string
	for _, name := range candidates {
		f = append(f, name)
		if p := build(rules, f); p != nil {
			return p
		}
		if len(f) == maxFields {
			f = f[:len(f)-1] // try the next one in its place
		}
	}
	return nil
}

// build returns the prefilter projecting rules onto the fields names, or
// nil when some rule's projection is true.
func build(rules []*rule.Compiled, names []string) *Prefilter {
	fs := newFieldSet(names)
	p := &Prefilter{Names: append([]string(nil), names...)}
	for _, r := range rules {
		t, ok := project(r, fs)
		if !ok {
			return nil
		}
		p.tests = append(p.tests, t)
	}
	for _, n := range names {
		p.Fields.Add(event.Lookup(n))
	}
	return p
}

// fieldSet is the set of field ids of names, to test predicates against.
type fieldSet map[event.FieldID]bool

func newFieldSet(names []string) fieldSet {
	out := fieldSet{}
	for _, n := range names {
		if f := event.Lookup(n); f.ID() > 0 {
			out[f.ID()] = true
		}
	}
	return out
}

// has reports whether the field named name is in s: a typed field of the
// schema, named without a pattern.
func (s fieldSet) has(name string) bool {
	if strings.ContainsAny(name, "*?") {
		return false
	}
	f := event.Lookup(name)
	return f.ID() > 0 && s[f.ID()]
}

// project projects rule r onto fs; ok is false when the projection is true
// for every event (nothing to filter on).
func project(r *rule.Compiled, fs fieldSet) (test, bool) {
	switch {
	case r.KQL != nil:
		e, k := kqlProject(r.KQL, fs, false)
		switch k {
		case pTrue:
			return test{}, false
		case pFalse:
			return test{rule: r.ID, never: true, text: "(never matches)"}, true
		}
		m, err := kqleval.Compile(e)
		if err != nil {
			return test{}, false
		}
		return test{rule: r.ID, kql: m, text: e.String()}, true
	case r.ESQL != nil:
		var conds []esql.Expr
		for _, c := range r.ESQL.Commands[1:] {
			w, ok := c.(*esql.WhereCmd)
			if !ok {
				break // the leading WHEREs only: later ones read derived columns
			}
			x, k := esqlProject(w.Cond, fs, false)
			switch k {
			case pFalse:
				return test{rule: r.ID, never: true, text: "(never matches)"}, true
			case pExpr:
				conds = append(conds, x)
			}
		}
		if len(conds) == 0 {
			return test{}, false
		}
		text := "FROM logs"
		for _, c := range conds {
			text += "\n| WHERE " + c.String()
		}
		q, err := esql.Parse(pos.NewSource("prefilter of "+r.ID, text))
		if err != nil {
			return test{}, false
		}
		prog, err := esqleval.Compile(q)
		if err != nil {
			return test{}, false
		}
		return test{rule: r.ID, esql: prog, text: text}, true
	}
	return test{}, false
}

// Checker tests events against a prefilter. It is not safe for
// concurrent use.
type Checker struct {
	p  *Prefilter
	ev []*esqleval.Evaluator
}

// NewChecker returns a checker of p.
func (p *Prefilter) NewChecker() *Checker {
	c := &Checker{p: p, ev: make([]*esqleval.Evaluator, len(p.tests))}
	for i, t := range p.tests {
		if t.esql != nil {
			c.ev[i] = t.esql.NewEvaluator(esqleval.Env{})
		}
	}
	return c
}

// Candidate reports whether some rule could match e, an event whose
// fields F (Prefilter.Fields) were read: false means no rule can.
func (c *Checker) Candidate(e *event.Event) bool {
	for i, t := range c.p.tests {
		if t.never {
			continue
		}
		if t.kql != nil {
			if t.kql.Match(e) {
				return true
			}
			continue
		}
		ev := c.ev[i]
		ev.Env.Now = e.Time()
		rows, err := ev.Eval(e)
		if err != nil || len(rows) > 0 {
			return true // an error decides nothing: evaluate the event
		}
	}
	return false
}

// String describes the prefilter: its fields and each rule's test.
func (p *Prefilter) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "prefilter on %s:", strings.Join(p.Names, ", "))
	for _, t := range p.tests {
		fmt.Fprintf(&b, "\n  %s: %s", t.rule, strings.ReplaceAll(t.text, "\n", " "))
	}
	return b.String()
}
