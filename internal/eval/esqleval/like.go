package esqleval

import (
	"regexp"
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/wildcard"
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
		p := LikePattern(x.Pattern)
		m = p.Match
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

// LikePattern parses the pattern of ES|QL's LIKE: "*" matches any run of
// characters, "?" exactly one, and "\" makes the next character literal (a
// "\" at the end is itself literal). Every LIKE pattern is a valid one.
// The pattern's kind says whether it is an exact value, a prefix, a suffix,
// an infix or a general pattern.
func LikePattern(p string) wildcard.Pattern {
	var b wildcard.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '\\':
			if i+1 < len(p) {
				i++
			}
			b.Literal(p[i : i+1])
		case '*':
			b.Star()
		case '?':
			b.One()
		default:
			b.Literal(p[i : i+1])
		}
	}
	return b.Pattern()
}

// compileLucene compiles an RLIKE pattern. RLIKE uses Lucene's regular
// expression syntax and matches the whole string. It is translated to Go's
// RE2 syntax: the whole pattern is anchored, "." matches any character
// (newlines included), a backslash before a character that is not a class
// shorthand (\d \s \w \D \S \W) makes it literal, and "..." quotes a literal
// string. Lucene's optional operators (& ~ < > # @) are not enabled by
// ES|QL and are literal characters. An expression that is a wildcard
// pattern in disguise (lucenePattern) is matched with literal checks.
func compileLucene(p string) (matcher, error) {
	re, err := luceneRegexp(p)
	if err != nil {
		return nil, err
	}
	if wp, ok := lucenePattern(p); ok {
		return wp.Match, nil
	}
	return re.MatchString, nil
}

// luceneRegexp translates an RLIKE expression to an anchored RE2 regular
// expression (see compileLucene).
func luceneRegexp(p string) (*regexp.Regexp, error) {
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
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
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
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
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
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}

// lucenePattern returns the wildcard pattern an RLIKE expression stands
// for when it is made only of literal characters (plain, escaped or
// "quoted"), "." (one character), ".*" (any run) and ".+" (one character,
// then any run); ok is false for anything else (classes, groups,
// alternatives, other repetitions), which stays a regular expression. It
// reads the syntax as compileLucene translates it, and is only used on
// expressions that compile.
func lucenePattern(p string) (wp wildcard.Pattern, ok bool) {
	var b wildcard.Builder
	// quantified reports whether a repetition operator follows p[i-1].
	quantified := func(i int) bool { return i < len(p) && strings.IndexByte("*+?{", p[i]) >= 0 }
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '.':
			switch {
			case i+1 < len(p) && p[i+1] == '*':
				b.Star()
				i++
			case i+1 < len(p) && p[i+1] == '+':
				b.One()
				b.Star()
				i++
			default:
				b.One()
			}
			if quantified(i + 1) {
				return wildcard.Pattern{}, false
			}
		case '\\':
			if i+1 < len(p) {
				i++
				if strings.IndexByte("dswDSW", p[i]) >= 0 {
					return wildcard.Pattern{}, false
				}
			}
			b.Literal(p[i : i+1])
			if quantified(i + 1) {
				return wildcard.Pattern{}, false
			}
		case '"':
			if end := strings.IndexByte(p[i+1:], '"'); end >= 0 {
				b.Literal(p[i+1 : i+1+end])
				i += end + 1
			} else {
				b.Literal(`"`)
			}
			if quantified(i + 1) {
				return wildcard.Pattern{}, false
			}
		case '*', '+', '?', '{', '}', '|', '(', ')', '[', ']':
			return wildcard.Pattern{}, false
		default:
			b.Literal(p[i : i+1])
			if quantified(i + 1) {
				return wildcard.Pattern{}, false
			}
		}
	}
	return b.Pattern(), true
}
