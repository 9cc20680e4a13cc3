package esqleval

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/wildcard"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// pcol is a column of the per-event prefix: an event field (loaded lazily
// into its slot) or a computed column.
type pcol struct {
	name    string
	slot    int // -1 until an event column is first read
	isEvent bool
	field   event.Field
	typ     typ
	line    *Column // nil until first needed for a column of FROM (lineOf)
}

// pschema is the prefix's column list. While open, any field name not yet
// seen is an event column (the index mapping is open-ended: annotation keys
// and raw request/response paths); KEEP closes it. removed holds names that
// DROP or RENAME took away, so they are not resurrected.
type pschema struct {
	cols    []pcol
	open    bool
	removed map[string]bool
}

func typeOfField(t event.Type) typ {
	switch t {
	case event.TypeKeyword, event.TypeConstantKeyword, event.TypeText:
		return tyString
	case event.TypeLong:
		return tyLong
	case event.TypeDate:
		return tyDate
	case event.TypeBoolean:
		return tyBool
	case event.TypeIP:
		return tyIP
	}
	return tyAny
}

// initialSchema holds every typed field of the event schema, in name order,
// then the METADATA columns.
func initialSchema(from *esql.FromCmd) pschema {
	s := pschema{open: true, removed: map[string]bool{}}
	for _, f := range event.Schema() {
		if f.Type == event.TypeObject {
			continue
		}
		s.cols = append(s.cols, pcol{name: f.Name, slot: -1, isEvent: true, field: f, typ: typeOfField(f.Type)})
	}
	for _, m := range from.Metadata {
		s.cols = append(s.cols, pcol{name: m.Name, slot: -1, typ: tyAny})
	}
	return s
}

// find returns the index of the column named name, adding an event column
// when the schema is open.
func (s *pschema) find(cp *compiler, name string, loc pos.Span) (int, bool) {
	for i := len(s.cols) - 1; i >= 0; i-- {
		if s.cols[i].name == name {
			return i, true
		}
	}
	if !s.open || s.removed[name] {
		cp.errorf(loc, ErrUnknownColumn, "unknown column %s", esqlName(name))
		return 0, false
	}
	f := event.Lookup(name)
	if f.Type == event.TypeObject {
		cp.errorf(loc, ErrType, "%s is an object, not a column", esqlName(name))
		return 0, false
	}
	s.cols = append(s.cols, pcol{name: name, slot: -1, isEvent: true, field: f, typ: typeOfField(f.Type)})
	return len(s.cols) - 1, true
}

// set makes name a computed column in slot, replacing any column of that
// name; a new column goes to the end, as EVAL, GROK and DISSECT add them.
func (s *pschema) set(name string, slot int, t typ, line *Column) {
	for i := range s.cols {
		if s.cols[i].name == name {
			s.cols = append(s.cols[:i], s.cols[i+1:]...)
			break
		}
	}
	s.cols = append(s.cols, pcol{name: name, slot: slot, typ: t, line: line})
}

// prefixOp is one runtime step of the per-event prefix. KEEP, DROP and
// RENAME have no runtime step: they only change the schema.
type prefixOp struct {
	// run applies a one-row step; false drops the row.
	run func(c *ctx) bool
	// expand, when run is nil, is MV_EXPAND: one row per value of slot
	// expand, written to slot expandOut.
	expand, expandOut int
}

