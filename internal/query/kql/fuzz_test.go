package kql

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/pos"
)

// conformanceQueries returns the queries of kqleval's conformance files
// (lines "query: ..."), the seed corpus shared by parser and evaluator.
func conformanceQueries(t testing.TB) []string {
	files, _ := filepath.Glob(filepath.Join("..", "..", "eval", "kqleval", "testdata", "*.kqltest"))
	var out []string
	for _, name := range files {
		fh, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if q, ok := strings.CutPrefix(sc.Text(), "query: "); ok {
				out = append(out, q)
			}
		}
		fh.Close()
	}
	return out
}

// FuzzParse checks that Parse never panics, that errors are positioned
// *pos.Errors with a category, and that canonical text round-trips.
func FuzzParse(f *testing.F) {
	for _, q := range conformanceQueries(f) {
		f.Add(q)
	}
	for _, q := range anchorQueries(f) {
		f.Add(q)
	}
	for _, q := range []string{
		`a or b and not c`, `x:(a or b and not *)`, `x:"a\"b"`, `x:\u0041*\*`, `p:{a:b}`, `a >= 10`,
		`cannot x`, `\not`, `a or`, `x:\or b`, "x:a\u00a0or b", `x:\ud83d\ude00`, `((a))`, `"`, `\`,
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		e, err := Parse(pos.NewSource("fuzz", query))
		if err != nil {
			var pe *pos.Error
			if !errors.As(err, &pe) {
				t.Fatalf("%q: error %T is not a *pos.Error", query, err)
			}
			if errors.Is(err, ErrInternal) {
				t.Fatalf("%q: %v", query, err)
			}
			if pe.Span.Start < 0 || pe.Span.Start > len(query) || pe.Span.End > len(query) {
				t.Fatalf("%q: error span %v out of range", query, pe.Span)
			}
			_ = pos.Pretty(err)
			return
		}
		s := String(e)
		e2, err := ParseString(s)
		if err != nil {
			t.Fatalf("%q: canonical %q does not parse: %v", query, s, err)
		}
		if s2 := String(e2); s2 != s {
			t.Fatalf("%q: canonical %q reprints as %q", query, s, s2)
		}
		Walk(e, func(x Expr) bool {
			if sp := x.Span(); sp.Start < 0 || sp.End > len(query) || sp.Start > sp.End {
				t.Fatalf("%q: span %v of %T out of range", query, sp, x)
			}
			return true
		})
	})
}
