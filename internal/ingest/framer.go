package ingest

import (
	"bytes"
	"fmt"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Record is one framed record — a line, a JSON value spanning lines, or an
// element of a top-level array — or, when Err is set, a framing error in
// its place (a record over the size limit, unbalanced brackets, input that
// ends inside a value). Data is nil for a framing error.
type Record struct {
	Origin event.Origin
	Data   []byte
	Err    error
	// Validated says Data was validated in full already (jsonx.Skip: the
	// webhook's EventList items, in the request's goroutine): the parts no
	// rule reads are skipped without being checked again.
	Validated bool
}

// Framer splits the lines of one input into records. Most inputs are JSON
// lines and take the fast path (one line, one record). A value that spans
// lines — a pretty-printed document, or the JSON array that `gcloud logging
// read --format=json` prints — is followed byte by byte; a top-level array
// is streamed element by element, so its size is not bounded by the record
// limit and a bad element loses nothing else.
//
// A broken record costs only itself. Inside a value that spans lines, a
// line that starts at column 0 with "{" or "[" and is a whole JSON value
// on its own ends the value in progress, which is reported broken, and
// is read as the next record: a stray "{" or "[[" in a JSON-lines log, or
// a record cut by a crash, loses nothing after it. The pretty-printed
// JSON kanon reads (kubectl -o json, gcloud --format=json, jq) indents
// everything inside a value, so this never cuts one.
//
// A Framer holds the state of a value that spans lines between calls. It
// is not safe for concurrent use.
type Framer struct {
	name     string
	maxBytes int

	active bool  // inside a multi-line value
	array  bool  // streaming the elements of a top-level array
	inElem bool  // inside an element (array mode)
	scalar bool  // the current element is a scalar
	depth  int   // nesting depth, counting the top-level array
	inStr  bool  // inside a string
	esc    bool  // after a backslash inside a string
	start  int64 // line where the current record starts
	buf    []byte

	out []Record // the caller's slice while Line or End runs
}

// NewFramer returns a framer for the input called name whose records may
// be at most maxBytes long (0: DefaultMaxRecordBytes).
func NewFramer(name string, maxBytes int) *Framer {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRecordBytes
	}
	return &Framer{name: name, maxBytes: maxBytes}
}

// Name returns the input's name, as records' origins carry it.
func (f *Framer) Name() string { return f.name }

// reset forgets a value in progress, keeping the buffer.
func (f *Framer) reset() {
	*f = Framer{name: f.name, maxBytes: f.maxBytes, buf: f.buf[:0], out: f.out}
}

// Line frames line number lineNo (without its line break) and appends the
// records it completes to out. A record that is the whole line (trimmed of
// spaces) aliases line; a record assembled from several lines is a new
// slice that the caller owns.
func (f *Framer) Line(lineNo int64, line []byte, out []Record) []Record {
	f.out = out
	f.frameLine(lineNo, line)
	out, f.out = f.out, nil
	return out
}

// TooLong appends the report of line lineNo, which was over the record
// limit and not read, to out. A value in progress is dropped with it: its
// framing cannot be trusted any more.
func (f *Framer) TooLong(lineNo int64, out []Record) []Record {
	f.reset()
	return append(out, Record{Origin: event.Origin{Name: f.name, Line: lineNo}, Err: fmt.Errorf("%w (%d bytes)", ErrTooLarge, f.maxBytes)})
}

// End appends the report of a value cut off by the end of the input, or
// its last scalar element, to out, and resets the framer.
func (f *Framer) End(out []Record) []Record {
	f.out = out
	f.flush()
	out, f.out = f.out, nil
	f.reset()
	return out
}

func (f *Framer) emit(line int64, data []byte) {
	f.out = append(f.out, Record{Origin: event.Origin{Name: f.name, Line: line}, Data: data})
}

func (f *Framer) fail(line int64, err error) {
	f.out = append(f.out, Record{Origin: event.Origin{Name: f.name, Line: line}, Err: err})
}

func (f *Framer) frameLine(lineNo int64, line []byte) {
	if f.active && (!f.array || f.inElem) && wholeValue(line) {
		// Resynchronisation: inside a value spanning lines, a line at
		// column 0 that is a JSON value of its own is the next record of
		// a line-delimited log, and the value in progress (a stray "{",
		// "[[", a record cut short) is broken. Pretty-printers indent what
		// is inside a value, so a value they print is never cut this way.
		start := f.start
		f.reset()
		f.fail(start, fmt.Errorf("%w: a JSON value spanning lines is cut short by line %d, a record of its own", ErrSyntax, lineNo))
	}
	if !f.active {
		t := trimJSONSpace(line)
		if len(t) == 0 {
			return
		}
		first, last := t[0], t[len(t)-1]
		switch {
		case first == '{' && last == '}' || first == '[' && last == ']':
			f.emit(lineNo, t)
			return
		case first == '[':
			f.active, f.array, f.start = true, true, lineNo
		case len(t) == 1 && first == '{':
			f.active, f.start = true, lineNo
			f.buf = f.buf[:0]
		default:
			// A truncated line or text that is not JSON: the decoder says
			// which, with the offset.
			f.emit(lineNo, t)
			return
		}
	}
	f.feed(lineNo, line)
}

