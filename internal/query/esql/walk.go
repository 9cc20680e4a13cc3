package esql

// Walk traverses an expression depth first in source order: it calls fn
// with e, and when fn returns true, walks each direct subexpression of e
// the same way. Leaves (literals, time spans, field references, "*") have
// none. A nil e is not visited. Walk is the one traversal of ES|QL
// expressions: the evaluator, explain and lint all use it.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch x := e.(type) {
	case *BinaryExpr:
		Walk(x.X, fn)
		Walk(x.Y, fn)
	case *NotExpr:
		Walk(x.X, fn)
	case *UnaryExpr:
		Walk(x.X, fn)
	case *InExpr:
		Walk(x.X, fn)
		for _, a := range x.List {
			Walk(a, fn)
		}
	case *LikeExpr:
		Walk(x.X, fn)
	case *IsNullExpr:
		Walk(x.X, fn)
	case *CastExpr:
		Walk(x.X, fn)
	case *CallExpr:
		for _, a := range x.Args {
			Walk(a, fn)
		}
	}
}

// WalkCmd walks (with Walk) every expression of a command, in source
// order: the condition of WHERE, the assigned expressions of EVAL, the
// input of GROK and DISSECT, each aggregation of STATS with its WHERE and
// then the groups, the keys of SORT. The other commands hold names, not
// expressions, and are not visited.
func WalkCmd(c Cmd, fn func(Expr) bool) {
	switch x := c.(type) {
	case *WhereCmd:
		Walk(x.Cond, fn)
	case *EvalCmd:
		for _, a := range x.Fields {
			Walk(a.X, fn)
		}
	case *GrokCmd:
		Walk(x.X, fn)
	case *DissectCmd:
		Walk(x.X, fn)
	case *StatsCmd:
		for _, a := range x.Aggs {
			Walk(a.X, fn)
			Walk(a.Where, fn)
		}
		for _, g := range x.By {
			Walk(g.X, fn)
		}
	case *SortCmd:
		for _, k := range x.Keys {
			Walk(k.X, fn)
		}
	}
}

// Fields returns the field references of an expression, in source order.
func Fields(e Expr) []*FieldExpr {
	var out []*FieldExpr
	Walk(e, func(x Expr) bool {
		if f, ok := x.(*FieldExpr); ok {
			out = append(out, f)
		}
		return true
	})
	return out
}
