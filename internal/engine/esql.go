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
	lists   []bool                    // which output columns are lists
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
		persist: b.eng.persist(), stored: map[int64]struct{}{}, lists: columnShapes(b.rule.Program)}
	r.fp = windowFingerprint(r)
	if r.persist && b.eng.opts.Replica != "" {
		r.shared = &replicaRuns{name: b.eng.opts.Replica}
	}
	return r
}

func (r *esqlRunner) matches(e *event.Event) bool {
	r.ev.Env.Now = time.Unix(0, r.sched.FirstRun(e.Time())).UTC()
	n, err := r.ev.Count(e)
	return err == nil && n > 0
}

// evalAgain returns the rows of e that Count counted, evaluated again
// (the evaluation is pure: the same rows).
func (r *esqlRunner) evalAgain(e *event.Event) []esqleval.Row {
	rows, err := r.ev.Eval(e)
	if err != nil {
		r.ruleError(err)
		return nil
	}
	return rows
}

func (r *esqlRunner) process(ctx context.Context, e *event.Event) error {
	t := e.Time()
	first := r.sched.FirstRun(t)
	r.ev.Env.Now = time.Unix(0, first).UTC()
	p := r.rule.Program
	if p.PerEvent() {
		// Elastic's run of a query without STATS: its alerts count
		// against max_signals in the runs that read the event. The rows
		// are counted first and built only for the alerts raised (or
		// dropped hits delivered): most hits of a burst are over
		// max_signals.
		n, err := r.ev.Count(e)
		if err != nil {
			r.ruleError(err)
			return nil
		}
		if n == 0 {
			return nil
		}
		r.stats.Matched++
		end, ok := r.take(&r.counter, t)
		if !ok {
			return r.drop(ctx, end, 1, func() []*alert.Alert { return r.rowAlerts(e, r.evalAgain(e), r.lists) })
		}
		r.metaDirty = r.persist
		return r.emitRows(ctx, e, r.evalAgain(e), r.lists, r.window(end))
	}
	rows, err := r.ev.Eval(e)
	if err != nil {
		r.ruleError(err)
		return nil
	}
	if len(rows) == 0 {
		return nil
	}
	r.stats.Matched++
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
		err := st.AddFrom(esqleval.Env{Now: time.Unix(0, end).UTC()}, rows, e)
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
			if r.shared != nil && r.runs[end] != nil {
				r.shared.count(end)
			}
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
	if r.shared != nil && r.eng.claims != nil {
		return r.closeShared(ctx, end)
	}
	if r.shared != nil {
		if _, err := r.gather(ctx, end); err != nil {
			return err
		}
	}
	st := r.runs[end]
	r.forgetRun(end)
	if st == nil {
		return nil // dropped: its error was reported when it happened
	}
	alerts, extra, err := r.results(end, st)
	if err != nil || alerts == nil {
		return err
	}
	for _, a := range alerts {
		if err := r.emit(ctx, a, a.Timestamp); err != nil {
			return err
		}
	}
	return extra(ctx)
}

// forgetRun removes run end from the open runs and moves the closed-run
// watermark up to it.
func (r *esqlRunner) forgetRun(end int64) {
	delete(r.runs, end)
	r.size = r.openSize()
	if end > r.closed {
		r.closed = end
	}
	if r.persist {
		r.touch(end)
		r.metaDirty = true
	}
}

// results builds the alerts of run end from its state st, at most
// max_signals, and extra, which hands the hits over max_signals to the
// hunt (drop). A run whose query fails is reported and raises nothing
// (nil alerts).
func (r *esqlRunner) results(end int64, st *esqleval.State) (alerts []*alert.Alert, extra func(context.Context) error, err error) {
	start, stop := r.sched.Window(end)
	tbl, err := st.Result(esqleval.Env{Now: stop})
	if err != nil {
		r.ruleError(fmt.Errorf("rule %s: run %s–%s failed: %w", r.rule.ID, start.Format(time.RFC3339), stop.Format(time.RFC3339), err))
		return nil, nil, nil
	}
	raise := len(tbl.Rows)
	if max := r.maxSignals(); max > 0 && raise > max {
		raise = max
	}
	dropped := int64(len(tbl.Rows) - raise)
	build := func(i int) *alert.Alert {
		fields := rowFields(tbl.Columns, tbl.Rows[i], r.lists)
		key, _ := json.Marshal(fields)
		w := r.window(end)
		w.Dropped = dropped
		return &alert.Alert{
			ID:        alert.ID(r.rule.ID, start.Format(time.RFC3339Nano), stop.Format(time.RFC3339Nano), string(key)),
			Timestamp: stop,
			Title:     r.rule.Name,
			Rule:      RuleInfo(r.rule),
			Fields:    fields,
			Window:    w,
			Evidence:  evidenceOf(tbl, i),
		}
	}
	alerts = make([]*alert.Alert, raise)
	for i := range alerts {
		alerts[i] = build(i)
	}
	extra = func(ctx context.Context) error {
		if dropped == 0 {
			return nil
		}
		return r.drop(ctx, end, dropped, func() []*alert.Alert {
			out := make([]*alert.Alert, 0, dropped)
			for i := raise; i < len(tbl.Rows); i++ {
				out = append(out, build(i))
			}
			return out
		})
	}
	return alerts, extra, nil
}

// evidenceOf returns the alert's evidence of output row i of tbl.
func evidenceOf(tbl *esqleval.Table, i int) *alert.Evidence {
	if i >= len(tbl.Evidence) || tbl.Evidence[i] == nil {
		return nil
	}
	ev := tbl.Evidence[i]
	out := &alert.Evidence{Total: ev.Total, Events: make([]alert.EventRef, len(ev.Events))}
	for k, r := range ev.Events {
		out.Events[k] = alert.EventRef{Timestamp: r.Time, AuditID: r.AuditID, Origin: r.Origin}
	}
	return out
}

// emitRows raises the alerts of e's output rows of a non-aggregating
// ES|QL query (rowAlerts), in the run w (nil for per-event rules).
func (b *base) emitRows(ctx context.Context, e *event.Event, rows []esqleval.Row, lists []bool, w *alert.Window) error {
	t := e.Time()
	for i, row := range rows {
		a := b.rowAlert(e, i, row, lists)
		if w != nil {
			c := *w
			a.Window = &c
		}
		if err := b.emit(ctx, a, t); err != nil {
			return err
		}
	}
	return nil
}

// rowAlerts builds the alerts of e's output rows, never grouped (dropped
// hits).
func (b *base) rowAlerts(e *event.Event, rows []esqleval.Row, lists []bool) []*alert.Alert {
	out := make([]*alert.Alert, len(rows))
	for i, row := range rows {
		out[i] = b.rowAlert(e, i, row, lists)
	}
	b.keyOf = nil
	return out
}

// rowAlert builds the alert of output row i of e: the row's columns
// before the rule's output fields. Alert ids hash the rule, the event's
// identity and the row's index, so an event read twice alerts once.
func (b *base) rowAlert(e *event.Event, i int, row esqleval.Row, lists []bool) *alert.Alert {
	a := b.eventAlert(e, eventAlertID(b.rule.ID, e, strconv.Itoa(i)))
	a.Fields = append(rowFields(b.rule.Program.Columns(), row, lists), a.Fields...)
	return a
}
