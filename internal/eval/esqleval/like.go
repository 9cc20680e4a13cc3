package esqleval

import (
	"regexp"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// matcher is a compiled LIKE or RLIKE pattern.
type matcher func(s string) bool

// compileLike compiles x [NOT] LIKE|RLIKE "pattern". Both match the whole
// string, case-sensitively; null and multi-valued input give null.
func (cp *compiler) compileLike(x *esql.LikeExpr) (cexpr, bool) {
	a, ok := cp.operand(x.X)
	if !ok {
		return cexpr{}, false
	}
	var m matcher
	if x.Regex {
		re, err := compileLucene(x.Pattern)
		if err != nil {
			cp.errorf(x.PatternLoc, ErrInvalid, "invalid RLIKE pattern %q: %v", x.Pattern, err)
			return cexpr{}, false
		}
		m = re
	} else {
		m = compileWildcard(x.Pattern)
	}
	t, not := cp.newTmp(), x.Not
	return cexpr{typ: tyBool, fn: func(c *ctx, dst []event.Value) []event.Value {
		v, ok := single(evalTmp(c, &a, t))
		if !ok || v.Kind != event.KindString {
			return dst
		}
		return appendBool(dst, m(v.S) != not)
	}}, true
}

// compileWildcard compiles a LIKE pattern: "*" matches any run of
// characters, "?" exactly one, and "\" escapes the next character. Patterns
// that are a literal, a prefix, a suffix or an infix become string checks;
// others a regular expression.
func compileWildcard(p string) matcher {
	// Split into literal runs and wildcards.
	var lits []string
	var kinds []byte // 'l' literal, '*', '?'
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			lits = append(lits, cur.String())
			kinds = append(kinds, 'l')
			cur.Reset()
		}
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 < len(p) {
				i++
				cur.WriteByte(p[i])
			} else {
				cur.WriteByte(c)
			}
		case '*', '?':
			flush()
			lits = append(lits, "")
			kinds = append(kinds, c)
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	shape := string(kinds)
	switch shape {
	case "":
		return func(s string) bool { return s == "" }
	case "l":
		lit := lits[0]
		return func(s string) bool { return s == lit }
	case "*":
		return func(string) bool { return true }
	case "l*":
		lit := lits[0]
		return func(s string) bool { return strings.HasPrefix(s, lit) }
	case "*l":
		lit := lits[1]
		return func(s string) bool { return strings.HasSuffix(s, lit) }
	case "*l*":
		lit := lits[1]
		return func(s string) bool { return strings.Contains(s, lit) }
	}
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i, k := range kinds {
		switch k {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(lits[i]))
		}
	}
	b.WriteString(`)$`)
	re := regexp.MustCompile(b.String())
	return re.MatchString
}

// compileLucene compiles an RLIKE pattern. RLIKE uses Lucene's regular
// expression syntax and matches the whole string. It is translated to Go's
// RE2 syntax: the whole pattern is anchored, "." matches any character
// (newlines included), a backslash before a character that is not a class
// shorthand (\d \s \w \D \S \W) makes it literal, and "..." quotes a literal
// string. Lucene's optional operators (& ~ < > # @) are not enabled by
// ES|QL and are literal characters.
func compileLucene(p string) (matcher, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if inClass {
			// Inside [...]: ranges and negation pass through; escapes are
			// literal.
			switch {
			case c == ']':
				inClass = false
				b.WriteByte(c)
			case c == '\\' && i+1 < len(p):
				i++
				b.WriteString(regexp.QuoteMeta(string(p[i])))
			case c == '[' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			default:
				b.WriteByte(c)
			}
			continue
		}
		switch c {
		case '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				b.WriteByte('^')
				i++
			}
		case '\\':
			if i+1 >= len(p) {
				b.WriteString(`\\`)
				continue
			}
			i++
			n := p[i]
			if strings.IndexByte("dswDSW", n) >= 0 {
				b.WriteByte('\\')
				b.WriteByte(n)
			} else {
				b.WriteString(regexp.QuoteMeta(string(n)))
			}
		case '"':
			end := strings.IndexByte(p[i+1:], '"')
			if end < 0 {
				b.WriteString(`"`)
				continue
			}
			b.WriteString(regexp.QuoteMeta(p[i+1 : i+1+end]))
			i += end + 1
		case '&', '~', '<', '>', '#', '@', '$', '^':
			b.WriteString(regexp.QuoteMeta(string(c)))
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, err
	}
	// Prefer a literal check when the pattern is a plain infix .*lit.*.
	if lit, ok := infixLiteral(p); ok {
		return func(s string) bool { return strings.Contains(s, lit) }, nil
	}
	return re.MatchString, nil
}

// infixLiteral recognises ".*literal.*" where literal has no operators.
func infixLiteral(p string) (string, bool) {
	if len(p) < 4 || !strings.HasPrefix(p, ".*") || !strings.HasSuffix(p, ".*") {
		return "", false
	}
	mid := p[2 : len(p)-2]
	if strings.ContainsAny(mid, `.?+*|{}[]()"\&~<>#@`) {
		return "", false
	}
	return mid, true
}
