package esql

import (
	"strings"
	"unicode/utf8"

	"github.com/kanon-dev/kanon/internal/pos"
)

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tQuotedIdent // `...`, Val holds the unescaped name
	tString      // "..." or """...""", Val holds the decoded value
	tInt
	tDecimal
	tPipe
	tComma
	tDot
	tLParen
	tRParen
	tLBracket
	tRBracket
	tAssign // =
	tEq     // ==
	tNeq    // !=
	tLt
	tLe
	tGt
	tGe
	tPlus
	tMinus
	tStar
	tSlash
	tPercent
	tCast  // ::
	tParam // ?
	tIllegal
)

var tokNames = [...]string{
	tEOF: "end of query", tIdent: "identifier", tQuotedIdent: "quoted identifier",
	tString: "string", tInt: "integer", tDecimal: "decimal", tPipe: `"|"`, tComma: `","`,
	tDot: `"."`, tLParen: `"("`, tRParen: `")"`, tLBracket: `"["`, tRBracket: `"]"`,
	tAssign: `"="`, tEq: `"=="`, tNeq: `"!="`, tLt: `"<"`, tLe: `"<="`, tGt: `">"`, tGe: `">="`,
	tPlus: `"+"`, tMinus: `"-"`, tStar: `"*"`, tSlash: `"/"`, tPercent: `"%"`, tCast: `"::"`,
	tParam: `"?"`, tIllegal: "illegal character",
}

// token is one lexical token. Text is the raw source text of the token.
type token struct {
	kind tokKind
	loc  pos.Span
	text string
	val  string // decoded value of strings and quoted identifiers
	err  string // for tIllegal and malformed literals: what is wrong
}

// describe renders the token for "unexpected ..." messages.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of query"
	case tIdent, tInt, tDecimal:
		return `"` + t.text + `"`
	case tString, tQuotedIdent:
		s := t.text
		if utf8.RuneCountInString(s) > 40 {
			s = string([]rune(s)[:40]) + "..."
		}
		return s
	case tIllegal:
		return "character " + quoteRune(t.text)
	}
	return tokNames[t.kind]
}

func quoteRune(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if r == '"' {
		return `'"'`
	}
	return `"` + string(r) + `"`
}

