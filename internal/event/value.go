package event

import (
	"strconv"
	"time"
)

// Kind is the dynamic type of a Value.
type Kind uint8

// Value kinds.
const (
	KindNull   Kind = iota
	KindString      // S
	KindInt         // I
	KindFloat       // F
	KindBool        // B
	KindTime        // I: Unix nanoseconds, UTC
)

func (k Kind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindBool:
		return "bool"
	case KindTime:
		return "time"
	}
	return "null"
}

// Value is one value of a field. A string may alias a reader's buffer (see
// the package doc).
type Value struct {
	Kind Kind
	S    string
	I    int64
	F    float64
	B    bool
}

// Str returns a string value.
func Str(s string) Value { return Value{Kind: KindString, S: s} }

// Int returns an integer value.
func Int(i int64) Value { return Value{Kind: KindInt, I: i} }

// Float returns a floating-point value.
func Float(f float64) Value { return Value{Kind: KindFloat, F: f} }

// Bool returns a boolean value.
func Bool(b bool) Value { return Value{Kind: KindBool, B: b} }

// Time returns a date value.
func Time(t time.Time) Value { return Value{Kind: KindTime, I: t.UnixNano()} }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.Kind == KindNull }

// AsTime returns the time of a KindTime value.
func (v Value) AsTime() time.Time { return time.Unix(0, v.I).UTC() }

// String returns the display form of v: strings as they are, numbers in
// decimal, dates in RFC 3339 with nanoseconds, null as "null".
func (v Value) String() string {
	switch v.Kind {
	case KindString:
		return v.S
	case KindInt:
		return strconv.FormatInt(v.I, 10)
	case KindFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case KindBool:
		return strconv.FormatBool(v.B)
	case KindTime:
		return v.AsTime().Format(time.RFC3339Nano)
	}
	return "null"
}

// Any returns v as a Go value for JSON encoding.
func (v Value) Any() any {
	switch v.Kind {
	case KindString:
		return v.S
	case KindInt:
		return v.I
	case KindFloat:
		return v.F
	case KindBool:
		return v.B
	case KindTime:
		return v.AsTime().Format(time.RFC3339Nano)
	}
	return nil
}
