package kqleval

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"unicode"

	"github.com/kanon-dev/kanon/internal/eval/wildcard"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// Compile error categories; a compile error is a *pos.Error (in a
// *pos.ErrorList) whose Code is one of these.
var (
	// ErrBareValue: a value without a field ("foo" rather than "field:foo")
	// and no WithDefaultFields option.
	ErrBareValue = errors.New("kqleval: bare value needs a field")
	// ErrType: a value that the field's type cannot hold ("abc" for a long,
	// "x" for an ip); Elasticsearch rejects such queries.
	ErrType = errors.New("kqleval: value does not fit the field type")
	// ErrUnsupported: a query kanon does not evaluate (nested queries, date
	// math, wildcards on numbers, dates and addresses, ranges on booleans).
	ErrUnsupported = errors.New("kqleval: unsupported query")
)

// Option configures Compile.
type Option func(*options) error

type options struct {
	src           *pos.Source
	defaultFields []event.Field
	hasDefaults   bool
}

// WithSource names the source the expression was parsed from, so that
// compile errors carry file, line and column. Without it errors have no
// source and print as line 1, column 1.
func WithSource(src *pos.Source) Option {
	return func(o *options) error {
		if src == nil {
			return errors.New("kqleval: WithSource: nil source")
		}
		o.src = src
		return nil
	}
}

// WithDefaultFields lets bare values ("foo" with no field) match in the
// given fields, like Elasticsearch's default_field: a bare value v is
// evaluated as "f1:v or f2:v or ...", skipping fields whose type cannot hold
// v. Names may hold "*" wildcards (event.Expand). Without this option a bare
// value is a compile error (ErrBareValue).
func WithDefaultFields(names ...string) Option {
	return func(o *options) error {
		if len(names) == 0 {
			return errors.New("kqleval: WithDefaultFields: no field names")
		}
		for _, n := range names {
			if n == "" {
				return errors.New("kqleval: WithDefaultFields: empty field name")
			}
			o.defaultFields = append(o.defaultFields, event.Expand(n)...)
		}
		o.hasDefaults = true
		return nil
	}
}

// Matcher is a KQL query compiled for events. It is immutable and safe for
// concurrent use; Match allocates nothing once its pooled scratch buffers
// have grown.
type Matcher struct {
	root     node
	fields   event.FieldSet
	required []Requirement
	query    string
	pool     sync.Pool
}

// Compile compiles a parsed KQL expression. Field names are resolved with
// event.Lookup (and event.Expand for wildcards) and values are checked
// against the field types once, here; see the package documentation for the
// semantics. Errors are positioned (see WithSource) and categorised with
// ErrBareValue, ErrType and ErrUnsupported.
func Compile(expr kql.Expr, opts ...Option) (*Matcher, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if expr == nil {
		return nil, errors.New("kqleval: Compile: nil expression")
	}
	c := &compiler{opts: &o}
	root := c.expr(expr)
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	m := &Matcher{root: root, fields: c.fields, query: kql.String(expr)}
	m.required = required(expr)
	m.pool.New = func() any { return &scratch{vals: make([]event.Value, 0, 8)} }
	return m, nil
}

// Match reports whether e matches the query. e is only read.
func (m *Matcher) Match(e *event.Event) bool {
	s := m.pool.Get().(*scratch)
	ok := m.root.match(e, s)
	m.pool.Put(s)
	return ok
}

// Fields returns the fields Match reads.
func (m *Matcher) Fields() event.FieldSet { return m.fields }

// String returns the canonical text of the compiled query.
func (m *Matcher) String() string { return m.query }

type compiler struct {
	opts   *options
	errs   pos.ErrorList
	fields event.FieldSet
}

func (c *compiler) errorf(sp pos.Span, code error, format string, args ...any) {
	c.errs.Add(pos.Errorf(c.opts.src, sp, code, format, args...))
}

func (c *compiler) expr(e kql.Expr) node {
	switch e := e.(type) {
	case *kql.OrExpr:
		kids := make(orNode, 0, len(e.Args))
		for _, a := range e.Args {
			kids = append(kids, c.expr(a))
		}
		return kids
	case *kql.AndExpr:
		kids := make(andNode, 0, len(e.Args))
		for _, a := range e.Args {
			kids = append(kids, c.expr(a))
		}
		return kids
	case *kql.NotExpr:
		return notNode{c.expr(e.X)}
	case *kql.MatchAllExpr:
		return constNode(true)
	case *kql.NestedExpr:
		c.errorf(e.Sp, ErrUnsupported, "cannot evaluate nested query on %q: kanon's schema has no nested fields", e.Path.Value)
		return constNode(false)
	case *kql.FieldExpr:
		return c.fieldExpr(e)
	case *kql.RangeExpr:
		return c.rangeExpr(e)
	case *kql.ValueExpr:
		if !c.opts.hasDefaults {
			c.errorf(e.Span(), ErrBareValue, "bare value %s needs a field (write field:%s)", e.Value.String(), e.Value.String())
			return constNode(false)
		}
		return c.onFields(c.opts.defaultFields, true, func(f event.Field) (node, bool) {
			return c.leaf(e.Value, f, true)
		})
	}
	c.errorf(e.Span(), ErrUnsupported, "BUG: unknown KQL expression %T", e)
	return constNode(false)
}

