package kql

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/pos"
)

func TestParse_Success(t *testing.T) {
	f := func(query, want string) {
		t.Helper()
		e, err := ParseString(query)
		if err != nil {
			t.Fatalf("ParseString(%q): %v", query, err)
		}
		if got := String(e); got != want {
			t.Fatalf("String(Parse(%q)) = %q, want %q", query, got, want)
		}
		checkRoundTrip(t, query, e)
	}
	// Precedence: not > and > or; n-ary, nesting kept.
	f(`a or b and c`, `a or b and c`)
	f(`(a or b) and c`, `(a or b) and c`)
	f(`a or (b or c)`, `a or (b or c)`)
	f(`a and (b and c)`, `a and (b and c)`)
	f(`not a and b`, `not a and b`)
	f(`not (a and b)`, `not (a and b)`)
	f(`not (not a)`, `not (not a)`)
	f(`((a))`, `a`)
	f(`A OR b AnD c`, `A or b and c`)
	f(`NOT x:y`, `not x:y`)
	// Fields and value lists.
	f(`x:y`, `x:y`)
	f(`x :  y`, `x:y`)
	f(`x:(a or b and not c)`, `x:(a or b and not c)`)
	f(`x:( a )`, `x:a`)
	f(`x:(not *)`, `x:(not *)`)
	f(`x:("a" or "b" or not *)`, `x:("a" or "b" or not *)`)
	f(`kubernetes.audit.userAgent:(* and not (*kubernetes/$Format))`, `kubernetes.audit.userAgent:(* and not *kubernetes/$Format)`)
	f(`x:(a and (b or c))`, `x:(a and (b or c))`)
	f(`x:(not (a or b))`, `x:(not (a or b))`)
	f(`x.*:y`, `x.*:y`)
	f(`*:*`, `*:*`)
	f(`"quoted field":y`, `"quoted field":y`)
	// Unquoted literals keep inner spaces, are trimmed, end at keywords.
	f(`hello world`, `hello world`)
	f(`x:hello  world or y`, `x:hello  world or y`)
	f(`a or`, `a \or`)
	f(`or b`, `\or b`)
	f(`a and`, `a \and`)
	f(`not`, `\u006eot`)
	f(`x:android`, `x:android`)
	f("x:a\u00a0or\u00a0b", `x:a or b`)             // a raw no-break space separates keywords
	f(`x:a\u00a0or\u00a0b`, "x:a\u00a0\\or\u00a0b") // an escaped one is part of the value
	f(`(a b:c)`, `a b:c`)                           // a field name may contain spaces
	// Escapes.
	f(`x:system\:serviceaccount\:*`, `x:system\:serviceaccount\:*`)
	f(`x:a\*b`, `x:a\*b`)
	f(`x:\(\)\<\>\"\{\}\\`, `x:\(\)\<\>\"\{\}\\`)
	f(`x:\or`, `x:\or`)
	f(`x:\AND b`, `x:\AND b`)
	f(`x:\NOT x`, `x:\NOT x`)
	f(`x:\not`, `x:ot`) // \n first: a newline, trimmed, then "ot"
	f(`x:a\tb`, `x:a\tb`)
	f(`x:foo\t`, `x:foo`)
	f(`x:\t`, `x:\t`)
	f(`x:\u0041\ud83d\ude00`, `x:A😀`)
	// Quoted strings.
	f(`x:"a b"`, `x:"a b"`)
	f(`x:"a\"b\\c\x"`, `x:"a\"b\\c\\x"`)
	f(`x:"*"`, `x:"*"`)
	f(`x:""`, `x:""`)
	f("x:\"line\nbreak\"", `x:"line\nbreak"`)
	f(`x:"\u00e9"`, `x:"é"`)
	f(`x:"a or b"`, `x:"a or b"`)
	// Ranges.
	f(`a >= 10`, `a >= 10`)
	f(`a<"x"`, `a < "x"`)
	f(`a<=2 and b>1`, `a <= 2 and b > 1`)
	f(`@timestamp < 2024-01-01T00\:00\:00Z`, `@timestamp < 2024-01-01T00\:00\:00Z`)
	// Nested.
	f(`p:{ a:b and c:d }`, `p:{a:b and c:d}`)
	f(`p:{ q:{ a:b } }`, `p:{q:{a:b}}`)
	// Empty query.
	f(``, ``)
	f("  \n ", ``)
}

