package jsonx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is the category of every error of this package.
var ErrSyntax = errors.New("invalid JSON")

// ErrDuplicateKey is the category of a duplicate object key.
var ErrDuplicateKey = errors.New("duplicate key")

// ErrTooDeep is returned when nesting exceeds MaxDepth.
var ErrTooDeep = errors.New("JSON nested too deeply")

// MaxDepth bounds object and array nesting.
const MaxDepth = 200

// SyntaxError is a scan error at a byte offset.
type SyntaxError struct {
	Off  int
	Msg  string
	Code error
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("offset %d: %s", e.Off, e.Msg) }

// Unwrap returns the error's category.
func (e *SyntaxError) Unwrap() error { return e.Code }

func errAt(off int, code error, format string, args ...any) error {
	return &SyntaxError{Off: off, Msg: fmt.Sprintf(format, args...), Code: code}
}

// SkipWS returns the offset of the first non-whitespace byte at or after i.
func SkipWS(b []byte, i int) int {
	// One comparison for the usual case, a byte above ' ' (audit logs
	// carry no whitespace between tokens); a bit test for the others.
	const ws = 1<<' ' | 1<<'\t' | 1<<'\n' | 1<<'\r'
	for i < len(b) {
		if c := b[i]; c > ' ' || ws>>c&1 == 0 {
			return i
		}
		i++
	}
	return i
}

// Type of the JSON value starting at a byte.
type Type uint8

// JSON value types.
const (
	Invalid Type = iota
	Null
	Bool
	Number
	String
	Array
	Object
)

// TypeAt returns the type of the value starting at b[i] (after whitespace).
func TypeAt(b []byte, i int) Type {
	if i >= len(b) {
		return Invalid
	}
	switch c := b[i]; {
	case c == '"':
		return String
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	case c == '-' || (c >= '0' && c <= '9'):
		return Number
	}
	return Invalid
}

// String reads the string starting at b[i] (which must be '"'). It returns
// the unescaped contents and the offset after the closing quote. When the
// string has no escapes the result aliases b; otherwise it is appended to
// *scratch (which may grow) and aliases that.
func ReadString(b []byte, i int, scratch *[]byte) ([]byte, int, error) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, errAt(i, ErrSyntax, "expected a string")
	}
	start := i + 1
	j := scanString(b, start)
	if j >= len(b) {
		return nil, len(b), errAt(i, ErrSyntax, "unterminated string")
	}
	switch b[j] {
	case '"':
		return b[start:j], j + 1, nil
	case '\\':
		return unescape(b, start, scratch)
	}
	return nil, j, errAt(j, ErrSyntax, "control character in string")
}

// scanString returns the offset of the first '"', '\\' or control
// character at or after j, or len(b). It looks at sixteen, then eight bytes
// at a time (SWAR: a byte is flagged when it equals '"' or '\\', or is
// below 0x20; the lowest flagged byte of a word is exact, borrows only
// flag bytes above it), and finds the byte from the flags, not by a second
// scan.
func scanString(b []byte, j int) int {
	for ; j+16 <= len(b); j += 16 {
		w := b[j : j+16 : j+16]
		if f := stringFlags(binary.LittleEndian.Uint64(w)); f != 0 {
			return j + bits.TrailingZeros64(f)>>3
		}
		if f := stringFlags(binary.LittleEndian.Uint64(w[8:])); f != 0 {
			return j + 8 + bits.TrailingZeros64(f)>>3
		}
	}
	if j+8 <= len(b) {
		if f := stringFlags(binary.LittleEndian.Uint64(b[j:])); f != 0 {
			return j + bits.TrailingZeros64(f)>>3
		}
		j += 8
	}
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
			return j
		}
	}
	return j
}

// stringFlags returns, for the eight bytes of x (little-endian), the high
// bit of each byte that is '"', '\\' or below 0x20, exact up to and
// including the lowest flagged byte. XOR with 0x02 maps '"' (0x22) to 0x20
// and the control characters onto themselves (0x00-0x1f), so one "below
// 0x21" test finds both, and a zero-byte test finds the backslash.
func stringFlags(x uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	y := x ^ (ones * 0x02)
	bs := x ^ (ones * '\\')
	return (((y - ones*0x21) &^ y) | ((bs - ones) &^ bs)) & highs
}

