package wildcard

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// parse reads the test syntax: "*" and "?" wildcards, "\" escapes the next
// character (ES|QL LIKE's syntax, which String prints).
func parse(s string) Pattern {
	var b Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.Literal(s[i : i+1])
		case c == '*':
			b.Star()
		case c == '?':
			b.One()
		default:
			b.Literal(s[i : i+1])
		}
	}
	return b.Pattern()
}

// reference compiles the test syntax to an anchored regular expression,
// the implementation the matchers replace.
func reference(s string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteString(regexp.QuoteMeta(s[i : i+1]))
		case c == '*':
			b.WriteString(`.*`)
		case c == '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(s[i : i+1]))
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String())
}

func TestClassify(t *testing.T) {
	f := func(pattern string, kind Kind, lit string) {
		t.Helper()
		p := parse(pattern)
		if p.Kind() != kind || p.Literal() != lit {
			t.Fatalf("%q: kind %s literal %q, want %s %q", pattern, p.Kind(), p.Literal(), kind, lit)
		}
	}
	f("", Exact, "")
	f("abc", Exact, "abc")
	f(`a\*b\?`, Exact, "a*b?")
	f("*", Any, "")
	f("***", Any, "")
	f("ab*", Prefix, "ab")
	f("ab**", Prefix, "ab")
	f("*ab", Suffix, "ab")
	f("*ab*", Contains, "ab")
	f("**ab***", Contains, "ab")
	f("a*b", Glob, "")
	f("*a*b*", Glob, "")
	f("a*b*c", Glob, "")
	f("?", General, "")
	f("a?", General, "")
	f("*?*", General, "")
	f(`\\*`, Prefix, `\`)
}

func TestParts(t *testing.T) {
	f := func(parts []string, kind Kind, lit, str string) {
		t.Helper()
		p := Parts(parts)
		if p.Kind() != kind || p.Literal() != lit || p.String() != str {
			t.Fatalf("%q: %s %q %q, want %s %q %q", parts, p.Kind(), p.Literal(), p.String(), kind, lit, str)
		}
	}
	f(nil, Exact, "", "")
	f([]string{"ab"}, Exact, "ab", "ab")
	f([]string{"", ""}, Any, "", "*")
	f([]string{"", "", ""}, Any, "", "*")
	f([]string{"a", "", ""}, Prefix, "a", "a*")
	f([]string{"", "a?"}, Suffix, "a?", `*a\?`)
	f([]string{"", "a", ""}, Contains, "a", "*a*")
	f([]string{"", "a", "", "a", ""}, Glob, "", "*a*a*")
	if p := ExactValue("a*"); p.Kind() != Exact || !p.Match("a*") || p.Match("ab") {
		t.Fatalf("ExactValue: %s", p.Kind())
	}
}

func TestMatch(t *testing.T) {
	f := func(pattern, s string, want bool) {
		t.Helper()
		p := parse(pattern)
		if got := p.Match(s); got != want {
			t.Fatalf("%q (%s) Match %q = %v, want %v", pattern, p.Kind(), s, got, want)
		}
		if got := p.MatchBytes([]byte(s)); got != want {
			t.Fatalf("%q (%s) MatchBytes %q = %v, want %v", pattern, p.Kind(), s, got, want)
		}
	}
	f("", "", true)
	f("", "x", false)
	f("*", "", true)
	f("*", "x", true)
	f("ab*", "abc", true)
	f("ab*", "xab", false)
	f("*ab", "xab", true)
	f("*b*", "abc", true)
	f("*b*", "ac", false)
	f("a*b*c", "a-b-c", true)
	f("a*b*c", "abc", true)
	f("a*b*c", "acb", false)
	f("ab*ba", "aba", false) // parts never overlap
	f("ab*ba", "abba", true)
	f("*a*a*", "aa", true)
	f("*a*a*", "a", false)
	f("?", "", false)
	f("?", "é", true) // one character, two bytes
	f("??", "é", false)
	f("*??", "€", false) // a star takes whole characters
	f("*?", "€", true)
	f("a?c", "abc", true)
	f("a?c", "ac", false)
	f("a*?c", "abbc", true)
	f("a*?c", "ac", false)
	f("*x?y*", "axxyz", true)
	f("*x?y*", "axyz", false)
	f("?\n?", "a\nb", true)
	f(`a\*b`, "a*b", true)
	f(`a\*b`, "axb", false)
}

// TestMatchAllocs keeps every kind of matcher allocation-free.
func TestMatchAllocs(t *testing.T) {
	s := "/api/v1/namespaces/kube-system/secrets/token"
	b := []byte(s)
	for _, pat := range []string{"/api/v1/namespaces/kube-system/secrets/token", "/api/*", "*/token", "*secrets*", "/api/*/secrets/*", "/api/v?/*/secrets/*"} {
		p := parse(pat)
		if !p.Match(s) {
			t.Fatalf("%q does not match", pat)
		}
		if n := testing.AllocsPerRun(100, func() { p.Match(s); p.MatchBytes(b) }); n != 0 {
			t.Errorf("%q (%s): %v allocations per match", pat, p.Kind(), n)
		}
	}
}

func TestMap(t *testing.T) {
	p := parse("AB*C?")
	l := p.Map(strings.ToLower)
	if l.String() != "ab*c?" || l.Kind() != General || !l.Match("abxcy") {
		t.Fatalf("Map: %q %s", l.String(), l.Kind())
	}
	q := parse("A*")
	if m := q.Map(func(string) string { return "" }); m.Kind() != Any {
		t.Fatalf("Map to empty literals: %s, want any", m.Kind())
	}
}

func TestLiterals(t *testing.T) {
	p := parse("ab*c?de*")
	if got := strings.Join(p.Literals(), ","); got != "ab,c,de" {
		t.Fatalf("Literals = %q", got)
	}
	if p.LeadingLiteral() != "ab" {
		t.Fatalf("LeadingLiteral = %q", p.LeadingLiteral())
	}
	q := parse("*ab")
	if q.LeadingLiteral() != "" {
		t.Fatalf("LeadingLiteral of *ab = %q", q.LeadingLiteral())
	}
}

// FuzzMatch checks every matcher against the regular expression the
// pattern stands for.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"*", ""}, {"ab*", "abc"}, {"*ab", "xab"}, {"*b*", "abc"}, {"a*b*c", "a-b-c"}, {"ab*ba", "aba"},
		{"a?c", "abc"}, {"*??", "€"}, {`a\*b`, "a*b"}, {"*x?y*", "axxyz"}, {"?*?*?", "ab\xffc"}, {`\`, `\`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 || !utf8.ValidString(pattern) {
			return // regexp rejects invalid UTF-8 in a pattern
		}
		p := parse(pattern)
		want := reference(pattern).MatchString(s)
		if got := p.Match(s); got != want {
			t.Fatalf("%q (%s) Match %q = %v, regexp says %v", pattern, p.Kind(), s, got, want)
		}
		if got := p.MatchBytes([]byte(s)); got != want {
			t.Fatalf("%q (%s) MatchBytes %q = %v, regexp says %v", pattern, p.Kind(), s, got, want)
		}
		if q := parse(p.String()); q.String() != p.String() || q.Kind() != p.Kind() {
			t.Fatalf("%q: String %q reparses as %q (%s, was %s)", pattern, p.String(), q.String(), q.Kind(), p.Kind())
		}
	})
}
