package esql

import (
	"strings"
	"testing"
)

// TestWalk checks that Walk visits every subexpression once, in source
// order, and that returning false prunes a subtree.
func TestWalk(t *testing.T) {
	q := MustParse(`from x | where not (a == 1 or -b > c::long) and d in (e, "k") and f like "*x" and g is null and h(i, j)`)
	cond := q.Commands[1].(*WhereCmd).Cond
	var names []string
	Walk(cond, func(e Expr) bool {
		if f, ok := e.(*FieldExpr); ok {
			names = append(names, f.Name)
		}
		return true
	})
	if got := strings.Join(names, ","); got != "a,b,c,d,e,f,g,i,j" {
		t.Fatalf("fields %s", got)
	}
	n := 0
	Walk(cond, func(e Expr) bool {
		n++
		_, isNot := e.(*NotExpr)
		return !isNot
	})
	// 4 ANDs, NOT (its subtree pruned), IN d e "k", LIKE f, IS NULL g,
	// h(i, j).
	if n != 4+1+4+2+2+3 {
		t.Fatalf("visited %d nodes with NOT pruned, want 16", n)
	}
	if got := len(Fields(cond)); got != 9 {
		t.Fatalf("Fields: %d", got)
	}
	Walk(nil, func(Expr) bool { t.Fatal("visited nil"); return true })
}

// TestWalkCmd checks the expressions WalkCmd visits in each command.
func TestWalkCmd(t *testing.T) {
	q := MustParse(`from x | eval a = b + 1, c = d | grok e "%{WORD:w}" | dissect f "%{k}" | sort g desc, h | stats n = count(i) where j > 0 by k | keep l | rename m as o | mv_expand p | drop q | limit 1`)
	var names []string
	for _, c := range q.Commands {
		WalkCmd(c, func(e Expr) bool {
			if f, ok := e.(*FieldExpr); ok {
				names = append(names, f.Name)
			}
			return true
		})
	}
	if got := strings.Join(names, ","); got != "b,d,e,f,g,h,i,j,k" {
		t.Fatalf("fields %s", got)
	}
}
