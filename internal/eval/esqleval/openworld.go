package esqleval

import (
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// openRestFields adds to the (still open) prefix schema the event fields
// that the start of the rest reads: the commands up to and including the
// first one that changes the columns (STATS, EVAL, ...). Those read the
// prefix's output rows, so an event field they name must be carried there
// even though no prefix command mentions it.
func (cp *compiler) openRestFields(rest []esql.Cmd) {
	if !cp.ps.open {
		return
	}
	add := func(f *esql.FieldExpr) {
		for _, c := range cp.ps.cols {
			if c.name == f.Name {
				return
			}
		}
		if !cp.ps.removed[f.Name] {
			// Errors (an object name) are reported when the rest resolves it.
			var probe compiler
			probe.src = cp.src
			cp.ps.find(&probe, f.Name, f.Loc)
		}
	}
	for _, c := range rest {
		esql.WalkCmd(c, func(e esql.Expr) bool {
			if f, ok := e.(*esql.FieldExpr); ok {
				add(f)
			}
			return true
		})
		switch c := c.(type) {
		case *esql.SortCmd, *esql.LimitCmd, *esql.WhereCmd:
			continue
		case *esql.MvExpandCmd:
			add(&esql.FieldExpr{Name: c.Field.Name, Loc: c.Field.Loc})
			continue
		case *esql.KeepCmd:
			for _, np := range c.Patterns {
				if !np.HasWildcard() {
					add(&esql.FieldExpr{Name: np.Pattern, Loc: np.Loc})
				}
			}
		case *esql.RenameCmd:
			for _, pr := range c.Pairs {
				add(&esql.FieldExpr{Name: pr.Old.Name, Loc: pr.Old.Loc})
			}
		}
		return
	}
}
