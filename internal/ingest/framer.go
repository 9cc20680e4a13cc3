package ingest

import (
	"bytes"
	"fmt"

	"github.com/kanon-dev/kanon/internal/event"
)

// framer splits an input into records. Most inputs are JSON lines and take
// the fast path (one line, one record). A value that spans lines — a
// pretty-printed document, or the JSON array that `gcloud logging read
// --format=json` prints — is followed byte by byte; a top-level array is
// streamed element by element, so its size is not bounded by the record
// limit and a bad element loses nothing else.
type framer struct {
	active bool  // inside a multi-line value
	array  bool  // streaming the elements of a top-level array
	inElem bool  // inside an element (array mode)
	scalar bool  // the current element is a scalar
	depth  int   // nesting depth, counting the top-level array
	inStr  bool  // inside a string
	esc    bool  // after a backslash inside a string
	start  int64 // line where the current record starts
	buf    []byte
}

func (f *framer) reset() {
	buf := f.buf[:0]
	*f = framer{buf: buf}
}

func (r *Reader) frameLine(name string, lineNo int64, line []byte, fn func(*event.Event) error) error {
	fr := &r.fr
	if !fr.active {
		t := bytes.TrimSpace(line)
		if len(t) == 0 {
			return nil
		}
		first, last := t[0], t[len(t)-1]
		switch {
		case first == '{' && last == '}' || first == '[' && last == ']':
			return r.Record(event.Origin{Name: name, Line: lineNo}, t, fn)
		case first == '[':
			fr.active, fr.array, fr.start = true, true, lineNo
		case len(t) == 1 && first == '{':
			fr.active, fr.start = true, lineNo
			fr.buf = fr.buf[:0]
		default:
			// A truncated line or text that is not JSON: the decoder says
			// which, with the offset.
			return r.Record(event.Origin{Name: name, Line: lineNo}, t, fn)
		}
	}
	return r.feed(name, lineNo, line, fn)
}

// feed runs the multi-line state machine over one line.
func (r *Reader) feed(name string, lineNo int64, line []byte, fn func(*event.Event) error) error {
	fr := &r.fr
	for i := 0; i < len(line); i++ {
		c := line[i]
		if fr.array && !fr.inElem {
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',':
				continue
			case fr.depth == 0 && c == '[':
				fr.depth = 1
				continue
			case fr.depth == 1 && c == ']':
				fr.reset()
				return r.rest(name, lineNo, line[i+1:], fn)
			case fr.depth == 0:
				// Something after the array ended on this line.
				fr.reset()
				return r.rest(name, lineNo, line[i:], fn)
			case c == ']' || c == '}':
				return r.broken(name, lineNo, line[i+1:], fn)
			}
			fr.inElem, fr.start, fr.buf = true, lineNo, fr.buf[:0]
			fr.scalar = c != '{' && c != '['
		}
		if fr.array && fr.scalar && !fr.inStr && (c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\r') {
			if err := r.endRecord(name, fn); err != nil {
				return err
			}
			i-- // look at c again between elements
			continue
		}
		fr.buf = append(fr.buf, c)
		if fr.inStr {
			switch {
			case fr.esc:
				fr.esc = false
			case c == '\\':
				fr.esc = true
			case c == '"':
				fr.inStr = false
			}
			continue
		}
		if fr.scalar {
			// Brackets in a bare scalar are garbage the decoder reports.
			if c == '"' {
				fr.inStr = true
			}
			continue
		}
		switch c {
		case '"':
			fr.inStr = true
		case '{', '[':
			fr.depth++
		case '}', ']':
			fr.depth--
			base := 0
			if fr.array {
				base = 1
			}
			if fr.depth < base {
				return r.broken(name, lineNo, line[i+1:], fn)
			}
			if fr.depth == base {
				if err := r.endRecord(name, fn); err != nil {
					return err
				}
				if !fr.array {
					fr.reset()
					return r.rest(name, lineNo, line[i+1:], fn)
				}
			}
		}
	}
	if fr.inElem || !fr.array {
		fr.buf = append(fr.buf, '\n')
	}
	if len(fr.buf) > r.opts.MaxRecordBytes {
		r.stats.Records++
		b := BadRecord{Origin: event.Origin{Name: name, Line: fr.start}, Err: fmt.Errorf("%w (%d bytes)", ErrTooLarge, r.opts.MaxRecordBytes)}
		fr.reset()
		r.dec.bad(b)
		if r.opts.Strict {
			return errStrict{b}
		}
	}
	return nil
}

// broken reports a multi-line value whose brackets do not balance and
// goes back to framing lines from what follows on this line.
func (r *Reader) broken(name string, lineNo int64, rest []byte, fn func(*event.Event) error) error {
	start := r.fr.start
	r.fr.reset()
	r.stats.Records++
	b := BadRecord{Origin: event.Origin{Name: name, Line: start}, Err: fmt.Errorf("%w: unbalanced brackets in a multi-line JSON value", ErrSyntax)}
	r.dec.bad(b)
	if r.opts.Strict {
		return errStrict{b}
	}
	return r.rest(name, lineNo, rest, fn)
}

// rest frames what follows a finished value on the same line.
func (r *Reader) rest(name string, lineNo int64, rest []byte, fn func(*event.Event) error) error {
	if len(bytes.TrimSpace(rest)) == 0 {
		return nil
	}
	return r.frameLine(name, lineNo, rest, fn)
}

func (r *Reader) endRecord(name string, fn func(*event.Event) error) error {
	fr := &r.fr
	fr.inElem, fr.scalar = false, false
	rec := fr.buf
	return r.Record(event.Origin{Name: name, Line: fr.start}, rec, fn)
}

// flushFramer reports a multi-line value cut off by the end of input.
func (r *Reader) flushFramer(name string, fn func(*event.Event) error) error {
	fr := &r.fr
	if !fr.active {
		return nil
	}
	defer fr.reset()
	if fr.inElem && fr.scalar {
		return r.endRecord(name, fn)
	}
	if fr.inElem || !fr.array && len(bytes.TrimSpace(fr.buf)) > 0 {
		r.stats.Records++
		b := BadRecord{Origin: event.Origin{Name: name, Line: fr.start}, Err: fmt.Errorf("%w: input ends inside a JSON value", ErrTruncated)}
		r.dec.bad(b)
		if r.opts.Strict {
			return errStrict{b}
		}
		return nil
	}
	if fr.array && fr.depth > 0 {
		r.stats.Records++
		b := BadRecord{Origin: event.Origin{Name: name, Line: fr.start}, Err: fmt.Errorf("%w: input ends inside a JSON array", ErrTruncated)}
		r.dec.bad(b)
		if r.opts.Strict {
			return errStrict{b}
		}
	}
	return nil
}
