package esqleval

import (
	"slices"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// rcol is a column of the rest of the query. src is the index of the
// prefix output column it carries unchanged, or -1 for a computed column.
type rcol struct {
	name string
	src  int
	typ  typ
	line *Column
}

// restOp is one command of the rest, run over all rows of a window. When
// c.prov is set it holds each row's evidence, and the op keeps it in step
// with the rows it returns (an op that neither drops, reorders nor adds
// rows leaves it alone).
type restOp func(c *ctx, rows []Row) ([]Row, error)

// cutProv cuts the evidence to the first n rows.
func (c *ctx) cutProv(n int) {
	if c.prov != nil && len(c.prov) > n {
		c.prov = c.prov[:n]
	}
}

// project returns an op that maps each row to the given input positions.
func project(idx []int) restOp {
	return func(_ *ctx, rows []Row) ([]Row, error) {
		for r, row := range rows {
			out := make(Row, len(idx))
			for k, j := range idx {
				out[k] = row[j]
			}
			rows[r] = out
		}
		return rows, nil
	}
}

func (cp *compiler) rsNames() []string {
	out := make([]string, len(cp.rs))
	for i, c := range cp.rs {
		out[i] = c.name
	}
	return out
}

// appendCols extends the rest schema with computed columns and returns the
// positions of the resulting columns once earlier columns of the same names
// are dropped.
func (cp *compiler) appendCols(names []string, types []typ, lines []*Column) []int {
	for i, n := range names {
		cp.rs = append(cp.rs, rcol{name: n, src: -1, typ: types[i], line: lines[i]})
	}
	var idx []int
	var cols []rcol
	for i, c := range cp.rs {
		shadowed := false
		for _, d := range cp.rs[i+1:] {
			if d.name == c.name {
				shadowed = true
				break
			}
		}
		if !shadowed {
			idx = append(idx, i)
			cols = append(cols, c)
		}
	}
	cp.rs = cols
	return idx
}

func (cp *compiler) compileRestCmd(cmd esql.Cmd) {
	p := cp.p
	switch c := cmd.(type) {
	case *esql.WhereCmd:
		cond, ok := cp.operand(c.Cond)
		if !ok {
			return
		}
		t := cp.newTmp()
		p.rest = append(p.rest, func(cx *ctx, rows []Row) ([]Row, error) {
			out, prov := rows[:0], cx.prov[:0]
			for r, row := range rows {
				cx.cols = row
				if v, known := truth(evalTmp(cx, &cond, t)); known && v {
					out = append(out, row)
					if cx.prov != nil {
						prov = append(prov, cx.prov[r])
					}
				}
			}
			if cx.prov != nil {
				cx.prov = prov
			}
			return out, nil
		})
	case *esql.EvalCmd:
		width := len(cp.rs)
		var exprs []cexpr
		var names []string
		var types []typ
		var lines []*Column
		for _, a := range c.Fields {
			e, ok := cp.operand(a.X)
			if !ok {
				cp.rs = cp.rs[:width]
				return
			}
			line := cp.define(c, &Column{Name: a.Name, Origin: OriginEval, Type: typeName(e.typ), Expr: a.X})
			exprs = append(exprs, e)
			names = append(names, a.Name)
			types = append(types, e.typ)
			lines = append(lines, line)
			// Later assignments of the same EVAL see earlier ones.
			cp.rs = append(cp.rs, rcol{name: a.Name, src: -1, typ: e.typ, line: line})
		}
		cp.rs = cp.rs[:width]
		idx := cp.appendCols(names, types, lines)
		proj := project(idx)
		p.rest = append(p.rest, func(cx *ctx, rows []Row) ([]Row, error) {
			for r, row := range rows {
				wide := make(Row, width+len(exprs))
				copy(wide, row)
				cx.cols = wide
				for k := range exprs {
					wide[width+k] = exprs[k].fn(cx, nil)
				}
				rows[r] = wide
			}
			return proj(cx, rows)
		})
	case *esql.GrokCmd, *esql.DissectCmd:
		x, ex, names, types := cp.extractor(cmd)
		if ex == nil {
			return
		}
		width := len(cp.rs)
		idx := cp.appendCols(names, types, cp.extracted(cmd, names, types))
		proj := project(idx)
		t := cp.newTmp()
		p.rest = append(p.rest, func(cx *ctx, rows []Row) ([]Row, error) {
			for r, row := range rows {
				wide := make(Row, width+len(names))
				copy(wide, row)
				cx.cols = row
				if v, ok := single(evalTmp(cx, &x, t)); ok && v.Kind == event.KindString {
					ex(v.S, func(i int, val event.Value) { wide[width+i] = append(wide[width+i], val) })
				}
				rows[r] = wide
			}
			return proj(cx, rows)
		})
	case *esql.StatsCmd:
		plan := cp.compileStats(c)
		if plan == nil {
			return
		}
		p.rest = append(p.rest, func(cx *ctx, rows []Row) ([]Row, error) {
			t := newAggTable(plan, p)
			for r, row := range rows {
				cx.cols = row
				if cx.prov != nil {
					t.seq++
					t.from = cx.prov[r]
				}
				if err := t.add(cx); err != nil {
					return nil, err
				}
			}
			out, evs := t.rows()
			if cx.prov != nil {
				cx.prov = evs
			}
			return out, nil
		})
	case *esql.KeepCmd:
		names := cp.rsNames()
		for _, np := range c.Patterns {
			if !np.HasWildcard() && !contains(names, np.Pattern) {
				cp.errorf(np.Loc, ErrUnknownColumn, "unknown column %s", np.String())
				return
			}
		}
		idx := keepOrder(names, c.Patterns)
		cols := make([]rcol, len(idx))
		for k, j := range idx {
			cols[k] = cp.rs[j]
		}
		cp.rs = cols
		p.rest = append(p.rest, project(idx))
	case *esql.DropCmd:
		names := cp.rsNames()
		for _, np := range c.Patterns {
			if !np.HasWildcard() && !contains(names, np.Pattern) {
				cp.errorf(np.Loc, ErrUnknownColumn, "unknown column %s", np.String())
				return
			}
		}
		var idx []int
		var cols []rcol
		for j, n := range names {
			if !matchesAny(n, c.Patterns) {
				idx = append(idx, j)
				cols = append(cols, cp.rs[j])
			}
		}
		cp.rs = cols
		p.rest = append(p.rest, project(idx))
	case *esql.RenameCmd:
		idx := make([]int, len(cp.rs))
		for j := range idx {
			idx[j] = j
		}
		for _, pr := range c.Pairs {
			i := -1
			for j, col := range cp.rs {
				if col.name == pr.Old.Name {
					i = j
				}
			}
			if i < 0 {
				cp.errorf(pr.Old.Loc, ErrUnknownColumn, "unknown column %s", pr.Old.String())
				return
			}
			cp.rs[i].name = pr.New.Name
			cp.rs[i].line = cp.define(c, &Column{Name: pr.New.Name, Origin: OriginRename, Type: typeName(cp.rs[i].typ), Of: cp.rs[i].line})
			for j := range cp.rs {
				if j != i && cp.rs[j].name == pr.New.Name {
					cp.rs = append(cp.rs[:j], cp.rs[j+1:]...)
					idx = append(idx[:j], idx[j+1:]...)
					break
				}
			}
		}
		p.rest = append(p.rest, project(slices.Clone(idx)))
	case *esql.SortCmd:
		p.rest = append(p.rest, cp.compileSort(c))
	case *esql.LimitCmd:
		n := c.N
		p.rest = append(p.rest, func(cx *ctx, rows []Row) ([]Row, error) {
			if int64(len(rows)) > n {
				rows = rows[:n]
				cx.cutProv(len(rows))
			}
			return rows, nil
		})
	case *esql.MvExpandCmd:
		pos := -1
		for j, col := range cp.rs {
			if col.name == c.Field.Name {
				pos = j
			}
		}
		if pos < 0 {
			cp.errorf(c.Field.Loc, ErrUnknownColumn, "unknown column %s", c.Field.String())
			return
		}
		cp.markUsed(cp.rs[pos])
		cp.rs[pos].src = -1
		cp.rs[pos].line = cp.define(c, &Column{Name: c.Field.Name, Origin: OriginExpand, Type: typeName(cp.rs[pos].typ), Of: cp.rs[pos].line})
		p.rest = append(p.rest, func(cx *ctx, rows []Row) ([]Row, error) {
			var out []Row
			var prov []*evidence
			for i, row := range rows {
				vals := row[pos]
				n := max(len(vals), 1)
				if cx.prov != nil {
					for range n {
						prov = append(prov, cx.prov[i])
					}
				}
				if n == 1 {
					out = append(out, row)
					continue
				}
				for k := range vals {
					r := slices.Clone(row)
					r[pos] = vals[k : k+1 : k+1]
					out = append(out, r)
				}
			}
			if cx.prov != nil {
				cx.prov = prov
			}
			return out, nil
		})
	default:
		cp.errorf(cmd.Span(), ErrInvalid, "command %s is not supported here", cmd.Name())
	}
}

// compileSort compiles SORT. Multi-valued keys sort by their smallest value
// ascending and their largest descending, as in ES|QL; nulls go last
// ascending and first descending unless NULLS says otherwise.
func (cp *compiler) compileSort(c *esql.SortCmd) restOp {
	type key struct {
		e          cexpr
		desc       bool
		nullsFirst bool
	}
	var keys []key
	for _, k := range c.Keys {
		e, ok := cp.operand(k.X)
		if !ok {
			return nil
		}
		keys = append(keys, key{e: e, desc: k.Desc, nullsFirst: k.NullsFirst()})
	}
	return func(cx *ctx, rows []Row) ([]Row, error) {
		type sortRow struct {
			row  Row
			ev   *evidence
			vals []event.Value // one per key; KindNull for null
		}
		srs := make([]sortRow, len(rows))
		for r, row := range rows {
			cx.cols = row
			srs[r] = sortRow{row: row, vals: make([]event.Value, len(keys))}
			if cx.prov != nil {
				srs[r].ev = cx.prov[r]
			}
			for k := range keys {
				vs := keys[k].e.fn(cx, nil)
				if len(vs) == 0 {
					continue
				}
				best := vs[0]
				for _, v := range vs[1:] {
					if n := totalOrder(v, best); (n < 0) != keys[k].desc && n != 0 {
						best = v
					}
				}
				srs[r].vals[k] = best
			}
		}
		slices.SortStableFunc(srs, func(a, b sortRow) int {
			for k, key := range keys {
				x, y := a.vals[k], b.vals[k]
				xn, yn := x.Kind == event.KindNull, y.Kind == event.KindNull
				switch {
				case xn && yn:
					continue
				case xn:
					if key.nullsFirst {
						return -1
					}
					return 1
				case yn:
					if key.nullsFirst {
						return 1
					}
					return -1
				}
				n := totalOrder(x, y)
				if key.desc {
					n = -n
				}
				if n != 0 {
					return n
				}
			}
			return 0
		})
		for r := range srs {
			rows[r] = srs[r].row
			if cx.prov != nil {
				cx.prov[r] = srs[r].ev
			}
		}
		return rows, nil
	}
}
