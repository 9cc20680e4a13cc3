package run

import (
	"context"
	"errors"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
)

// What the driver keeps of its run in the store (state.NSRun), beside the
// engine's state: what each rule dropped (late events, alerts over
// max_signals, runs over the memory budget), summed over every run on the
// store, and, in a live run that restores its windows, the newest event
// time seen, so that a restarted server's event-time clock (the watermark
// and the idle clock) goes on from where the stopped one was. Both are
// written at each commit, with the state of the same batches; a replica
// (Config.Replica) keeps entries of its own.
//
// Every drop is counted (kanon_events_late_total,
// kanon_alerts_dropped_total) and logged: once per run for alerts over
// max_signals, when the watermark passes the run's end; for late events,
// at most once a minute per rule with the count since the last line; runs
// over the budget are logged by the engine's rule error.

// lateLogEvery bounds the log lines about one rule's late events.
const lateLogEvery = time.Minute

// dropTracker turns the engine's counts into metrics, log lines and the
// stored record. It is owned by the driver's goroutine.
type dropTracker struct {
	d *Driver
	// seen are the engine counts (late, max_signals) already counted.
	seen map[string]state.RunDrops
	// budget are the runs dropped for the memory budget, from OnError.
	budget map[string]int64
	// pending are the counts not yet written to the store.
	pending map[string]state.RunDrops
	// runs are the max_signals drops per run, by rule and run end, that
	// the engine adds to (engine.HuntCounts) when the driver's Hunt has no
	// counts of its own; logged and forgotten as the runs close.
	runs *engine.HuntCounts
	// late are the late events not yet logged, and when each rule's were
	// last logged.
	late     map[string]int64
	lateLog  map[string]time.Time
	stored   time.Time // the newest event time last written
	restored bool      // the newest event time was read from the store
}

func newDropTracker(d *Driver) *dropTracker {
	t := &dropTracker{d: d, seen: map[string]state.RunDrops{}, budget: map[string]int64{},
		pending: map[string]state.RunDrops{}, late: map[string]int64{}, lateLog: map[string]time.Time{}}
	if d.cfg.Hunt.Counts == nil {
		t.runs = &engine.HuntCounts{}
	}
	return t
}

// hunt is the engine's Hunt: the driver's, with the tracker's per-run
// counts when it has none.
func (t *dropTracker) hunt() engine.Hunt {
	h := t.d.cfg.Hunt
	if h.Counts == nil {
		h.Counts = t.runs
	}
	return h
}

// ruleError notes a run dropped for its memory budget.
func (t *dropTracker) ruleError(id string, err error) {
	if errors.Is(err, engine.ErrBudgetExceeded) {
		t.budget[id]++
		t.d.m.dropped(id, engine.DropBudget, 1)
	}
}

// rules makes the metrics of rules exist at zero.
func (t *dropTracker) rules(rs []*rule.Compiled) {
	for _, r := range rs {
		reasons := engine.DropReasons(r)
		if t.d.cfg.Hunt.NoMaxSignals && len(reasons) > 0 && reasons[0] == engine.DropMaxSignals {
			reasons = reasons[1:]
		}
		t.d.m.ruleLoaded(r, reasons)
	}
}

// restore reads the newest event time a stopped driver left in the store
// (live runs that restore their windows only: a scan reads its input
// again from the start).
func (t *dropTracker) restore(ctx context.Context) error {
	d := t.d
	if d.cfg.Policy.Windows != engine.WindowsRestore {
		return nil
	}
	v, err := d.ov.Get(ctx, t.key(state.AppendWatermarkKey(nil)), time.Time{})
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err == nil {
		var w time.Time
		if w, err = state.DecodeWatermark(v); err == nil {
			d.newest, d.swept, t.stored, t.restored = w, w, w, true
			d.lastArrival = d.cfg.Now() // the idle clock starts now
			return nil
		}
	}
	return err
}

