package explain

import (
	"strconv"
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/eval/wildcard"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// Kind is the kind of match of a predicate.
type Kind string

// Kinds of match. The first seven are what catalogues list; regex, cidr
// and expr cover the rest of ES|QL.
const (
	KindEq         Kind = "eq"          // equals one of Values
	KindStartsWith Kind = "starts_with" // starts with one of Values
	KindEndsWith   Kind = "ends_with"   // ends with one of Values
	KindContains   Kind = "contains"    // contains one of Values
	KindWildcard   Kind = "wildcard"    // matches one of the patterns in Values (* and ?)
	KindExists     Kind = "exists"      // has a value (Values empty)
	KindRange      Kind = "range"       // Values are "<op> <value>" bounds, all must hold
	KindRegex      Kind = "regex"       // matches the regular expression in Values
	KindCIDR       Kind = "cidr"        // an address in one of the blocks in Values
)

// Predicate is an atomic test of one field against literal values.
type Predicate struct {
	// Field is the ECS field name (or, with Column, a computed column).
	Field string `json:"field"`
	// Func is a function applied to the field before the match
	// ("MV_FIRST", "MV_COUNT", "TO_LOWER", ...), or "".
	Func string `json:"func,omitempty"`
	Kind Kind   `json:"kind"`
	// Values are the literal values as written, unquoted (none for exists).
	Values []string `json:"values,omitempty"`
	// Column is set when Field names a column computed by the query (EVAL,
	// STATS) rather than an event field.
	Column bool `json:"column,omitempty"`
	// KQL is set for a predicate of KQL (also inside ES|QL's KQL()), which
	// matches analyzed text fields case-insensitively.
	KQL bool `json:"-"`
	// Patterns are the parsed patterns of a KindWildcard predicate, one
	// per value (as the language reads them: KQL's "?" is a literal
	// character, LIKE's a wildcard).
	Patterns []wildcard.Pattern `json:"-"`

	// Span is the predicate's span in the query source; ValueSpans the
	// span of each value (same length as Values).
	Span       pos.Span   `json:"-"`
	ValueSpans []pos.Span `json:"-"`
}

// Subject renders the field with its function: "MV_FIRST(f)" or "f".
func (p *Predicate) Subject() string {
	if p.Func == "" {
		return p.Field
	}
	return p.Func + "(" + p.Field + ")"
}

// Op is the operator of a Node.
type Op uint8

// Node operators.
const (
	OpPred  Op = iota // an atomic predicate (Pred)
	OpAnd             // every Arg
	OpOr              // any Arg
	OpNot             // not Args[0]
	OpOther           // an expression that is not a predicate (Text)
)

// Node is a boolean expression reduced to AND, OR, NOT and predicates.
type Node struct {
	Op   Op
	Args []*Node
	Pred *Predicate
	// Text is the canonical text of the expression the node stands for.
	Text string
	Span pos.Span
}

// Preds calls fn with every predicate under n and whether it sits under an
// odd number of NOTs.
func (n *Node) Preds(fn func(p *Predicate, negated bool)) { n.preds(false, fn) }

func (n *Node) preds(neg bool, fn func(*Predicate, bool)) {
	switch n.Op {
	case OpPred:
		fn(n.Pred, neg)
	case OpNot:
		n.Args[0].preds(!neg, fn)
	default:
		for _, a := range n.Args {
			a.preds(neg, fn)
		}
	}
}

// Conjuncts returns the top-level conjuncts of n (n itself unless it is an
// AND).
func (n *Node) Conjuncts() []*Node {
	if n.Op == OpAnd {
		var out []*Node
		for _, a := range n.Args {
			out = append(out, a.Conjuncts()...)
		}
		return out
	}
	return []*Node{n}
}

// Disjuncts returns the top-level disjuncts of n (n itself unless it is an
// OR).
func (n *Node) Disjuncts() []*Node {
	if n.Op == OpOr {
		var out []*Node
		for _, a := range n.Args {
			out = append(out, a.Disjuncts()...)
		}
		return out
	}
	return []*Node{n}
}

func notNode(x *Node, text string, sp pos.Span) *Node {
	return &Node{Op: OpNot, Args: []*Node{x}, Text: text, Span: sp}
}

// ---- KQL ----

// FromKQL reduces a KQL query to a Node.
func FromKQL(e kql.Expr) *Node {
	n := fromKQL(e, "")
	n.Preds(func(p *Predicate, _ bool) { p.KQL = true })
	return n
}

func fromKQL(e kql.Expr, prefix string) *Node {
	switch x := e.(type) {
	case *kql.OrExpr:
		n := &Node{Op: OpOr, Text: x.String(), Span: x.Sp}
		for _, a := range x.Args {
			n.Args = append(n.Args, fromKQL(a, prefix))
		}
		return n
	case *kql.AndExpr:
		n := &Node{Op: OpAnd, Text: x.String(), Span: x.Sp}
		for _, a := range x.Args {
			n.Args = append(n.Args, fromKQL(a, prefix))
		}
		return n
	case *kql.NotExpr:
		return notNode(fromKQL(x.X, prefix), x.String(), x.Sp)
	case *kql.FieldExpr:
		return kqlValues(prefix+x.Field.Value, x.Values, x)
	case *kql.RangeExpr:
		p := &Predicate{Field: prefix + x.Field.Value, Kind: KindRange, Values: []string{x.Op.String() + " " + x.Value.Value},
			Span: x.Sp, ValueSpans: []pos.Span{x.Value.Sp}}
		return &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Sp}
	case *kql.NestedExpr:
		return fromKQL(x.Query, prefix+x.Path.Value+".")
	case *kql.ValueExpr:
		kind, v := literalKind(x.Value)
		p := &Predicate{Field: "*", Kind: kind, Values: []string{v}, Span: x.Span(), ValueSpans: []pos.Span{x.Value.Sp}}
		if kind == KindWildcard {
			p.Patterns = []wildcard.Pattern{wildcard.Parts(x.Value.Parts)}
		}
		return &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Span()}
	case *kql.MatchAllExpr:
		return &Node{Op: OpOther, Text: "*", Span: x.Sp}
	}
	return &Node{Op: OpOther, Text: e.String(), Span: e.Span()}
}

