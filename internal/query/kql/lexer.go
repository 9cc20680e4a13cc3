package kql

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/kanon-dev/kanon/internal/pos"
)

// lexer scans KQL text. KQL keywords are context-dependent ("or" is a word
// at the start of a value but a keyword between two operands), so the parser
// asks the lexer for the token it expects next (conj, not, punct, literal)
// rather than reading a fixed token stream. Every method reads at off and
// advances off only on success.
type lexer struct {
	src  *pos.Source
	text string
	off  int
}

// isSpace is Kibana's Space: the whitespace that separates keywords.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '\u00a0'
}

// isTrimSpace is the whitespace JavaScript's String.prototype.trim removes;
// Kibana trims unquoted literals with it.
func isTrimSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', '\u00a0', '\u1680', '\u2028', '\u2029',
		'\u202f', '\u205f', '\u3000', '\ufeff':
		return true
	}
	return r >= '\u2000' && r <= '\u200a'
}

// isSpecial reports Kibana's special characters, which end an unquoted
// literal unless escaped.
func isSpecial(c byte) bool {
	switch c {
	case '\\', '(', ')', ':', '<', '>', '"', '*', '{', '}':
		return true
	}
	return false
}

// spaceRun returns the byte length of the run of Space at off.
func (lx *lexer) spaceRun(off int) int {
	n := 0
	for off+n < len(lx.text) {
		r, w := utf8.DecodeRuneInString(lx.text[off+n:])
		if !isSpace(r) {
			break
		}
		n += w
	}
	return n
}

// skipSpace advances over whitespace.
func (lx *lexer) skipSpace() { lx.off += lx.spaceRun(lx.off) }

// wordAt reports whether the case-insensitive keyword kw is at off and is
// followed by at least one Space.
func (lx *lexer) wordAt(off int, kw string) bool {
	if len(lx.text)-off < len(kw) || !strings.EqualFold(lx.text[off:off+len(kw)], kw) {
		return false
	}
	return lx.spaceRun(off+len(kw)) > 0
}

// conjAt reports whether Kibana's Or (or And) rule, Space+ kw Space+,
// matches at off, and returns the offset after its trailing spaces.
func (lx *lexer) conjAt(off int, kw string) (int, bool) {
	n := lx.spaceRun(off)
	if n == 0 || !lx.wordAt(off+n, kw) {
		return off, false
	}
	end := off + n + len(kw)
	return end + lx.spaceRun(end), true
}

// keywordAt reports whether any keyword rule (Or, And, Not) matches at off.
// Unquoted literals end there.
func (lx *lexer) keywordAt(off int) bool {
	if _, ok := lx.conjAt(off, "or"); ok {
		return true
	}
	if _, ok := lx.conjAt(off, "and"); ok {
		return true
	}
	return lx.wordAt(off, "not")
}

// acceptConj consumes Space+ kw Space+ ("or", "and") at off.
func (lx *lexer) acceptConj(kw string) (pos.Span, bool) {
	end, ok := lx.conjAt(lx.off, kw)
	if !ok {
		return pos.Span{}, false
	}
	start := lx.off + lx.spaceRun(lx.off)
	lx.off = end
	return pos.Span{Start: start, End: start + len(kw)}, true
}

// acceptNot consumes "not" Space+ at off.
func (lx *lexer) acceptNot() (pos.Span, bool) {
	if !lx.wordAt(lx.off, "not") {
		return pos.Span{}, false
	}
	sp := pos.Span{Start: lx.off, End: lx.off + 3}
	lx.off += 3
	lx.skipSpace()
	return sp, true
}

// acceptByte consumes the punctuation c at off.
func (lx *lexer) acceptByte(c byte) bool {
	if lx.off < len(lx.text) && lx.text[lx.off] == c {
		lx.off++
		return true
	}
	return false
}

