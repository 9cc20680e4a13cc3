package kqleval

import (
	"github.com/kanon-dev/kanon/internal/eval/wildcard"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// ReqKind is how a required literal relates to a field's value.
type ReqKind uint8

// Requirement kinds, from strongest to weakest.
const (
	ReqEqual    ReqKind = iota + 1 // the value equals the literal
	ReqPrefix                      // the value starts with the literal
	ReqContains                    // the value contains the literal
)

func (k ReqKind) String() string {
	switch k {
	case ReqEqual:
		return "equal"
	case ReqPrefix:
		return "prefix"
	case ReqContains:
		return "contains"
	}
	return "?"
}

// Requirement is a literal fact that every event matching a query satisfies:
// the event has at least one value v of Field (a keyword or
// constant_keyword field, named without wildcards) and there is a literal s
// in Values with v == s (ReqEqual), strings.HasPrefix(v, s) (ReqPrefix) or
// strings.Contains(v, s) (ReqContains). Engines may use requirements to skip
// or index rules; they are necessary, never sufficient.
type Requirement struct {
	Field  event.Field
	Kind   ReqKind
	Values []string
}

// Required returns the requirements that every matching event satisfies, all
// of them at once (a conjunction). It is empty when the query requires no
// literal: when it only negates (not field:*), or when an "or" has a branch
// without a requirement on a common field. Text, numeric, date, ip and
// boolean fields and fields outside the schema yield no requirements. The
// caller must not modify the result.
func (m *Matcher) Required() []Requirement { return m.required }

// required derives the requirements of e.
func required(e kql.Expr) []Requirement {
	switch e := e.(type) {
	case *kql.AndExpr:
		var out []Requirement
		for _, a := range e.Args {
			out = append(out, required(a)...)
		}
		return out
	case *kql.OrExpr:
		// A field required by every branch is required, with the union of
		// the branches' literals at the weakest kind.
		first := required(e.Args[0])
		var out []Requirement
		for _, r := range first {
			merged := r
			ok := true
			for _, a := range e.Args[1:] {
				var found bool
				for _, r2 := range required(a) {
					if r2.Field.Name == r.Field.Name {
						merged = mergeReq(merged, r2)
						found = true
						break
					}
				}
				if !found {
					ok = false
					break
				}
			}
			if ok {
				out = append(out, merged)
			}
		}
		return out
	case *kql.FieldExpr:
		if e.Field.IsWildcard() {
			return nil
		}
		f := event.Lookup(e.Field.Value)
		if f.Type != event.TypeKeyword && f.Type != event.TypeConstantKeyword {
			return nil
		}
		if r, ok := valuesReq(e.Values); ok {
			r.Field = f
			return []Requirement{r}
		}
	}
	return nil
}

// valuesReq is the requirement of a value list on a keyword field.
func valuesReq(e kql.Expr) (Requirement, bool) {
	switch e := e.(type) {
	case *kql.ValueExpr:
		return literalReq(e.Value)
	case *kql.AndExpr:
		// Any conjunct's requirement holds; take the strongest.
		var best Requirement
		found := false
		for _, a := range e.Args {
			if r, ok := valuesReq(a); ok && (!found || r.Kind < best.Kind) {
				best, found = r, true
			}
		}
		return best, found
	case *kql.OrExpr:
		var acc Requirement
		for i, a := range e.Args {
			r, ok := valuesReq(a)
			if !ok {
				return Requirement{}, false
			}
			if i == 0 {
				acc = r
			} else {
				acc = mergeReq(acc, r)
			}
		}
		return acc, true
	}
	return Requirement{}, false
}

// literalReq is the requirement of one keyword value, following the
// evaluator: exact values are equalities; a wildcard with one term and a
// literal prefix is a prefix, else its longest literal part is contained.
func literalReq(l kql.Literal) (Requirement, bool) {
	if !l.IsWildcard() {
		return Requirement{Kind: ReqEqual, Values: []string{l.Value}}, true
	}
	cs := chunks(l)
	if len(cs) != 1 {
		return Requirement{}, false
	}
	ch := cs[0]
	if ch.parts == nil {
		return Requirement{Kind: ReqEqual, Values: []string{ch.text}}, true
	}
	p := wildcard.Parts(ch.parts)
	if lead := p.LeadingLiteral(); lead != "" {
		return Requirement{Kind: ReqPrefix, Values: []string{lead}}, true
	}
	longest := ""
	for _, lit := range p.Literals() {
		if len(lit) > len(longest) {
			longest = lit
		}
	}
	if longest == "" {
		return Requirement{}, false
	}
	return Requirement{Kind: ReqContains, Values: []string{longest}}, true
}

// mergeReq is "a or b" of two requirements on one field.
func mergeReq(a, b Requirement) Requirement {
	k := max(a.Kind, b.Kind)
	vals := make([]string, 0, len(a.Values)+len(b.Values))
	seen := map[string]bool{}
	for _, v := range append(append([]string{}, a.Values...), b.Values...) {
		if !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	return Requirement{Field: a.Field, Kind: k, Values: vals}
}
