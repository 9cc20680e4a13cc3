package esqleval

import (
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// funcDef is a scalar function: its arity and its compiler.
type funcDef struct {
	min, max int // max -1: variadic
	build    func(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool)
}

var funcs map[string]funcDef

func init() {
	funcs = map[string]funcDef{
		"CASE":        {2, -1, buildCase},
		"COALESCE":    {1, -1, buildCoalesce},
		"TO_STRING":   {1, 1, convBuilder("keyword")},
		"TO_LOWER":    {1, 1, strFn(func(s string) (event.Value, bool) { return event.Str(strings.ToLower(s)), true })},
		"TO_UPPER":    {1, 1, strFn(func(s string) (event.Value, bool) { return event.Str(strings.ToUpper(s)), true })},
		"TRIM":        {1, 1, strFn(func(s string) (event.Value, bool) { return event.Str(strings.TrimSpace(s)), true })},
		"LTRIM":       {1, 1, strFn(func(s string) (event.Value, bool) { return event.Str(strings.TrimLeft(s, " \t\n\r")), true })},
		"RTRIM":       {1, 1, strFn(func(s string) (event.Value, bool) { return event.Str(strings.TrimRight(s, " \t\n\r")), true })},
		"LENGTH":      {1, 1, strFn(func(s string) (event.Value, bool) { return event.Int(int64(utf8.RuneCountInString(s))), true })},
		"URL_DECODE":  {1, 1, strFn(urlDecode)},
		"STARTS_WITH": {2, 2, str2Fn(func(s, t string) event.Value { return event.Bool(strings.HasPrefix(s, t)) })},
		"ENDS_WITH":   {2, 2, str2Fn(func(s, t string) event.Value { return event.Bool(strings.HasSuffix(s, t)) })},
		"REPLACE":     {3, 3, buildReplace},
		"SUBSTRING":   {2, 3, buildSubstring},
		"LOCATE":      {2, 3, buildLocate},
		"CONCAT":      {2, -1, buildConcat},
		"SPLIT":       {2, 2, buildSplit},
		"DATE_TRUNC":  {2, 2, buildDateTrunc},
		"NOW":         {0, 0, buildNow},
		"MV_COUNT":    {1, 1, mvFn(func(vs, dst []event.Value) []event.Value { return append(dst, event.Int(int64(len(vs)))) })},
		"MV_FIRST":    {1, 1, mvFn(func(vs, dst []event.Value) []event.Value { return append(dst, vs[0]) })},
		"MV_LAST":     {1, 1, mvFn(func(vs, dst []event.Value) []event.Value { return append(dst, vs[len(vs)-1]) })},
		"MV_MIN":      {1, 1, mvFn(func(vs, dst []event.Value) []event.Value { return append(dst, mvExtreme(vs, false)) })},
		"MV_MAX":      {1, 1, mvFn(func(vs, dst []event.Value) []event.Value { return append(dst, mvExtreme(vs, true)) })},
		"MV_DEDUPE":   {1, 1, mvFn(mvDedupe)},
		"MV_CONTAINS": {2, 2, buildMvContains},
		"MV_CONCAT":   {2, 2, buildMvConcat},
		"TO_INTEGER":  {1, 1, convBuilder("integer")},
		"TO_INT":      {1, 1, convBuilder("integer")},
		"TO_LONG":     {1, 1, convBuilder("long")},
		"TO_DOUBLE":   {1, 1, convBuilder("double")},
		"TO_DBL":      {1, 1, convBuilder("double")},
		"TO_BOOLEAN":  {1, 1, convBuilder("boolean")},
		"TO_BOOL":     {1, 1, convBuilder("boolean")},
		"TO_DATETIME": {1, 1, convBuilder("datetime")},
		"TO_DT":       {1, 1, convBuilder("datetime")},
		"TO_IP":       {1, 1, convBuilder("ip")},
		"CIDR_MATCH":  {2, -1, buildCidrMatch},
		"ABS":         {1, 1, buildAbs},
	}
}

func (cp *compiler) compileCall(call *esql.CallExpr) (cexpr, bool) {
	if aggByName[call.Name] != 0 {
		cp.errorf(call.NameLoc, ErrInvalid, "aggregate function %s can only be used in STATS", call.Name)
		return cexpr{}, false
	}
	if call.Name == "KQL" {
		return cp.compileKQL(call)
	}
	def, ok := funcs[call.Name]
	if !ok {
		cp.errorf(call.NameLoc, ErrUnknownFunction, "unknown function %s", call.Name)
		return cexpr{}, false
	}
	if len(call.Args) < def.min || def.max >= 0 && len(call.Args) > def.max {
		want := strconv.Itoa(def.min)
		switch {
		case def.max < 0:
			want = "at least " + want
		case def.max != def.min:
			want += " to " + strconv.Itoa(def.max)
		}
		cp.errorf(call.Loc, ErrInvalid, "%s takes %s arguments, got %d", call.Name, want, len(call.Args))
		return cexpr{}, false
	}
	var args []cexpr
	for i, a := range call.Args {
		if call.Name == "DATE_TRUNC" && i == 0 {
			e, ok := cp.compileExpr(a)
			if !ok {
				return cexpr{}, false
			}
			args = append(args, e)
			continue
		}
		e, ok := cp.operand(a)
		if !ok {
			return cexpr{}, false
		}
		args = append(args, e)
	}
	return def.build(cp, call, args)
}

// strFn builds a single-valued string function: null and multi-valued
// input give null; ok false gives null.
func strFn(f func(string) (event.Value, bool)) func(*compiler, *esql.CallExpr, []cexpr) (cexpr, bool) {
	return func(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool) {
		a, t := args[0], cp.newTmp()
		rt := tyString
		if call.Name == "LENGTH" {
			rt = tyLong
		}
		return cexpr{typ: rt, fn: func(c *ctx, dst []event.Value) []event.Value {
			v, ok := single(evalTmp(c, &a, t))
			if !ok || v.Kind != event.KindString {
				return dst
			}
			if r, ok := f(v.S); ok {
				return append(dst, r)
			}
			return dst
		}}, true
	}
}

// str2Fn builds a single-valued function of two strings.
func str2Fn(f func(a, b string) event.Value) func(*compiler, *esql.CallExpr, []cexpr) (cexpr, bool) {
	return func(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
		a, b := args[0], args[1]
		ta, tb := cp.newTmp(), cp.newTmp()
		return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
			x, ok := single(evalTmp(c, &a, ta))
			if !ok || x.Kind != event.KindString {
				return dst
			}
			y, ok := single(evalTmp(c, &b, tb))
			if !ok || y.Kind != event.KindString {
				return dst
			}
			return append(dst, f(x.S, y.S))
		}}, true
	}
}