// literalKind classifies a KQL value: a quoted phrase or plain value is
// eq; "*" is exists; prefix*, *suffix and *infix* are starts_with,
// ends_with and contains; other patterns are wildcard.
func literalKind(l kql.Literal) (Kind, string) {
	if !l.IsWildcard() {
		return KindEq, l.Value
	}
	if l.IsStar() {
		return KindExists, ""
	}
	return patternKind(wildcard.Parts(l.Parts), l.Value)
}

// patternKind maps the kind of a wildcard pattern to a kind of match: the
// literal of an exact value, a prefix, a suffix or an infix, or the
// pattern as written.
func patternKind(p wildcard.Pattern, written string) (Kind, string) {
	switch p.Kind() {
	case wildcard.Exact:
		return KindEq, p.Literal()
	case wildcard.Prefix:
		return KindStartsWith, p.Literal()
	case wildcard.Suffix:
		return KindEndsWith, p.Literal()
	case wildcard.Contains:
		return KindContains, p.Literal()
	}
	return KindWildcard, written
}

// kqlValues turns "field:values" into a predicate, or a tree of them when
// the values mix kinds or use and/not.
func kqlValues(field string, v kql.Expr, fe *kql.FieldExpr) *Node {
	if vals, ok := flatOr(v); ok {
		var p *Predicate
		for _, ve := range vals {
			kind, s := literalKind(ve.Value)
			if p == nil {
				p = &Predicate{Field: field, Kind: kind, Span: fe.Sp}
			} else if p.Kind != kind || kind == KindExists {
				p = nil
				break
			}
			if kind != KindExists {
				p.Values = append(p.Values, s)
				p.ValueSpans = append(p.ValueSpans, ve.Value.Sp)
			}
			if kind == KindWildcard {
				p.Patterns = append(p.Patterns, wildcard.Parts(ve.Value.Parts))
			}
		}
		if p != nil {
			return &Node{Op: OpPred, Pred: p, Text: fe.String(), Span: fe.Sp}
		}
	}
	switch x := v.(type) {
	case *kql.OrExpr:
		n := &Node{Op: OpOr, Text: fe.String(), Span: fe.Sp}
		for _, a := range x.Args {
			n.Args = append(n.Args, kqlValues(field, a, &kql.FieldExpr{Field: fe.Field, Values: a, Sp: a.Span()}))
		}
		return n
	case *kql.AndExpr:
		n := &Node{Op: OpAnd, Text: fe.String(), Span: fe.Sp}
		for _, a := range x.Args {
			n.Args = append(n.Args, kqlValues(field, a, &kql.FieldExpr{Field: fe.Field, Values: a, Sp: a.Span()}))
		}
		return n
	case *kql.NotExpr:
		inner := kqlValues(field, x.X, &kql.FieldExpr{Field: fe.Field, Values: x.X, Sp: x.X.Span()})
		return notNode(inner, fe.String(), fe.Sp)
	}
	return &Node{Op: OpOther, Text: fe.String(), Span: fe.Sp}
}