// lexer produces tokens on demand. The parser may rescan from an offset in a
// special mode (index patterns, name patterns), so the lexer is a cursor over
// the text rather than a token slice.
type lexer struct {
	text string
	off  int
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isIDBody(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' }

// skipSpace skips white space and comments. An unterminated block comment
// runs to the end of the text.
func (l *lexer) skipSpace() {
	for l.off < len(l.text) {
		c := l.text[l.off]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.off++
		case c == '/' && l.off+1 < len(l.text) && l.text[l.off+1] == '/':
			i := strings.IndexByte(l.text[l.off:], '\n')
			if i < 0 {
				l.off = len(l.text)
			} else {
				l.off += i + 1
			}
		case c == '/' && l.off+1 < len(l.text) && l.text[l.off+1] == '*':
			// Block comments nest, as in ES|QL.
			depth := 0
			for l.off < len(l.text) {
				if strings.HasPrefix(l.text[l.off:], "/*") {
					depth++
					l.off += 2
				} else if strings.HasPrefix(l.text[l.off:], "*/") {
					depth--
					l.off += 2
					if depth == 0 {
						break
					}
				} else {
					l.off++
				}
			}
		default:
			return
		}
	}
}

// next scans the next token in expression mode.
func (l *lexer) next() token {
	l.skipSpace()
	start := l.off
	if start >= len(l.text) {
		return token{kind: tEOF, loc: pos.Span{Start: start, End: start}}
	}
	mk := func(k tokKind, n int) token {
		l.off += n
		return token{kind: k, loc: pos.Span{Start: start, End: l.off}, text: l.text[start:l.off]}
	}
	c := l.text[start]
	var c1 byte
	if start+1 < len(l.text) {
		c1 = l.text[start+1]
	}
	switch {
	case isLetter(c) || (c == '_' || c == '@') && isIDBody(c1):
		n := 1
		for start+n < len(l.text) && isIDBody(l.text[start+n]) {
			n++
		}
		return mk(tIdent, n)
	case isDigit(c) || c == '.' && isDigit(c1):
		return l.number()
	case c == '"':
		return l.str()
	case c == '`':
		return l.quotedIdent()
	}
	switch c {
	case '|':
		return mk(tPipe, 1)
	case ',':
		return mk(tComma, 1)
	case '.':
		return mk(tDot, 1)
	case '(':
		return mk(tLParen, 1)
	case ')':
		return mk(tRParen, 1)
	case '[':
		return mk(tLBracket, 1)
	case ']':
		return mk(tRBracket, 1)
	case '=':
		if c1 == '=' {
			return mk(tEq, 2)
		}
		return mk(tAssign, 1)
	case '!':
		if c1 == '=' {
			return mk(tNeq, 2)
		}
	case '<':
		if c1 == '=' {
			return mk(tLe, 2)
		}
		return mk(tLt, 1)
	case '>':
		if c1 == '=' {
			return mk(tGe, 2)
		}
		return mk(tGt, 1)
	case '+':
		return mk(tPlus, 1)
	case '-':
		return mk(tMinus, 1)
	case '*':
		return mk(tStar, 1)
	case '/':
		return mk(tSlash, 1)
	case '%':
		return mk(tPercent, 1)
	case ':':
		if c1 == ':' {
			return mk(tCast, 2)
		}
	case '?':
		return mk(tParam, 1)
	}
	_, n := utf8.DecodeRuneInString(l.text[start:])
	t := mk(tIllegal, n)
	t.err = "illegal character"
	return t
}

// number scans an integer or decimal literal: 12, 1.5, .5, 1e3, 1.5E-3.
func (l *lexer) number() token {
	start := l.off
	i := start
	for i < len(l.text) && isDigit(l.text[i]) {
		i++
	}
	kind := tInt
	if i < len(l.text) && l.text[i] == '.' && (i+1 >= len(l.text) || isDigit(l.text[i+1]) || !isLetter(l.text[i+1]) && l.text[i+1] != '_' && l.text[i+1] != '`') {
		// "1." is a decimal; "a.b" never reaches here; "1.x" is not a decimal.
		kind = tDecimal
		i++
		for i < len(l.text) && isDigit(l.text[i]) {
			i++
		}
	}
	if i < len(l.text) && (l.text[i] == 'e' || l.text[i] == 'E') {
		j := i + 1
		if j < len(l.text) && (l.text[j] == '+' || l.text[j] == '-') {
			j++
		}
		if j < len(l.text) && isDigit(l.text[j]) {
			kind = tDecimal
			for j < len(l.text) && isDigit(l.text[j]) {
				j++
			}
			i = j
		}
	}
	l.off = i
	return token{kind: kind, loc: pos.Span{Start: start, End: i}, text: l.text[start:i]}
}

// str scans "..." (with \t \n \r \" \\ escapes, no raw newlines) or
// """...""" (raw, may span lines).
func (l *lexer) str() token {
	start := l.off
	if strings.HasPrefix(l.text[start:], `"""`) {
		end := strings.Index(l.text[start+3:], `"""`)
		if end < 0 {
			l.off = len(l.text)
			return token{kind: tString, loc: pos.Span{Start: start, End: l.off}, text: l.text[start:], err: "unterminated triple-quoted string"}
		}
		e := start + 3 + end + 3
		// Up to two extra quotes close the string too: """a""""" is `a""`.
		val := l.text[start+3 : e-3]
		for k := 0; k < 2 && e < len(l.text) && l.text[e] == '"'; k++ {
			val += `"`
			e++
		}
		l.off = e
		return token{kind: tString, loc: pos.Span{Start: start, End: e}, text: l.text[start:e], val: val}
	}
	var b strings.Builder
	i := start + 1
	errMsg := ""
	for {
		if i >= len(l.text) || l.text[i] == '\n' || l.text[i] == '\r' {
			l.off = i
			return token{kind: tString, loc: pos.Span{Start: start, End: i}, text: l.text[start:i], err: "unterminated string"}
		}
		c := l.text[i]
		if c == '"' {
			i++
			break
		}
		if c == '\\' {
			if i+1 >= len(l.text) {
				i++
				continue
			}
			switch l.text[i+1] {
			case 't':
				b.WriteByte('\t')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case '"':
				b.WriteByte('"')
			case '\\':
				b.WriteByte('\\')
			default:
				if errMsg == "" {
					errMsg = "invalid escape sequence \\" + string(l.text[i+1]) + ` (valid: \t \n \r \" \\; use """...""" for raw text)`
				}
			}
			i += 2
			continue
		}
		b.WriteByte(c)
		i++
	}
	l.off = i
	return token{kind: tString, loc: pos.Span{Start: start, End: i}, text: l.text[start:i], val: b.String(), err: errMsg}
}

// quotedIdent scans a backtick-quoted identifier; a doubled backtick stands
// for one backtick.
func (l *lexer) quotedIdent() token {
	start := l.off
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(l.text) {
			l.off = i
			return token{kind: tQuotedIdent, loc: pos.Span{Start: start, End: i}, text: l.text[start:i], err: "unterminated quoted identifier"}
		}
		if l.text[i] == '`' {
			if i+1 < len(l.text) && l.text[i+1] == '`' {
				b.WriteByte('`')
				i += 2
				continue
			}
			i++
			break
		}
		b.WriteByte(l.text[i])
		i++
	}
	l.off = i
	t := token{kind: tQuotedIdent, loc: pos.Span{Start: start, End: i}, text: l.text[start:i], val: b.String()}
	if t.val == "" {
		t.err = "empty quoted identifier"
	}
	return t
}

// rawIndexPattern scans, in source-command mode, a run of characters that are not
// white space, a comma or a pipe (an index pattern such as
// logs-kubernetes.audit_logs-*). It returns an empty span when nothing is
// there.
func (l *lexer) rawIndexPattern() pos.Span {
	l.skipSpace()
	start := l.off
	for l.off < len(l.text) {
		c := l.text[l.off]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '|' || c == '"' || c == '`' ||
			strings.HasPrefix(l.text[l.off:], "//") || strings.HasPrefix(l.text[l.off:], "/*") {
			break
		}
		l.off++
	}
	return pos.Span{Start: start, End: l.off}
}
