package esql

import (
	"math"
	"strconv"
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// LitKind is the type of a literal.
type LitKind uint8

// Literal kinds.
const (
	LitNull LitKind = iota
	LitString
	LitInt
	LitFloat
	LitBool
)

// LiteralExpr is a constant: null, a string, an integer, a decimal or a
// boolean. Integers too large for int64 become decimals, as in ES|QL.
type LiteralExpr struct {
	Kind  LitKind
	Str   string
	Int   int64
	Float float64
	Bool  bool
	Loc   pos.Span
}

// DurationExpr is a time span literal such as "1 hour" or "9 minutes". Unit
// is the canonical singular unit name: millisecond, second, minute, hour,
// day, week, month, quarter or year.
type DurationExpr struct {
	N    int64
	Unit string
	Loc  pos.Span
}

// FieldExpr is a reference to a column by name. Name is the full dotted
// name without backticks: `a.b` and a.b are the same column.
type FieldExpr struct {
	Name string
	Loc  pos.Span
}

// StarExpr is the "*" argument of COUNT(*).
type StarExpr struct {
	Loc pos.Span
}

// CallExpr is a function or aggregation call. Name is upper-case.
type CallExpr struct {
	Name    string
	NameLoc pos.Span
	Args    []Expr
	Loc     pos.Span
}

// UnaryOp is a prefix arithmetic operator.
type UnaryOp uint8

// Unary operators.
const (
	OpNeg UnaryOp = iota // -x
	OpPos                // +x
)

// UnaryExpr is -x or +x.
type UnaryExpr struct {
	Op  UnaryOp
	X   Expr
	Loc pos.Span
}

// NotExpr is NOT x.
type NotExpr struct {
	X   Expr
	Loc pos.Span
}

// BinaryOp is an infix operator.
type BinaryOp uint8

// Binary operators, by precedence group.
const (
	OpOr BinaryOp = iota
	OpAnd
	OpEq
	OpNeq
	OpLt
	OpLe
	OpGt
	OpGe
	OpAdd
	OpSub
	OpMul
	OpDiv
	OpMod
)

var binOpText = [...]string{
	OpOr: "OR", OpAnd: "AND", OpEq: "==", OpNeq: "!=", OpLt: "<", OpLe: "<=", OpGt: ">", OpGe: ">=",
	OpAdd: "+", OpSub: "-", OpMul: "*", OpDiv: "/", OpMod: "%",
}

// String returns the operator as written in canonical form.
func (op BinaryOp) String() string { return binOpText[op] }

// IsComparison reports whether op is ==, !=, <, <=, > or >=.
func (op BinaryOp) IsComparison() bool { return op >= OpEq && op <= OpGe }

// IsArithmetic reports whether op is +, -, *, / or %.
func (op BinaryOp) IsArithmetic() bool { return op >= OpAdd }

// BinaryExpr is X op Y.
type BinaryExpr struct {
	Op   BinaryOp
	X, Y Expr
	Loc  pos.Span
}

// InExpr is X [NOT] IN (list...).
type InExpr struct {
	X    Expr
	List []Expr
	Not  bool
	Loc  pos.Span
}

// LikeExpr is X [NOT] LIKE "pattern" or X [NOT] RLIKE "pattern".
type LikeExpr struct {
	X          Expr
	Pattern    string
	PatternLoc pos.Span
	Regex      bool // RLIKE
	Not        bool
	Loc        pos.Span
}

// IsNullExpr is X IS [NOT] NULL.
type IsNullExpr struct {
	X   Expr
	Not bool
	Loc pos.Span
}

// CastExpr is X::type. Type is lower-case (keyword, long, datetime, ...).
type CastExpr struct {
	X       Expr
	Type    string
	TypeLoc pos.Span
	Loc     pos.Span
}

func (*LiteralExpr) expr()  {}
func (*DurationExpr) expr() {}
func (*FieldExpr) expr()    {}
func (*StarExpr) expr()     {}
func (*CallExpr) expr()     {}
func (*UnaryExpr) expr()    {}
func (*NotExpr) expr()      {}
func (*BinaryExpr) expr()   {}
func (*InExpr) expr()       {}
func (*LikeExpr) expr()     {}
func (*IsNullExpr) expr()   {}
func (*CastExpr) expr()     {}

// Span returns the byte span of the literal.
func (e *LiteralExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span of the time span literal.
func (e *DurationExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span of the name, backticks included.
func (e *FieldExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span of the star.
func (e *StarExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span from the function name to the closing paren.
func (e *CallExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span of the operator and its operand.
func (e *UnaryExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span from NOT to the end of the operand.
func (e *NotExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span of both operands and the operator.
func (e *BinaryExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span from the operand to the closing paren.
func (e *InExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span from the operand to the pattern.
func (e *LikeExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span from the operand to NULL.
func (e *IsNullExpr) Span() pos.Span { return e.Loc }

// Span returns the byte span from the operand to the type name.
func (e *CastExpr) Span() pos.Span { return e.Loc }

// Precedence levels, lowest first. A child printed below the level its
// parent requires gets parentheses.
const (
	precOr = iota + 1
	precAnd
	precNot
	precPredicate // comparison, IN, LIKE, RLIKE, IS NULL
	precAdd
	precMul
	precUnary
	precPrimary
)

func prec(e Expr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		switch {
		case e.Op == OpOr:
			return precOr
		case e.Op == OpAnd:
			return precAnd
		case e.Op.IsComparison():
			return precPredicate
		case e.Op == OpAdd || e.Op == OpSub:
			return precAdd
		default:
			return precMul
		}
	case *NotExpr:
		return precNot
	case *InExpr, *LikeExpr, *IsNullExpr:
		return precPredicate
	case *UnaryExpr:
		return precUnary
	case *LiteralExpr:
		// A negative number prints with a sign; treat it like a unary minus.
		if e.Kind == LitInt && e.Int < 0 || e.Kind == LitFloat && math.Signbit(e.Float) {
			return precUnary
		}
	}
	return precPrimary
}

// sub renders e, parenthesised when its precedence is below min.
func sub(e Expr, min int) string {
	if prec(e) < min {
		return "(" + e.String() + ")"
	}
	return e.String()
}

// String renders the literal.
func (e *LiteralExpr) String() string {
	switch e.Kind {
	case LitString:
		return formatString(e.Str)
	case LitInt:
		return strconv.FormatInt(e.Int, 10)
	case LitFloat:
		return formatFloat(e.Float)
	case LitBool:
		if e.Bool {
			return "true"
		}
		return "false"
	}
	return "null"
}

func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") {
		s += ".0"
	}
	return s
}

// String renders the time span, e.g. "1 hour", "9 minutes".
func (e *DurationExpr) String() string {
	u := e.Unit
	if e.N != 1 {
		u += "s"
	}
	return strconv.FormatInt(e.N, 10) + " " + u
}

// String renders the column name, backtick-quoted when needed.
func (e *FieldExpr) String() string { return formatName(e.Name) }

// String renders "*".
func (e *StarExpr) String() string { return "*" }

// String renders NAME(args).
func (e *CallExpr) String() string { return e.Name + "(" + joinExprs(e.Args) + ")" }

// String renders -x or +x.
func (e *UnaryExpr) String() string {
	op := "-"
	if e.Op == OpPos {
		op = "+"
	}
	return op + sub(e.X, precUnary)
}

// String renders NOT x.
func (e *NotExpr) String() string { return "NOT " + sub(e.X, precNot) }

// String renders x op y with the parentheses the tree needs.
func (e *BinaryExpr) String() string {
	p := prec(e)
	left, right := p, p+1
	if e.Op.IsComparison() {
		// Comparisons do not chain: both operands are arithmetic.
		left, right = precAdd, precAdd
	}
	return sub(e.X, left) + " " + e.Op.String() + " " + sub(e.Y, right)
}

// String renders x [NOT] IN (list).
func (e *InExpr) String() string {
	op := " IN ("
	if e.Not {
		op = " NOT IN ("
	}
	return sub(e.X, precAdd) + op + joinExprs(e.List) + ")"
}

// String renders x [NOT] LIKE|RLIKE "pattern".
func (e *LikeExpr) String() string {
	var b strings.Builder
	b.WriteString(sub(e.X, precAdd))
	if e.Not {
		b.WriteString(" NOT")
	}
	if e.Regex {
		b.WriteString(" RLIKE ")
	} else {
		b.WriteString(" LIKE ")
	}
	b.WriteString(formatString(e.Pattern))
	return b.String()
}

// String renders x IS [NOT] NULL.
func (e *IsNullExpr) String() string {
	if e.Not {
		return sub(e.X, precAdd) + " IS NOT NULL"
	}
	return sub(e.X, precAdd) + " IS NULL"
}

// String renders x::type.
func (e *CastExpr) String() string { return sub(e.X, precPrimary) + "::" + e.Type }