// note counts what the engine dropped since the last call: metrics, log
// lines, and the counts to write at the next commit. It runs before each
// checkpoint and at the end of the run (end: the input ended, so every
// run closed).
func (t *dropTracker) note(end bool) {
	d := t.d
	d.snapshot()
	d.mu.RLock()
	rules := d.stats.Engine.Rules
	d.mu.RUnlock()
	now := d.cfg.Now()
	for id, rs := range rules {
		seen := t.seen[id]
		late, over := rs.Late-seen.Late, rs.Dropped-seen.MaxSignals
		if late <= 0 && over <= 0 && t.budget[id] == 0 {
			continue
		}
		p := t.pending[id]
		if late > 0 {
			d.m.dropped(id, engine.DropLate, late)
			p.Late += late
			t.late[id] += late
		}
		if over > 0 {
			d.m.dropped(id, engine.DropMaxSignals, over)
			p.MaxSignals += over
		}
		p.Budget += t.budget[id]
		delete(t.budget, id)
		t.pending[id] = p
		t.seen[id] = state.RunDrops{Late: rs.Late, MaxSignals: rs.Dropped}
	}
	for id, n := range t.late {
		if end || now.Sub(t.lateLog[id]) >= lateLogEvery {
			d.log.Warn("late events dropped: their runs had closed", "rule", id, "events", n,
				"newest_event", d.newest, "lateness", d.cfg.Policy.Lateness)
			t.lateLog[id] = now
			delete(t.late, id)
		}
	}
	t.logRuns(end)
}

// logRuns logs each run that dropped alerts at max_signals once its end
// has passed the watermark (every run at the end of the input).
func (t *dropTracker) logRuns(end bool) {
	if t.runs == nil || len(t.runs.RunDrops) == 0 {
		return
	}
	d := t.d
	w := d.newest.Add(-d.cfg.Policy.Lateness)
	if d.idleMark.After(w) {
		w = d.idleMark
	}
	if d.cfg.Policy.Lateness < 0 {
		w = time.Time{}
	}
	for id, runs := range t.runs.RunDrops {
		for at, n := range runs {
			stop := time.Unix(0, at).UTC()
			if !end && (w.IsZero() || stop.After(w)) {
				continue
			}
			d.log.Warn("run dropped alerts at max_signals", "rule", id, "run_end", stop, "dropped", n)
			delete(runs, at)
		}
		if len(runs) == 0 {
			delete(t.runs.RunDrops, id)
		}
	}
}

// key is k, or a replica's slot of it.
func (t *dropTracker) key(k []byte) []byte {
	if r := t.d.cfg.Replica; r != "" {
		return state.AppendRunSlot(k, r)
	}
	return k
}

// write adds the pending counts to the stored ones and stores the newest
// event time, in the overlay: the next commit makes them durable with the
// batches they come from.
func (t *dropTracker) write(ctx context.Context) error {
	d := t.d
	mark := d.cfg.Policy.Windows == engine.WindowsRestore && d.newest.After(t.stored)
	if len(t.pending) == 0 && !mark {
		return nil
	}
	err := d.ov.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for id, p := range t.pending {
			key := t.key(state.AppendRunDropsKey(nil, id))
			var old state.RunDrops
			v, err := tx.Get(key)
			switch {
			case err == nil:
				if old, err = state.DecodeRunDrops(v); err != nil {
					old = state.RunDrops{} // a damaged count starts again
				}
			case !errors.Is(err, state.ErrNotFound):
				return err
			}
			if err := tx.Put(key, state.AppendRunDrops(nil, old.Add(p)), time.Time{}); err != nil {
				return err
			}
		}
		if mark {
			return tx.Put(t.key(state.AppendWatermarkKey(nil)), state.AppendWatermark(nil, d.newest), time.Time{})
		}
		return nil
	})
	if err != nil {
		return err
	}
	clear(t.pending)
	if mark {
		t.stored = d.newest
	}
	return nil
}

// kindOf is the rule type of an alert, as kanon_alert_latency_seconds
// labels it (engine.RuleKind).
func kindOf(a *alert.Alert) string {
	if a.Rule.Type != "" {
		return a.Rule.Type
	}
	return a.Rule.Firing
}