func unescape(b []byte, start int, scratch *[]byte) ([]byte, int, error) {
	out := (*scratch)[len(*scratch):]
	j := start
	for j < len(b) {
		c := b[j]
		switch {
		case c == '"':
			*scratch = append(*scratch, out...)
			n := len(*scratch)
			return (*scratch)[n-len(out) : n : n], j + 1, nil
		case c < 0x20:
			return nil, j, errAt(j, ErrSyntax, "control character in string")
		case c != '\\':
			// A run of plain bytes up to the next quote, backslash or
			// control character, copied at once.
			k := scanString(b, j+1)
			out = append(out, b[j:k]...)
			j = k
			continue
		}
		if j+1 >= len(b) {
			return nil, j, errAt(j, ErrSyntax, "unterminated escape")
		}
		e := b[j+1]
		j += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, err := readHex4(b, j)
			if err != nil {
				return nil, j, err
			}
			j = n
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if j+1 < len(b) && b[j] == '\\' && b[j+1] == 'u' {
					if x, n2, err := readHex4(b, j+2); err == nil {
						r2 = x
						if utf16.DecodeRune(r, r2) != utf8.RuneError {
							j = n2
						}
					}
				}
				r = utf16.DecodeRune(r, r2)
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, j - 2, errAt(j-2, ErrSyntax, "invalid escape \\%c", e)
		}
	}
	return nil, j, errAt(start-1, ErrSyntax, "unterminated string")
}

func readHex4(b []byte, j int) (rune, int, error) {
	if j+4 > len(b) {
		return 0, j, errAt(j, ErrSyntax, "short \\u escape")
	}
	var r rune
	for k := 0; k < 4; k++ {
		c := b[j+k]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, j, errAt(j+k, ErrSyntax, "invalid \\u escape")
		}
	}
	return r, j + 4, nil
}

// skipString skips the string at b[i] without unescaping.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		j = scanString(b, j)
		if j >= len(b) {
			return len(b), errAt(i, ErrSyntax, "unterminated string")
		}
		if b[j] == '"' {
			return j + 1, nil
		}
		if b[j] < 0x20 {
			return j, errAt(j, ErrSyntax, "control character in string")
		}
		if j+1 >= len(b) {
			return j, errAt(j, ErrSyntax, "unterminated escape")
		}
		switch b[j+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			j += 2
		case 'u':
			if _, _, err := readHex4(b, j+2); err != nil {
				return j, err
			}
			j += 6
		default:
			return j, errAt(j, ErrSyntax, "invalid escape")
		}
	}
}

// ReadNumber validates the number at b[i] and returns its text.
func ReadNumber(b []byte, i int) ([]byte, int, error) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	if j >= len(b) {
		return nil, j, errAt(i, ErrSyntax, "invalid number")
	}
	if b[j] == '0' {
		j++
	} else if b[j] >= '1' && b[j] <= '9' {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	} else {
		return nil, j, errAt(i, ErrSyntax, "invalid number")
	}
	if j < len(b) && b[j] == '.' {
		j++
		d := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == d {
			return nil, j, errAt(i, ErrSyntax, "invalid number")
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		d := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == d {
			return nil, j, errAt(i, ErrSyntax, "invalid number")
		}
	}
	return b[i:j], j, nil
}

// ParseInt parses the text of a JSON integer; ok is false for fractions,
// exponents and overflow.
func ParseInt(num []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(num), 10, 64)
	return n, err == nil
}

func readLiteral(b []byte, i int, lit string) (int, error) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, errAt(i, ErrSyntax, "invalid literal")
	}
	return i + len(lit), nil
}

// Skip validates and skips the value at b[i] (after whitespace), returning
// the offset after it. Objects are checked for duplicate keys at every depth.
func Skip(b []byte, i int) (int, error) {
	var scratch []byte
	return skip(b, i, 0, &scratch)
}

// SkipSyntax is Skip without the duplicate-key check: it validates the
// syntax of the value at b[i] (after whitespace), nesting included, and
// returns the offset after it. A caller that was told of a duplicate key
// by Skip uses it to find where the value ends, when the rest of the
// value is well-formed.
func SkipSyntax(b []byte, i int) (int, error) {
	return skip(b, i, 0, nil)
}

