package esqleval

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/eval/wildcard"
)

func TestLikePattern(t *testing.T) {
	f := func(pattern string, kind wildcard.Kind, lit, canon string) {
		t.Helper()
		p := LikePattern(pattern)
		if p.Kind() != kind || p.Literal() != lit || p.String() != canon {
			t.Fatalf("LikePattern(%q) = %s %q %q, want %s %q %q", pattern, p.Kind(), p.Literal(), p.String(), kind, lit, canon)
		}
	}
	f("", wildcard.Exact, "", "")
	f("get", wildcard.Exact, "get", "get")
	f(`a\*b`, wildcard.Exact, "a*b", `a\*b`)
	f(`a\b`, wildcard.Exact, "ab", "ab") // any escaped character is literal
	f(`ab\`, wildcard.Exact, `ab\`, `ab\\`)
	f("/api*", wildcard.Prefix, "/api", "/api*")
	f("*command=*", wildcard.Contains, "command=", "*command=*")
	f("*.exe", wildcard.Suffix, ".exe", "*.exe")
	f("*", wildcard.Any, "", "*")
	f("a*b", wildcard.Glob, "", "a*b")
	f("v?", wildcard.General, "", "v?")
	f(`v\?`, wildcard.Exact, "v?", `v\?`)
}

func TestLucenePattern(t *testing.T) {
	f := func(expr string, ok bool, canon string) {
		t.Helper()
		p, got := lucenePattern(expr)
		if got != ok || (ok && p.String() != canon) {
			t.Fatalf("lucenePattern(%q) = %q %v, want %q %v", expr, p.String(), got, canon, ok)
		}
	}
	f(".*secrets.*", true, "*secrets*")
	f("/api/v1/.*", true, "/api/v1/*")
	f("a.b", true, "a?b")
	f(".+x", true, "?*x")
	f(`a\.b`, true, "a.b")
	f(`"a.*b"`, true, `a.\*b`)
	f(`x"y`, true, `x"y`)
	f("a#b@c", true, "a#b@c")
	f(`\`, true, `\\`)
	f(".*?", false, "")
	f("ab*", false, "")
	f("a{2}", false, "")
	f(".{2}", false, "")
	f(`\d+`, false, "")
	f("[ab]", false, "")
	f("(a|b)", false, "")
	f(`"ab"*`, false, "")
	f("é+", false, "")
}

// FuzzLucenePattern checks that an RLIKE expression matched with literal
// checks matches what its regular expression matches.
func FuzzLucenePattern(f *testing.F) {
	for _, s := range [][2]string{
		{".*secrets.*", "/api/v1/secrets/x"}, {"/api/v1/.*", "/api/v1/pods"}, {"a.b", "a\nb"}, {".+x", "x"},
		{`a\.b`, "a.b"}, {`"a.*b"`, "a.*b"}, {`x"y`, `x"y`}, {"a#b@c", "a#b@c"}, {`\`, `\`}, {`\é`, "é"}, {"é.", "éé"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, expr, s string) {
		if len(expr) > 64 || len(s) > 256 {
			return
		}
		re, err := luceneRegexp(expr)
		if err != nil {
			return
		}
		p, ok := lucenePattern(expr)
		if !ok {
			return
		}
		if want, got := re.MatchString(s), p.Match(s); got != want {
			t.Fatalf("RLIKE %q (pattern %q, %s) on %q: literal match %v, regexp %v", expr, p.String(), p.Kind(), s, got, want)
		}
	})
}

// FuzzLikePattern checks LIKE patterns against the regular expression the
// pattern stands for ("*" is ".*", "?" is ".", "\" escapes).
func FuzzLikePattern(f *testing.F) {
	for _, s := range [][2]string{
		{"*command=*", "?command=ls"}, {"/api*", "/api/v1"}, {"v?", "v1"}, {`a\*b`, "a*b"}, {`ab\`, `ab\`}, {"*?*", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 {
			return
		}
		var b strings.Builder
		b.WriteString(`^(?s:`)
		for i := 0; i < len(pattern); i++ {
			switch c := pattern[i]; {
			case c == '\\' && i+1 < len(pattern):
				i++
				b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			case c == '*':
				b.WriteString(`.*`)
			case c == '?':
				b.WriteString(`.`)
			default:
				b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
			}
		}
		b.WriteString(`)$`)
		re, err := regexp.Compile(b.String())
		if err != nil {
			return // invalid UTF-8, which regexp rejects and LIKE accepts
		}
		p := LikePattern(pattern)
		if want, got := re.MatchString(s), p.Match(s); got != want {
			t.Fatalf("LIKE %q (%s) on %q: %v, regexp %v", pattern, p.Kind(), s, got, want)
		}
	})
}