// mvFn builds a function of all values of its argument; null gives null.
func mvFn(f func(vs, dst []event.Value) []event.Value) func(*compiler, *esql.CallExpr, []cexpr) (cexpr, bool) {
	return func(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool) {
		a, t := args[0], cp.newTmp()
		rt := a.typ
		if call.Name == "MV_COUNT" {
			rt = tyLong
		}
		return cexpr{typ: rt, fn: func(c *ctx, dst []event.Value) []event.Value {
			vs := evalTmp(c, &a, t)
			if len(vs) == 0 {
				return dst
			}
			return f(vs, dst)
		}}, true
	}
}

func mvExtreme(vs []event.Value, max bool) event.Value {
	best := vs[0]
	for _, v := range vs[1:] {
		if n := totalOrder(v, best); n != 0 && (n > 0) == max {
			best = v
		}
	}
	return best
}

func mvDedupe(vs, dst []event.Value) []event.Value {
	start := len(dst)
	for _, v := range vs {
		dup := false
		for _, w := range dst[start:] {
			if v.Kind == w.Kind && totalOrder(v, w) == 0 {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, v)
		}
	}
	return dst
}

// buildCase compiles CASE(cond, value, ..., [else]): the value of the first
// condition that is true; a null condition counts as not true.
func buildCase(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	n := len(args)
	var elseE *cexpr
	if n%2 == 1 {
		elseE = &args[n-1]
		n--
	}
	conds := make([]cexpr, 0, n/2)
	vals := make([]cexpr, 0, n/2)
	for i := 0; i < n; i += 2 {
		conds = append(conds, args[i])
		vals = append(vals, args[i+1])
	}
	rt := tyAny
	if len(vals) > 0 {
		rt = vals[0].typ
	}
	t := cp.newTmp()
	return cexpr{typ: rt, fn: func(c *ctx, dst []event.Value) []event.Value {
		for i := range conds {
			if v, known := truth(evalTmp(c, &conds[i], t)); known && v {
				return vals[i].fn(c, dst)
			}
		}
		if elseE != nil {
			return elseE.fn(c, dst)
		}
		return dst
	}}, true
}