// skip is Skip with scratch space for the unescaped keys of the objects
// it checks (its callers' buffer, reused; nothing kept after it returns).
// A nil scratch skips the duplicate-key check (SkipSyntax).
func skip(b []byte, i, depth int, scratch *[]byte) (int, error) {
	i = SkipWS(b, i)
	if i >= len(b) {
		return i, errAt(i, ErrSyntax, "unexpected end of input, expected a value")
	}
	switch c := b[i]; c {
	case '"':
		return skipString(b, i)
	case '{':
		return skipObject(b, i, depth+1, scratch)
	case '[':
		if depth+1 > MaxDepth {
			return i, errAt(i, ErrTooDeep, "nesting deeper than %d", MaxDepth)
		}
		j := SkipWS(b, i+1)
		if j < len(b) && b[j] == ']' {
			return j + 1, nil
		}
		for {
			var err error
			if j = SkipWS(b, j); j < len(b) && b[j] == '"' {
				j, err = skipString(b, j)
			} else {
				j, err = skip(b, j, depth+1, scratch)
			}
			if err != nil {
				return j, err
			}
			j = SkipWS(b, j)
			if j >= len(b) {
				return j, errAt(j, ErrSyntax, "unterminated array")
			}
			if b[j] == ']' {
				return j + 1, nil
			}
			if b[j] != ',' {
				return j, errAt(j, ErrSyntax, "expected ',' or ']' in array")
			}
			j++
		}
	case 't':
		return readLiteral(b, i, "true")
	case 'f':
		return readLiteral(b, i, "false")
	case 'n':
		return readLiteral(b, i, "null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			_, j, err := ReadNumber(b, i)
			return j, err
		}
		return i, errAt(i, ErrSyntax, "unexpected %q, expected a value", rune(c))
	}
}

// KeySet detects duplicate keys in one object. The zero value is ready;
// Reset reuses it. Up to len(small) keys are checked by linear scan with no
// allocation; larger objects switch to a map.
type KeySet struct {
	n     int
	bloom uint64 // one bit per key hash: most new keys are told apart by it
	small [32][]byte
	m     map[string]struct{}
}

// Reset empties the set, keeping its storage.
func (s *KeySet) Reset() {
	s.n = 0
	s.bloom = 0
	if s.m != nil {
		clear(s.m)
	}
}

func keyBit(key []byte) uint64 {
	h := uint(len(key))
	if len(key) > 0 {
		h = h*31 + uint(key[0])
		h = h*31 + uint(key[len(key)-1])
		h = h*31 + uint(key[len(key)/2])
	}
	return 1 << (h & 63)
}

// Add records key and reports false if it was already present. key must
// stay valid until Reset (it aliases the input or a scratch buffer).
func (s *KeySet) Add(key []byte) bool {
	if s.n < len(s.small) {
		bit := keyBit(key)
		if s.bloom&bit == 0 {
			s.bloom |= bit
			s.small[s.n] = key
			s.n++
			return true
		}
		for i := 0; i < s.n; i++ {
			if string(s.small[i]) == string(key) {
				return false
			}
		}
		s.small[s.n] = key
		s.n++
		return true
	}
	if s.n == len(s.small) {
		if s.m == nil {
			s.m = make(map[string]struct{}, 64)
		}
		for _, k := range s.small {
			s.m[string(k)] = struct{}{}
		}
		s.n++
	}
	if _, ok := s.m[string(key)]; ok {
		return false
	}
	s.m[string(key)] = struct{}{}
	return true
}

func skipObject(b []byte, i, depth int, scratch *[]byte) (int, error) {
	if depth > MaxDepth {
		return i, errAt(i, ErrTooDeep, "nesting deeper than %d", MaxDepth)
	}
	j := SkipWS(b, i+1)
	if j < len(b) && b[j] == '}' {
		return j + 1, nil
	}
	if scratch == nil {
		return skipMembers(b, j, depth, nil, nil)
	}
	mark := len(*scratch)
	end, err := skipSmallObject(b, j, depth, scratch)
	*scratch = (*scratch)[:mark]
	return end, err
}

// smallKeys is how many keys skipSmallObject checks by itself.
const smallKeys = 8