// flatOr returns the values of v when it is one value or an OR of values.
func flatOr(v kql.Expr) ([]*kql.ValueExpr, bool) {
	switch x := v.(type) {
	case *kql.ValueExpr:
		return []*kql.ValueExpr{x}, true
	case *kql.OrExpr:
		var out []*kql.ValueExpr
		for _, a := range x.Args {
			vs, ok := flatOr(a)
			if !ok {
				return nil, false
			}
			out = append(out, vs...)
		}
		return out, true
	}
	return nil, false
}

// ---- ES|QL ----

// Where is one WHERE command of an ES|QL query, reduced.
type Where struct {
	Cmd *esql.WhereCmd
	// AfterStats is set for a WHERE after the first STATS: it tests
	// aggregated columns, not events.
	AfterStats bool
	Node       *Node
}

// Wheres reduces the WHERE commands of an ES|QL query, in order. lin is
// what the compiler derived about the query's columns (Program.Lineage,
// or esqleval.Analyze for a query that was not compiled): a column that
// EVAL computes from a field (or a function of one) resolves to that
// field, a renamed column to what it renames, and other computed columns
// (and every column after STATS) are marked Column. A reference lin does
// not resolve is taken as the event field it names.
func Wheres(q *esql.Query, lin *esqleval.Lineage) []Where { return reduce(q, lin, false) }

// Tests reduces every boolean test of an ES|QL query: the WHERE commands
// (Cmd set) and the boolean expressions inside EVAL and STATS, such as the
// conditions of CASE (Cmd nil, Node the maximal boolean subexpression).
// lin is as for Wheres.
func Tests(q *esql.Query, lin *esqleval.Lineage) []Where { return reduce(q, lin, true) }

// isBoolean reports whether e is a boolean test the reduction understands.
func isBoolean(e esql.Expr) bool {
	switch x := e.(type) {
	case *esql.BinaryExpr:
		return x.Op == esql.OpAnd || x.Op == esql.OpOr || x.Op.IsComparison()
	case *esql.NotExpr, *esql.InExpr, *esql.LikeExpr, *esql.IsNullExpr:
		return true
	case *esql.CallExpr:
		switch x.Name {
		case "STARTS_WITH", "ENDS_WITH", "MV_CONTAINS", "CIDR_MATCH", "KQL":
			return true
		}
	}
	return false
}

