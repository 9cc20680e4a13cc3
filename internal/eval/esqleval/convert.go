package esqleval

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
)

// convert compiles a type conversion (TO_STRING, TO_LONG, ..., x::type).
// Conversions apply to each value of a multi-valued input, as in ES|QL; a
// value that does not convert is dropped (ES|QL gives null with a warning).
func (cp *compiler) convert(typeName string, a cexpr, loc pos.Span) (cexpr, bool) {
	var f func(v event.Value, ip bool) (event.Value, bool)
	var rt typ
	switch typeName {
	case "keyword", "text", "string":
		f, rt = toString, tyString
	case "integer", "int":
		f, rt = toInteger, tyLong
	case "long", "unsigned_long":
		f, rt = toLong, tyLong
	case "double":
		f, rt = toDouble, tyDouble
	case "boolean", "bool":
		f, rt = toBoolean, tyBool
	case "datetime", "date":
		f, rt = toDatetime, tyDate
	case "ip":
		f, rt = toIP, tyIP
	default:
		cp.errorf(loc, ErrType, "conversion to %s is not supported", typeName)
		return cexpr{}, false
	}
	isIP := a.typ == tyIP
	t := cp.newTmp()
	return cexpr{typ: rt, fn: func(c *ctx, dst []event.Value) []event.Value {
		for _, v := range evalTmp(c, &a, t) {
			if r, ok := f(v, isIP); ok {
				dst = append(dst, r)
			}
		}
		return dst
	}}, true
}

// toString renders a value as ES|QL's TO_STRING: dates in ISO 8601 with
// milliseconds, doubles as Java prints them.
func toString(v event.Value, ip bool) (event.Value, bool) {
	switch v.Kind {
	case event.KindString:
		if ip {
			if s, ok := canonicalIP(v.S); ok {
				return event.Str(s), true
			}
		}
		return v, true
	case event.KindInt:
		return event.Str(strconv.FormatInt(v.I, 10)), true
	case event.KindFloat:
		return event.Str(javaDouble(v.F)), true
	case event.KindBool:
		return event.Str(strconv.FormatBool(v.B)), true
	case event.KindTime:
		return event.Str(v.AsTime().Format("2006-01-02T15:04:05.000Z")), true
	}
	return event.Value{}, false
}

// javaDouble formats a double as Java's Double.toString does for the common
// ranges: "1.0", "0.5", "1.0E10".
func javaDouble(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 || f == 0 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	s := strconv.FormatFloat(f, 'E', -1, 64)
	mant, exp, _ := strings.Cut(s, "E")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	exp = strings.TrimPrefix(exp, "+")
	return mant + "E" + exp
}

func toLong(v event.Value, _ bool) (event.Value, bool) {
	switch v.Kind {
	case event.KindInt:
		return v, true
	case event.KindFloat:
		if math.IsNaN(v.F) || v.F >= 1<<63 || v.F < -(1<<63) {
			return event.Value{}, false
		}
		return event.Int(int64(v.F)), true
	case event.KindBool:
		return event.Int(int64(b2i(v.B))), true
	case event.KindTime:
		return event.Int(v.I / int64(time.Millisecond)), true
	case event.KindString:
		s := strings.TrimSpace(v.S)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return event.Int(i), true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return toLong(event.Float(f), false)
		}
	}
	return event.Value{}, false
}

func toInteger(v event.Value, ip bool) (event.Value, bool) {
	r, ok := toLong(v, ip)
	if !ok || r.I > math.MaxInt32 || r.I < math.MinInt32 {
		return event.Value{}, false
	}
	return r, true
}

func toDouble(v event.Value, _ bool) (event.Value, bool) {
	switch v.Kind {
	case event.KindInt:
		return event.Float(float64(v.I)), true
	case event.KindFloat:
		return v, true
	case event.KindBool:
		return event.Float(float64(b2i(v.B))), true
	case event.KindTime:
		return event.Float(float64(v.I / int64(time.Millisecond))), true
	case event.KindString:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v.S), 64); err == nil {
			return event.Float(f), true
		}
	}
	return event.Value{}, false
}

// toBoolean converts as ES|QL: the string "true" (any case) is true and
// every other string false; a number is true unless zero.
func toBoolean(v event.Value, _ bool) (event.Value, bool) {
	switch v.Kind {
	case event.KindBool:
		return v, true
	case event.KindString:
		return event.Bool(strings.EqualFold(v.S, "true")), true
	case event.KindInt:
		return event.Bool(v.I != 0), true
	case event.KindFloat:
		return event.Bool(v.F != 0), true
	}
	return event.Value{}, false
}

// toDatetime converts ISO 8601 strings and milliseconds since the epoch.
func toDatetime(v event.Value, _ bool) (event.Value, bool) {
	switch v.Kind {
	case event.KindTime:
		return v, true
	case event.KindString:
		if t, ok := event.ParseTime(v.S); ok {
			return event.Time(t), true
		}
		if t, err := time.Parse("2006-01-02", v.S); err == nil {
			return event.Time(t), true
		}
	case event.KindInt:
		return event.Time(time.UnixMilli(v.I)), true
	case event.KindFloat:
		return event.Time(time.UnixMilli(int64(v.F))), true
	}
	return event.Value{}, false
}

func toIP(v event.Value, _ bool) (event.Value, bool) {
	if v.Kind != event.KindString {
		return event.Value{}, false
	}
	s, ok := canonicalIP(v.S)
	if !ok {
		return event.Value{}, false
	}
	return event.Str(s), true
}
