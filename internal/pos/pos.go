package pos

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Span is a half-open byte range [Start, End) in a Source's text.
type Span struct {
	Start, End int
}

// Join returns the smallest span that covers both s and o.
func (s Span) Join(o Span) Span {
	if o.Start < s.Start {
		s.Start = o.Start
	}
	if o.End > s.End {
		s.End = o.End
	}
	return s
}

// Source is a named text with a line index. The zero Base means the text
// starts at line 1, column 1 of the named file; a non-zero Base places an
// embedded text (a query inside a YAML file) at its position in that file.
type Source struct {
	Name string
	Text string
	// Base is the 1-based line and column of Text[0] in the file Name.
	// Lines after the first start at column 1 of the file unless Indent is set.
	BaseLine, BaseCol int
	// Indent is added to the column of every line after the first (block
	// scalars in YAML are indented by the same amount on each line).
	Indent int

	lines []int // byte offsets of line starts, computed lazily
}

// NewSource returns a source for text named name, starting at line 1 column 1.
func NewSource(name, text string) *Source {
	return &Source{Name: name, Text: text, BaseLine: 1, BaseCol: 1}
}

// NewEmbeddedSource returns a source for text found at line:col of the file
// name; indent is the column offset of continuation lines (0 if none).
func NewEmbeddedSource(name, text string, line, col, indent int) *Source {
	return &Source{Name: name, Text: text, BaseLine: line, BaseCol: col, Indent: indent}
}

func (s *Source) index() {
	if s.lines != nil {
		return
	}
	s.lines = append(s.lines, 0)
	for i := 0; i < len(s.Text); i++ {
		if s.Text[i] == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
}

// Position is a resolved, printable location.
type Position struct {
	File      string
	Line, Col int // 1-based; Col counts characters (runes), not bytes
}

func (p Position) String() string {
	if p.File == "" {
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Position resolves a byte offset of the text to a file position.
func (s *Source) Position(off int) Position {
	if s == nil {
		return Position{Line: 1, Col: 1}
	}
	s.index()
	if off < 0 {
		off = 0
	}
	if off > len(s.Text) {
		off = len(s.Text)
	}
	li := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off }) - 1
	col := utf8.RuneCountInString(s.Text[s.lines[li]:off]) + 1
	baseLine, baseCol := s.BaseLine, s.BaseCol
	if baseLine == 0 {
		baseLine = 1
	}
	if baseCol == 0 {
		baseCol = 1
	}
	if li == 0 {
		col += baseCol - 1
	} else {
		col += s.Indent
	}
	return Position{File: s.Name, Line: baseLine + li, Col: col}
}

// LineText returns the text of the source line holding off, without newline.
func (s *Source) LineText(off int) string {
	s.index()
	if off > len(s.Text) {
		off = len(s.Text)
	}
	if off < 0 {
		off = 0
	}
	li := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off }) - 1
	start := s.lines[li]
	end := strings.IndexByte(s.Text[start:], '\n')
	if end < 0 {
		return s.Text[start:]
	}
	return strings.TrimSuffix(s.Text[start:start+end], "\r")
}

// Error is an error at a span of a source.
type Error struct {
	Src  *Source
	Span Span
	Msg  string
	// Code categorises the error; callers test it with errors.Is against the
	// exported sentinels of the package that produced it.
	Code error
}

func (e *Error) Error() string {
	return e.Src.Position(e.Span.Start).String() + ": " + e.Msg
}

// Unwrap returns the error's category, so errors.Is works on codes.
func (e *Error) Unwrap() error { return e.Code }

// Position is where the error starts.
func (e *Error) Position() Position { return e.Src.Position(e.Span.Start) }

