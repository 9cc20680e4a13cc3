package esqleval

import (
	"errors"
	"fmt"
	"hash/fnv"
	"runtime/debug"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// Program is a compiled ES|QL query. It is immutable and safe for concurrent
// use; per-goroutine evaluation goes through an Evaluator and per-window
// aggregation through a State.
//
// A program has two parts. The per-event prefix is every command before the
// first STATS, SORT or LIMIT (WHERE, EVAL, GROK, DISSECT, MV_EXPAND, KEEP,
// DROP, RENAME): Evaluator.Eval runs it on one event and returns the rows it
// produces. The rest runs at the end of a window over what a State
// collected: when it starts with STATS, the State aggregates rows as they
// arrive (mergeable, serialisable state); otherwise the State keeps the rows.
type Program struct {
	query *esql.Query
	opts  options
	hash  uint64 // identifies the program in exported state

	fields event.FieldSet

	// Per-event prefix.
	nslots    int
	slotLazy  []bool
	slotField []event.Field
	prefix    []prefixOp
	// outSlots gives, for each column of the prefix's output, the slot it is
	// read from, or -1 when no later stage reads it.
	outSlots   []int
	prefixCols []string

	// Rest.
	stats     *statsPlan // the leading STATS of the rest, aggregated as rows arrive
	rest      []restOp   // commands after it (or the whole rest without leading STATS)
	hasRest   bool
	columns   []string
	lastLimit bool
	ntmp      int

	lineage *Lineage
}

// Compile compiles a parsed query. Errors are a *pos.ErrorList of positioned
// errors in the query's source, wrapping ErrUnknownColumn, ErrUnknownFunction,
// ErrType or ErrInvalid. Compile never panics; an internal failure is an error
// saying so.
func Compile(q *esql.Query, opts ...Option) (p *Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("esqleval: BUG: compiler panic: %v\n%s", r, debug.Stack())
		}
	}()
	p, err = build(q, opts)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// build compiles q. With compile errors it returns them with the program
// as far as it compiled (which must not run); with bad options or an
// empty query, no program.
func build(q *esql.Query, opts []Option) (*Program, error) {
	o := options{budget: DefaultMemoryBudget, limit: DefaultResultLimit}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if q == nil || len(q.Commands) == 0 {
		return nil, errors.New("esqleval: empty query")
	}
	h := fnv.New64a()
	h.Write([]byte(q.String()))
	p := &Program{query: q, opts: o, hash: h.Sum64(),
		lineage: &Lineage{refs: map[*esql.FieldExpr]*Column{}, defs: map[esql.Cmd][]*Column{}}}
	cp := &compiler{p: p, src: q.Src}
	cp.compile()
	p.ntmp = cp.ntmp
	return p, cp.errs.Err()
}

// Query returns the query the program was compiled from.
func (p *Program) Query() *esql.Query { return p.query }

// Fields returns the event fields the program reads, for readers to
// materialise.
func (p *Program) Fields() event.FieldSet { return p.fields }

// Columns returns the names of the output columns, in order.
func (p *Program) Columns() []string { return p.columns }

// PrefixColumns returns the names of the columns of the rows that
// Evaluator.Eval returns. Cells of columns no later stage reads are null.
func (p *Program) PrefixColumns() []string { return p.prefixCols }

// Aggregates reports whether the rest of the program starts with STATS, so
// that its State aggregates rows as they arrive instead of keeping them.
func (p *Program) Aggregates() bool { return p.stats != nil }

// PerEvent reports whether the program is only a per-event prefix: the
// rows Evaluator.Eval returns are then final output rows (with the columns
// of Columns), and no window is needed.
func (p *Program) PerEvent() bool { return !p.hasRest }

// compiler holds compile-time state.
type compiler struct {
	p    *Program
	src  *pos.Source
	errs pos.ErrorList
	ntmp int

	inPrefix bool
	ps       pschema
	// rs is the schema of the rest while compiling it.
	rs   []rcol
	used []bool // prefix output columns read by the rest
}