// buildCoalesce compiles COALESCE: the first argument that is not null
// (all of its values).
func buildCoalesce(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	return cexpr{typ: args[0].typ, fn: func(c *ctx, dst []event.Value) []event.Value {
		start := len(dst)
		for i := range args {
			dst = args[i].fn(c, dst)
			if len(dst) > start {
				return dst
			}
		}
		return dst
	}}, true
}

// javaRegex compiles a Java regular expression (REPLACE's pattern) to RE2;
// the common syntax is shared.
func javaRegex(p string) (*regexp.Regexp, error) { return regexp.Compile(p) }

// javaReplacement converts a Java replacement string ($1, \$) to Go's
// Regexp.Expand syntax (${1}, $$).
func javaReplacement(r string) string {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		switch c := r[i]; {
		case c == '\\' && i+1 < len(r):
			i++
			if r[i] == '$' {
				b.WriteString("$$")
			} else {
				b.WriteByte(r[i])
			}
		case c == '$':
			j := i + 1
			for j < len(r) && r[j] >= '0' && r[j] <= '9' {
				j++
			}
			if j > i+1 {
				b.WriteString("${" + r[i+1:j] + "}")
				i = j - 1
			} else {
				b.WriteString("$$")
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// buildReplace compiles REPLACE(string, regex, replacement): every match of
// the regular expression is replaced, as Java's String.replaceAll.
func buildReplace(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool) {
	s, pe, re := args[0], args[1], args[2]
	var fixed *regexp.Regexp
	if pe.isK && len(pe.konst) == 1 && pe.konst[0].Kind == event.KindString {
		r, err := javaRegex(pe.konst[0].S)
		if err != nil {
			cp.errorf(call.Args[1].Span(), ErrInvalid, "invalid REPLACE pattern: %v", err)
			return cexpr{}, false
		}
		fixed = r
	}
	ts, tp, tr := cp.newTmp(), cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyString, fn: func(c *ctx, dst []event.Value) []event.Value {
		x, ok := single(evalTmp(c, &s, ts))
		if !ok || x.Kind != event.KindString {
			return dst
		}
		r := fixed
		if r == nil {
			p, ok := single(evalTmp(c, &pe, tp))
			if !ok || p.Kind != event.KindString {
				return dst
			}
			var err error
			if r, err = javaRegex(p.S); err != nil {
				return dst
			}
		}
		rep, ok := single(evalTmp(c, &re, tr))
		if !ok || rep.Kind != event.KindString {
			return dst
		}
		return append(dst, event.Str(r.ReplaceAllString(x.S, javaReplacement(rep.S))))
	}}, true
}

// urlDecode decodes as Java's URLDecoder (which ES|QL's URL_DECODE uses):
// "+" is a space, %XX a byte; a malformed escape gives null.
func urlDecode(s string) (event.Value, bool) {
	if !strings.ContainsAny(s, "%+") {
		return event.Str(s), true
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return event.Value{}, false
	}
	return event.Str(d), true
}

// intArg reads a single integer argument.
func intArg(c *ctx, e *cexpr, t int) (int64, bool) {
	v, ok := single(evalTmp(c, e, t))
	if !ok {
		return 0, false
	}
	switch v.Kind {
	case event.KindInt:
		return v.I, true
	case event.KindFloat:
		return int64(v.F), true
	}
	return 0, false
}

// buildSubstring compiles SUBSTRING(s, start[, length]): start is 1-based
// and counts from the end when negative; positions count characters.
func buildSubstring(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	ts, ta, tb := cp.newTmp(), cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyString, fn: func(c *ctx, dst []event.Value) []event.Value {
		x, ok := single(evalTmp(c, &args[0], ts))
		if !ok || x.Kind != event.KindString {
			return dst
		}
		start, ok := intArg(c, &args[1], ta)
		if !ok {
			return dst
		}
		r := []rune(x.S)
		n := int64(len(r))
		length := n
		if len(args) == 3 {
			if length, ok = intArg(c, &args[2], tb); !ok || length < 0 {
				return dst
			}
		}
		switch {
		case start < 0:
			start = max(n+start, 0)
		case start > 0:
			start--
		}
		if start > n {
			start = n
		}
		end := min(start+length, n)
		return append(dst, event.Str(string(r[start:end])))
	}}, true
}

// buildLocate compiles LOCATE(s, substring[, start]): the 1-based character
// position of substring in s, 0 when absent.
func buildLocate(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	ts, tu, ta := cp.newTmp(), cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyLong, fn: func(c *ctx, dst []event.Value) []event.Value {
		x, ok := single(evalTmp(c, &args[0], ts))
		if !ok || x.Kind != event.KindString {
			return dst
		}
		u, ok := single(evalTmp(c, &args[1], tu))
		if !ok || u.Kind != event.KindString {
			return dst
		}
		r := []rune(x.S)
		from := int64(0)
		if len(args) == 3 {
			st, ok := intArg(c, &args[2], ta)
			if !ok {
				return dst
			}
			if st > 0 {
				from = st - 1
			}
		}
		if from > int64(len(r)) {
			return append(dst, event.Int(0))
		}
		i := strings.Index(string(r[from:]), u.S)
		if i < 0 {
			return append(dst, event.Int(0))
		}
		return append(dst, event.Int(from+int64(utf8.RuneCountInString(string(r[from:])[:i]))+1))
	}}, true
}