// embedded appends the maximal boolean subexpressions of e, reduced.
func (cv *esqlConv) embedded(e esql.Expr, out []Where) []Where {
	esql.Walk(e, func(x esql.Expr) bool {
		if isBoolean(x) {
			out = append(out, Where{AfterStats: cv.after, Node: cv.node(x)})
			return false
		}
		return true
	})
	return out
}

func reduce(q *esql.Query, lin *esqleval.Lineage, all bool) []Where {
	var out []Where
	after := false
	for _, c := range q.Commands {
		cv := &esqlConv{src: q.Src, lin: lin, after: after}
		switch x := c.(type) {
		case *esql.WhereCmd:
			out = append(out, Where{Cmd: x, AfterStats: after, Node: cv.node(x.Cond)})
		case *esql.EvalCmd:
			if all {
				for _, a := range x.Fields {
					out = cv.embedded(a.X, out)
				}
			}
		case *esql.StatsCmd:
			if all {
				for _, a := range x.Aggs {
					out = cv.embedded(a.X, out)
					if a.Where != nil {
						out = append(out, Where{AfterStats: after, Node: cv.node(a.Where)})
					}
				}
			}
			after = true
		}
	}
	return out
}

// unwrapCoalesce returns x of COALESCE(x, literal...), else e.
func unwrapCoalesce(e esql.Expr) esql.Expr {
	c, ok := e.(*esql.CallExpr)
	if !ok || c.Name != "COALESCE" || len(c.Args) < 2 {
		return e
	}
	if _, _, ok := literals(c.Args[1:]); !ok {
		return e
	}
	return c.Args[0]
}

type esqlConv struct {
	src   *pos.Source
	lin   *esqleval.Lineage
	after bool
}

func (cv *esqlConv) node(e esql.Expr) *Node {
	switch x := e.(type) {
	case *esql.BinaryExpr:
		switch x.Op {
		case esql.OpAnd, esql.OpOr:
			op := OpAnd
			if x.Op == esql.OpOr {
				op = OpOr
			}
			return &Node{Op: op, Args: []*Node{cv.node(x.X), cv.node(x.Y)}, Text: x.String(), Span: x.Loc}
		}
		if x.Op.IsComparison() {
			if n := cv.comparison(x); n != nil {
				return n
			}
		}
	case *esql.NotExpr:
		return notNode(cv.node(x.X), x.String(), x.Loc)
	case *esql.InExpr:
		if p := cv.subject(x.X); p != nil {
			vals, spans, ok := literals(x.List)
			if ok {
				p.Kind, p.Values, p.ValueSpans, p.Span = KindEq, vals, spans, x.Loc
				n := &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Loc}
				if x.Not {
					return notNode(n, x.String(), x.Loc)
				}
				return n
			}
		}
	case *esql.LikeExpr:
		if p := cv.subject(x.X); p != nil {
			p.Span = x.Loc
			p.ValueSpans = []pos.Span{x.PatternLoc}
			if x.Regex {
				p.Kind, p.Values = KindRegex, []string{x.Pattern}
			} else {
				pat := esqleval.LikePattern(x.Pattern)
				k, v := patternKind(pat, x.Pattern)
				p.Kind, p.Values = k, []string{v}
				if k == KindWildcard {
					p.Patterns = []wildcard.Pattern{pat}
				}
			}
			n := &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Loc}
			if x.Not {
				return notNode(n, x.String(), x.Loc)
			}
			return n
		}
	case *esql.IsNullExpr:
		if p := cv.subject(x.X); p != nil {
			p.Kind, p.Span = KindExists, x.Loc
			n := &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Loc}
			if !x.Not {
				return notNode(n, x.String(), x.Loc)
			}
			return n
		}
	case *esql.CallExpr:
		if n := cv.call(x); n != nil {
			return n
		}
	}
	return &Node{Op: OpOther, Text: e.String(), Span: e.Span()}
}

