package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/event"
)

// esqlRunner runs a scheduled ES|QL rule (Elastic's esql rule). Per event
// it evaluates only the commands before the first STATS (the per-event
// prefix) and adds the rows that pass to the state of every run covering
// the event; when a run closes, the rest of the query runs over that state
// and each output row becomes an alert. A query without STATS, SORT or
// LIMIT alerts per event at once, at most max_signals per run.
//
// A run whose state outgrows the rule's memory budget is dropped: the error
// (naming the rule and the run) is reported once, the run collects nothing
// more and raises no alert, since a partial aggregation would be wrong.
// Runs close when the watermark passes their end, whether or not they
// received rows; an event all of whose runs have closed counts once in
// RuleStats.Late.
//
// With a window mode other than WindowsInMemory the runs are also kept in
// the store: see windows.go.
type esqlRunner struct {
	*base
	ev      *esqleval.Evaluator
	runs    map[int64]*esqleval.State // by run end; nil: dropped
	closed  int64                     // runs ending at or before this have closed
	counter runCounter

	// Durable runs (windows.go).
	persist   bool               // the engine checkpoints runs to its store
	fp        uint64             // windowFingerprint
	dirty     []int64            // ends of the runs changed since the last checkpoint
	stored    map[int64]struct{} // ends of the runs the store holds
	metaDirty bool               // closed or counter changed since the last checkpoint
	retired   bool               // handed over: checkpoints write deletions only
	shared    *replicaRuns       // runs shared with other replicas (Options.Replica), or nil

	// size is the bytes held by all open runs, against the rule's memory
	// budget (rule.MemoryBudget): kept up to date per event, and summed
	// again whenever a run opens or closes.
	size int64
}

func newESQLRunner(b *base) *esqlRunner {
	r := &esqlRunner{base: b, ev: b.rule.Program.NewEvaluator(esqleval.Env{}), runs: map[int64]*esqleval.State{},
		persist: b.eng.persist(), stored: map[int64]struct{}{}}
	r.fp = windowFingerprint(r)
	if r.persist && b.eng.opts.Replica != "" {
		r.shared = &replicaRuns{name: b.eng.opts.Replica}
	}
	return r
}

func (r *esqlRunner) matches(e *event.Event) bool {
	r.ev.Env.Now = time.Unix(0, r.sched.FirstRun(e.Time())).UTC()
	rows, err := r.ev.Eval(e)
	return err == nil && len(rows) > 0
}

func (r *esqlRunner) process(ctx context.Context, e *event.Event) error {
	t := e.Time()
	first := r.sched.FirstRun(t)
	r.ev.Env.Now = time.Unix(0, first).UTC()
	rows, err := r.ev.Eval(e)
	if err != nil {
		r.ruleError(err)
		return nil
	}
	if len(rows) == 0 {
		return nil
	}
	r.stats.Matched++
	p := r.rule.Program
	if p.PerEvent() {
		// Elastic's run of a query without STATS: its alerts count
		// against max_signals in the runs that read the event.
		if !r.counter.take(r.sched, t, r.rule.Schedule.MaxSignals) {
			r.stats.Dropped++
			return nil
		}
		r.metaDirty = r.persist
		return r.emitRows(ctx, e, p.Columns(), rows)
	}
	late := false
	r.sched.Runs(t, func(end int64) bool {
		if end <= r.closed {
			late = true
			return true
		}
		st, seen := r.runs[end]
		if seen && st == nil {
			return true // the run was dropped (memory budget)
		}
		if st == nil {
			st = p.NewState()
			r.runs[end] = st
			r.size = r.openSize()
		}
		before := st.Size()
		err := st.Add(esqleval.Env{Now: time.Unix(0, end).UTC()}, rows)
		r.size += st.Size() - before
		if budget := r.eng.ruleBudget(); err == nil && r.size > budget {
			err = fmt.Errorf("the rule's open runs hold %d bytes, over its memory budget of %d bytes: %w", r.size, budget, esqleval.ErrBudgetExceeded)
		}
		if err != nil {
			start, stop := r.sched.Window(end)
			r.ruleError(fmt.Errorf("rule %s: run %s–%s dropped: %w", r.rule.ID, start.Format(time.RFC3339), stop.Format(time.RFC3339), err))
			// Drop the run: a partial aggregation would raise wrong alerts.
			r.size -= st.Size()
			st.Reset()
			r.runs[end] = nil
		}
		if r.persist {
			r.touch(end)
		}
		return true
	})
	if late {
		r.stats.Late++
	}
	return nil
}