// buildConcat compiles CONCAT(a, b, ...): null if any argument is null or
// multi-valued.
func buildConcat(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	t := cp.newTmp()
	return cexpr{typ: tyString, fn: func(c *ctx, dst []event.Value) []event.Value {
		var b strings.Builder
		for i := range args {
			v, ok := single(evalTmp(c, &args[i], t))
			if !ok {
				return dst
			}
			b.WriteString(v.String())
		}
		return append(dst, event.Str(b.String()))
	}}, true
}

// buildSplit compiles SPLIT(s, delimiter) into a multi-valued result.
func buildSplit(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	ts, td := cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyString, fn: func(c *ctx, dst []event.Value) []event.Value {
		x, ok := single(evalTmp(c, &args[0], ts))
		if !ok || x.Kind != event.KindString {
			return dst
		}
		d, ok := single(evalTmp(c, &args[1], td))
		if !ok || d.Kind != event.KindString || d.S == "" {
			return dst
		}
		for _, part := range strings.Split(x.S, d.S) {
			dst = append(dst, event.Str(part))
		}
		return dst
	}}, true
}

// buildDateTrunc compiles DATE_TRUNC(span, date): rounds a date down in UTC.
// One calendar unit (1 day, 1 week starting Monday, 1 month, 1 quarter,
// 1 year) truncates to the calendar unit; fixed spans round down to a
// multiple of the span since the epoch; n months to a multiple of n months
// since 1970-01.
func buildDateTrunc(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool) {
	sp := args[0].dur
	if sp == nil || sp.d < 0 || sp.months < 0 || sp.d == 0 && sp.months == 0 {
		cp.errorf(call.Args[0].Span(), ErrInvalid, "the first argument of DATE_TRUNC must be a positive time span such as 1 hour")
		return cexpr{}, false
	}
	d, t := args[1], cp.newTmp()
	week := 7 * 24 * time.Hour
	return cexpr{typ: tyDate, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &d, t))
		if !ok {
			return dst
		}
		tm, ok := asTime(v)
		if !ok {
			return dst
		}
		tm = tm.UTC()
		switch {
		case sp.months > 0:
			m := (int64(tm.Year())-1970)*12 + int64(tm.Month()) - 1
			m -= ((m % int64(sp.months)) + int64(sp.months)) % int64(sp.months)
			tm = time.Date(1970+int(m/12), time.Month(m%12+1), 1, 0, 0, 0, 0, time.UTC)
			if m < 0 {
				tm = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, int(m), 0)
			}
		case sp.d == week:
			day := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
			tm = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		default:
			ns := tm.UnixNano()
			q := int64(sp.d)
			r := ((ns % q) + q) % q
			tm = time.Unix(0, ns-r).UTC()
		}
		return append(dst, event.Time(tm))
	}}, true
}

