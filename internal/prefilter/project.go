package prefilter

import (
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// pkind is what a projection gives: a condition, or a constant.
type pkind uint8

const (
	pExpr  pkind = iota // a condition on the fields kept
	pTrue               // true for every event: nothing to test
	pFalse              // false for every event
)

// kqlProject projects e (negated when neg) onto fs, in negation normal
// form: predicates on fields outside fs become true.
func kqlProject(e kql.Expr, fs fieldSet, neg bool) (kql.Expr, pkind) {
	switch x := e.(type) {
	case *kql.AndExpr, *kql.OrExpr:
		var args []kql.Expr
		and := false
		if a, ok := x.(*kql.AndExpr); ok {
			args, and = a.Args, true
		} else {
			args = x.(*kql.OrExpr).Args
		}
		// NOT (a AND b) is NOT a OR NOT b, and the other way round.
		parts := make([]kql.Expr, 0, len(args))
		kinds := make([]pkind, 0, len(args))
		for _, a := range args {
			p, k := kqlProject(a, fs, neg)
			parts, kinds = append(parts, p), append(kinds, k)
		}
		if and != neg {
			return kqlAll(parts, kinds)
		}
		return kqlAny(parts, kinds)
	case *kql.NotExpr:
		return kqlProject(x.X, fs, !neg)
	case *kql.MatchAllExpr:
		if neg {
			return nil, pFalse
		}
		return nil, pTrue
	case *kql.FieldExpr:
		if !x.Field.IsWildcard() && fs.has(x.Field.Value) {
			return kqlLeaf(x, neg), pExpr
		}
	case *kql.RangeExpr:
		if !x.Field.IsWildcard() && fs.has(x.Field.Value) {
			return kqlLeaf(x, neg), pExpr
		}
	}
	// A predicate on other fields, a nested query, a bare value matched
	// against every field: unknown on fs.
	return nil, pTrue
}

func kqlLeaf(e kql.Expr, neg bool) kql.Expr {
	if neg {
		return &kql.NotExpr{X: e}
	}
	return e
}

// kqlAll is the conjunction of parts.
func kqlAll(parts []kql.Expr, kinds []pkind) (kql.Expr, pkind) {
	var keep []kql.Expr
	for i, k := range kinds {
		switch k {
		case pFalse:
			return nil, pFalse
		case pExpr:
			keep = append(keep, parts[i])
		}
	}
	switch len(keep) {
	case 0:
		return nil, pTrue
	case 1:
		return keep[0], pExpr
	}
	return &kql.AndExpr{Args: keep}, pExpr
}

// kqlAny is the disjunction of parts.
func kqlAny(parts []kql.Expr, kinds []pkind) (kql.Expr, pkind) {
	var keep []kql.Expr
	for i, k := range kinds {
		switch k {
		case pTrue:
			return nil, pTrue
		case pExpr:
			keep = append(keep, parts[i])
		}
	}
	switch len(keep) {
	case 0:
		return nil, pFalse
	case 1:
		return keep[0], pExpr
	}
	return &kql.OrExpr{Args: keep}, pExpr
}

// esqlProject projects the ES|QL condition e (negated when neg) onto fs,
// in negation normal form. ES|QL's logic has three values (null); De
// Morgan's laws hold in it, and a WHERE keeps a row only when its
// condition is true, so replacing an unknown predicate by true keeps
// every row the condition keeps.
func esqlProject(e esql.Expr, fs fieldSet, neg bool) (esql.Expr, pkind) {
	switch x := e.(type) {
	case *esql.BinaryExpr:
		if x.Op == esql.OpAnd || x.Op == esql.OpOr {
			a, ka := esqlProject(x.X, fs, neg)
			b, kb := esqlProject(x.Y, fs, neg)
			and := x.Op == esql.OpAnd
			if and != neg {
				return esqlAll(a, ka, b, kb)
			}
			return esqlAny(a, ka, b, kb)
		}
	case *esql.NotExpr:
		return esqlProject(x.X, fs, !neg)
	case *esql.LiteralExpr:
		if x.Kind == esql.LitBool {
			if x.Bool != neg {
				return nil, pTrue
			}
			return nil, pFalse
		}
		return nil, pTrue
	case *esql.CallExpr:
		if x.Name == "KQL" && len(x.Args) == 1 {
			if lit, ok := x.Args[0].(*esql.LiteralExpr); ok && lit.Kind == esql.LitString {
				q, err := kql.Parse(pos.NewSource("KQL()", lit.Str))
				if err != nil {
					return nil, pTrue
				}
				p, k := kqlProject(q, fs, neg)
				if k != pExpr {
					return nil, k
				}
				return &esql.CallExpr{Name: "KQL", Args: []esql.Expr{&esql.LiteralExpr{Kind: esql.LitString, Str: p.String()}}}, pExpr
			}
		}
		return nil, pTrue
	}
	// A predicate: kept when every field it reads is in fs and it calls no
	// function (whose value could depend on more than the fields: NOW()).
	known := true
	fields := 0
	esql.Walk(e, func(y esql.Expr) bool {
		switch y := y.(type) {
		case *esql.CallExpr:
			known = false
		case *esql.FieldExpr:
			fields++
			if !fs.has(y.Name) {
				known = false
			}
		}
		return known
	})
	if !known || fields == 0 {
		return nil, pTrue
	}
	if neg {
		return &esql.NotExpr{X: e}, pExpr
	}
	return e, pExpr
}

func esqlAll(a esql.Expr, ka pkind, b esql.Expr, kb pkind) (esql.Expr, pkind) {
	switch {
	case ka == pFalse || kb == pFalse:
		return nil, pFalse
	case ka == pTrue:
		return b, kb
	case kb == pTrue:
		return a, ka
	}
	return &esql.BinaryExpr{Op: esql.OpAnd, X: a, Y: b}, pExpr
}

func esqlAny(a esql.Expr, ka pkind, b esql.Expr, kb pkind) (esql.Expr, pkind) {
	switch {
	case ka == pTrue || kb == pTrue:
		return nil, pTrue
	case ka == pFalse:
		return b, kb
	case kb == pFalse:
		return a, ka
	}
	return &esql.BinaryExpr{Op: esql.OpOr, X: a, Y: b}, pExpr
}
