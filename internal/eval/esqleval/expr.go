package esqleval

import (
	"math"
	"net/netip"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// evalFn evaluates a compiled expression in c: it appends the result values
// to dst (nothing for null, several for a multi-valued result) and returns
// the extended slice.
type evalFn func(c *ctx, dst []event.Value) []event.Value

// typ is a static type hint. Most evaluation is dynamic (the kinds of the
// values); the hint selects IP comparison and reports type errors early.
type typ uint8

const (
	tyAny typ = iota
	tyString
	tyLong
	tyDouble
	tyBool
	tyDate
	tyIP
	tyNull
)

// span is a time span literal: a fixed duration or a calendar period.
type span struct {
	d      time.Duration
	months int // calendar months (month, quarter, year)
}

// cexpr is a compiled expression.
type cexpr struct {
	fn  evalFn
	typ typ
	// dur is set (and fn nil) for a time span literal, which only date
	// arithmetic and DATE_TRUNC accept.
	dur *span
	// konst holds the value of a constant expression (a literal).
	konst []event.Value
	isK   bool
}

// ctx is the evaluation context of one row. In the per-event prefix, columns
// that are event fields are loaded lazily on first access.
type ctx struct {
	env    *Env
	ev     *event.Event
	cols   [][]event.Value
	lazy   []bool
	loaded []bool
	fields []event.Field
	tmp    [][]event.Value
	// prov is the evidence of each row of the rest (State.Result).
	prov []*evidence
	// ips caches the parsing of IP strings within one evaluation.
}

// col returns the values of column slot i.
func (c *ctx) col(i int) []event.Value {
	if c.lazy != nil && c.lazy[i] && !c.loaded[i] {
		c.cols[i] = c.ev.Get(c.fields[i], c.cols[i][:0])
		c.loaded[i] = true
	}
	return c.cols[i]
}

// truth reads a three-valued boolean: known is false for null (and for a
// multi-valued or non-boolean result).
func truth(vs []event.Value) (val, known bool) {
	if len(vs) != 1 || vs[0].Kind != event.KindBool {
		return false, false
	}
	return vs[0].B, true
}

func appendBool(dst []event.Value, b bool) []event.Value { return append(dst, event.Bool(b)) }

// evalTmp evaluates e into scratch slot t and returns the values, valid until
// the slot is reused.
func evalTmp(c *ctx, e *cexpr, t int) []event.Value {
	c.tmp[t] = e.fn(c, c.tmp[t][:0])
	return c.tmp[t]
}

func (cp *compiler) compileExpr(x esql.Expr) (cexpr, bool) {
	switch x := x.(type) {
	case *esql.LiteralExpr:
		return cp.literal(x), true
	case *esql.DurationExpr:
		sp := &span{}
		n := x.N
		switch x.Unit {
		case "millisecond":
			sp.d = time.Duration(n) * time.Millisecond
		case "second":
			sp.d = time.Duration(n) * time.Second
		case "minute":
			sp.d = time.Duration(n) * time.Minute
		case "hour":
			sp.d = time.Duration(n) * time.Hour
		case "day":
			sp.d = time.Duration(n) * 24 * time.Hour
		case "week":
			sp.d = time.Duration(n) * 7 * 24 * time.Hour
		case "month":
			sp.months = int(n)
		case "quarter":
			sp.months = 3 * int(n)
		case "year":
			sp.months = 12 * int(n)
		}
		return cexpr{dur: sp}, true
	case *esql.FieldExpr:
		slot, t, ok := cp.resolve(x)
		if !ok {
			return cexpr{}, false
		}
		return cexpr{typ: t, fn: func(c *ctx, dst []event.Value) []event.Value {
			return append(dst, c.col(slot)...)
		}}, true
	case *esql.StarExpr:
		cp.errorf(x.Loc, ErrInvalid, "\"*\" is only valid as the argument of COUNT")
		return cexpr{}, false
	case *esql.CallExpr:
		return cp.compileCall(x)
	case *esql.UnaryExpr:
		return cp.compileUnary(x)
	case *esql.NotExpr:
		a, ok := cp.operand(x.X)
		if !ok {
			return cexpr{}, false
		}
		t := cp.newTmp()
		return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
			v, known := truth(evalTmp(c, &a, t))
			if !known {
				return dst
			}
			return appendBool(dst, !v)
		}}, true
	case *esql.BinaryExpr:
		return cp.compileBinary(x)
	case *esql.InExpr:
		return cp.compileIn(x)
	case *esql.LikeExpr:
		return cp.compileLike(x)
	case *esql.IsNullExpr:
		a, ok := cp.operand(x.X)
		if !ok {
			return cexpr{}, false
		}
		t, not := cp.newTmp(), x.Not
		return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
			return appendBool(dst, (len(evalTmp(c, &a, t)) == 0) != not)
		}}, true
	case *esql.CastExpr:
		a, ok := cp.operand(x.X)
		if !ok {
			return cexpr{}, false
		}
		return cp.convert(x.Type, a, x.TypeLoc)
	}
	cp.errorf(x.Span(), ErrInvalid, "unsupported expression %s", x.String())
	return cexpr{}, false
}

