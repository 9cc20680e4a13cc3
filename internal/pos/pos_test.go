package pos

import (
	"errors"
	"strings"
	"testing"
)

func TestPosition(t *testing.T) {
	f := func(src *Source, off int, want string) {
		t.Helper()
		if got := src.Position(off).String(); got != want {
			t.Fatalf("Position(%d) = %s, want %s", off, got, want)
		}
	}
	s := NewSource("q.kql", "a and\nbé or c")
	f(s, 0, "q.kql:1:1")
	f(s, 2, "q.kql:1:3")
	f(s, 6, "q.kql:2:1")
	f(s, 9, "q.kql:2:3") // é is two bytes but one column
	// Embedded: the query starts at line 10 col 12 of the rule file, and
	// continuation lines are indented by 4.
	e := NewEmbeddedSource("r.yaml", "a and\nb", 10, 12, 4)
	f(e, 0, "r.yaml:10:12")
	f(e, 6, "r.yaml:11:5")
}

var errTest = errors.New("test category")

func TestErrorPrettyAndCategory(t *testing.T) {
	s := NewSource("q", "x:(a or )")
	err := Errorf(s, Span{8, 9}, errTest, "unexpected %q, expected a value", ")")
	if !errors.Is(err, errTest) {
		t.Fatal("category lost")
	}
	want := "q:1:9: unexpected \")\", expected a value\n    x:(a or )\n            ^"
	if got := err.Pretty(); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	var l ErrorList
	l.Limit = 2
	l.Add(Errorf(s, Span{5, 6}, errTest, "second"))
	l.Add(Errorf(s, Span{1, 2}, errTest, "first"))
	l.Add(Errorf(s, Span{1, 2}, errTest, "dropped"))
	got := l.Err()
	if got == nil || !errors.Is(got, errTest) {
		t.Fatal("list lost category")
	}
	if !strings.HasPrefix(got.Error(), "q:1:2: first\nq:1:6: second\n(and 1 more") {
		t.Fatalf("bad list: %q", got.Error())
	}
}