// skipSmallObject is skipMembers with the duplicate-key check, for the
// usual nested object: a few keys, none escaped. It keeps their offsets in
// b (no pointers: no write barriers, and 16 bytes a key to clear, not a
// KeySet's 800), compared after a bloom test as KeySet does. At the first
// escaped key, or one key too many, it hands the object over to
// skipMembers with a KeySet of the keys seen so far, from the current key:
// the keys, errors and offsets are those of skipMembers throughout.
func skipSmallObject(b []byte, j, depth int, scratch *[]byte) (int, error) {
	var offs [smallKeys]struct{ at, end int }
	var bloom uint64
	n := 0
	for {
		j = SkipWS(b, j)
		keyAt := j
		k := scanString(b, j+1)
		if n == smallKeys || j >= len(b) || b[j] != '"' || k >= len(b) || b[k] != '"' {
			var ks KeySet
			for _, o := range offs[:n] {
				ks.Add(b[o.at:o.end])
			}
			return skipMembers(b, keyAt, depth, scratch, &ks)
		}
		key := b[j+1 : k]
		bit := keyBit(key)
		if bloom&bit != 0 {
			for _, o := range offs[:n] {
				if string(b[o.at:o.end]) == string(key) {
					return keyAt, errAt(keyAt, ErrDuplicateKey, "duplicate key %q", key)
				}
			}
		}
		bloom |= bit
		offs[n] = struct{ at, end int }{j + 1, k}
		n++
		j = SkipWS(b, k+1)
		if j >= len(b) || b[j] != ':' {
			return j, errAt(j, ErrSyntax, "expected ':' after object key")
		}
		var err error
		if j = SkipWS(b, j+1); j < len(b) && b[j] == '"' {
			j, err = skipString(b, j)
		} else {
			j, err = skip(b, j, depth, scratch)
		}
		if err != nil {
			return j, err
		}
		j = SkipWS(b, j)
		if j >= len(b) {
			return j, errAt(j, ErrSyntax, "unterminated object")
		}
		if b[j] == '}' {
			return j + 1, nil
		}
		if b[j] != ',' {
			return j, errAt(j, ErrSyntax, "expected ',' or '}' in object")
		}
		j++
	}
}

// skipMembers skips the members of an object from b[j] (its first key) to
// the closing brace, checking keys against ks unless ks is nil.
func skipMembers(b []byte, j, depth int, scratch *[]byte, ks *KeySet) (int, error) {
	for {
		j = SkipWS(b, j)
		keyAt := j
		if ks == nil {
			if j >= len(b) || b[j] != '"' {
				return j, errAt(j, ErrSyntax, "expected a string")
			}
			n, err := skipString(b, j)
			if err != nil {
				return n, err
			}
			j = n
		} else {
			// A key without escapes (the usual case) is found by one
			// search for its closing quote, here; others by ReadString.
			var key []byte
			var n int
			if k := scanString(b, j+1); j < len(b) && b[j] == '"' && k < len(b) && b[k] == '"' {
				key, n = b[j+1:k], k+1
			} else {
				var err error
				if key, n, err = ReadString(b, j, scratch); err != nil {
					return n, err
				}
			}
			if !ks.Add(key) {
				return keyAt, errAt(keyAt, ErrDuplicateKey, "duplicate key %q", key)
			}
			j = n
		}
		j = SkipWS(b, j)
		if j >= len(b) || b[j] != ':' {
			return j, errAt(j, ErrSyntax, "expected ':' after object key")
		}
		var err error
		if j = SkipWS(b, j+1); j < len(b) && b[j] == '"' {
			j, err = skipString(b, j)
		} else {
			j, err = skip(b, j, depth, scratch)
		}
		if err != nil {
			return j, err
		}
		j = SkipWS(b, j)
		if j >= len(b) {
			return j, errAt(j, ErrSyntax, "unterminated object")
		}
		if b[j] == '}' {
			return j + 1, nil
		}
		if b[j] != ',' {
			return j, errAt(j, ErrSyntax, "expected ',' or '}' in object")
		}
		j++
	}
}

// ObjectIter iterates over the members of one object, checking for
// duplicate keys at this level (values the caller does not consume are
// skipped, and checked, by Next). Use:
//
//	var it jsonx.ObjectIter
//	if err := it.Begin(b, i); err != nil { ... }
//	for it.Next() {
//		// it.Key, it.Value; optionally read the value and call it.Consumed(end)
//	}
//	if it.Err != nil { ... }   // else it.End is the offset after '}'
type ObjectIter struct {
	B       []byte
	Key     []byte // current key (aliases B or Scratch)
	Value   int    // offset of the current value
	Scratch []byte // unescaped keys; reused across Begin calls
	Err     error
	End     int // offset after the closing '}' once Next has returned false

	// Trusted skips the duplicate-key check and the validation of values
	// the caller does not read: set it only for input already validated
	// (by Skip) elsewhere.
	Trusted bool

	keys     KeySet
	pos      int
	first    bool
	consumed bool
	done     bool
}

// Begin starts iterating over the object at b[i] (after whitespace).
func (it *ObjectIter) Begin(b []byte, i int) error {
	it.B = b
	it.Scratch = it.Scratch[:0]
	it.keys.Reset()
	it.Err = nil
	it.Key = nil
	it.first = true
	it.consumed = true
	it.done = false
	i = SkipWS(b, i)
	if i >= len(b) || b[i] != '{' {
		it.Err = errAt(i, ErrSyntax, "expected an object")
		it.done = true
		return it.Err
	}
	j := SkipWS(b, i+1)
	if j < len(b) && b[j] == '}' {
		it.done = true
		it.End = j + 1
		return nil
	}
	it.pos = j
	return nil
}

