package jsonx

import "strconv"

// Readings returns the two readings of the JSON value at b[i] when objects
// in it repeat a key: first keeps, in every object, the first member of
// each key, and last keeps the last one — what two JSON parsers that do
// not refuse duplicate keys make of the value (Go's encoding/json keeps
// the last; many keep the first). Neither reading has a duplicate key;
// members keep their order. dups are the paths of the repeated keys
// (`user.username`, `items[4].annotations.x`), each once, in the order
// met. The value must be syntactically valid (SkipSyntax); err says where
// it is not. Readings allocates; it is for the rare records that need it.
func Readings(b []byte, i int) (first, last []byte, dups []string, err error) {
	r := readings{b: b}
	if _, err := r.value(i, 0, ""); err != nil {
		return nil, nil, nil, err
	}
	return r.first, r.last, r.dups, nil
}

type readings struct {
	b           []byte
	first, last []byte
	dups        []string
	scratch     []byte
}

// member is one member of an object: its key (unescaped) and where its
// value starts and ends.
type member struct {
	key               string
	valueAt, valueEnd int
}

func (r *readings) emit(s []byte, first, last bool) {
	if first {
		r.first = append(r.first, s...)
	}
	if last {
		r.last = append(r.last, s...)
	}
}

// value writes the readings of the value at b[i] (with first and last
// both on at the top; within a member dropped from one reading, only the
// other) and returns the offset after it.
func (r *readings) value(i, depth int, path string) (int, error) {
	return r.valueIn(i, depth, path, true, true)
}

func (r *readings) valueIn(i, depth int, path string, first, last bool) (int, error) {
	b := r.b
	i = SkipWS(b, i)
	if depth > MaxDepth {
		return i, errAt(i, ErrTooDeep, "nesting deeper than %d", MaxDepth)
	}
	if i >= len(b) {
		return i, errAt(i, ErrSyntax, "unexpected end of input")
	}
	switch b[i] {
	case '{':
		return r.object(i, depth, path, first, last)
	case '[':
		r.emit([]byte{'['}, first, last)
		j := SkipWS(b, i+1)
		if j < len(b) && b[j] == ']' {
			r.emit([]byte{']'}, first, last)
			return j + 1, nil
		}
		for n := 0; ; n++ {
			if n > 0 {
				r.emit([]byte{','}, first, last)
			}
			end, err := r.valueIn(j, depth+1, path+"["+strconv.Itoa(n)+"]", first, last)
			if err != nil {
				return end, err
			}
			j = SkipWS(b, end)
			if j < len(b) && b[j] == ']' {
				r.emit([]byte{']'}, first, last)
				return j + 1, nil
			}
			if j >= len(b) || b[j] != ',' {
				return j, errAt(j, ErrSyntax, "expected ',' or ']' in array")
			}
			j++
		}
	}
	end, err := SkipSyntax(b, i)
	if err != nil {
		return end, err
	}
	r.emit(b[i:end], first, last)
	return end, nil
}

func (r *readings) object(i, depth int, path string, first, last bool) (int, error) {
	b := r.b
	var ms []member
	var it ObjectIter
	it.Trusted = true // duplicates are what this is for; syntax is checked below
	if err := it.Begin(b, i); err != nil {
		return i, err
	}
	for it.Next() {
		end, err := SkipSyntax(b, it.Value)
		if err != nil {
			return end, err
		}
		ms = append(ms, member{key: string(it.Key), valueAt: it.Value, valueEnd: end})
		it.Consumed(end)
	}
	if it.Err != nil {
		return i, it.Err
	}
	// Which member of each key each reading keeps.
	firstOf := make(map[string]int, len(ms))
	lastOf := make(map[string]int, len(ms))
	for k, m := range ms {
		if _, seen := firstOf[m.key]; seen {
			if lastOf[m.key] == firstOf[m.key] {
				p := m.key
				if path != "" {
					p = path + "." + m.key
				}
				r.dups = append(r.dups, p)
			}
		} else {
			firstOf[m.key] = k
		}
		lastOf[m.key] = k
	}
	r.emit([]byte{'{'}, first, last)
	sepF, sepL := false, false
	for k := range ms {
		m := &ms[k]
		inF := first && firstOf[m.key] == k
		inL := last && lastOf[m.key] == k
		if !inF && !inL {
			continue
		}
		if inF && sepF {
			r.first = append(r.first, ',')
		}
		if inL && sepL {
			r.last = append(r.last, ',')
		}
		sepF, sepL = sepF || inF, sepL || inL
		r.scratch = appendJSONString(r.scratch[:0], m.key)
		r.emit(r.scratch, inF, inL)
		r.emit([]byte{':'}, inF, inL)
		p := m.key
		if path != "" {
			p = path + "." + m.key
		}
		if _, err := r.valueIn(m.valueAt, depth+1, p, inF, inL); err != nil {
			return m.valueAt, err
		}
	}
	r.emit([]byte{'}'}, first, last)
	return it.End, nil
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, everything else as it is (s came from
// ReadString: valid UTF-8).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
