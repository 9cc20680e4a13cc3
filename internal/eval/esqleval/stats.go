package esqleval

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// aggKind names an aggregation function.
type aggKind uint8

const (
	aggCount aggKind = iota + 1
	aggCountStar
	aggCountDistinct
	aggSum
	aggMin
	aggMax
	aggAvg
	aggValues
)

var aggByName = map[string]aggKind{
	"COUNT": aggCount, "COUNT_DISTINCT": aggCountDistinct, "SUM": aggSum, "MIN": aggMin,
	"MAX": aggMax, "AVG": aggAvg, "VALUES": aggValues,
}

// aggPlan is one compiled aggregation of STATS.
type aggPlan struct {
	name      string
	kind      aggKind
	arg       cexpr
	argTmp    int
	where     *cexpr
	whereTmp  int
	precision int // COUNT_DISTINCT
	typ       typ
}

// statsPlan is a compiled STATS command.
type statsPlan struct {
	aggs   []aggPlan
	by     []cexpr
	byTmp  []int
	byName []string
}

func (cp *compiler) compileStats(c *esql.StatsCmd) *statsPlan {
	plan := &statsPlan{}
	ok := true
	for _, a := range c.Aggs {
		ap, good := cp.compileAgg(a)
		if !good {
			ok = false
			continue
		}
		plan.aggs = append(plan.aggs, ap)
	}
	for _, g := range c.By {
		e, good := cp.operand(g.X)
		if !good {
			ok = false
			continue
		}
		plan.by = append(plan.by, e)
		plan.byTmp = append(plan.byTmp, cp.newTmp())
		plan.byName = append(plan.byName, g.Name)
	}
	if !ok {
		return nil
	}
	// The output: aggregations in order, then the groups; a later column
	// of the same name replaces an earlier one.
	var names []string
	var types []typ
	var lines []*Column
	for i, a := range plan.aggs {
		names = append(names, a.name)
		types = append(types, a.typ)
		lines = append(lines, cp.define(c, &Column{Name: a.name, Origin: OriginStats, Type: typeName(a.typ), Expr: c.Aggs[i].X}))
	}
	for i, n := range plan.byName {
		names = append(names, n)
		types = append(types, plan.by[i].typ)
		line := &Column{Name: n, Origin: OriginStats, Type: typeName(plan.by[i].typ), Expr: c.By[i].X}
		if f, ok := c.By[i].X.(*esql.FieldExpr); ok {
			line.Of = cp.p.lineage.refs[f]
		}
		lines = append(lines, cp.define(c, line))
	}
	cp.rs = nil
	cp.appendCols(names, types, lines) // rows() drops duplicates the same way
	return plan
}