// operand compiles an expression that must produce values (not a time span).
func (cp *compiler) operand(x esql.Expr) (cexpr, bool) {
	e, ok := cp.compileExpr(x)
	if !ok {
		return cexpr{}, false
	}
	if e.dur != nil {
		cp.errorf(x.Span(), ErrType, "time span %s can only be added to or subtracted from a date, or used in DATE_TRUNC", x.String())
		return cexpr{}, false
	}
	return e, true
}

func (cp *compiler) literal(x *esql.LiteralExpr) cexpr {
	var v []event.Value
	t := tyNull
	switch x.Kind {
	case esql.LitString:
		v, t = []event.Value{event.Str(x.Str)}, tyString
	case esql.LitInt:
		v, t = []event.Value{event.Int(x.Int)}, tyLong
	case esql.LitFloat:
		v, t = []event.Value{event.Float(x.Float)}, tyDouble
	case esql.LitBool:
		v, t = []event.Value{event.Bool(x.Bool)}, tyBool
	}
	return constant(v, t)
}

func constant(v []event.Value, t typ) cexpr {
	return cexpr{typ: t, isK: true, konst: v, fn: func(_ *ctx, dst []event.Value) []event.Value {
		return append(dst, v...)
	}}
}

func (cp *compiler) compileUnary(x *esql.UnaryExpr) (cexpr, bool) {
	if d, ok := x.X.(*esql.DurationExpr); ok && x.Op == esql.OpNeg {
		e, _ := cp.compileExpr(d)
		e.dur.d, e.dur.months = -e.dur.d, -e.dur.months
		return e, true
	}
	a, ok := cp.operand(x.X)
	if !ok {
		return cexpr{}, false
	}
	if x.Op == esql.OpPos {
		return a, true
	}
	t := cp.newTmp()
	return cexpr{typ: a.typ, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &a, t))
		if !ok {
			return dst
		}
		switch v.Kind {
		case event.KindInt:
			if v.I == math.MinInt64 {
				return dst
			}
			return append(dst, event.Int(-v.I))
		case event.KindFloat:
			return append(dst, event.Float(-v.F))
		}
		return dst
	}}, true
}