// acceptRange consumes a range operator at off.
func (lx *lexer) acceptRange() (RangeOp, pos.Span, bool) {
	if lx.off >= len(lx.text) {
		return 0, pos.Span{}, false
	}
	start := lx.off
	var op RangeOp
	switch lx.text[lx.off] {
	case '<':
		op = OpLT
	case '>':
		op = OpGT
	default:
		return 0, pos.Span{}, false
	}
	lx.off++
	if lx.off < len(lx.text) && lx.text[lx.off] == '=' {
		lx.off++
		op++ // OpLTE follows OpLT, OpGTE follows OpGT
	}
	return op, pos.Span{Start: start, End: lx.off}, true
}

// hex4 decodes four hex digits at off.
func (lx *lexer) hex4(off int) (rune, bool) {
	if len(lx.text)-off < 4 {
		return 0, false
	}
	var r rune
	for i := 0; i < 4; i++ {
		c := lx.text[off+i]
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unicodeEscape decodes \uXXXX at off (off is at the backslash), joining a
// UTF-16 surrogate pair written as two escapes, as JavaScript strings do. It
// returns the rune and the offset after the escape(s).
func (lx *lexer) unicodeEscape(off int) (rune, int, bool) {
	if off+1 >= len(lx.text) || lx.text[off+1] != 'u' {
		return 0, off, false
	}
	r, ok := lx.hex4(off + 2)
	if !ok {
		return 0, off, false
	}
	end := off + 6
	if utf16.IsSurrogate(r) {
		if r < 0xdc00 && strings.HasPrefix(lx.text[end:], `\u`) {
			if r2, ok := lx.hex4(end + 2); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
				return utf16.DecodeRune(r, r2), end + 6, true
			}
		}
		return utf8.RuneError, end, true
	}
	return r, end, true
}

// errorf returns a positioned parse error.
func (lx *lexer) errorf(sp pos.Span, code error, format string, args ...any) *pos.Error {
	return pos.Errorf(lx.src, sp, code, format, args...)
}

// describe names the input at off for an error message.
func (lx *lexer) describe(off int) string {
	if off >= len(lx.text) {
		return "end of query"
	}
	r, _ := utf8.DecodeRuneInString(lx.text[off:])
	for _, kw := range [...]string{"or", "and", "not"} {
		if len(lx.text)-off >= len(kw) && strings.EqualFold(lx.text[off:off+len(kw)], kw) {
			if e := off + len(kw); e == len(lx.text) || !isWordByte(lx.text[e]) {
				return `"` + lx.text[off:off+len(kw)] + `"`
			}
		}
	}
	return strconvQuoteRune(r)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c >= 0x80
}

func strconvQuoteRune(r rune) string {
	switch r {
	case '\n':
		return "newline"
	case '\t':
		return "tab"
	case '"':
		return `'"'`
	}
	return `"` + string(r) + `"`
}

// litChar is one character of an unquoted literal with its source range.
type litChar struct {
	r          rune
	start, end int
	wild       bool
}

// literal scans a quoted or unquoted literal at off. It returns ok=false
// without error when no literal starts at off.
func (lx *lexer) literal() (Literal, bool, *pos.Error) {
	if lx.off < len(lx.text) && lx.text[lx.off] == '"' {
		l, err := lx.quoted()
		return l, err == nil, err
	}
	return lx.unquoted()
}

// quoted scans a "quoted string".
func (lx *lexer) quoted() (Literal, *pos.Error) {
	start := lx.off
	off := start + 1
	var b strings.Builder
	for {
		if off >= len(lx.text) {
			return Literal{}, lx.errorf(pos.Span{Start: start, End: start + 1}, ErrUnclosed,
				`unterminated quoted string: missing closing '"'`)
		}
		c := lx.text[off]
		switch {
		case c == '"':
			lx.off = off + 1
			return Literal{Value: b.String(), Quoted: true, Sp: pos.Span{Start: start, End: off + 1}}, nil
		case c == '\\' && off+1 < len(lx.text):
			switch lx.text[off+1] {
			case 't':
				b.WriteByte('\t')
				off += 2
				continue
			case 'r':
				b.WriteByte('\r')
				off += 2
				continue
			case 'n':
				b.WriteByte('\n')
				off += 2
				continue
			case 'u':
				if r, end, ok := lx.unicodeEscape(off); ok {
					b.WriteRune(r)
					off = end
					continue
				}
			case '\\', '"':
				b.WriteByte(lx.text[off+1])
				off += 2
				continue
			}
			// Any other backslash is itself (Kibana's QuotedCharacter).
			b.WriteByte('\\')
			off++
		default:
			_, w := utf8.DecodeRuneInString(lx.text[off:])
			b.WriteString(lx.text[off : off+w])
			off += w
		}
	}
}

// unquoted scans an unquoted literal following Kibana's UnquotedLiteral.
func (lx *lexer) unquoted() (Literal, bool, *pos.Error) {
	var chars []litChar
	off := lx.off
	for off < len(lx.text) {
		c := lx.text[off]
		if c == '*' {
			chars = append(chars, litChar{r: '*', start: off, end: off + 1, wild: true})
			off++
			continue
		}
		if c == '\\' {
			text, end, ok := lx.escape(off)
			if !ok {
				return Literal{}, false, lx.errorf(pos.Span{Start: off, End: min(off+2, len(lx.text))}, ErrEscape,
					`invalid escape %q: a backslash escapes \ ( ) : < > " * { }, a keyword, \t \r \n or \uXXXX`,
					lx.text[off:min(off+2, len(lx.text))])
			}
			for _, r := range text {
				chars = append(chars, litChar{r: r, start: off, end: end})
			}
			off = end
			continue
		}
		if isSpecial(c) || lx.keywordAt(off) {
			break
		}
		r, w := utf8.DecodeRuneInString(lx.text[off:])
		chars = append(chars, litChar{r: r, start: off, end: off + w})
		off += w
	}
	if len(chars) == 0 {
		return Literal{}, false, nil
	}
	consumed := pos.Span{Start: lx.off, End: off}
	lx.off = off
	// Trim like JavaScript's trim (escaped whitespace too, as Kibana does).
	i, j := 0, len(chars)
	for i < j && !chars[i].wild && isTrimSpace(chars[i].r) {
		i++
	}
	for j > i && !chars[j-1].wild && isTrimSpace(chars[j-1].r) {
		j--
	}
	kept := chars[i:j]
	l := Literal{Sp: pos.Span{Start: consumed.Start, End: consumed.Start}}
	if len(kept) > 0 {
		l.Sp = pos.Span{Start: kept[0].start, End: kept[len(kept)-1].end}
	}
	var b strings.Builder
	wild := false
	for _, ch := range kept {
		wild = wild || ch.wild
		b.WriteRune(ch.r)
	}
	l.Value = b.String()
	if wild {
		l.Parts = splitParts(kept)
	}
	return l, true, nil
}

// splitParts returns the literal text between the wildcards of chars.
func splitParts(chars []litChar) []string {
	parts := []string{}
	var b strings.Builder
	for _, ch := range chars {
		if ch.wild {
			parts = append(parts, b.String())
			b.Reset()
			continue
		}
		b.WriteRune(ch.r)
	}
	return append(parts, b.String())
}

// escape decodes the escape sequence of an unquoted literal at off (at the
// backslash), in Kibana's order: \t \r \n, a special character, \uXXXX, a
// keyword (which keeps its case). So "\not" is a newline followed by "ot".
func (lx *lexer) escape(off int) (string, int, bool) {
	if off+1 >= len(lx.text) {
		return "", off, false
	}
	switch c := lx.text[off+1]; {
	case c == 't':
		return "\t", off + 2, true
	case c == 'r':
		return "\r", off + 2, true
	case c == 'n':
		return "\n", off + 2, true
	case isSpecial(c):
		return lx.text[off+1 : off+2], off + 2, true
	}
	if r, end, ok := lx.unicodeEscape(off); ok {
		return string(r), end, true
	}
	for _, kw := range [...]string{"or", "and", "not"} {
		if e := off + 1 + len(kw); e <= len(lx.text) && strings.EqualFold(lx.text[off+1:e], kw) {
			return lx.text[off+1 : e], e, true
		}
	}
	return "", off, false
}