func (cp *compiler) compileAgg(a esql.AggField) (aggPlan, bool) {
	call, ok := a.X.(*esql.CallExpr)
	kind := aggByName[strings.ToUpper(nameOf(call))]
	if !ok || kind == 0 {
		cp.errorf(a.X.Span(), ErrInvalid, "STATS needs an aggregation function (COUNT, COUNT_DISTINCT, SUM, MIN, MAX, AVG, VALUES), got %s", a.X.String())
		return aggPlan{}, false
	}
	ap := aggPlan{name: a.Name, kind: kind, argTmp: cp.newTmp(), whereTmp: cp.newTmp()}
	if a.Where != nil {
		w, ok := cp.operand(a.Where)
		if !ok {
			return aggPlan{}, false
		}
		ap.where = &w
	}
	args := call.Args
	switch kind {
	case aggCount:
		if len(args) == 0 {
			ap.kind, ap.typ = aggCountStar, tyLong
			return ap, true
		}
		if _, star := args[0].(*esql.StarExpr); star && len(args) == 1 {
			ap.kind, ap.typ = aggCountStar, tyLong
			return ap, true
		}
		if len(args) != 1 {
			cp.errorf(call.Loc, ErrInvalid, "COUNT takes at most one argument, got %d", len(args))
			return aggPlan{}, false
		}
	case aggCountDistinct:
		if len(args) < 1 || len(args) > 2 {
			cp.errorf(call.Loc, ErrInvalid, "COUNT_DISTINCT takes one or two arguments, got %d", len(args))
			return aggPlan{}, false
		}
		ap.precision = DefaultPrecisionThreshold
		if len(args) == 2 {
			lit, ok := args[1].(*esql.LiteralExpr)
			if !ok || lit.Kind != esql.LitInt || lit.Int < 0 {
				cp.errorf(args[1].Span(), ErrInvalid, "the precision of COUNT_DISTINCT must be a non-negative integer constant")
				return aggPlan{}, false
			}
			ap.precision = int(min(lit.Int, MaxPrecisionThreshold))
		}
	default:
		if len(args) != 1 {
			cp.errorf(call.Loc, ErrInvalid, "%s takes one argument, got %d", call.Name, len(args))
			return aggPlan{}, false
		}
	}
	arg, ok := cp.operand(args[0])
	if !ok {
		return aggPlan{}, false
	}
	if _, isCall := args[0].(*esql.CallExpr); isCall && aggByName[nameOf(args[0].(*esql.CallExpr))] != 0 {
		cp.errorf(args[0].Span(), ErrInvalid, "aggregations cannot be nested")
		return aggPlan{}, false
	}
	ap.arg = arg
	switch kind {
	case aggCount, aggCountDistinct:
		ap.typ = tyLong
	case aggAvg:
		ap.typ = tyDouble
	case aggSum:
		ap.typ = tyAny
		if arg.typ == tyLong || arg.typ == tyDouble {
			ap.typ = arg.typ
		}
		if arg.typ == tyString || arg.typ == tyBool || arg.typ == tyDate || arg.typ == tyIP {
			cp.errorf(args[0].Span(), ErrType, "SUM needs a numeric argument, got %s", args[0].String())
			return aggPlan{}, false
		}
	default:
		ap.typ = arg.typ
	}
	return ap, true
}

func nameOf(c *esql.CallExpr) string {
	if c == nil {
		return ""
	}
	return c.Name
}

// group is one group of an aggregation table.
type group struct {
	key    string
	states []aggState
	ev     evidence // the events (or rows) the group counts
}

// aggTable is the state of one STATS: groups by encoded key. Group keys are
// the concatenated encodings of the BY values (appendValue), so they are
// deterministic bytes and sort groups stably.
type aggTable struct {
	plan   *statsPlan
	p      *Program
	groups map[string]*group
	size   int64
	keyBuf []byte
	// parts holds each BY expression's values for the current row.
	parts [][]event.Value
	idx   []int
	skip  []bool // per aggregation: its WHERE rejected the current row
	// What the current row counts in its groups' evidence: the event cur
	// (a leading STATS fed by State.AddFrom), or the evidence from of an
	// earlier STATS's row (a STATS in the rest); seq numbers the event or
	// row, so that a group counts it once however many of its values or
	// rows fall in the group.
	cur  *event.Event
	from *evidence
	seq  uint64
}

func newAggTable(plan *statsPlan, p *Program) *aggTable {
	return &aggTable{plan: plan, p: p, groups: map[string]*group{}, parts: make([][]event.Value, len(plan.by)), idx: make([]int, len(plan.by)), skip: make([]bool, len(plan.aggs))}
}

func (t *aggTable) newGroup(key string) *group {
	g := &group{key: key, states: make([]aggState, len(t.plan.aggs))}
	for i := range t.plan.aggs {
		g.states[i] = newAggState(&t.plan.aggs[i])
	}
	t.size += int64(len(key)) + 64 + int64(len(g.states))*48
	return g
}

// budgetErr is the error for state outgrowing the budget.
func (p *Program) budgetErr(size int64) error {
	who := "ES|QL query"
	if p.opts.name != "" {
		who = fmt.Sprintf("rule %q", p.opts.name)
	}
	return fmt.Errorf("esqleval: %s: state of %d bytes exceeds the memory budget of %d bytes: %w", who, size, p.opts.budget, ErrBudgetExceeded)
}