func (cp *compiler) compileBinary(x *esql.BinaryExpr) (cexpr, bool) {
	switch x.Op {
	case esql.OpAnd, esql.OpOr:
		a, ok1 := cp.operand(x.X)
		b, ok2 := cp.operand(x.Y)
		if !ok1 || !ok2 {
			return cexpr{}, false
		}
		ta, tb := cp.newTmp(), cp.newTmp()
		and := x.Op == esql.OpAnd
		// Kleene logic: false AND x = false, true OR x = true, else null
		// if either side is null.
		return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
			av, ak := truth(evalTmp(c, &a, ta))
			if ak && av != and {
				return appendBool(dst, av)
			}
			bv, bk := truth(evalTmp(c, &b, tb))
			if bk && bv != and {
				return appendBool(dst, bv)
			}
			if ak && bk {
				return appendBool(dst, and)
			}
			return dst
		}}, true
	}
	l, ok1 := cp.compileExpr(x.X)
	r, ok2 := cp.compileExpr(x.Y)
	if !ok1 || !ok2 {
		return cexpr{}, false
	}
	if l.dur != nil || r.dur != nil {
		return cp.dateArith(x, l, r)
	}
	ta, tb := cp.newTmp(), cp.newTmp()
	if x.Op.IsComparison() {
		ip := l.typ == tyIP || r.typ == tyIP
		op := x.Op
		return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
			av, ok := single(evalTmp(c, &l, ta))
			if !ok {
				return dst
			}
			bv, ok := single(evalTmp(c, &r, tb))
			if !ok {
				return dst
			}
			var n int
			if ip {
				n, ok = compareIP(av, bv)
			} else {
				n, ok = compareValues(av, bv)
			}
			if !ok {
				return dst
			}
			return appendBool(dst, cmpResult(op, n))
		}}, true
	}
	op := x.Op
	rt := tyAny
	if l.typ == tyLong && r.typ == tyLong {
		rt = tyLong
	} else if l.typ == tyDouble || r.typ == tyDouble {
		rt = tyDouble
	}
	return cexpr{typ: rt, fn: func(c *ctx, dst []event.Value) []event.Value {
		av, ok := single(evalTmp(c, &l, ta))
		if !ok {
			return dst
		}
		bv, ok := single(evalTmp(c, &r, tb))
		if !ok {
			return dst
		}
		if v, ok := arith(op, av, bv); ok {
			return append(dst, v)
		}
		return dst
	}}, true
}

func cmpResult(op esql.BinaryOp, n int) bool {
	switch op {
	case esql.OpEq:
		return n == 0
	case esql.OpNeq:
		return n != 0
	case esql.OpLt:
		return n < 0
	case esql.OpLe:
		return n <= 0
	case esql.OpGt:
		return n > 0
	}
	return n >= 0
}

// arith applies an arithmetic operator. Integer overflow and division by
// zero give null, as in ES|QL (which also emits a warning).
func arith(op esql.BinaryOp, a, b event.Value) (event.Value, bool) {
	if a.Kind == event.KindInt && b.Kind == event.KindInt {
		x, y := a.I, b.I
		switch op {
		case esql.OpAdd:
			s := x + y
			if (s > x) != (y > 0) {
				return event.Value{}, false
			}
			return event.Int(s), true
		case esql.OpSub:
			s := x - y
			if (s < x) != (y > 0) {
				return event.Value{}, false
			}
			return event.Int(s), true
		case esql.OpMul:
			if x == 0 || y == 0 {
				return event.Int(0), true
			}
			p := x * y
			if p/y != x || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64) {
				return event.Value{}, false
			}
			return event.Int(p), true
		case esql.OpDiv:
			if y == 0 || (x == math.MinInt64 && y == -1) {
				return event.Value{}, false
			}
			return event.Int(x / y), true
		case esql.OpMod:
			if y == 0 || y == -1 {
				if y == -1 {
					return event.Int(0), true
				}
				return event.Value{}, false
			}
			return event.Int(x % y), true
		}
	}
	if !isNumeric(a.Kind) || !isNumeric(b.Kind) {
		return event.Value{}, false
	}
	x, y := asFloat(a), asFloat(b)
	var r float64
	switch op {
	case esql.OpAdd:
		r = x + y
	case esql.OpSub:
		r = x - y
	case esql.OpMul:
		r = x * y
	case esql.OpDiv:
		if y == 0 {
			return event.Value{}, false
		}
		r = x / y
	case esql.OpMod:
		if y == 0 {
			return event.Value{}, false
		}
		r = math.Mod(x, y)
	}
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return event.Value{}, false
	}
	return event.Float(r), true
}