func TestParse_AST(t *testing.T) {
	e := MustParse(`x:(a or b*) and not y:"c d"`)
	and, ok := e.(*AndExpr)
	if !ok || len(and.Args) != 2 {
		t.Fatalf("got %#v", e)
	}
	fe := and.Args[0].(*FieldExpr)
	if fe.Field.Value != "x" || fe.Field.Quoted || fe.Field.IsWildcard() {
		t.Fatalf("field %#v", fe.Field)
	}
	or := fe.Values.(*OrExpr)
	b := or.Args[1].(*ValueExpr).Value
	if !b.IsWildcard() || len(b.Parts) != 2 || b.Parts[0] != "b" || b.Parts[1] != "" || b.Value != "b*" {
		t.Fatalf("wildcard %#v", b)
	}
	not := and.Args[1].(*NotExpr)
	v := not.X.(*FieldExpr).Values.(*ValueExpr).Value
	if !v.Quoted || v.Value != "c d" || v.Sp != (pos.Span{Start: 22, End: 27}) {
		t.Fatalf("quoted %#v", v)
	}
	if and.Sp != (pos.Span{Start: 0, End: 27}) {
		t.Fatalf("span %v", and.Sp)
	}
	esc := MustParse(`a\*b*`).(*ValueExpr).Value
	if len(esc.Parts) != 2 || esc.Parts[0] != "a*b" {
		t.Fatalf("escaped star %#v", esc)
	}
	star := MustParse(`x:*`).(*FieldExpr).Values.(*ValueExpr).Value
	if !star.IsStar() {
		t.Fatal("x:* should be a star")
	}
	r := MustParse(`n >= 5`).(*RangeExpr)
	if r.Op != OpGTE || r.Field.Value != "n" || r.Value.Value != "5" {
		t.Fatalf("range %#v", r)
	}
}

func TestParse_Failure(t *testing.T) {
	f := func(query string, code error, want string) {
		t.Helper()
		_, err := ParseString(query)
		if err == nil {
			t.Fatalf("ParseString(%q): want error", query)
		}
		if !errors.Is(err, code) {
			t.Fatalf("ParseString(%q): error %v is not %v", query, err, code)
		}
		var pe *pos.Error
		if !errors.As(err, &pe) {
			t.Fatalf("ParseString(%q): %T is not a *pos.Error", query, err)
		}
		if got := err.Error(); got != want {
			t.Fatalf("ParseString(%q):\n got %s\nwant %s", query, got, want)
		}
	}
	f(`a:`, ErrMissingValue, `query:1:3: expected a value after ":", found end of query`)
	f(`a: )`, ErrMissingValue, `query:1:4: expected a value after ":", found ")"`)
	f(`field:not x`, ErrUnexpected, `query:1:7: expected a value after ":", found "not"`)
	f(`a:(`, ErrMissingValue, `query:1:4: expected a value after "(", found end of query`)
	f(`a:()`, ErrMissingValue, `query:1:4: expected a value after "(", found ")"`)
	f(`a:(b`, ErrUnclosed, `query:1:3: unclosed "(": missing ")"`)
	f(`(a`, ErrUnclosed, `query:1:1: unclosed "(": missing ")"`)
	f(`(a:b c:d)`, ErrUnexpected, `query:1:7: unexpected ":", expected "and", "or" or ")"`)
	f(`p:{a:b`, ErrUnclosed, `query:1:3: unclosed "{": missing "}"`)
	f(`p:{}`, ErrMissingValue, `query:1:4: expected a query after "{", found "}"`)
	f(`x:(a or )`, ErrMissingValue, `query:1:9: expected a value after "or", found ")"`)
	f(`a and `, ErrMissingValue, `query:1:7: expected an expression after "and", found end of query`)
	f(`not `, ErrMissingValue, `query:1:5: expected an expression after "not", found end of query`)
	f(`not not a`, ErrUnexpected, `query:1:5: expected an expression after "not", found "not"`)
	f(`x:"unterminated`, ErrUnclosed, `query:1:3: unterminated quoted string: missing closing '"'`)
	f(`x:a\q`, ErrEscape, `query:1:4: invalid escape "\\q": a backslash escapes \ ( ) : < > " * { }, a keyword, \t \r \n or \uXXXX`)
	f(`x:\u12`, ErrEscape, `query:1:3: invalid escape "\\u": a backslash escapes \ ( ) : < > " * { }, a keyword, \t \r \n or \uXXXX`)
	f(`cannot x`, ErrUnexpected, `query:1:4: unexpected "not", expected "and", "or" or the end of the query`)
	f(`not(x)`, ErrUnexpected, `query:1:4: unexpected "(", expected "and", "or" or the end of the query`)
	f(`(a)or(b)`, ErrUnexpected, `query:1:4: unexpected "or", expected "and", "or" or the end of the query`)
	f(`x:a:b`, ErrUnexpected, `query:1:4: unexpected ":", expected "and", "or" or the end of the query`)
	f(`)`, ErrUnexpected, `query:1:1: unexpected ")", expected a field, a value or "("`)
	f(`a >`, ErrMissingValue, `query:1:4: expected a value after ">", found end of query`)
	f(`a > (b)`, ErrUnexpected, `query:1:5: expected a value after ">", found "("`)
	f(strings.Repeat("(", MaxDepth+1)+"a"+strings.Repeat(")", MaxDepth+1), ErrTooDeep, `query:1:257: query nested deeper than 256 levels`)
}