// add aggregates the row in c.cols. A row whose BY expression is
// multi-valued joins one group per value (per combination of values when
// several are); a null BY value forms its own group.
func (t *aggTable) add(c *ctx) error {
	plan := t.plan
	for i := range plan.by {
		t.parts[i] = evalTmp(c, &plan.by[i], plan.byTmp[i])
	}
	// Evaluate the aggregation inputs once per row.
	for i := range plan.aggs {
		a := &plan.aggs[i]
		t.skip[i] = false
		if a.where != nil {
			if v, known := truth(evalTmp(c, a.where, a.whereTmp)); !known || !v {
				t.skip[i] = true
				continue
			}
		}
		if a.kind != aggCountStar {
			evalTmp(c, &a.arg, a.argTmp)
		}
	}
	for i := range t.idx {
		t.idx[i] = 0
	}
	for {
		t.keyBuf = t.keyBuf[:0]
		for i, vs := range t.parts {
			if len(vs) == 0 {
				t.keyBuf = appendValue(t.keyBuf, event.Value{})
			} else {
				t.keyBuf = appendValue(t.keyBuf, vs[t.idx[i]])
			}
		}
		g := t.groups[string(t.keyBuf)]
		if g == nil {
			g = t.newGroup(string(t.keyBuf))
			t.groups[g.key] = g
		}
		switch {
		case t.cur != nil:
			t.size += g.ev.note(t.cur, t.seq)
		case t.from != nil && g.ev.seq != t.seq:
			g.ev.seq = t.seq
			t.size += g.ev.merge(t.from)
		}
		for i := range plan.aggs {
			a := &plan.aggs[i]
			if t.skip[i] {
				continue
			}
			if a.kind == aggCountStar {
				t.size += g.states[i].add(nil)
			} else {
				t.size += g.states[i].add(c.tmp[a.argTmp])
			}
		}
		if t.size > t.p.opts.budget {
			return t.p.budgetErr(t.size)
		}
		// Next combination of multi-valued BY values.
		i := len(t.idx) - 1
		for ; i >= 0; i-- {
			t.idx[i]++
			if t.idx[i] < len(t.parts[i]) {
				break
			}
			t.idx[i] = 0
		}
		if i < 0 {
			return nil
		}
	}
}

// merge folds o into t.
func (t *aggTable) merge(o *aggTable) error {
	for k, og := range o.groups {
		g := t.groups[k]
		if g == nil {
			g = t.newGroup(k)
			t.groups[k] = g
		}
		for i := range g.states {
			t.size += g.states[i].merge(og.states[i])
		}
		t.size += g.ev.merge(&og.ev)
	}
	if t.size > t.p.opts.budget {
		return t.p.budgetErr(t.size)
	}
	return nil
}

// sortedGroups returns the groups ordered by key bytes.
func (t *aggTable) sortedGroups() []*group {
	gs := make([]*group, 0, len(t.groups))
	for _, g := range t.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int { return strings.Compare(a.key, b.key) })
	return gs
}

// rows returns one row per group: the aggregations, then the BY values,
// and each row's evidence. Without BY there is always exactly one row, even
// with no input.
func (t *aggTable) rows() ([]Row, []*evidence) {
	plan := t.plan
	if len(plan.by) == 0 && len(t.groups) == 0 {
		t.groups[""] = t.newGroup("")
	}
	var out []Row
	gs := t.sortedGroups()
	evs := make([]*evidence, len(gs))
	for i, g := range gs {
		evs[i] = &g.ev
		row := make(Row, 0, len(plan.aggs)+len(plan.by))
		for _, s := range g.states {
			row = append(row, s.result())
		}
		b := []byte(g.key)
		for range plan.by {
			v, rest, err := decodeValue(b)
			if err != nil {
				panic("esqleval: BUG: undecodable group key")
			}
			b = rest
			if v.Kind == event.KindNull {
				row = append(row, nil)
			} else {
				row = append(row, []event.Value{v})
			}
		}
		out = append(out, dedupRow(row, plan))
	}
	return out, evs
}

// dedupRow drops earlier columns whose names a later column repeats.
func dedupRow(row Row, plan *statsPlan) Row {
	names := make([]string, 0, len(row))
	for _, a := range plan.aggs {
		names = append(names, a.name)
	}
	names = append(names, plan.byName...)
	out := row[:0:0]
	for i, n := range names {
		if !contains(names[i+1:], n) {
			out = append(out, row[i])
		}
	}
	return out
}
