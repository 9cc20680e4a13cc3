package esqleval

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
)

// Row is one row of a table: one cell per column, each cell holding the
// column's values (nil for null, several for a multi-valued cell).
type Row [][]event.Value

// Clone returns a copy of r that owns its memory (strings included).
func (r Row) Clone() Row {
	out := make(Row, len(r))
	for i, c := range r {
		out[i] = cloneValues(c)
	}
	return out
}

func cloneValues(vs []event.Value) []event.Value {
	if len(vs) == 0 {
		return nil
	}
	out := make([]event.Value, len(vs))
	for i, v := range vs {
		if v.Kind == event.KindString {
			v.S = strings.Clone(v.S)
		}
		out[i] = v
	}
	return out
}

// single returns the only value of vs; ok is false for null and
// multi-valued cells, which single-valued ES|QL operators turn into null.
func single(vs []event.Value) (event.Value, bool) {
	if len(vs) != 1 || vs[0].Kind == event.KindNull {
		return event.Value{}, false
	}
	return vs[0], true
}

func isNumeric(k event.Kind) bool { return k == event.KindInt || k == event.KindFloat }

func asFloat(v event.Value) float64 {
	if v.Kind == event.KindInt {
		return float64(v.I)
	}
	return v.F
}

// compareValues orders two non-null values of comparable kinds. ok is false
// when the kinds cannot be compared (ES|QL would reject the query; kanon
// evaluates to null). Strings compare byte-wise, as ES|QL compares keyword
// and text values as whole strings; a date compared with a string parses
// the string as a date, as ES|QL casts string literals.
func compareValues(a, b event.Value) (int, bool) {
	switch {
	case a.Kind == b.Kind:
		switch a.Kind {
		case event.KindString:
			return strings.Compare(a.S, b.S), true
		case event.KindInt, event.KindTime:
			return cmp.Compare(a.I, b.I), true
		case event.KindFloat:
			return cmp.Compare(a.F, b.F), true
		case event.KindBool:
			return cmp.Compare(b2i(a.B), b2i(b.B)), true
		}
		return 0, false
	case isNumeric(a.Kind) && isNumeric(b.Kind):
		return cmp.Compare(asFloat(a), asFloat(b)), true
	case a.Kind == event.KindTime && b.Kind == event.KindString:
		t, ok := event.ParseTime(b.S)
		if !ok {
			return 0, false
		}
		return cmp.Compare(a.I, t.UnixNano()), true
	case a.Kind == event.KindString && b.Kind == event.KindTime:
		c, ok := compareValues(b, a)
		return -c, ok
	}
	return 0, false
}

// compareIP compares two values as IP addresses (ES|QL casts a string
// compared with an ip field to ip).
func compareIP(a, b event.Value) (int, bool) {
	if a.Kind != event.KindString || b.Kind != event.KindString {
		return 0, false
	}
	x, err1 := netip.ParseAddr(a.S)
	y, err2 := netip.ParseAddr(b.S)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return x.Unmap().Compare(y.Unmap()), true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kindRank orders kinds for sorting mixed columns (VALUES, SORT).
func kindRank(k event.Kind) int {
	switch k {
	case event.KindBool:
		return 1
	case event.KindInt, event.KindFloat:
		return 2
	case event.KindTime:
		return 3
	case event.KindString:
		return 4
	}
	return 0
}

// totalOrder orders any two values: by kind rank, then by value.
func totalOrder(a, b event.Value) int {
	if ra, rb := kindRank(a.Kind), kindRank(b.Kind); ra != rb {
		return cmp.Compare(ra, rb)
	}
	if c, ok := compareValues(a, b); ok {
		return c
	}
	return 0
}

// Value encoding: a kind tag and a payload. The encoding is deterministic,
// self-delimiting and order-preserving within a kind (integers and dates
// big-endian with the sign bit flipped, doubles by their IEEE bits made
// monotonic, strings escaped and terminated); it is used for group keys,
// distinct sets and exported state.
const (
	tagNull   = 0
	tagBool   = 1
	tagInt    = 2
	tagFloat  = 3
	tagTime   = 4
	tagString = 5
)

// appendValue appends the encoding of v to dst.
func appendValue(dst []byte, v event.Value) []byte {
	switch v.Kind {
	case event.KindBool:
		return append(dst, tagBool, byte(b2i(v.B)))
	case event.KindInt:
		return binary.BigEndian.AppendUint64(append(dst, tagInt), uint64(v.I)^(1<<63))
	case event.KindFloat:
		bits := math.Float64bits(v.F)
		if bits&(1<<63) != 0 {
			bits = ^bits
		} else {
			bits |= 1 << 63
		}
		return binary.BigEndian.AppendUint64(append(dst, tagFloat), bits)
	case event.KindTime:
		return binary.BigEndian.AppendUint64(append(dst, tagTime), uint64(v.I)^(1<<63))
	case event.KindString:
		// Escape 0x00 as 00 FF and end with 00 01, so that the encoding
		// sorts as the strings do.
		dst = append(dst, tagString)
		for {
			i := strings.IndexByte(v.S, 0)
			if i < 0 {
				break
			}
			dst = append(append(dst, v.S[:i]...), 0, 0xFF)
			v.S = v.S[i+1:]
		}
		return append(append(dst, v.S...), 0, 1)
	}
	return append(dst, tagNull)
}

var errCorrupt = errors.New("corrupt encoding")

// decodeValue decodes one value from b and returns the rest. Strings are
// copied out of b.
func decodeValue(b []byte) (event.Value, []byte, error) {
	if len(b) == 0 {
		return event.Value{}, nil, errCorrupt
	}
	tag, b := b[0], b[1:]
	switch tag {
	case tagNull:
		return event.Value{}, b, nil
	case tagBool:
		if len(b) < 1 || b[0] > 1 {
			return event.Value{}, nil, errCorrupt
		}
		return event.Bool(b[0] == 1), b[1:], nil
	case tagInt, tagTime, tagFloat:
		if len(b) < 8 {
			return event.Value{}, nil, errCorrupt
		}
		u := binary.BigEndian.Uint64(b)
		switch tag {
		case tagInt:
			return event.Int(int64(u ^ (1 << 63))), b[8:], nil
		case tagTime:
			return event.Value{Kind: event.KindTime, I: int64(u ^ (1 << 63))}, b[8:], nil
		}
		if u&(1<<63) != 0 {
			u &^= 1 << 63
		} else {
			u = ^u
		}
		return event.Float(math.Float64frombits(u)), b[8:], nil
	case tagString:
		var out []byte
		for {
			i := bytes.IndexByte(b, 0)
			if i < 0 || i+1 >= len(b) {
				return event.Value{}, nil, errCorrupt
			}
			out = append(out, b[:i]...)
			switch b[i+1] {
			case 1:
				return event.Str(string(out)), b[i+2:], nil
			case 0xFF:
				out = append(out, 0)
				b = b[i+2:]
			default:
				return event.Value{}, nil, errCorrupt
			}
		}
	}
	return event.Value{}, nil, errCorrupt
}

// appendBytes appends a length-prefixed byte string.
func appendBytes(dst, b []byte) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(b))), b...)
}

// readBytes reads a length-prefixed byte string; the result aliases b.
func readBytes(b []byte) ([]byte, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return nil, nil, errCorrupt
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, nil, errCorrupt
	}
	return n, b[k:], nil
}

// valueSize estimates the memory a stored value takes.
func valueSize(v event.Value) int64 {
	return int64(48 + len(v.S))
}