// call reduces STARTS_WITH, ENDS_WITH, MV_CONTAINS, CIDR_MATCH and KQL.
func (cv *esqlConv) call(x *esql.CallExpr) *Node {
	switch x.Name {
	case "STARTS_WITH", "ENDS_WITH", "MV_CONTAINS", "CIDR_MATCH":
		if len(x.Args) < 2 {
			return nil
		}
		p := cv.subject(x.Args[0])
		if p == nil {
			return nil
		}
		vals, spans, ok := literals(x.Args[1:])
		if !ok {
			return nil
		}
		p.Kind = map[string]Kind{"STARTS_WITH": KindStartsWith, "ENDS_WITH": KindEndsWith, "MV_CONTAINS": KindEq, "CIDR_MATCH": KindCIDR}[x.Name]
		p.Values, p.ValueSpans, p.Span = vals, spans, x.Loc
		return &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Loc}
	case "KQL":
		if len(x.Args) != 1 {
			return nil
		}
		lit, ok := x.Args[0].(*esql.LiteralExpr)
		if !ok || lit.Kind != esql.LitString {
			return nil
		}
		e, err := kql.ParseString(lit.Str)
		if err != nil {
			return nil
		}
		n := FromKQL(e)
		if off, ok := cv.rawOffset(lit); ok {
			shift(n, off)
		} else {
			placeAt(n, x.Loc)
		}
		return n
	}
	return nil
}