func (cp *compiler) errorf(sp pos.Span, code error, format string, args ...any) {
	cp.errs.Add(pos.Errorf(cp.src, sp, code, format, args...))
}

func (cp *compiler) newTmp() int {
	cp.ntmp++
	return cp.ntmp - 1
}

// resolve finds the column the reference x is to at the current point of
// the query, records it in the lineage, and returns its slot (prefix) or
// row position (rest).
func (cp *compiler) resolve(x *esql.FieldExpr) (int, typ, bool) {
	if cp.inPrefix {
		i, ok := cp.ps.find(cp, x.Name, x.Loc)
		if !ok {
			return 0, 0, false
		}
		col := &cp.ps.cols[i]
		cp.p.lineage.refs[x] = cp.lineOf(col)
		return cp.slotOf(col), col.typ, true
	}
	for i := len(cp.rs) - 1; i >= 0; i-- {
		if cp.rs[i].name == x.Name {
			cp.markUsed(cp.rs[i])
			cp.p.lineage.refs[x] = cp.rs[i].line
			return i, cp.rs[i].typ, true
		}
	}
	cp.errorf(x.Loc, ErrUnknownColumn, "unknown column %s", esqlName(x.Name))
	return 0, 0, false
}

func (cp *compiler) markUsed(c rcol) {
	if c.src >= 0 {
		cp.used[c.src] = true
	}
}

// slotOf returns the slot of a prefix column, allocating one (and recording
// the field as read) for an event field on first use.
func (cp *compiler) slotOf(col *pcol) int {
	if col.slot < 0 {
		col.slot = cp.newSlot(col.isEvent, col.field)
		if col.isEvent {
			cp.p.fields.Add(col.field)
		}
	}
	return col.slot
}

func (cp *compiler) newSlot(lazy bool, f event.Field) int {
	p := cp.p
	p.nslots++
	p.slotLazy = append(p.slotLazy, lazy)
	p.slotField = append(p.slotField, f)
	return p.nslots - 1
}

func esqlName(name string) string {
	return (&esql.FieldExpr{Name: name}).String()
}

func (cp *compiler) compile() {
	q := cp.p.query
	from, ok := q.Commands[0].(*esql.FromCmd)
	if !ok {
		cp.errorf(q.Commands[0].Span(), ErrInvalid, "a query must start with FROM, not %s", q.Commands[0].Name())
		return
	}
	cp.inPrefix = true
	cp.ps = initialSchema(from)
	i := 1
	for ; i < len(q.Commands); i++ {
		switch q.Commands[i].(type) {
		case *esql.StatsCmd, *esql.SortCmd, *esql.LimitCmd:
		default:
			cp.compilePrefixCmd(q.Commands[i])
			continue
		}
		break
	}
	cp.openRestFields(q.Commands[i:])
	cp.inPrefix = false
	// The prefix's output columns become the rest's input.
	p := cp.p
	for j := range cp.ps.cols {
		c := &cp.ps.cols[j]
		p.prefixCols = append(p.prefixCols, c.name)
		cp.rs = append(cp.rs, rcol{name: c.name, src: len(cp.rs), typ: c.typ, line: cp.lineOf(c)})
	}
	cp.used = make([]bool, len(cp.rs))
	rest := q.Commands[i:]
	p.hasRest = len(rest) > 0
	if len(rest) > 0 {
		if s, ok := rest[0].(*esql.StatsCmd); ok {
			p.stats = cp.compileStats(s)
			rest = rest[1:]
		}
		for _, c := range rest {
			cp.compileRestCmd(c)
		}
		_, p.lastLimit = q.Commands[len(q.Commands)-1].(*esql.LimitCmd)
	}
	// Columns that reach the output are read too.
	for _, c := range cp.rs {
		cp.markUsed(c)
		p.columns = append(p.columns, c.name)
		p.lineage.out = append(p.lineage.out, c.line)
	}
	p.outSlots = make([]int, len(cp.ps.cols))
	for j := range cp.ps.cols {
		p.outSlots[j] = -1
		if cp.used[j] {
			p.outSlots[j] = cp.slotOf(&cp.ps.cols[j])
		}
	}
}
