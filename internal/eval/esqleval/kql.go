package esqleval

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/kqleval"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// compileKQL compiles KQL("query"): the KQL engine (kqleval) matching the
// whole event. It is only valid in the per-event prefix, where the event is
// at hand; elsewhere it is a positioned error. KQL parse and compile errors
// are reported at their position inside the string literal.
func (cp *compiler) compileKQL(call *esql.CallExpr) (cexpr, bool) {
	if !cp.inPrefix {
		cp.errorf(call.NameLoc, ErrInvalid, "KQL can only be used before the first STATS, SORT or LIMIT, where rows are still events")
		return cexpr{}, false
	}
	if len(call.Args) != 1 {
		cp.errorf(call.Loc, ErrInvalid, "KQL takes 1 argument, got %d", len(call.Args))
		return cexpr{}, false
	}
	lit, ok := call.Args[0].(*esql.LiteralExpr)
	if !ok || lit.Kind != esql.LitString {
		cp.errorf(call.Args[0].Span(), ErrInvalid, "the argument of KQL must be a string literal")
		return cexpr{}, false
	}
	src := cp.kqlSource(lit)
	expr, err := kql.Parse(src)
	if err == nil {
		var m *kqleval.Matcher
		if m, err = kqleval.Compile(expr, kqleval.WithSource(src)); err == nil {
			cp.p.fields.Union(m.Fields())
			return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
				return appendBool(dst, m.Match(c.ev))
			}}, true
		}
	}
	// Keep the KQL error's position and category, under ErrInvalid's text.
	if pe, ok := asPosError(err); ok {
		cp.errs.Add(pos.Errorf(pe.Src, pe.Span, pe.Code, "invalid KQL query: %s", pe.Msg))
	} else {
		cp.errorf(lit.Loc, ErrInvalid, "invalid KQL query: %v", err)
	}
	return cexpr{}, false
}

// kqlSource places the KQL text at its position in the query's source. For
// a double-quoted literal with escapes, positions after the first escape
// are approximate.
func (cp *compiler) kqlSource(lit *esql.LiteralExpr) *pos.Source {
	start := lit.Loc.Start + 1
	if cp.src != nil && strings.HasPrefix(cp.src.Text[lit.Loc.Start:], `"""`) {
		start = lit.Loc.Start + 3
	}
	if cp.src == nil {
		return pos.NewSource("", lit.Str)
	}
	p := cp.src.Position(start)
	return pos.NewEmbeddedSource(p.File, lit.Str, p.Line, p.Col, cp.src.Indent)
}
