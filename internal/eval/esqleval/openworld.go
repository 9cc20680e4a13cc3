package esqleval

import (
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// walkExpr calls fn for every field reference in e.
func walkExpr(e esql.Expr, fn func(*esql.FieldExpr)) {
	switch e := e.(type) {
	case *esql.FieldExpr:
		fn(e)
	case *esql.CallExpr:
		for _, a := range e.Args {
			walkExpr(a, fn)
		}
	case *esql.UnaryExpr:
		walkExpr(e.X, fn)
	case *esql.NotExpr:
		walkExpr(e.X, fn)
	case *esql.BinaryExpr:
		walkExpr(e.X, fn)
		walkExpr(e.Y, fn)
	case *esql.InExpr:
		walkExpr(e.X, fn)
		for _, a := range e.List {
			walkExpr(a, fn)
		}
	case *esql.LikeExpr:
		walkExpr(e.X, fn)
	case *esql.IsNullExpr:
		walkExpr(e.X, fn)
	case *esql.CastExpr:
		walkExpr(e.X, fn)
	}
}

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
		switch c := c.(type) {
		case *esql.SortCmd:
			for _, k := range c.Keys {
				walkExpr(k.X, add)
			}
			continue
		case *esql.LimitCmd:
			continue
		case *esql.WhereCmd:
			walkExpr(c.Cond, add)
			continue
		case *esql.MvExpandCmd:
			add(&esql.FieldExpr{Name: c.Field.Name, Loc: c.Field.Loc})
			continue
		case *esql.StatsCmd:
			for _, a := range c.Aggs {
				walkExpr(a.X, add)
				if a.Where != nil {
					walkExpr(a.Where, add)
				}
			}
			for _, g := range c.By {
				walkExpr(g.X, add)
			}
		case *esql.EvalCmd:
			for _, a := range c.Fields {
				walkExpr(a.X, add)
			}
		case *esql.GrokCmd:
			walkExpr(c.X, add)
		case *esql.DissectCmd:
			walkExpr(c.X, add)
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