// Consumed tells the iterator the caller has read the current value, which
// ended at offset end.
func (it *ObjectIter) Consumed(end int) {
	it.pos = end
	it.consumed = true
}

// Next advances to the next member. It returns false at the end of the
// object or on error (check Err).
func (it *ObjectIter) Next() bool {
	if it.done {
		return false
	}
	b := it.B
	j := it.pos
	if !it.first {
		if !it.consumed {
			var err error
			if it.Trusted {
				j, err = SkipUnchecked(b, it.Value)
			} else if it.Value < len(b) && b[it.Value] == '"' {
				j, err = skipString(b, it.Value)
			} else {
				j, err = skip(b, it.Value, 0, &it.Scratch)
			}
			if err != nil {
				return it.fail(err)
			}
		}
		j = SkipWS(b, j)
		if j >= len(b) {
			return it.fail(errAt(j, ErrSyntax, "unterminated object"))
		}
		if b[j] == '}' {
			it.End = j + 1
			it.done = true
			return false
		}
		if b[j] != ',' {
			return it.fail(errAt(j, ErrSyntax, "expected ',' or '}' in object"))
		}
		j = SkipWS(b, j+1)
	}
	it.first = false
	keyAt := j
	// A key without escapes (the usual case) is found by one search for
	// its closing quote, here; others by ReadString.
	var key []byte
	var n int
	if k := scanString(b, j+1); j < len(b) && b[j] == '"' && k < len(b) && b[k] == '"' {
		key, n = b[j+1:k], k+1
	} else {
		var err error
		if key, n, err = ReadString(b, j, &it.Scratch); err != nil {
			return it.fail(err)
		}
	}
	if !it.Trusted && !it.keys.Add(key) {
		return it.fail(errAt(keyAt, ErrDuplicateKey, "duplicate key %q", key))
	}
	j = SkipWS(b, n)
	if j >= len(b) || b[j] != ':' {
		return it.fail(errAt(j, ErrSyntax, "expected ':' after object key"))
	}
	it.Key = key
	it.Value = SkipWS(b, j+1)
	it.pos = it.Value
	it.consumed = false
	return true
}

func (it *ObjectIter) fail(err error) bool {
	it.Err = err
	it.done = true
	return false
}

// ArrayEach calls fn with the offset of each element of the array at b[i].
// fn returns the offset after the element, or -1 to have it skipped.
// ArrayEach returns the offset after ']'.
func ArrayEach(b []byte, i int, fn func(at int) (int, error)) (int, error) {
	i = SkipWS(b, i)
	if i >= len(b) || b[i] != '[' {
		return i, errAt(i, ErrSyntax, "expected an array")
	}
	j := SkipWS(b, i+1)
	if j < len(b) && b[j] == ']' {
		return j + 1, nil
	}
	for {
		j = SkipWS(b, j)
		end, err := fn(j)
		if err != nil {
			return end, err
		}
		if end < 0 {
			var scratch []byte
			if end, err = skip(b, j, 1, &scratch); err != nil {
				return end, err
			}
		}
		j = SkipWS(b, end)
		if j >= len(b) {
			return j, errAt(j, ErrSyntax, "unterminated array")
		}
		if b[j] == ']' {
			return j + 1, nil
		}
		if b[j] != ',' {
			return j, errAt(j, ErrSyntax, "expected ',' or ']' in array")
		}
		j++
	}
}

// SkipUnchecked returns the offset after the JSON value at b[i] (after
// whitespace) by matching strings and brackets only: it does not validate
// the value (no literal, number, comma or duplicate-key checks). For valid
// JSON it agrees with Skip; use it to split a document into values that
// are validated later, when they are decoded. An error means the value is
// cut off.
func SkipUnchecked(b []byte, i int) (int, error) {
	i = SkipWS(b, i)
	if i >= len(b) {
		return i, errAt(i, ErrSyntax, "unexpected end of input, expected a value")
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := endOfString(b, j)
				if err != nil {
					return end, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return len(b), errAt(i, ErrSyntax, "unterminated value")
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return j, nil
		}
		j++
	}
	return j, nil
}

// endOfString returns the offset after the string at b[i] (which is '"'),
// stepping over escapes without checking them.
func endOfString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		j = scanString(b, j)
		if j >= len(b) {
			return len(b), errAt(i, ErrSyntax, "unterminated string")
		}
		switch b[j] {
		case '"':
			return j + 1, nil
		case '\\':
			j += 2
		default: // a control character: not ours to judge here
			j++
		}
	}
}