// trimJSONSpace trims the whitespace of JSON (space, tab, CR, LF) — not
// other Unicode spaces, which are not whitespace to the state machine.
func trimJSONSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// wholeValue reports whether line, unindented, is an object or array of
// its own: brackets and strings balance, nothing follows but spaces.
func wholeValue(line []byte) bool {
	if len(line) < 2 || line[0] != '{' && line[0] != '[' {
		return false
	}
	t := bytes.TrimRight(line, " \t\r")
	if last := t[len(t)-1]; last != '}' && last != ']' {
		return false
	}
	end, err := jsonx.SkipUnchecked(t, 0)
	return err == nil && end == len(t)
}

// feed runs the multi-line state machine over one line.
func (f *Framer) feed(lineNo int64, line []byte) {
	for i := 0; i < len(line); i++ {
		c := line[i]
		if f.array && !f.inElem {
			switch {
			case c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',':
				continue
			case f.depth == 0 && c == '[':
				f.depth = 1
				continue
			case f.depth == 1 && c == ']':
				f.reset()
				f.rest(lineNo, line[i+1:])
				return
			case f.depth == 0:
				// Something after the array ended on this line.
				f.reset()
				f.rest(lineNo, line[i:])
				return
			case c == ']' || c == '}':
				f.broken(lineNo, line[i+1:])
				return
			}
			f.inElem, f.start, f.buf = true, lineNo, f.buf[:0]
			f.scalar = c != '{' && c != '['
		}
		if f.array && f.scalar && !f.inStr && (c == ',' || c == ']' || c == ' ' || c == '\t' || c == '\r') {
			f.endRecord()
			i-- // look at c again between elements
			continue
		}
		f.buf = append(f.buf, c)
		if f.inStr {
			switch {
			case f.esc:
				f.esc = false
			case c == '\\':
				f.esc = true
			case c == '"':
				f.inStr = false
			}
			continue
		}
		if f.scalar {
			// Brackets in a bare scalar are garbage the decoder reports.
			if c == '"' {
				f.inStr = true
			}
			continue
		}
		switch c {
		case '"':
			f.inStr = true
		case '{', '[':
			f.depth++
		case '}', ']':
			f.depth--
			base := 0
			if f.array {
				base = 1
			}
			if f.depth < base {
				f.broken(lineNo, line[i+1:])
				return
			}
			if f.depth == base {
				f.endRecord()
				if !f.array {
					f.reset()
					f.rest(lineNo, line[i+1:])
					return
				}
			}
		}
	}
	if f.inElem || !f.array {
		f.buf = append(f.buf, '\n')
	}
	if len(f.buf) > f.maxBytes {
		start := f.start
		f.reset()
		f.fail(start, fmt.Errorf("%w (%d bytes)", ErrTooLarge, f.maxBytes))
	}
}

// broken reports a multi-line value whose brackets do not balance and
// goes back to framing lines from what follows on this line.
func (f *Framer) broken(lineNo int64, rest []byte) {
	start := f.start
	f.reset()
	f.fail(start, fmt.Errorf("%w: unbalanced brackets in a multi-line JSON value", ErrSyntax))
	f.rest(lineNo, rest)
}

// rest frames what follows a finished value on the same line.
func (f *Framer) rest(lineNo int64, rest []byte) {
	if len(trimJSONSpace(rest)) == 0 {
		return
	}
	f.frameLine(lineNo, rest)
}

// endRecord emits the value in the buffer, as a copy: the buffer is reused.
func (f *Framer) endRecord() {
	f.inElem, f.scalar = false, false
	f.emit(f.start, bytes.Clone(f.buf))
}

// flush reports a multi-line value cut off by the end of input.
func (f *Framer) flush() {
	if !f.active {
		return
	}
	if f.inElem && f.scalar {
		f.endRecord()
		return
	}
	if f.inElem || !f.array && len(trimJSONSpace(f.buf)) > 0 {
		f.fail(f.start, fmt.Errorf("%w: input ends inside a JSON value", ErrTruncated))
		return
	}
	if f.array && f.depth > 0 {
		f.fail(f.start, fmt.Errorf("%w: input ends inside a JSON array", ErrTruncated))
	}
}

// Pending reports whether a value that spans lines is in progress, and
// the line it started on: a reader that stores its position between
// lines must resume there, not after the lines framed so far.
func (f *Framer) Pending() (line int64, ok bool) { return f.start, f.active }