// buildNow compiles NOW(): the Env's time, null when unset.
func buildNow(_ *compiler, _ *esql.CallExpr, _ []cexpr) (cexpr, bool) {
	return cexpr{typ: tyDate, fn: func(c *ctx, dst []event.Value) []event.Value {
		if c.env == nil || c.env.Now.IsZero() {
			return dst
		}
		return append(dst, event.Time(c.env.Now))
	}}, true
}

// buildMvContains compiles MV_CONTAINS(superset, subset): whether every
// value of subset is among the values of superset; null is the empty set.
func buildMvContains(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	ta, tb := cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
		sup := evalTmp(c, &args[0], ta)
		sub := evalTmp(c, &args[1], tb)
		for _, v := range sub {
			found := false
			for _, w := range sup {
				if n, ok := compareValues(v, w); ok && n == 0 {
					found = true
					break
				}
			}
			if !found {
				return appendBool(dst, false)
			}
		}
		return appendBool(dst, true)
	}}, true
}

// buildMvConcat compiles MV_CONCAT(values, delimiter).
func buildMvConcat(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	ta, td := cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyString, fn: func(c *ctx, dst []event.Value) []event.Value {
		vs := evalTmp(c, &args[0], ta)
		if len(vs) == 0 {
			return dst
		}
		d, ok := single(evalTmp(c, &args[1], td))
		if !ok || d.Kind != event.KindString {
			return dst
		}
		var b strings.Builder
		for i, v := range vs {
			if i > 0 {
				b.WriteString(d.S)
			}
			b.WriteString(v.String())
		}
		return append(dst, event.Str(b.String()))
	}}, true
}

// buildCidrMatch compiles CIDR_MATCH(ip, block, ...): whether the IP is in
// any of the CIDR blocks.
func buildCidrMatch(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool) {
	var fixed []netip.Prefix
	allConst := true
	for i, a := range args[1:] {
		if !a.isK || len(a.konst) != 1 || a.konst[0].Kind != event.KindString {
			allConst = false
			continue
		}
		pf, err := netip.ParsePrefix(a.konst[0].S)
		if err != nil {
			cp.errorf(call.Args[i+1].Span(), ErrInvalid, "invalid CIDR block %q", a.konst[0].S)
			return cexpr{}, false
		}
		fixed = append(fixed, pf.Masked())
	}
	ta, tb := cp.newTmp(), cp.newTmp()
	return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &args[0], ta))
		if !ok || v.Kind != event.KindString {
			return dst
		}
		ip, err := netip.ParseAddr(v.S)
		if err != nil {
			return dst
		}
		ip = ip.Unmap()
		blocks := fixed
		if !allConst {
			blocks = nil
			for i := range args[1:] {
				for _, b := range evalTmp(c, &args[i+1], tb) {
					if pf, err := netip.ParsePrefix(b.S); err == nil {
						blocks = append(blocks, pf)
					}
				}
			}
		}
		for _, pf := range blocks {
			if pf.Contains(ip) {
				return appendBool(dst, true)
			}
		}
		return appendBool(dst, false)
	}}, true
}

func buildAbs(cp *compiler, _ *esql.CallExpr, args []cexpr) (cexpr, bool) {
	t := cp.newTmp()
	return cexpr{typ: args[0].typ, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &args[0], t))
		if !ok {
			return dst
		}
		switch v.Kind {
		case event.KindInt:
			if v.I == math.MinInt64 {
				return dst
			}
			if v.I < 0 {
				v.I = -v.I
			}
			return append(dst, v)
		case event.KindFloat:
			return append(dst, event.Float(math.Abs(v.F)))
		}
		return dst
	}}, true
}

// convBuilder builds a TO_<type> conversion.
func convBuilder(typeName string) func(*compiler, *esql.CallExpr, []cexpr) (cexpr, bool) {
	return func(cp *compiler, call *esql.CallExpr, args []cexpr) (cexpr, bool) {
		return cp.convert(typeName, args[0], call.Loc)
	}
}