// resolve returns the fields a field literal names and whether the query is
// lenient on them (wildcard field names skip fields that cannot hold the
// value, as Kibana's multi-field expansion effectively does).
func (c *compiler) resolve(l kql.Literal) ([]event.Field, bool) {
	switch {
	case l.IsStar():
		return event.Schema(), true
	case l.IsWildcard():
		return event.Expand(l.Value), true
	}
	return []event.Field{event.Lookup(l.Value)}, false
}

// onFields ors the nodes built for each field.
func (c *compiler) onFields(fields []event.Field, lenient bool, build func(event.Field) (node, bool)) node {
	var kids orNode
	for _, f := range fields {
		n, ok := build(f)
		if !ok {
			continue
		}
		c.fields.Add(f)
		kids = append(kids, n)
	}
	switch len(kids) {
	case 0:
		return constNode(false)
	case 1:
		return kids[0]
	}
	return kids
}

func (c *compiler) fieldExpr(fe *kql.FieldExpr) node {
	if v, ok := fe.Values.(*kql.ValueExpr); ok && fe.Field.IsStar() && v.Value.IsStar() {
		return constNode(true) // *:* is match_all
	}
	fields, lenient := c.resolve(fe.Field)
	return c.onFields(fields, lenient, func(f event.Field) (node, bool) {
		return c.values(fe.Values, f, lenient)
	})
}

// values compiles a value list for field f; ok is false when a lenient
// field cannot hold some value.
func (c *compiler) values(e kql.Expr, f event.Field, lenient bool) (node, bool) {
	switch e := e.(type) {
	case *kql.ValueExpr:
		return c.leaf(e.Value, f, lenient)
	case *kql.NotExpr:
		x, ok := c.values(e.X, f, lenient)
		return notNode{x}, ok
	case *kql.AndExpr:
		kids := make(andNode, 0, len(e.Args))
		for _, a := range e.Args {
			k, ok := c.values(a, f, lenient)
			if !ok {
				return nil, false
			}
			kids = append(kids, k)
		}
		return kids, true
	case *kql.OrExpr:
		kids := make(orNode, 0, len(e.Args))
		for _, a := range e.Args {
			k, ok := c.values(a, f, lenient)
			if !ok {
				return nil, false
			}
			kids = append(kids, k)
		}
		return mergeOr(kids), true
	}
	c.errorf(e.Span(), ErrUnsupported, "BUG: %T in a value list", e)
	return constNode(false), true
}

// mergeOr joins the value tests of one field under an "or" into one node,
// so the field is read once and exact values become one set.
func mergeOr(kids orNode) node {
	var any *anyNode
	var text *textNode
	var rest orNode
	var exact []string
	for _, k := range kids {
		switch k := k.(type) {
		case *anyNode:
			if any == nil {
				any = &anyNode{f: k.f}
			}
			for _, p := range k.preds {
				if s, ok := p.(*kwSet); ok {
					exact = append(exact, s.list...)
					continue
				}
				any.preds = append(any.preds, p)
			}
		case *textNode:
			if text == nil {
				text = &textNode{f: k.f}
			}
			text.preds = append(text.preds, k.preds...)
		case constNode:
			if k {
				return constNode(true)
			}
		default:
			rest = append(rest, k)
		}
	}
	if any != nil {
		if len(exact) > 0 {
			any.preds = append([]pred{newKwSet(exact)}, any.preds...)
		}
		rest = append(orNode{any}, rest...)
	}
	if text != nil {
		rest = append(orNode{text}, rest...)
	}
	switch len(rest) {
	case 0:
		return constNode(false)
	case 1:
		return rest[0]
	}
	return rest
}

// chunk is one whitespace-separated term of a wildcard value.
type chunk struct {
	text  string
	parts []string // nil: no wildcard
}

// pattern is the chunk as a pattern: its parts, or its exact text.
func (ch chunk) pattern() wildcard.Pattern {
	if ch.parts == nil {
		return wildcard.ExactValue(ch.text)
	}
	return wildcard.Parts(ch.parts)
}