// rawOffset returns where the text of a string literal starts in the
// query source, when its characters map one to one (a """raw""" string, or
// a quoted one without escapes).
func (cv *esqlConv) rawOffset(l *esql.LiteralExpr) (int, bool) {
	if cv.src == nil || l.Loc.End > len(cv.src.Text) || l.Loc.Start < 0 {
		return 0, false
	}
	text := cv.src.Text[l.Loc.Start:l.Loc.End]
	switch {
	case strings.HasPrefix(text, `"""`):
		return l.Loc.Start + 3, true
	case strings.HasPrefix(text, `"`) && !strings.Contains(text, `\`):
		return l.Loc.Start + 1, true
	}
	return 0, false
}

// shift moves every span of a tree by off.
func shift(n *Node, off int) {
	mv := func(sp pos.Span) pos.Span { return pos.Span{Start: sp.Start + off, End: sp.End + off} }
	n.Span = mv(n.Span)
	if n.Pred != nil {
		n.Pred.Span = mv(n.Pred.Span)
		for i := range n.Pred.ValueSpans {
			n.Pred.ValueSpans[i] = mv(n.Pred.ValueSpans[i])
		}
	}
	for _, a := range n.Args {
		shift(a, off)
	}
}

// placeAt gives every node of a tree parsed from a string literal the span
// of the literal's call (their own spans index the literal's text).
func placeAt(n *Node, sp pos.Span) {
	n.Span = sp
	if n.Pred != nil {
		n.Pred.Span = sp
		for i := range n.Pred.ValueSpans {
			n.Pred.ValueSpans[i] = sp
		}
	}
	for _, a := range n.Args {
		placeAt(a, sp)
	}
}

// comparison reduces "subject op literal" (or "literal op subject").
func (cv *esqlConv) comparison(x *esql.BinaryExpr) *Node {
	op := x.Op
	subj, lit := x.X, x.Y
	if _, ok := subj.(*esql.LiteralExpr); ok {
		subj, lit = lit, subj
		op = flip(op)
	}
	p := cv.subject(subj)
	if p == nil {
		return nil
	}
	vals, spans, ok := literals([]esql.Expr{lit})
	if !ok {
		return nil
	}
	p.Span, p.ValueSpans = x.Loc, spans
	switch op {
	case esql.OpEq, esql.OpNeq:
		p.Kind, p.Values = KindEq, vals
	default:
		p.Kind, p.Values = KindRange, []string{op.String() + " " + vals[0]}
	}
	n := &Node{Op: OpPred, Pred: p, Text: x.String(), Span: x.Loc}
	if op == esql.OpNeq {
		return notNode(n, x.String(), x.Loc)
	}
	return n
}

func flip(op esql.BinaryOp) esql.BinaryOp {
	switch op {
	case esql.OpLt:
		return esql.OpGt
	case esql.OpLe:
		return esql.OpGe
	case esql.OpGt:
		return esql.OpLt
	case esql.OpGe:
		return esql.OpLe
	}
	return op
}

// subjectFuncs are the functions of one field that a predicate may apply
// before matching.
var subjectFuncs = map[string]bool{
	"MV_FIRST": true, "MV_LAST": true, "MV_COUNT": true, "MV_MIN": true, "MV_MAX": true, "MV_DEDUPE": true,
	"TO_LOWER": true, "TO_UPPER": true, "TO_STRING": true, "TO_IP": true, "TO_LONG": true, "TO_INTEGER": true,
	"LENGTH": true, "TRIM": true, "URL_DECODE": true,
}

// subject returns a predicate stub for a field or a function of one
// field; after STATS it is always a Column.
func (cv *esqlConv) subject(e esql.Expr) *Predicate {
	p := cv.ofField(e)
	if p != nil && cv.after {
		p.Column = true
	}
	return p
}

// ofField returns a predicate stub for a field or a function of one field
// (Column set when the field is a column the query computes).
func (cv *esqlConv) ofField(e esql.Expr) *Predicate {
	switch x := e.(type) {
	case *esql.FieldExpr:
		return cv.column(x)
	case *esql.CastExpr:
		return cv.ofField(x.X)
	case *esql.CallExpr:
		if subjectFuncs[x.Name] && len(x.Args) == 1 {
			p := cv.ofField(x.Args[0])
			if p != nil && p.Func == "" {
				p.Func = x.Name
				return p
			}
		}
	}
	return nil
}

// column resolves a column reference with the compiler's lineage: an event
// field (renamed or expanded, possibly), a column that EVAL computes from
// a field or a function of one (EVAL x = field, x = MV_FIRST(field), x =
// COALESCE(MV_COUNT(field), 0)), or the group of a STATS ... BY such a
// column stand for that field; anything else is a Column named as the
// reference.
func (cv *esqlConv) column(x *esql.FieldExpr) *Predicate {
	c, ok := cv.lin.Ref(x)
	if !ok {
		return &Predicate{Field: x.Name}
	}
	for c.Of != nil && (c.Origin == esqleval.OriginRename || c.Origin == esqleval.OriginExpand) {
		c = c.Of
	}
	switch c.Origin {
	case esqleval.OriginEvent:
		return &Predicate{Field: c.Field.Name}
	case esqleval.OriginMetadata:
		return &Predicate{Field: c.Name}
	case esqleval.OriginEval:
		if p := cv.ofField(unwrapCoalesce(c.Expr)); p != nil && !p.Column {
			return p
		}
	case esqleval.OriginStats:
		if f, ok := c.Expr.(*esql.FieldExpr); ok {
			if p := cv.column(f); !p.Column {
				return p
			}
		}
	}
	return &Predicate{Field: x.Name, Column: true}
}

// literals returns the text of literal expressions (strings unquoted).
func literals(xs []esql.Expr) ([]string, []pos.Span, bool) {
	vals := make([]string, 0, len(xs))
	spans := make([]pos.Span, 0, len(xs))
	for _, e := range xs {
		l, ok := e.(*esql.LiteralExpr)
		if !ok {
			return nil, nil, false
		}
		switch l.Kind {
		case esql.LitString:
			vals = append(vals, l.Str)
		case esql.LitInt:
			vals = append(vals, strconv.FormatInt(l.Int, 10))
		case esql.LitNull:
			vals = append(vals, "null")
		default:
			vals = append(vals, l.String())
		}
		spans = append(spans, l.Loc)
	}
	return vals, spans, true
}
