package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/event"
)

// Per-event rules (firing per_event: Panther's rules, and rules that
// declare neither Elastic's type nor a firing) alert on each matching event
// when it is read. They have no runs: no max_signals, no run counter, no
// window; nothing is dropped, so a rule with a dedup key counts every
// matching event in its groups.

// kqlEventRunner runs a per-event KQL rule: an alert per matching event.
type kqlEventRunner struct {
	*base
}

func (q *kqlEventRunner) matches(e *event.Event) bool { return q.rule.Matcher.Match(e) }

func (q *kqlEventRunner) process(ctx context.Context, e *event.Event) error {
	if !q.rule.Matcher.Match(e) {
		return nil
	}
	q.stats.Matched++
	id := eventAlertID(q.rule.ID, e, "")
	if joined, err := q.tryJoin(ctx, e, id, e.Time(), q); joined || err != nil {
		return err
	}
	return q.emit(ctx, q.eventAlert(e, id), e.Time())
}

func (q *kqlEventRunner) joinedAlert(e *event.Event, id string) *alert.Alert {
	return q.eventAlert(e, id)
}

func (q *kqlEventRunner) advance(context.Context, time.Time) error { return nil }

func (q *kqlEventRunner) flush(context.Context) error { return nil }

// esqlEventRunner runs a per-event ES|QL rule: its query, which does not
// aggregate (no STATS, SORT or LIMIT: the loader refuses them), is
// evaluated on each event, and each output row is an alert. NOW() is the
// event's time.
type esqlEventRunner struct {
	*base
	ev    *esqleval.Evaluator
	lists []bool // which output columns are lists
	// again evaluates a copy of an event again, to build the alert that
	// joined a group unbuilt (tryJoin): not ev, whose rows may be in use.
	again *esqleval.Evaluator
}

func newESQLEventRunner(b *base) (*esqlEventRunner, error) {
	p := b.rule.Program
	if !p.PerEvent() {
		return nil, fmt.Errorf("engine: rule %s fires per event, but its ES|QL query needs runs (STATS, SORT or LIMIT)", b.rule.ID)
	}
	return &esqlEventRunner{base: b, ev: p.NewEvaluator(esqleval.Env{}), lists: columnShapes(p)}, nil
}

func (r *esqlEventRunner) matches(e *event.Event) bool {
	r.ev.Env.Now = e.Time()
	n, err := r.ev.Count(e)
	return err == nil && n > 0
}

func (r *esqlEventRunner) process(ctx context.Context, e *event.Event) error {
	r.ev.Env.Now = e.Time()
	// Counted first, built only if needed: an alert that joins a group
	// needs no row (its joinedAlert evaluates the event again).
	n, err := r.ev.Count(e)
	if err != nil {
		r.ruleError(err)
		return nil
	}
	if n == 0 {
		return nil
	}
	r.stats.Matched++
	if n == 1 {
		// Its alert may join a group without being built: then it is
		// built, if ever, from the event again (the same row).
		id := eventAlertID(r.rule.ID, e, "0")
		joined, err := r.tryJoin(ctx, e, id, e.Time(), r)
		if joined || err != nil {
			return err
		}
	}
	rows, err := r.ev.Eval(e) // as Count found them: the evaluation is pure
	if err != nil {
		r.ruleError(err)
		return nil
	}
	return r.emitRows(ctx, e, rows, r.lists, nil)
}

// joinedAlert builds the alert of an event's only row, evaluated again.
func (r *esqlEventRunner) joinedAlert(x *event.Event, id string) *alert.Alert {
	if r.again == nil {
		r.again = r.rule.Program.NewEvaluator(esqleval.Env{})
	}
	r.again.Env.Now = x.Time()
	rows, err := r.again.Eval(x)
	if err != nil || len(rows) == 0 {
		return &alert.Alert{ID: id, Timestamp: x.Time(), Rule: RuleInfo(r.rule)}
	}
	return r.rowAlert(x, 0, rows[0], r.lists)
}

func (r *esqlEventRunner) advance(context.Context, time.Time) error { return nil }

func (r *esqlEventRunner) flush(context.Context) error { return nil }
