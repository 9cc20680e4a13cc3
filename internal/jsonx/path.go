package jsonx

import "strings"

// Walk finds the values at path (object keys) inside the JSON value at
// b[i], with Elasticsearch's view of documents: arrays are transparent (an
// array of objects is searched element by element, and an array at the end
// of the path yields each element), and a key containing dots matches the
// same number of path segments ({"a.b": 1} is found at path a, b).
//
// fn is called with the offset of every value found (never an array).
// Walk stops at the first error; malformed JSON inside parts it does not
// visit is not reported.
func Walk(b []byte, i int, path []string, fn func(at int)) error {
	var scratch []byte
	return walk(b, i, path, fn, &scratch, 0)
}

func walk(b []byte, i int, path []string, fn func(at int), scratch *[]byte, depth int) error {
	if depth > MaxDepth {
		return errAt(i, ErrTooDeep, "nesting deeper than %d", MaxDepth)
	}
	i = SkipWS(b, i)
	switch TypeAt(b, i) {
	case Array:
		_, err := ArrayEach(b, i, func(at int) (int, error) {
			return -1, walk(b, at, path, fn, scratch, depth+1)
		})
		return err
	case Object:
		if len(path) == 0 {
			fn(i)
			return nil
		}
		var it ObjectIter
		it.Scratch = (*scratch)[:0]
		if err := it.Begin(b, i); err != nil {
			return err
		}
		for it.Next() {
			n := matchSegments(it.Key, path)
			if n > 0 {
				if err := walk(b, it.Value, path[n:], fn, scratch, depth+1); err != nil {
					return err
				}
			}
		}
		*scratch = it.Scratch
		return it.Err
	case Invalid:
		return errAt(i, ErrSyntax, "expected a value")
	default:
		if len(path) == 0 {
			fn(i)
		}
		return nil
	}
}

// matchSegments reports how many leading path segments key spells (joined
// with dots), or 0.
func matchSegments(key []byte, path []string) int {
	k := string(key) // no allocation: compared only
	for n := 0; n < len(path); n++ {
		seg := path[n]
		if !strings.HasPrefix(k, seg) {
			return 0
		}
		k = k[len(seg):]
		if k == "" {
			return n + 1
		}
		if k[0] != '.' {
			return 0
		}
		k = k[1:]
	}
	return 0
}
