package lint

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/wildcard"
	"github.com/kanon-dev/kanon/internal/explain"
	"github.com/kanon-dev/kanon/internal/pos"
)

const decisionField = "kubernetes.audit.annotations.authorization_k8s_io/decision"

// tree checks the predicates of one boolean tree. isKQL selects KQL's
// matching (analyzed text fields compare case-insensitively); where is set
// for a WHERE condition (whose top-level conjuncts every event that reaches
// the rest of the rule passes).
func (l *linter) tree(n *explain.Node, isKQL, where bool) {
	required := map[*explain.Predicate]bool{}
	if where || isKQL {
		for _, c := range n.Conjuncts() {
			if c.Op == explain.OpPred {
				required[c.Pred] = true
			}
		}
	}
	n.Preds(func(p *explain.Predicate, negated bool) {
		l.pred(p, negated, required[p], isKQL || p.KQL)
	})
}

// valueSpan is the span of the i-th value of p (the predicate's span when
// values have none).
func valueSpan(p *explain.Predicate, i int) pos.Span {
	if i < len(p.ValueSpans) {
		return p.ValueSpans[i]
	}
	return p.Span
}

// keepsValues reports whether a function keeps the field's values as they
// are (so the field's domain still applies).
func keepsValues(fn string) bool {
	switch fn {
	case "", "MV_FIRST", "MV_LAST", "MV_MIN", "MV_MAX", "MV_DEDUPE", "TO_STRING":
		return true
	}
	return false
}

func (l *linter) pred(p *explain.Predicate, negated, required, isKQL bool) {
	if p.Column || p.Field == "*" || !keepsValues(p.Func) {
		return
	}
	field := explain.CanonicalField(p.Field)
	subject := p.Subject()
	if !isKQL && p.Kind == explain.KindEq {
		for i, v := range p.Values {
			if v == "" {
				l.warn(valueSpan(p, i), CodeEmptyStringESQL,
					`%s == "" is never true: empty strings are missing values (Elastic's pipeline drops them), so ES|QL sees null; IS NULL already covers them`, subject)
			}
		}
	}
	switch field {
	case "kubernetes.audit.level":
		l.domain(p, negated, required, false, "level", levels, "a stage, not a level", stages)
	case "kubernetes.audit.stage":
		l.domain(p, negated, required, false, "stage", stages, "a level, not a stage", levels)
	case "kubernetes.audit.verb":
		l.verb(p, negated)
	case decisionField:
		l.domain(p, negated, required, isKQL, "authorization decision", decisions, "", nil)
	case "event.outcome":
		l.domain(p, negated, required, false, "outcome", outcomes, "", nil)
	case "kubernetes.audit.responseStatus.code":
		l.code(p, negated)
	case "kubernetes.audit.objectRef.resource":
		l.resource(p, negated)
	}
}

// exclusionNote is added to a message about an impossible value under a
// NOT.
func exclusionNote(negated bool) (string, string) {
	if negated {
		return CodeNeverExcludes, "; this exclusion can never match, so it excludes nothing"
	}
	return CodeImpossibleValue, ""
}

// domain checks the values of p against the values the field takes.
func (l *linter) domain(p *explain.Predicate, negated, required, fold bool, what string, dom []string, altWhat string, alt []string) {
	if !checkable(p.Kind) {
		return
	}
	code, note := exclusionNote(negated)
	for i, v := range p.Values {
		if anyMatch(p, i, dom, fold) {
			continue
		}
		msg := fmt.Sprintf("%s is never %s: ", p.Subject(), describe(p.Kind, v))
		if altWhat != "" && anyMatch(p, i, alt, false) {
			msg += fmt.Sprintf("%q is %s (%ss are %s)", v, altWhat, what, strings.Join(dom, ", "))
		} else {
			msg += fmt.Sprintf("the %s is one of %s", what, strings.Join(dom, ", "))
		}
		if what == "level" && required && !negated && p.Kind == explain.KindEq {
			var admitted, missed []string
			for _, d := range dom {
				if equalsAny(d, p.Values, fold) {
					admitted = append(admitted, d)
				} else {
					missed = append(missed, d)
				}
			}
			if len(admitted) > 0 && len(missed) > 0 {
				msg += fmt.Sprintf("; the test admits only %s, so %s audit logs never reach the rule", strings.Join(admitted, ", "), levelsPhrase(what, missed))
			}
		}
		l.warn(valueSpan(p, i), code, "%s%s", msg, note)
	}
}

// levelsPhrase names the values a test leaves out ("Metadata-level" for the
// common case of levels).
func levelsPhrase(what string, missed []string) string {
	if what == "level" {
		var named []string
		for _, m := range missed {
			if m != "None" { // None-level events are not logged at all
				named = append(named, m+"-level")
			}
		}
		if len(named) > 0 {
			return strings.Join(named, " and ")
		}
	}
	return fmt.Sprintf("%s %s", what, strings.Join(missed, ", "))
}

func checkable(k explain.Kind) bool {
	switch k {
	case explain.KindEq, explain.KindStartsWith, explain.KindEndsWith, explain.KindContains, explain.KindWildcard:
		return true
	}
	return false
}