func (r *esqlRunner) advance(ctx context.Context, w time.Time) error {
	wn := w.UnixNano()
	if len(r.counter.counts) > 64 {
		r.counter.prune(w.Add(-r.sched.Lookback))
		r.metaDirty = r.persist
	}
	due := false // advance runs per event: sort only when a run closes
	for end := range r.runs {
		if end <= wn {
			due = true
			break
		}
	}
	if due {
		for _, end := range sortedKeys(r.runs) {
			if end > wn {
				break
			}
			if err := r.closeRun(ctx, end); err != nil {
				return err
			}
		}
	}
	// Runs that ended by the watermark are closed even when they received
	// no rows: a later event in them is late.
	if iv := int64(r.sched.Interval); iv > 0 {
		if last := floorDiv(wn, iv) * iv; last > r.closed {
			r.closed = last
			r.metaDirty = r.persist
		}
	}
	return nil
}

func (r *esqlRunner) flush(ctx context.Context) error {
	for _, end := range sortedKeys(r.runs) {
		if err := r.closeRun(ctx, end); err != nil {
			return err
		}
	}
	return nil
}

// openSize sums the bytes held by the open runs.
func (r *esqlRunner) openSize() int64 {
	var n int64
	for _, st := range r.runs {
		if st != nil {
			n += st.Size()
		}
	}
	return n
}

func (r *esqlRunner) closeRun(ctx context.Context, end int64) error {
	if r.shared != nil {
		if err := r.gather(ctx, end); err != nil {
			return err
		}
	}
	st := r.runs[end]
	delete(r.runs, end)
	r.size = r.openSize()
	if end > r.closed {
		r.closed = end
	}
	if r.persist {
		r.touch(end)
		r.metaDirty = true
	}
	if st == nil {
		return nil // dropped: its error was reported when it happened
	}
	start, stop := r.sched.Window(end)
	tbl, err := st.Result(esqleval.Env{Now: stop})
	if err != nil {
		r.ruleError(fmt.Errorf("rule %s: run %s–%s failed: %w", r.rule.ID, start.Format(time.RFC3339), stop.Format(time.RFC3339), err))
		return nil
	}
	for i, row := range tbl.Rows {
		if i >= r.rule.Schedule.MaxSignals {
			r.stats.Dropped += int64(len(tbl.Rows) - i)
			break
		}
		fields := rowFields(tbl.Columns, row)
		key, _ := json.Marshal(fields)
		a := &alert.Alert{
			ID:        alert.ID(r.rule.ID, start.Format(time.RFC3339Nano), stop.Format(time.RFC3339Nano), string(key)),
			Timestamp: stop,
			Rule:      RuleInfo(r.rule),
			Fields:    fields,
			Window:    &alert.Window{Start: start, End: stop},
		}
		a.Title = r.rule.Name
		if err := r.emit(ctx, a, stop); err != nil {
			return err
		}
	}
	return nil
}

// emitRows raises the alerts of e's output rows of a non-aggregating
// ES|QL query: one per row, with the row's columns (cols) before the
// rule's output fields. Alert ids hash the rule, the event's identity and
// the row's index, so an event read twice alerts once.
func (b *base) emitRows(ctx context.Context, e *event.Event, cols []string, rows []esqleval.Row) error {
	t := e.Time()
	for i, row := range rows {
		id := alert.ID(b.rule.ID, identity(e), strconv.Itoa(i))
		a := b.eventAlert(e, id)
		a.Fields = append(rowFields(cols, row), a.Fields...)
		if err := b.emit(ctx, a, t); err != nil {
			return err
		}
	}
	return nil
}

// rowFields turns an output row into alert fields (a multi-valued cell
// becomes a list, a null cell null).
func rowFields(cols []string, row esqleval.Row) alert.Fields {
	out := make(alert.Fields, 0, len(cols))
	for i, c := range cols {
		var cell []event.Value
		if i < len(row) {
			cell = row[i]
		}
		var v any
		switch len(cell) {
		case 0:
		case 1:
			v = cell[0].Any()
		default:
			list := make([]any, len(cell))
			for j, x := range cell {
				list[j] = x.Any()
			}
			v = list
		}
		out = append(out, alert.Field{Name: c, Value: v})
	}
	return out
}
