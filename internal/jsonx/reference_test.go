package jsonx

// The scanner as it was before the word-at-a-time string search and the
// direct string dispatch (kanon e019914), kept as the reference that the
// fast paths must agree with exactly: same results, same end offsets,
// same error messages and offsets (FuzzFastPathsAgree).

import (
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

func refReadString(b []byte, i int, scratch *[]byte) ([]byte, int, error) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, errAt(i, ErrSyntax, "expected a string")
	}
	start := i + 1
	j := refScanString(b, start)
	if j >= len(b) {
		return nil, len(b), errAt(i, ErrSyntax, "unterminated string")
	}
	switch b[j] {
	case '"':
		return b[start:j], j + 1, nil
	case '\\':
		return refUnescape(b, start, scratch)
	}
	return nil, j, errAt(j, ErrSyntax, "control character in string")
}

func refScanString(b []byte, j int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; j+8 <= len(b); j += 8 {
		x := binary.LittleEndian.Uint64(b[j:])
		q := x ^ (ones * '"')
		bs := x ^ (ones * '\\')
		// A byte is "found" when it is zero in q or bs, or below 0x20 in x.
		found := ((q - ones) &^ q) | ((bs - ones) &^ bs) | ((x - ones*0x20) &^ x)
		if found&highs != 0 {
			break
		}
	}
	for ; j < len(b); j++ {
		if c := b[j]; c == '"' || c == '\\' || c < 0x20 {
			return j
		}
	}
	return j
}

func refUnescape(b []byte, start int, scratch *[]byte) ([]byte, int, error) {
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
			out = append(out, c)
			j++
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

func refSkipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		j = refScanString(b, j)
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

func refSkip(b []byte, i, depth int, scratch *[]byte) (int, error) {
	i = SkipWS(b, i)
	if i >= len(b) {
		return i, errAt(i, ErrSyntax, "unexpected end of input, expected a value")
	}
	switch c := b[i]; c {
	case '"':
		return refSkipString(b, i)
	case '{':
		return refSkipObject(b, i, depth+1, scratch)
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
			j, err = refSkip(b, j, depth+1, scratch)
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

func refSkipObject(b []byte, i, depth int, scratch *[]byte) (int, error) {
	if depth > MaxDepth {
		return i, errAt(i, ErrTooDeep, "nesting deeper than %d", MaxDepth)
	}
	j := SkipWS(b, i+1)
	if j < len(b) && b[j] == '}' {
		return j + 1, nil
	}
	if scratch == nil {
		return refSkipMembers(b, j, depth, nil, nil)
	}
	var ks KeySet
	mark := len(*scratch)
	defer func() { *scratch = (*scratch)[:mark] }()
	return refSkipMembers(b, j, depth, scratch, &ks)
}

func refSkipMembers(b []byte, j, depth int, scratch *[]byte, ks *KeySet) (int, error) {
	for {
		j = SkipWS(b, j)
		keyAt := j
		if ks == nil {
			if j >= len(b) || b[j] != '"' {
				return j, errAt(j, ErrSyntax, "expected a string")
			}
			n, err := refSkipString(b, j)
			if err != nil {
				return n, err
			}
			j = n
		} else {
			key, n, err := refReadString(b, j, scratch)
			if err != nil {
				return n, err
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
		j, err = refSkip(b, j+1, depth, scratch)
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