// TestParse_EmbeddedPosition checks that a query inside a YAML file reports
// the rule file's line and column.
func TestParse_EmbeddedPosition(t *testing.T) {
	src := pos.NewEmbeddedSource("rules/x.yaml", "a:b and\nc:(d or )", 7, 10, 4)
	_, err := Parse(src)
	if err == nil || err.Error() != `rules/x.yaml:8:13: expected a value after "or", found ")"` {
		t.Fatalf("got %v", err)
	}
	if p := pos.Pretty(err); !strings.Contains(p, "c:(d or )\n            ^") {
		t.Fatalf("pretty:\n%s", p)
	}
}

func checkRoundTrip(t *testing.T, query string, e Expr) {
	t.Helper()
	s := String(e)
	e2, err := ParseString(s)
	if err != nil {
		t.Fatalf("round trip of %q: canonical %q does not parse: %v", query, s, err)
	}
	if s2 := String(e2); s2 != s {
		t.Fatalf("round trip of %q: %q reprints as %q", query, s, s2)
	}
}

// anchorQueries returns the KQL queries of the shared Elastic rules, which
// live in /work/shared (../shared from the repository root), or nil.
func anchorQueries(t testing.TB) map[string]string {
	root := repoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "..", "shared", "anchors", "elastic-rules", "*.toml"))
	hist, _ := filepath.Glob(filepath.Join(root, "..", "shared", "anchors", "elastic-rules", "history", "*.toml"))
	out := map[string]string{}
	for _, name := range append(files, hist...) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !strings.Contains(s, `language = "kuery"`) {
			continue
		}
		_, rest, ok := strings.Cut(s, "\nquery = '''\n")
		if !ok {
			continue
		}
		q, _, _ := strings.Cut(rest, "'''")
		out[filepath.Base(name)] = q
	}
	return out
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// TestParse_ElasticRules parses every kuery query of the shared Elastic
// rules (the TOML is read properly by kqleval's test; a literal cut is
// enough here, where only the parser is under test).
func TestParse_ElasticRules(t *testing.T) {
	qs := anchorQueries(t)
	if len(qs) == 0 {
		t.Fatal("shared Elastic rules not found next to the repository: the tests need ../shared")
	}
	for name, q := range qs {
		e, err := Parse(pos.NewSource(name, q))
		if err != nil {
			t.Errorf("%s: %s", name, pos.Pretty(err))
			continue
		}
		checkRoundTrip(t, name, e)
	}
}