func describe(k explain.Kind, v string) string {
	switch k {
	case explain.KindEq:
		return strconv.Quote(v)
	case explain.KindStartsWith:
		return fmt.Sprintf("a value starting with %q", v)
	case explain.KindEndsWith:
		return fmt.Sprintf("a value ending with %q", v)
	case explain.KindContains:
		return fmt.Sprintf("a value containing %q", v)
	}
	return fmt.Sprintf("a value matching %q", v)
}

// anyMatch reports whether some value of dom matches the i-th value of p
// by p's kind (folding case when fold is set). A kind it cannot check
// matches.
func anyMatch(p *explain.Predicate, i int, dom []string, fold bool) bool {
	v := p.Values[i]
	var pat wildcard.Pattern
	if p.Kind == explain.KindWildcard {
		if i >= len(p.Patterns) {
			return true
		}
		pat = p.Patterns[i]
		if fold {
			pat = pat.Map(strings.ToLower)
		}
	}
	for _, d := range dom {
		if fold {
			d, v = strings.ToLower(d), strings.ToLower(v)
		}
		switch p.Kind {
		case explain.KindEq:
			if d == v {
				return true
			}
		case explain.KindStartsWith:
			if strings.HasPrefix(d, v) {
				return true
			}
		case explain.KindEndsWith:
			if strings.HasSuffix(d, v) {
				return true
			}
		case explain.KindContains:
			if strings.Contains(d, v) {
				return true
			}
		case explain.KindWildcard:
			if pat.Match(d) {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// equalsAny reports whether d equals one of vals (folding case when fold
// is set).
func equalsAny(d string, vals []string, fold bool) bool {
	for _, v := range vals {
		if d == v || fold && strings.ToLower(d) == strings.ToLower(v) {
			return true
		}
	}
	return false
}

// verb checks audit verbs: resource verbs, or lower-cased HTTP methods.
func (l *linter) verb(p *explain.Predicate, negated bool) {
	if !checkable(p.Kind) {
		return
	}
	code, note := exclusionNote(negated)
	all := verbs()
	for i, v := range p.Values {
		if anyMatch(p, i, all, false) {
			continue
		}
		var why string
		switch {
		case p.Kind == explain.KindEq && contains(rbacOnlyVerbs, v):
			why = fmt.Sprintf("%q is an RBAC verb the authorizer checks, never the verb of an audited request", v)
		case p.Kind == explain.KindEq && contains(all, strings.ToLower(v)):
			why = fmt.Sprintf("verbs are lower-case (%q)", strings.ToLower(v))
		default:
			why = fmt.Sprintf("resource requests have %s; non-resource requests the lower-cased HTTP method (%s)",
				strings.Join(resourceVerbs, ", "), strings.Join(nonResourceVerbs, ", "))
		}
		l.warn(valueSpan(p, i), code, "%s is never %s: %s%s", p.Subject(), describe(p.Kind, v), why, note)
	}
}

// code checks HTTP status codes (100-599).
func (l *linter) code(p *explain.Predicate, negated bool) {
	code, note := exclusionNote(negated)
	switch p.Kind {
	case explain.KindEq:
		for i, v := range p.Values {
			n, err := strconv.Atoi(v)
			if err != nil || n < 100 || n > 599 {
				l.warn(valueSpan(p, i), code, "%s is never %q: HTTP status codes are 100 to 599%s", p.Subject(), v, note)
			}
		}
	case explain.KindRange:
		for i, v := range p.Values {
			op, num, ok := strings.Cut(v, " ")
			if !ok {
				continue
			}
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				l.warn(valueSpan(p, i), code, "%s %s: %q is not a number, and HTTP status codes are 100 to 599%s", p.Subject(), v, num, note)
				continue
			}
			never := (op == "<" && n <= 100) || (op == "<=" && n < 100) || (op == ">" && n >= 599) || (op == ">=" && n > 599)
			if never {
				l.warn(valueSpan(p, i), CodeImpossibleRange, "%s %s never holds: HTTP status codes are 100 to 599%s", p.Subject(), v, note)
			}
		}
	}
}

// resource checks objectRef.resource values: non-resource paths have no
// objectRef, and subresources have their own field.
func (l *linter) resource(p *explain.Predicate, negated bool) {
	if p.Kind != explain.KindEq && p.Kind != explain.KindStartsWith {
		return
	}
	for i, v := range p.Values {
		first := strings.TrimPrefix(v, "/")
		if j := strings.IndexByte(first, '/'); j >= 0 {
			first = first[:j]
		}
		switch {
		case strings.HasPrefix(v, "/") || contains(nonResourcePaths, first) && !strings.Contains(v, "/"):
			msg := fmt.Sprintf("%s is never %q: /%s is a non-resource request, whose audit events have no objectRef", p.Subject(), v, first)
			if negated {
				msg += fmt.Sprintf(", so this exclusion can never match (/%s requests still reach the rule; exclude them by kubernetes.audit.requestURI)", first)
				l.warn(valueSpan(p, i), CodeNeverExcludes, "%s", msg)
			} else {
				l.warn(valueSpan(p, i), CodeNonResourceField, "%s", msg)
			}
		case p.Kind == explain.KindEq && strings.Contains(v, "/"):
			code, note := exclusionNote(negated)
			res, sub, _ := strings.Cut(v, "/")
			l.warn(valueSpan(p, i), code, "%s is never %q: the subresource is in kubernetes.audit.objectRef.subresource (resource %q, subresource %q)%s", p.Subject(), v, res, sub, note)
		}
	}
}