// chunks splits a wildcard literal as Elasticsearch's query_string does:
// Kibana escapes query_string operators but not whitespace, so
// "foo bar*" becomes the two alternatives "foo" and "bar*".
func chunks(l kql.Literal) []chunk {
	var out []chunk
	var cur chunk
	var b strings.Builder
	wild := false
	flush := func() {
		if b.Len() == 0 && !wild {
			return
		}
		cur.parts = append(cur.parts, b.String())
		if !wild {
			cur.parts = nil
		}
		cur.text = strings.Join(cur.parts, "*")
		if cur.parts == nil {
			cur.text = b.String()
		}
		out = append(out, cur)
		cur, wild = chunk{}, false
		b.Reset()
	}
	for i, p := range l.Parts {
		if i > 0 {
			wild = true
			cur.parts = append(cur.parts, b.String())
			b.Reset()
		}
		for _, r := range p {
			if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u3000' {
				flush()
				continue
			}
			b.WriteRune(r)
		}
	}
	flush()
	return out
}

// leaf compiles one value for field f.
func (c *compiler) leaf(l kql.Literal, f event.Field, lenient bool) (node, bool) {
	if l.IsStar() {
		return existsNode{f}, true
	}
	fail := func(code error, format string, args ...any) (node, bool) {
		if lenient {
			return nil, false
		}
		c.errorf(l.Sp, code, format, args...)
		return constNode(false), true
	}
	switch f.Type {
	case event.TypeObject:
		return constNode(false), true // an object has no values of its own
	case event.TypeKeyword, event.TypeConstantKeyword:
		if !l.IsWildcard() {
			return &anyNode{f: f, preds: []pred{newKwSet([]string{l.Value})}}, true
		}
		n := &anyNode{f: f}
		var exact []string
		for _, ch := range chunks(l) {
			if ch.parts == nil {
				exact = append(exact, ch.text)
				continue
			}
			n.preds = append(n.preds, &kwPattern{wildcard.Parts(ch.parts)})
		}
		if len(exact) > 0 {
			n.preds = append(n.preds, newKwSet(exact))
		}
		return n, true
	case event.TypeUnknown:
		if !l.IsWildcard() {
			num, isNum := parseNumber(l.Value)
			return &anyNode{f: f, preds: []pred{&unkEq{str: l.Value, num: num, isNum: isNum && !l.Quoted}}}, true
		}
		n := &anyNode{f: f}
		for _, ch := range chunks(l) {
			n.preds = append(n.preds, &kwPattern{ch.pattern()})
		}
		return n, true
	case event.TypeText:
		return c.textLeaf(l, f), true
	case event.TypeLong:
		if l.IsWildcard() {
			return fail(ErrUnsupported, "cannot use wildcard %s on %s (type long)", l.String(), f.Name)
		}
		num, ok := parseNumber(l.Value)
		if !ok {
			return fail(ErrType, "%s is not a number, but %s is a long field", l.String(), f.Name)
		}
		if num != math.Trunc(num) {
			return constNode(false), true // Elasticsearch: a decimal never equals a long
		}
		return &anyNode{f: f, preds: []pred{&numRange{num: num}}}, true
	case event.TypeDate:
		if l.IsWildcard() {
			return fail(ErrUnsupported, "cannot use wildcard %s on %s (type date)", l.String(), f.Name)
		}
		// Kibana turns an exact date into gte and lte of the same value, so
		// "2024-01-02" matches that whole day.
		lo, ok, isMath := parseDateBound(l.Value, false)
		hi, _, _ := parseDateBound(l.Value, true)
		if isMath {
			return fail(ErrUnsupported, "date math %s is not supported (kanon does not read the clock)", l.String())
		}
		if !ok {
			return fail(ErrType, "%s is not a date (strict_date_optional_time or epoch_millis), but %s is a date field", l.String(), f.Name)
		}
		return &anyNode{f: f, preds: []pred{&dateRange{min: lo, max: hi}}}, true
	case event.TypeIP:
		if l.IsWildcard() {
			return fail(ErrUnsupported, "cannot use wildcard %s on %s (type ip)", l.String(), f.Name)
		}
		p, ok := parseIPOrCIDR(l.Value)
		if !ok {
			return fail(ErrType, "%s is not an IP address or CIDR block, but %s is an ip field", l.String(), f.Name)
		}
		return &anyNode{f: f, preds: []pred{&ipPrefix{p}}}, true
	case event.TypeBoolean:
		switch {
		case l.IsWildcard():
			return fail(ErrUnsupported, "cannot use wildcard %s on %s (type boolean)", l.String(), f.Name)
		case l.Value == "true", l.Value == "false":
			return &anyNode{f: f, preds: []pred{&boolEq{l.Value == "true"}}}, true
		}
		return fail(ErrType, "%s is not true or false, but %s is a boolean field", l.String(), f.Name)
	}
	return fail(ErrUnsupported, "BUG: field %s has unknown type %v", f.Name, f.Type)
}

func parseIPOrCIDR(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				bits = 0
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), true
}