func (cp *compiler) compilePrefixCmd(cmd esql.Cmd) {
	p := cp.p
	switch c := cmd.(type) {
	case *esql.WhereCmd:
		cond, ok := cp.operand(c.Cond)
		if !ok {
			return
		}
		t := cp.newTmp()
		p.prefix = append(p.prefix, prefixOp{run: func(c *ctx) bool {
			v, known := truth(evalTmp(c, &cond, t))
			return known && v
		}})
	case *esql.EvalCmd:
		for _, a := range c.Fields {
			e, ok := cp.operand(a.X)
			if !ok {
				continue
			}
			slot := cp.newSlot(false, event.Field{})
			cp.ps.set(a.Name, slot, e.typ, cp.define(c, &Column{Name: a.Name, Origin: OriginEval, Type: typeName(e.typ), Expr: a.X}))
			p.prefix = append(p.prefix, prefixOp{run: func(c *ctx) bool {
				c.cols[slot] = e.fn(c, c.cols[slot][:0])
				return true
			}})
		}
	case *esql.GrokCmd, *esql.DissectCmd:
		x, ex, names, types := cp.extractor(cmd)
		if ex == nil {
			return
		}
		slots := make([]int, len(names))
		lines := cp.extracted(cmd, names, types)
		for i, n := range names {
			slots[i] = cp.newSlot(false, event.Field{})
			cp.ps.set(n, slots[i], types[i], lines[i])
		}
		t := cp.newTmp()
		p.prefix = append(p.prefix, prefixOp{run: func(c *ctx) bool {
			for _, s := range slots {
				c.cols[s] = c.cols[s][:0]
			}
			v, ok := single(evalTmp(c, &x, t))
			if ok && v.Kind == event.KindString {
				ex(v.S, func(i int, val event.Value) { c.cols[slots[i]] = append(c.cols[slots[i]], val) })
			}
			return true
		}})
	case *esql.MvExpandCmd:
		i, ok := cp.ps.find(cp, c.Field.Name, c.Field.Loc)
		if !ok {
			return
		}
		col := &cp.ps.cols[i]
		src := cp.slotOf(col)
		of := cp.lineOf(col)
		out := cp.newSlot(false, event.Field{})
		col.slot, col.isEvent = out, false
		col.line = cp.define(c, &Column{Name: col.name, Origin: OriginExpand, Type: typeName(col.typ), Of: of})
		p.prefix = append(p.prefix, prefixOp{expand: src, expandOut: out})
	case *esql.KeepCmd:
		names := cp.ps.names()
		for _, np := range c.Patterns {
			if !np.HasWildcard() && !contains(names, np.Pattern) {
				if _, ok := cp.ps.find(cp, np.Pattern, np.Loc); !ok {
					return
				}
				names = cp.ps.names()
			}
		}
		order := keepOrder(names, c.Patterns)
		cols := make([]pcol, len(order))
		for k, j := range order {
			cols[k] = cp.ps.cols[j]
		}
		cp.ps.cols = cols
		cp.ps.open = false
	case *esql.DropCmd:
		var keep []pcol
		for _, col := range cp.ps.cols {
			if !matchesAny(col.name, c.Patterns) {
				keep = append(keep, col)
			}
		}
		for _, np := range c.Patterns {
			if !np.HasWildcard() {
				if !cp.ps.open && !contains(cp.ps.names(), np.Pattern) {
					cp.errorf(np.Loc, ErrUnknownColumn, "unknown column %s", np.String())
					return
				}
				cp.ps.removed[np.Pattern] = true
			}
		}
		cp.ps.cols = keep
	case *esql.RenameCmd:
		for _, pr := range c.Pairs {
			i, ok := cp.ps.find(cp, pr.Old.Name, pr.Old.Loc)
			if !ok {
				return
			}
			if pr.Old.Name == pr.New.Name {
				continue
			}
			of := cp.lineOf(&cp.ps.cols[i])
			col := cp.ps.cols[i]
			col.name = pr.New.Name
			col.line = cp.define(c, &Column{Name: pr.New.Name, Origin: OriginRename, Type: typeName(col.typ), Of: of})
			cp.ps.cols[i] = col
			for j := range cp.ps.cols {
				if j != i && cp.ps.cols[j].name == pr.New.Name {
					cp.ps.cols = append(cp.ps.cols[:j], cp.ps.cols[j+1:]...)
					break
				}
			}
			cp.ps.removed[pr.Old.Name] = true
			delete(cp.ps.removed, pr.New.Name)
		}
	default:
		cp.errorf(cmd.Span(), ErrInvalid, "command %s is not supported here", cmd.Name())
	}
}

func (s *pschema) names() []string {
	out := make([]string, len(s.cols))
	for i, c := range s.cols {
		out[i] = c.name
	}
	return out
}

func contains(names []string, n string) bool {
	for _, m := range names {
		if m == n {
			return true
		}
	}
	return false
}

// globMatch matches name against a KEEP or DROP name pattern, where "*"
// matches any run of characters.
func globMatch(pattern, name string) bool {
	p := wildcard.Parts(strings.Split(pattern, "*"))
	return p.Match(name)
}

func matchesAny(name string, pats []esql.NamePattern) bool {
	for _, np := range pats {
		if globMatch(np.Pattern, name) {
			return true
		}
	}
	return false
}

// keepOrder returns the indices of the columns KEEP keeps, in output order.
// Each column goes to its most specific matching pattern (exact name, then
// partial wildcard, then "*"; the rightmost on ties); columns are output in
// pattern order, and in input order within a pattern.
func keepOrder(names []string, pats []esql.NamePattern) []int {
	rank := func(np esql.NamePattern) int {
		switch {
		case !np.HasWildcard():
			return 3
		case np.Pattern == "*":
			return 1
		}
		return 2
	}
	owner := make([]int, len(names))
	for j, n := range names {
		owner[j] = -1
		best := 0
		for i, np := range pats {
			if globMatch(np.Pattern, n) && rank(np) >= best {
				owner[j], best = i, rank(np)
			}
		}
	}
	var out []int
	for i := range pats {
		for j := range names {
			if owner[j] == i {
				out = append(out, j)
			}
		}
	}
	return out
}
