package esql

import (
	"errors"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/pos"
)

// successCases are queries and their canonical forms; they also seed the
// fuzzer.
var successCases = []struct{ in, want string }{
	{`from logs-*`, `FROM logs-*`},
	{`FROM a, "b c" metadata _id, _index`, `FROM a, "b c" METADATA _id, _index`},
	{`from x | where a == 1 and b != "x" or not c`, "FROM x\n| WHERE a == 1 AND b != \"x\" OR NOT c"},
	{`from x | where a and (b or c)`, "FROM x\n| WHERE a AND (b OR c)"},
	{`from x | where (a and b) or c`, "FROM x\n| WHERE a AND b OR c"},
	{`from x | where not a and b`, "FROM x\n| WHERE NOT a AND b"},
	{`from x | where not (a and b)`, "FROM x\n| WHERE NOT (a AND b)"},
	{`from x | where not a in (1, 2)`, "FROM x\n| WHERE NOT a IN (1, 2)"},
	{`from x | where a not in (1, 2)`, "FROM x\n| WHERE a NOT IN (1, 2)"},
	{`from x | where a not like "x*" and b rlike """.*\d+.*"""`, "FROM x\n| WHERE a NOT LIKE \"x*\" AND b RLIKE \"\"\".*\\d+.*\"\"\""},
	{`from x | where a is null or b is not NULL`, "FROM x\n| WHERE a IS NULL OR b IS NOT NULL"},
	{`from x | eval y = 1 + 2 * 3, z = (1 + 2) * 3, w = -a - -1`, "FROM x\n| EVAL y = 1 + 2 * 3, z = (1 + 2) * 3, w = -a - -1"},
	{`from x | eval y = a - (b - c), z = a / b % c`, "FROM x\n| EVAL y = a - (b - c), z = a / b % c"},
	{`from x | eval a + 1`, "FROM x\n| EVAL `a + 1` = a + 1"},
	{"from x | eval y = `kubernetes.audit.annotations.authorization_k8s_io/decision`",
		"FROM x\n| EVAL y = `kubernetes.audit.annotations.authorization_k8s_io/decision`"},
	{"from x | eval y = `a`.b.`c`", "FROM x\n| EVAL y = a.b.c"},
	{"from x | eval `a``b` = 1", "FROM x\n| EVAL `a``b` = 1"},
	{`from x | eval y = @timestamp, z = _id`, "FROM x\n| EVAL y = @timestamp, z = _id"},
	{`from x | eval t = date_trunc(1 minute, @timestamp), u = now() - 9 minutes, v = 2 h`,
		"FROM x\n| EVAL t = DATE_TRUNC(1 minute, @timestamp), u = NOW() - 9 minutes, v = 2 hours"},
	{`from x | eval s = "a\tb\"c\\", t = """raw "x" \d"""`, "FROM x\n| EVAL s = \"a\\tb\\\"c\\\\\", t = \"\"\"raw \"x\" \\d\"\"\""},
	{`from x | eval n = 1.5, m = .5, e = 1e3, f = 100.0, big = 9223372036854775808`,
		"FROM x\n| EVAL n = 1.5, m = 0.5, e = 1000.0, f = 100.0, big = 9.223372036854776e+18"},
	{`from x | eval b = true, c = FALSE, d = null`, "FROM x\n| EVAL b = true, c = false, d = null"},
	{`from x | eval c = x::keyword, d = (a + b)::long, e = -x::double`, "FROM x\n| EVAL c = x::keyword, d = (a + b)::long, e = -x::double"},
	{`from x | eval c = (a == b) == (c < d)`, "FROM x\n| EVAL c = (a == b) == (c < d)"},
	{`from x | eval c = (a is null) is null`, "FROM x\n| EVAL c = (a IS NULL) IS NULL"},
	{`from x | stats count(*), n = count(), c = count_distinct(a, 100) where a > 1 by b, g = c + 1`,
		"FROM x\n| STATS `count(*)` = COUNT(*), n = COUNT(), c = COUNT_DISTINCT(a, 100) WHERE a > 1 BY b, g = c + 1"},
	{`from x | stats by a`, "FROM x\n| STATS BY a"},
	{`from x | keep Esql.*, a, *, ` + "`b/c`" + `, a*b | drop *_x`, "FROM x\n| KEEP Esql.*, a, *, `b/c`, a*b\n| DROP *_x"},
	{`from x | rename a as b, c.d AS e | rename f = g`, "FROM x\n| RENAME a AS b, c.d AS e\n| RENAME g AS f"},
	{`from x | sort a, b desc, c asc nulls first, d desc nulls last | limit 10`,
		"FROM x\n| SORT a, b DESC, c NULLS FIRST, d DESC NULLS LAST\n| LIMIT 10"},
	{`from x | mv_expand a.b`, "FROM x\n| MV_EXPAND a.b"},
	{`from x | grok msg "%{IP:ip} %{WORD:w}" | dissect msg "%{a} %{b}" append_separator = "-"`,
		"FROM x\n| GROK msg \"%{IP:ip} %{WORD:w}\"\n| DISSECT msg \"%{a} %{b}\" APPEND_SEPARATOR = \"-\""},
	{"from x // comment\n| /* block /* nested */ */ where a == 1 // end", "FROM x\n| WHERE a == 1"},
	{`from x | where KQL(""" a:"b" """)`, "FROM x\n| WHERE KQL(\"\"\" a:\"b\" \"\"\")"},
	{`from x | where a in ("x", b + 1, null)`, "FROM x\n| WHERE a IN (\"x\", b + 1, null)"},
	{`from x | where case(a == 1, "x", b, "y", "z") == "x"`, "FROM x\n| WHERE CASE(a == 1, \"x\", b, \"y\", \"z\") == \"x\""},
}

