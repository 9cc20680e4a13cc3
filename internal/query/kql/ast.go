package kql

import "github.com/kanon-dev/kanon/internal/pos"

// Expr is a KQL expression. The set of implementations is closed: *OrExpr,
// *AndExpr, *NotExpr, *FieldExpr, *RangeExpr, *NestedExpr, *ValueExpr and
// *MatchAllExpr.
//
// Inside the Values of a FieldExpr only *OrExpr, *AndExpr, *NotExpr and
// *ValueExpr occur ("field:(a or not b)"); elsewhere a *ValueExpr is a bare
// value without a field.
type Expr interface {
	// Span is the byte range of the expression in its source.
	Span() pos.Span
	// String is the canonical KQL text of the expression (see String).
	String() string
	expr()
}

// OrExpr is "a or b or ...": it matches when any argument matches.
// Args has at least two elements; "a or (b or c)" keeps its nesting.
type OrExpr struct {
	Args []Expr
	Sp   pos.Span
}

// AndExpr is "a and b and ...": it matches when every argument matches.
// Args has at least two elements.
type AndExpr struct {
	Args []Expr
	Sp   pos.Span
}

// NotExpr is "not x".
type NotExpr struct {
	X  Expr
	Sp pos.Span
}

// FieldExpr is "field:values". Values is a *ValueExpr or an *OrExpr,
// *AndExpr or *NotExpr tree of *ValueExprs, as in "field:(a or b and not c)";
// Kibana distributes the field over the tree, so that tree is equivalent to
// "field:a or field:b and not field:c".
type FieldExpr struct {
	Field  Literal
	Values Expr
	Sp     pos.Span
}

// RangeOp is a range operator.
type RangeOp uint8

// Range operators.
const (
	OpLT  RangeOp = iota + 1 // <
	OpLTE                    // <=
	OpGT                     // >
	OpGTE                    // >=
)

// String returns the operator as written in KQL.
func (o RangeOp) String() string {
	switch o {
	case OpLT:
		return "<"
	case OpLTE:
		return "<="
	case OpGT:
		return ">"
	case OpGTE:
		return ">="
	}
	return "?"
}

// RangeExpr is "field < value" (or <=, >, >=).
type RangeExpr struct {
	Field Literal
	Op    RangeOp
	Value Literal
	Sp    pos.Span
}

// NestedExpr is "path:{ query }", a query on the objects of a nested field.
// Field names inside Query are relative to Path.
type NestedExpr struct {
	Path  Literal
	Query Expr
	Sp    pos.Span
}

// ValueExpr is one value: an element of a FieldExpr's Values, or, elsewhere,
// a bare value that Elasticsearch matches against all default fields.
type ValueExpr struct {
	Value Literal
}

// MatchAllExpr is the empty query, which matches every document.
type MatchAllExpr struct {
	Sp pos.Span
}

// Literal is a field name or a value as written: quoted, unquoted, or an
// unquoted wildcard pattern.
type Literal struct {
	// Value is the unescaped text. For a wildcard, each wildcard is shown as
	// "*" (use Parts to tell it from an escaped "\*").
	Value string
	// Parts is nil unless the literal is a wildcard pattern (an unquoted
	// literal with an unescaped "*"); then it holds the literal text between
	// the wildcards, so "*a*b" has Parts ["", "a", "b"] and "*" has ["", ""].
	Parts []string
	// Quoted reports a "quoted string": a phrase, never a wildcard.
	Quoted bool
	// Sp is the literal's byte range, quotes included, surrounding spaces
	// excluded.
	Sp pos.Span
}

// IsWildcard reports whether l is a wildcard pattern.
func (l Literal) IsWildcard() bool { return l.Parts != nil }

// IsStar reports whether l is the lone unquoted wildcard "*" (as a value:
// "the field exists"; as a field: "any field").
func (l Literal) IsStar() bool { return len(l.Parts) == 2 && l.Parts[0] == "" && l.Parts[1] == "" }

// Span returns the expression's byte range.
func (e *OrExpr) Span() pos.Span { return e.Sp }

// Span returns the expression's byte range.
func (e *AndExpr) Span() pos.Span { return e.Sp }

// Span returns the expression's byte range.
func (e *NotExpr) Span() pos.Span { return e.Sp }

// Span returns the expression's byte range.
func (e *FieldExpr) Span() pos.Span { return e.Sp }

// Span returns the expression's byte range.
func (e *RangeExpr) Span() pos.Span { return e.Sp }

// Span returns the expression's byte range.
func (e *NestedExpr) Span() pos.Span { return e.Sp }

// Span returns the value's byte range.
func (e *ValueExpr) Span() pos.Span { return e.Value.Sp }

// Span returns the (empty or all-whitespace) query's byte range.
func (e *MatchAllExpr) Span() pos.Span { return e.Sp }

func (*OrExpr) expr()       {}
func (*AndExpr) expr()      {}
func (*NotExpr) expr()      {}
func (*FieldExpr) expr()    {}
func (*RangeExpr) expr()    {}
func (*NestedExpr) expr()   {}
func (*ValueExpr) expr()    {}
func (*MatchAllExpr) expr() {}

// Walk calls fn for e and, while fn returns true, for its sub-expressions in
// depth-first order.
func Walk(e Expr, fn func(Expr) bool) {
	if e == nil || !fn(e) {
		return
	}
	switch e := e.(type) {
	case *OrExpr:
		for _, a := range e.Args {
			Walk(a, fn)
		}
	case *AndExpr:
		for _, a := range e.Args {
			Walk(a, fn)
		}
	case *NotExpr:
		Walk(e.X, fn)
	case *FieldExpr:
		Walk(e.Values, fn)
	case *NestedExpr:
		Walk(e.Query, fn)
	}
}