// dateArith compiles date + span, date - span and span + date.
func (cp *compiler) dateArith(x *esql.BinaryExpr, l, r cexpr) (cexpr, bool) {
	var d cexpr
	var sp span
	switch {
	case l.dur != nil && r.dur != nil:
		cp.errorf(x.Loc, ErrType, "cannot combine two time spans in %s", x.String())
		return cexpr{}, false
	case r.dur != nil && (x.Op == esql.OpAdd || x.Op == esql.OpSub):
		d, sp = l, *r.dur
		if x.Op == esql.OpSub {
			sp.d, sp.months = -sp.d, -sp.months
		}
	case l.dur != nil && x.Op == esql.OpAdd:
		d, sp = r, *l.dur
	default:
		cp.errorf(x.Loc, ErrType, "a time span can only be added to or subtracted from a date in %s", x.String())
		return cexpr{}, false
	}
	if d.typ != tyAny && d.typ != tyDate && d.typ != tyString {
		cp.errorf(x.Loc, ErrType, "a time span can only be added to or subtracted from a date in %s", x.String())
		return cexpr{}, false
	}
	t := cp.newTmp()
	return cexpr{typ: tyDate, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &d, t))
		if !ok {
			return dst
		}
		tm, ok := asTime(v)
		if !ok {
			return dst
		}
		return append(dst, event.Time(addSpan(tm, sp)))
	}}, true
}

func addSpan(t time.Time, sp span) time.Time {
	if sp.months != 0 {
		t = t.AddDate(0, sp.months, 0)
	}
	return t.Add(sp.d)
}

// asTime reads a date value, parsing strings as ES|QL casts string literals.
func asTime(v event.Value) (time.Time, bool) {
	switch v.Kind {
	case event.KindTime:
		return v.AsTime(), true
	case event.KindString:
		return event.ParseTime(v.S)
	}
	return time.Time{}, false
}

// compileIn compiles x [NOT] IN (list). A list of literals becomes a set
// lookup; otherwise each element is compared in turn. The result is true
// when an element equals x, else null when x or an element is null (or x is
// multi-valued), else false; NOT IN negates true and false.
func (cp *compiler) compileIn(x *esql.InExpr) (cexpr, bool) {
	a, ok := cp.operand(x.X)
	if !ok {
		return cexpr{}, false
	}
	list := make([]cexpr, len(x.List))
	allConst := true
	for i, e := range x.List {
		if list[i], ok = cp.operand(e); !ok {
			return cexpr{}, false
		}
		allConst = allConst && list[i].isK && len(list[i].konst) <= 1
	}
	ip := a.typ == tyIP
	not := x.Not
	ta := cp.newTmp()
	finish := func(dst []event.Value, found, sawNull bool) []event.Value {
		if found {
			return appendBool(dst, !not)
		}
		if sawNull {
			return dst
		}
		return appendBool(dst, not)
	}
	if allConst && !ip {
		strs := map[string]struct{}{}
		ints := map[int64]struct{}{}
		floats := map[float64]struct{}{}
		var others []event.Value
		hasNull := false
		for _, e := range list {
			if len(e.konst) == 0 {
				hasNull = true
				continue
			}
			switch v := e.konst[0]; v.Kind {
			case event.KindString:
				strs[v.S] = struct{}{}
			case event.KindInt:
				ints[v.I] = struct{}{}
			case event.KindFloat:
				floats[v.F] = struct{}{}
			default:
				others = append(others, v)
			}
		}
		return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
			v, ok := single(evalTmp(c, &a, ta))
			if !ok {
				return dst
			}
			found := false
			switch v.Kind {
			case event.KindString:
				_, found = strs[v.S]
			case event.KindInt:
				_, found = ints[v.I]
				if !found {
					_, found = floats[float64(v.I)]
				}
			case event.KindFloat:
				_, found = floats[v.F]
				if !found && v.F == math.Trunc(v.F) && math.Abs(v.F) < 1<<63 {
					_, found = ints[int64(v.F)]
				}
			}
			for _, o := range others {
				if n, ok := compareValues(v, o); ok && n == 0 {
					found = true
				}
			}
			return finish(dst, found, hasNull)
		}}, true
	}
	tb := cp.newTmp()
	return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &a, ta))
		if !ok {
			return dst
		}
		found, sawNull := false, false
		for i := range list {
			w, ok := single(evalTmp(c, &list[i], tb))
			if !ok {
				sawNull = true
				continue
			}
			var n int
			if ip {
				n, ok = compareIP(v, w)
			} else {
				n, ok = compareValues(v, w)
			}
			if ok && n == 0 {
				found = true
				break
			}
		}
		return finish(dst, found, sawNull)
	}}, true
}

// canonicalIP renders an IP address as Elasticsearch's ip type does.
func canonicalIP(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}