// Pretty renders the error with the source line and a caret under the span:
//
//	rules/x.yaml:12:9: unexpected ")", expected a value
//	    kind:(a or )
//	              ^
func (e *Error) Pretty() string {
	var b strings.Builder
	b.WriteString(e.Error())
	if e.Src == nil {
		return b.String()
	}
	line := e.Src.LineText(e.Span.Start)
	p := e.Src.Position(e.Span.Start)
	// The caret column is relative to the text line, not the file.
	e.Src.index()
	li := sort.Search(len(e.Src.lines), func(i int) bool { return e.Src.lines[i] > e.Span.Start }) - 1
	_ = p
	start := e.Src.lines[li]
	if e.Span.Start > len(e.Src.Text) {
		return b.String()
	}
	prefix := e.Src.Text[start:e.Span.Start]
	b.WriteString("\n    ")
	b.WriteString(line)
	b.WriteString("\n    ")
	for _, r := range prefix {
		if r == '\t' {
			b.WriteByte('\t')
		} else {
			b.WriteByte(' ')
		}
	}
	n := utf8.RuneCountInString(e.Src.Text[e.Span.Start:min(e.Span.End, start+len(line))])
	if n < 1 {
		n = 1
	}
	b.WriteString(strings.Repeat("^", n))
	return b.String()
}

// Errorf returns a positioned error with the given category.
func Errorf(src *Source, sp Span, code error, format string, args ...any) *Error {
	return &Error{Src: src, Span: sp, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// DefaultErrorLimit is the number of errors an ErrorList keeps by default.
const DefaultErrorLimit = 20

// ErrorList collects positioned errors. Its zero value is ready to use.
type ErrorList struct {
	Errs    []*Error
	Limit   int // 0 means DefaultErrorLimit
	Dropped int // errors not kept because the limit was reached
}

// Add appends an error unless the limit has been reached.
func (l *ErrorList) Add(e *Error) {
	limit := l.Limit
	if limit == 0 {
		limit = DefaultErrorLimit
	}
	if len(l.Errs) >= limit {
		l.Dropped++
		return
	}
	l.Errs = append(l.Errs, e)
}

// Len is the number of errors kept.
func (l *ErrorList) Len() int { return len(l.Errs) }

// Sort orders the errors by file and position.
func (l *ErrorList) Sort() {
	sort.SliceStable(l.Errs, func(i, j int) bool {
		a, b := l.Errs[i], l.Errs[j]
		an, bn := "", ""
		if a.Src != nil {
			an = a.Src.Name
		}
		if b.Src != nil {
			bn = b.Src.Name
		}
		if an != bn {
			return an < bn
		}
		pa, pb := a.Position(), b.Position()
		if pa.Line != pb.Line {
			return pa.Line < pb.Line
		}
		return pa.Col < pb.Col
	})
}

// Err returns nil when the list is empty and the sorted list otherwise.
func (l *ErrorList) Err() error {
	if l == nil || len(l.Errs) == 0 {
		return nil
	}
	l.Sort()
	return l
}

func (l *ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	if l.Dropped > 0 {
		fmt.Fprintf(&b, "\n(and %d more errors)", l.Dropped)
	}
	return b.String()
}

// Pretty renders every error with its source line and caret.
func (l *ErrorList) Pretty() string {
	var b strings.Builder
	for i, e := range l.Errs {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Pretty())
	}
	if l.Dropped > 0 {
		fmt.Fprintf(&b, "\n(and %d more errors)", l.Dropped)
	}
	return b.String()
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (l *ErrorList) Unwrap() []error {
	out := make([]error, len(l.Errs))
	for i, e := range l.Errs {
		out[i] = e
	}
	return out
}

// Pretty renders err with source lines and carets when it holds positioned
// errors, and as err.Error() otherwise.
func Pretty(err error) string {
	var l *ErrorList
	if errors.As(err, &l) {
		return l.Pretty()
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Pretty()
	}
	return err.Error()
}

// Offset returns the byte offset of 1-based line and column (in runes) of a
// source whose Base is line 1 column 1. Out-of-range positions clamp.
func (s *Source) Offset(line, col int) int {
	s.index()
	li := line - 1
	if li < 0 {
		return 0
	}
	if li >= len(s.lines) {
		return len(s.Text)
	}
	off := s.lines[li]
	for c := 1; c < col && off < len(s.Text) && s.Text[off] != '\n'; c++ {
		_, n := utf8.DecodeRuneInString(s.Text[off:])
		off += n
	}
	return off
}