func TestParseSuccess(t *testing.T) {
	for _, tc := range successCases {
		q, err := ParseString(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		got := q.String()
		if got != tc.want {
			t.Errorf("Parse(%q)\ngot  %q\nwant %q", tc.in, got, tc.want)
			continue
		}
		q2, err := ParseString(got)
		if err != nil {
			t.Errorf("reparse of %q: %v", got, err)
			continue
		}
		if q2.String() != got {
			t.Errorf("round trip of %q gives %q", got, q2.String())
		}
	}
}

func TestParseErrors(t *testing.T) {
	f := func(in, want string, code error) {
		t.Helper()
		_, err := Parse(pos.NewSource("q.esql", in))
		if err == nil {
			t.Fatalf("Parse(%q): no error, want %q", in, want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Parse(%q):\ngot  %q\nwant %q", in, err.Error(), want)
		}
		if !errors.Is(err, code) {
			t.Fatalf("Parse(%q): error %q is not %v", in, err, code)
		}
		var pe *pos.Error
		if !errors.As(err, &pe) {
			t.Fatalf("Parse(%q): error is not positioned", in)
		}
	}
	f(`from x | stats count(a))`, `q.esql:1:24: cannot parse STATS command: unexpected ")", expected "|" or end of query`, ErrSyntax)
	f(`from x | stats a = `, `q.esql:1:20: cannot parse STATS command: unexpected end of query, expected an expression`, ErrSyntax)
	f(`from x | stats a = count(,)`, `q.esql:1:26: cannot parse STATS command: unexpected ",", expected an expression`, ErrSyntax)
	f(`from x | where a == `, `cannot parse WHERE command: unexpected end of query, expected an expression`, ErrSyntax)
	f(`from x | where a == 1 == 2`, `comparisons do not chain`, ErrSyntax)
	f(`from x | where a == "x`, `q.esql:1:21: cannot parse WHERE command: unterminated string`, ErrLiteral)
	f(`from x | where a == "\q"`, `invalid escape sequence \q`, ErrLiteral)
	f(`from x | where a like b`, `unexpected "b", expected a string pattern`, ErrSyntax)
	f(`from x | where a is not 1`, `unexpected "1", expected NULL`, ErrSyntax)
	f(`from x | where a in 1`, `unexpected "1", expected "(" after IN`, ErrSyntax)
	f(`from x | where a.`, `expected "|" or end of query`, ErrSyntax)
	f(`from x | where ?`, `query parameters are not supported`, ErrUnsupported)
	f(`from x | eval x = 1e999`, `number 1e999 is out of range`, ErrLiteral)
	f(`from x | eval x = y::nope`, `expected a type name`, ErrSyntax)
	f(`from x | frob`, `q.esql:1:10: unknown command "frob"`, ErrSyntax)
	f(`from x | enrich p`, `command ENRICH is not supported`, ErrUnsupported)
	f(`from x | from y`, `a source command can only start the query`, ErrSyntax)
	f(`where a`, `unexpected WHERE, expected FROM`, ErrSyntax)
	f(``, `empty query`, ErrSyntax)
	f(`from x |`, `after "|", expected a command`, ErrSyntax)
	f(`from x | limit a`, `expected a non-negative integer`, ErrSyntax)
	f(`from x | limit 99999999999999999999`, `limit 99999999999999999999 is out of range`, ErrLiteral)
	f(`from x | sort a nulls middle`, `expected FIRST or LAST`, ErrSyntax)
	f(`from x | keep a,`, `expected a column name or pattern`, ErrSyntax)
	f(`from x | keep a, #`, `q.esql:1:18: cannot parse KEEP command: unexpected character "#", expected a column name or pattern`, ErrSyntax)
	f(`from x | rename a b`, `expected AS`, ErrSyntax)
	f(`from x | grok a b`, `expected a grok pattern string`, ErrSyntax)
	f("from x | eval `a = 1", `unterminated quoted identifier`, ErrLiteral)
	f(`from x | stats`, `expected an aggregation or BY`, ErrSyntax)
	f(`from x | where and`, `unexpected "and", expected an expression`, ErrSyntax)
	f(`from x | where a ! b`, `unexpected character "!"`, ErrSyntax)
}

func TestParseCollectsOneErrorPerCommand(t *testing.T) {
	_, err := ParseString("from x | where a == | eval b = ) | keep c")
	var l *pos.ErrorList
	if !errors.As(err, &l) {
		t.Fatalf("want an ErrorList, got %T %v", err, err)
	}
	if len(l.Errs) != 2 {
		t.Fatalf("want 2 errors, got %d: %v", len(l.Errs), err)
	}
	if !strings.HasPrefix(l.Errs[0].Msg, "cannot parse WHERE") || !strings.HasPrefix(l.Errs[1].Msg, "cannot parse EVAL") {
		t.Fatalf("unexpected errors: %v", err)
	}
}

func TestEmbeddedSourcePosition(t *testing.T) {
	// The query starts at line 7, column 10 of a rule file, with continuation
	// lines indented by 4.
	src := pos.NewEmbeddedSource("rules/x.yaml", "from x\n| stats a = count(,)", 7, 10, 4)
	_, err := Parse(src)
	if err == nil || !strings.HasPrefix(err.Error(), "rules/x.yaml:8:23: cannot parse STATS") {
		t.Fatalf("got %v", err)
	}
}

func TestSpans(t *testing.T) {
	text := "from idx | where a.b == \"x\" and `c/d` in (1, 2) | stats n = count(*) by a.b"
	q, err := ParseString(text)
	if err != nil {
		t.Fatal(err)
	}
	span := func(n interface{ Span() pos.Span }) string {
		sp := n.Span()
		return text[sp.Start:sp.End]
	}
	check := func(got, want string) {
		t.Helper()
		if got != want {
			t.Fatalf("span text %q, want %q", got, want)
		}
	}
	check(span(q.Commands[0]), "from idx")
	w := q.Commands[1].(*WhereCmd)
	check(span(w), `where a.b == "x" and `+"`c/d`"+` in (1, 2)`)
	and := w.Cond.(*BinaryExpr)
	check(span(and.X), `a.b == "x"`)
	check(span(and.X.(*BinaryExpr).X), `a.b`)
	check(span(and.Y), "`c/d` in (1, 2)")
	check(span(and.Y.(*InExpr).X), "`c/d`")
	s := q.Commands[2].(*StatsCmd)
	check(span(s), "stats n = count(*) by a.b")
	check(span(s.Aggs[0].X), "count(*)")
	check(text[s.Aggs[0].NameLoc.Start:s.Aggs[0].NameLoc.End], "n")
	check(span(s.Aggs[0].X.(*CallExpr).Args[0]), "*")
	check(span(q), text)
}

func TestImplicitNamesUseSourceText(t *testing.T) {
	q := MustParse("from x | stats count(*), max(a)  by b | eval a+1")
	s := q.Commands[1].(*StatsCmd)
	if s.Aggs[0].Name != "count(*)" || s.Aggs[1].Name != "max(a)" || s.By[0].Name != "b" {
		t.Fatalf("names: %q %q %q", s.Aggs[0].Name, s.Aggs[1].Name, s.By[0].Name)
	}
	if e := q.Commands[2].(*EvalCmd); e.Fields[0].Name != "a+1" {
		t.Fatalf("eval name %q", e.Fields[0].Name)
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range successCases {
		f.Add(tc.in)
	}
	f.Add("from x | where a == \"\\")
	f.Add("from x | keep `")
	f.Add("from x | eval a = 1 ")
	f.Fuzz(func(t *testing.T, text string) {
		q, err := ParseString(text)
		if err != nil {
			if errors.Is(err, ErrParserBug) {
				t.Fatalf("parser bug on %q: %v", text, err)
			}
			return
		}
		s := q.String()
		q2, err := ParseString(s)
		if err != nil {
			t.Fatalf("canonical form of %q does not parse: %q: %v", text, s, err)
		}
		if s2 := q2.String(); s2 != s {
			t.Fatalf("round trip of %q:\n%q\n%q", text, s, s2)
		}
	})
}
