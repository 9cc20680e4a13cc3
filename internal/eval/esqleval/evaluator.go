package esqleval

import (
	"github.com/kanon-dev/kanon/internal/event"
)

// Evaluator runs a program's per-event prefix. It owns scratch buffers, so
// one Evaluator must not be used by several goroutines at once; create one
// per goroutine with Program.NewEvaluator.
type Evaluator struct {
	p *Program
	// Env is the evaluation context; the caller may change it between
	// calls (for instance to move Now).
	Env   Env
	c     ctx
	arena []event.Value
	cells [][]event.Value
	rows  []Row
	// counting: emit counts rows in n instead of building them (Count).
	counting bool
	n        int
}

// NewEvaluator returns an evaluator of p's per-event prefix.
func (p *Program) NewEvaluator(env Env) *Evaluator {
	ev := &Evaluator{p: p, Env: env}
	ev.c = ctx{
		cols:   make([][]event.Value, p.nslots),
		lazy:   p.slotLazy,
		loaded: make([]bool, p.nslots),
		fields: p.slotField,
		tmp:    make([][]event.Value, p.ntmp),
	}
	return ev
}

// Eval runs the per-event prefix on e and returns the rows it produces, with
// the columns of Program.PrefixColumns: none when a WHERE rejects the event,
// one usually, several after MV_EXPAND of a multi-valued column. Cells of
// columns that no later stage reads are null.
//
// The rows and their values are owned by the Evaluator and valid until the
// next call; their strings may alias e's buffers (see package event). State.Add
// copies what it keeps. The only error Eval returns is a runtime failure
// of the program (a recovered panic, reported as a bug).
func (ev *Evaluator) Eval(e *event.Event) (rows []Row, err error) {
	defer func() {
		if r := recover(); r != nil {
			rows, err = nil, bugError(r)
		}
	}()
	c := &ev.c
	c.env = &ev.Env
	c.ev = e
	clear(c.loaded)
	ev.arena = ev.arena[:0]
	ev.cells = ev.cells[:0]
	ev.rows = ev.rows[:0]
	ev.run(0)
	return ev.rows, nil
}

// Count runs the per-event prefix on e as Eval does and returns how many
// rows it produces, without building them: a caller that needs only the
// count (or the rows only sometimes, evaluating again) skips copying every
// output column of every row. It invalidates the rows of the last Eval.
func (ev *Evaluator) Count(e *event.Event) (n int, err error) {
	defer func() {
		ev.counting = false
		if r := recover(); r != nil {
			n, err = 0, bugError(r)
		}
	}()
	c := &ev.c
	c.env = &ev.Env
	c.ev = e
	clear(c.loaded)
	ev.arena = ev.arena[:0]
	ev.cells = ev.cells[:0]
	ev.rows = ev.rows[:0]
	ev.counting, ev.n = true, 0
	ev.run(0)
	return ev.n, nil
}

// Pass reports whether e produces at least one row.
func (ev *Evaluator) Pass(e *event.Event) (bool, error) {
	n, err := ev.Count(e)
	return n > 0, err
}

func (ev *Evaluator) run(i int) {
	p, c := ev.p, &ev.c
	for ; i < len(p.prefix); i++ {
		op := &p.prefix[i]
		if op.run != nil {
			if !op.run(c) {
				return
			}
			continue
		}
		vals := c.col(op.expand)
		if len(vals) <= 1 {
			c.cols[op.expandOut] = vals[:len(vals):len(vals)]
			continue
		}
		for k := range vals {
			c.cols[op.expandOut] = vals[k : k+1 : k+1]
			ev.run(i + 1)
		}
		return
	}
	ev.emit()
}

// emit appends the current row, copying its cells into the arena.
func (ev *Evaluator) emit() {
	if ev.counting {
		ev.n++
		return
	}
	p, c := ev.p, &ev.c
	start := len(ev.cells)
	for _, slot := range p.outSlots {
		if slot < 0 {
			ev.cells = append(ev.cells, nil)
			continue
		}
		vs := c.col(slot)
		if len(vs) == 0 {
			ev.cells = append(ev.cells, nil)
			continue
		}
		a := len(ev.arena)
		ev.arena = append(ev.arena, vs...)
		ev.cells = append(ev.cells, ev.arena[a:len(ev.arena):len(ev.arena)])
	}
	ev.rows = append(ev.rows, Row(ev.cells[start:len(ev.cells):len(ev.cells)]))
}