// textLeaf compiles a value for an analyzed text field: quoted values are
// phrases (match_phrase), unquoted ones match any of their tokens (match),
// and wildcards match tokens per whitespace-separated term (query_string,
// lowercased).
func (c *compiler) textLeaf(l kql.Literal, f event.Field) node {
	n := &textNode{f: f}
	switch {
	case l.Quoted:
		toks := analyzeString(l.Value)
		if len(toks) == 0 {
			return constNode(false)
		}
		n.preds = append(n.preds, &textPhrase{toks})
	case !l.IsWildcard():
		toks := analyzeString(l.Value)
		if len(toks) == 0 {
			return constNode(false)
		}
		n.preds = append(n.preds, &textAny{toks})
	default:
		for _, ch := range chunks(l) {
			if ch.parts == nil {
				if toks := analyzeString(ch.text); len(toks) > 0 {
					n.preds = append(n.preds, &textAny{toks})
				}
				continue
			}
			lower := make([]string, len(ch.parts))
			for i, p := range ch.parts {
				lower[i] = strings.Map(unicode.ToLower, p)
			}
			n.preds = append(n.preds, &textWild{wildcard.Parts(lower)})
		}
		if len(n.preds) == 0 {
			return constNode(false)
		}
	}
	return n
}

func (c *compiler) rangeExpr(re *kql.RangeExpr) node {
	fields, lenient := c.resolve(re.Field)
	l := re.Value
	return c.onFields(fields, lenient, func(f event.Field) (node, bool) {
		fail := func(code error, format string, args ...any) (node, bool) {
			if lenient {
				return nil, false
			}
			c.errorf(l.Sp, code, format, args...)
			return constNode(false), true
		}
		switch f.Type {
		case event.TypeKeyword, event.TypeConstantKeyword:
			return &anyNode{f: f, preds: []pred{&kwRange{op: re.Op, bound: l.Value, boundB: []byte(l.Value)}}}, true
		case event.TypeUnknown:
			num, isNum := parseNumber(l.Value)
			return &anyNode{f: f, preds: []pred{&kwRange{op: re.Op, bound: l.Value, boundB: []byte(l.Value), numeric: isNum, num: num}}}, true
		case event.TypeText:
			return &textNode{f: f, preds: []textPred{&textRange{op: re.Op, bound: []byte(l.Value)}}}, true
		case event.TypeLong:
			num, ok := parseNumber(l.Value)
			if !ok {
				return fail(ErrType, "range bound %s is not a number, but %s is a long field", l.String(), f.Name)
			}
			return &anyNode{f: f, preds: []pred{&numRange{op: re.Op, num: num}}}, true
		case event.TypeDate:
			up := re.Op == kql.OpGT || re.Op == kql.OpLTE
			ms, ok, isMath := parseDateBound(l.Value, up)
			if isMath {
				return fail(ErrUnsupported, "date math %s is not supported (kanon does not read the clock)", l.String())
			}
			if !ok {
				return fail(ErrType, "range bound %s is not a date (strict_date_optional_time or epoch_millis), but %s is a date field", l.String(), f.Name)
			}
			d := &dateRange{min: math.MinInt64, max: math.MaxInt64}
			switch re.Op {
			case kql.OpGT:
				d.min = ms + 1
			case kql.OpGTE:
				d.min = ms
			case kql.OpLT:
				d.max = ms - 1
			case kql.OpLTE:
				d.max = ms
			}
			return &anyNode{f: f, preds: []pred{d}}, true
		case event.TypeIP:
			a, err := netip.ParseAddr(l.Value)
			if err != nil {
				return fail(ErrType, "range bound %s is not an IP address, but %s is an ip field", l.String(), f.Name)
			}
			return &anyNode{f: f, preds: []pred{&ipRange{op: re.Op, bound: a.WithZone("").As16()}}}, true
		}
		return fail(ErrUnsupported, "cannot use a range on %s (type %v)", f.Name, f.Type)
	})
}

// describe is used by tests and explain: the compiled tree as text.
func describe(n node) string {
	switch n := n.(type) {
	case constNode:
		return fmt.Sprint(bool(n))
	case orNode:
		parts := make([]string, len(n))
		for i, k := range n {
			parts[i] = describe(k)
		}
		return "or(" + strings.Join(parts, ", ") + ")"
	case andNode:
		parts := make([]string, len(n))
		for i, k := range n {
			parts[i] = describe(k)
		}
		return "and(" + strings.Join(parts, ", ") + ")"
	case notNode:
		return "not(" + describe(n.x) + ")"
	case existsNode:
		return "exists(" + n.f.Name + ")"
	case *anyNode:
		return fmt.Sprintf("any(%s, %d preds)", n.f.Name, len(n.preds))
	case *textNode:
		return fmt.Sprintf("text(%s, %d preds)", n.f.Name, len(n.preds))
	}
	return fmt.Sprintf("%T", n)
}
