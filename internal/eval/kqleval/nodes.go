package kqleval

import (
	"bytes"
	"net/netip"
	"strconv"

	"github.com/kanon-dev/kanon/internal/eval/wildcard"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// scratch is the per-Match working memory: the values of one field, the
// tokens of one text value, and a buffer to format non-string values. A
// Matcher keeps scratches in a sync.Pool, so Match allocates nothing once
// the buffers have grown.
type scratch struct {
	vals []event.Value
	an   analyzer
	num  []byte
}

// node is a compiled (sub)query.
type node interface {
	match(e *event.Event, s *scratch) bool
}

type constNode bool

func (n constNode) match(*event.Event, *scratch) bool { return bool(n) }

type orNode []node

func (n orNode) match(e *event.Event, s *scratch) bool {
	for _, k := range n {
		if k.match(e, s) {
			return true
		}
	}
	return false
}

type andNode []node

func (n andNode) match(e *event.Event, s *scratch) bool {
	for _, k := range n {
		if !k.match(e, s) {
			return false
		}
	}
	return true
}

type notNode struct{ x node }

func (n notNode) match(e *event.Event, s *scratch) bool { return !n.x.match(e, s) }

// existsNode is "field:*".
type existsNode struct{ f event.Field }

func (n existsNode) match(e *event.Event, _ *scratch) bool { return e.Exists(n.f) }

// anyNode matches when some value of f satisfies some predicate: on an
// array, any element may match, as in Elasticsearch.
type anyNode struct {
	f     event.Field
	preds []pred
}

func (n *anyNode) match(e *event.Event, s *scratch) bool {
	vals := e.Get(n.f, s.vals[:0])
	s.vals = vals
	for i := range vals {
		for _, p := range n.preds {
			if p.test(&vals[i], s) {
				return true
			}
		}
	}
	return false
}

// textNode matches when some value of the text field f, analyzed, satisfies
// some predicate. Each array element is analyzed on its own, so phrases do
// not span elements (Elasticsearch's position_increment_gap).
type textNode struct {
	f     event.Field
	preds []textPred
}

func (n *textNode) match(e *event.Event, s *scratch) bool {
	vals := e.Get(n.f, s.vals[:0])
	s.vals = vals
	for i := range vals {
		s.an.reset()
		if vals[i].Kind == event.KindString {
			s.an.analyze(vals[i].S)
		} else {
			s.num = appendValue(s.num[:0], &vals[i])
			s.an.analyze(string(s.num))
		}
		for _, p := range n.preds {
			if p.test(&s.an) {
				return true
			}
		}
	}
	return false
}

// pred tests one value of a non-text field.
type pred interface {
	test(v *event.Value, s *scratch) bool
}

// appendValue appends the string form of v (as Elasticsearch indexes a
// number or boolean in a keyword field).
func appendValue(dst []byte, v *event.Value) []byte {
	switch v.Kind {
	case event.KindString:
		return append(dst, v.S...)
	case event.KindInt:
		return strconv.AppendInt(dst, v.I, 10)
	case event.KindFloat:
		return strconv.AppendFloat(dst, v.F, 'g', -1, 64)
	case event.KindBool:
		return strconv.AppendBool(dst, v.B)
	case event.KindTime:
		return v.AsTime().AppendFormat(dst, "2006-01-02T15:04:05.999999999Z07:00")
	}
	return dst
}

// kwSet: the value equals one of a set of strings (keyword term queries).
type kwSet struct {
	list []string
	set  map[string]struct{} // when the list is long
}

func newKwSet(vals []string) *kwSet {
	k := &kwSet{list: vals}
	if len(vals) > 8 {
		k.set = make(map[string]struct{}, len(vals))
		for _, v := range vals {
			k.set[v] = struct{}{}
		}
	}
	return k
}

func (k *kwSet) test(v *event.Value, s *scratch) bool {
	str := v.S
	if v.Kind != event.KindString {
		s.num = appendValue(s.num[:0], v)
		if k.set != nil {
			_, ok := k.set[string(s.num)]
			return ok
		}
		for _, l := range k.list {
			if string(s.num) == l {
				return true
			}
		}
		return false
	}
	if k.set != nil {
		_, ok := k.set[str]
		return ok
	}
	for _, l := range k.list {
		if str == l {
			return true
		}
	}
	return false
}

// kwPattern: the whole value matches a wildcard pattern (case-sensitive).
type kwPattern struct{ p wildcard.Pattern }

func (k *kwPattern) test(v *event.Value, s *scratch) bool {
	if v.Kind == event.KindString {
		return k.p.Match(v.S)
	}
	s.num = appendValue(s.num[:0], v)
	return k.p.MatchBytes(s.num)
}

// cmpOK reports whether c (-1, 0, 1: value compared to bound) satisfies op.
func cmpOK(op kql.RangeOp, c int) bool {
	switch op {
	case kql.OpLT:
		return c < 0
	case kql.OpLTE:
		return c <= 0
	case kql.OpGT:
		return c > 0
	case kql.OpGTE:
		return c >= 0
	}
	return false
}

// kwRange: a term range on a keyword (byte-wise order, as Lucene's).
type kwRange struct {
	op     kql.RangeOp
	bound  string
	boundB []byte
	// numeric compares numbers numerically (fields outside the schema).
	numeric bool
	num     float64
}

func (k *kwRange) test(v *event.Value, s *scratch) bool {
	if k.numeric {
		if f, ok := numberOf(v); ok {
			return cmpOK(k.op, cmpFloat(f, k.num))
		}
	}
	if v.Kind == event.KindString {
		return cmpOK(k.op, compareStrings(v.S, k.bound))
	}
	s.num = appendValue(s.num[:0], v)
	return cmpOK(k.op, bytes.Compare(s.num, k.boundB))
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// numberOf returns the numeric value of a number (or numeric string).
func numberOf(v *event.Value) (float64, bool) {
	switch v.Kind {
	case event.KindInt:
		return float64(v.I), true
	case event.KindFloat:
		return v.F, true
	case event.KindString:
		if i, err := strconv.ParseInt(v.S, 10, 64); err == nil {
			return float64(i), true
		}
		if f, err := strconv.ParseFloat(v.S, 64); err == nil {
			return f, true
		}
	}
	return 0, false
}

// unkEq: a field outside the schema: numbers compare numerically with a
// numeric query value, everything else as its string form.
type unkEq struct {
	str   string
	num   float64
	isNum bool
}

func (u *unkEq) test(v *event.Value, s *scratch) bool {
	if u.isNum && (v.Kind == event.KindInt || v.Kind == event.KindFloat) {
		f, _ := numberOf(v)
		return f == u.num
	}
	if v.Kind == event.KindString {
		return v.S == u.str
	}
	s.num = appendValue(s.num[:0], v)
	return string(s.num) == u.str
}

// numRange: a long field compared with a bound; eq is an exact match.
type numRange struct {
	op  kql.RangeOp // 0 for equality
	num float64
}

func (n *numRange) test(v *event.Value, _ *scratch) bool {
	f, ok := numberOf(v)
	if !ok {
		return false
	}
	if n.op == 0 {
		return f == n.num
	}
	return cmpOK(n.op, cmpFloat(f, n.num))
}

// dateRange: a date field within [min, max] epoch milliseconds.
type dateRange struct{ min, max int64 }

func (d *dateRange) test(v *event.Value, _ *scratch) bool {
	var ms int64
	switch v.Kind {
	case event.KindTime:
		ms = floorDiv(v.I, 1e6)
	case event.KindInt:
		ms = v.I
	case event.KindString:
		t, ok, _ := parseDateBound(v.S, false)
		if !ok {
			return false
		}
		ms = t
	default:
		return false
	}
	return ms >= d.min && ms <= d.max
}

// ipPrefix: an ip field equal to an address or inside a CIDR block.
type ipPrefix struct{ p netip.Prefix }

func (ip *ipPrefix) test(v *event.Value, _ *scratch) bool {
	if v.Kind != event.KindString {
		return false
	}
	a, err := netip.ParseAddr(v.S)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	return ip.p.Contains(a)
}

// ipRange: an ip field compared with a bound, IPv4 as IPv4-mapped IPv6.
type ipRange struct {
	op    kql.RangeOp
	bound [16]byte
}

func (ip *ipRange) test(v *event.Value, _ *scratch) bool {
	if v.Kind != event.KindString {
		return false
	}
	a, err := netip.ParseAddr(v.S)
	if err != nil {
		return false
	}
	b := a.WithZone("").As16()
	return cmpOK(ip.op, bytes.Compare(b[:], ip.bound[:]))
}

// boolEq: a boolean field.
type boolEq struct{ b bool }

func (p *boolEq) test(v *event.Value, _ *scratch) bool {
	switch v.Kind {
	case event.KindBool:
		return v.B == p.b
	case event.KindString:
		return (v.S == "true") == p.b && (v.S == "true" || v.S == "false")
	}
	return false
}

// textPred tests the tokens of one analyzed text value.
type textPred interface {
	test(a *analyzer) bool
}

// textAny: any token equals one of the query's tokens (match query).
type textAny struct{ toks []string }

func (t *textAny) test(a *analyzer) bool {
	for i := range a.ends {
		tok := a.token(i)
		for _, q := range t.toks {
			if string(tok) == q {
				return true
			}
		}
	}
	return false
}

// textPhrase: the query's tokens occur consecutively (match_phrase).
type textPhrase struct{ toks []string }

func (t *textPhrase) test(a *analyzer) bool {
	n := len(t.toks)
	for i := 0; i+n <= len(a.ends); i++ {
		j := 0
		for j < n && string(a.token(i+j)) == t.toks[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// textWild: any token matches a lowercased wildcard pattern (query_string).
type textWild struct{ p wildcard.Pattern }

func (t *textWild) test(a *analyzer) bool {
	for i := range a.ends {
		if t.p.MatchBytes(a.token(i)) {
			return true
		}
	}
	return false
}

// textRange: any token is within a term range.
type textRange struct {
	op    kql.RangeOp
	bound []byte
}

func (t *textRange) test(a *analyzer) bool {
	for i := range a.ends {
		if cmpOK(t.op, bytes.Compare(a.token(i), t.bound)) {
			return true
		}
	}
	return false
}
