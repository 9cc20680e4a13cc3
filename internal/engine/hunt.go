package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
)

// Hunt holds the options of a hunt over files (kanon scan): what narrows
// the events judged, and what becomes of the hits a run drops at
// max_signals. The zero value (kanon serve, rule tests) changes nothing.
type Hunt struct {
	// Since and Until, when set, bound the events judged by event time:
	// an event before Since, or at or after Until, is skipped (an event
	// without a time too) and counted in Counts.OutOfRange.
	Since, Until time.Time
	// Cluster is the cluster name (orchestrator.cluster.name) given to
	// events that carry none, such as a file written by kube-apiserver's
	// log backend: rules, alerts and their documents see it.
	Cluster string
	// NoMaxSignals lifts every scheduled rule's max_signals: every hit of
	// every run is raised. This departs from Elastic's run semantics (a
	// run raises at most max_signals alerts) on purpose, for a hunt that
	// must see every hit.
	NoMaxSignals bool
	// DroppedHits, if set, receives the hits dropped at max_signals as
	// alerts marked Dropped, with the run that dropped them as Window.
	// They are not counted as raised (RuleStats.Alerts), not recorded in
	// the store and not grouped; an error from it stops the engine as the
	// Sink's does.
	DroppedHits alert.Sink
	// Counts, if set, receives what the hunt counts beyond Stats: the
	// events out of range, and how many hits each run dropped, so that
	// outputs written once the input ended can say it in every alert of
	// the run. Its size grows with the runs that drop hits: for a scan,
	// not for a long-running serve.
	Counts *HuntCounts
}

// HuntCounts are what a hunt counts beyond Stats. Every engine built with
// the same Hunt adds to them (a rule reload builds a new engine), from the
// goroutine that drives it; read them once the engines are closed.
type HuntCounts struct {
	// OutOfRange counts the events outside Since and Until, which no
	// rule judged (they are not in Stats.Events).
	OutOfRange int64
	// RunDrops are the hits each run dropped at max_signals, by rule id
	// and the run's end in Unix nanoseconds.
	RunDrops map[string]map[int64]int64
}

// Dropped returns how many hits the run of rule ruleID ending at end
// dropped at max_signals.
func (c *HuntCounts) Dropped(ruleID string, end time.Time) int64 {
	if c == nil {
		return 0
	}
	return c.RunDrops[ruleID][end.UnixNano()]
}

// Runs returns how many runs dropped hits.
func (c *HuntCounts) Runs() int {
	if c == nil {
		return 0
	}
	n := 0
	for _, m := range c.RunDrops {
		n += len(m)
	}
	return n
}

// inRange reports whether an event at t is judged under the hunt's bounds.
func (h *Hunt) inRange(t time.Time) bool {
	if !h.Since.IsZero() && (t.IsZero() || t.Before(h.Since)) {
		return false
	}
	return h.Until.IsZero() || t.Before(h.Until) && !t.IsZero()
}

// bounded reports whether the hunt bounds event time.
func (h *Hunt) bounded() bool { return !h.Since.IsZero() || !h.Until.IsZero() }

// maxSignals is the rule's cap on alerts per run; 0 when lifted.
func (b *base) maxSignals() int {
	if b.eng.opts.Hunt.NoMaxSignals {
		return 0
	}
	return b.rule.Schedule.MaxSignals
}

// take counts a hit at t against the runs that read it: it returns the end
// of the run it counts in and true, or the end of the first run that reads
// it and false when every one of them reached max_signals.
func (b *base) take(c *runCounter, t time.Time) (int64, bool) {
	max := b.maxSignals()
	if max <= 0 {
		return b.sched.FirstRun(t), true
	}
	return c.take(b.sched, t, max)
}

// window returns the alert's description of the run ending at end.
func (b *base) window(end int64) *alert.Window {
	start, stop := b.sched.Window(end)
	return &alert.Window{Start: start, End: stop, MaxSignals: b.maxSignals()}
}

// drop counts n hits dropped at max_signals by the run ending at end, and
// hands them to Hunt.DroppedHits when it is set; build makes them (it is
// not called otherwise).
func (b *base) drop(ctx context.Context, end int64, n int64, build func() []*alert.Alert) error {
	b.stats.Dropped += n
	h := &b.eng.opts.Hunt
	if c := h.Counts; c != nil {
		if c.RunDrops == nil {
			c.RunDrops = map[string]map[int64]int64{}
		}
		if c.RunDrops[b.rule.ID] == nil {
			c.RunDrops[b.rule.ID] = map[int64]int64{}
		}
		c.RunDrops[b.rule.ID][end] += n
	}
	if h.DroppedHits == nil {
		return nil
	}
	for _, a := range build() {
		a.Dropped = true
		if a.Window == nil {
			a.Window = b.window(end)
		}
		if err := h.DroppedHits.Write(ctx, a); err != nil {
			return fmt.Errorf("cannot deliver a dropped hit of rule %s: %w", b.rule.ID, err)
		}
	}
	return nil
}

// dropEvent drops the hit of event e in the run ending at end; id makes
// its alert id, called only if the hit is delivered (Hunt.DroppedHits).
func (b *base) dropEvent(ctx context.Context, e *event.Event, id func() string, end int64) error {
	return b.drop(ctx, end, 1, func() []*alert.Alert {
		a := b.eventAlert(e, id())
		b.keyOf = nil // a dropped hit is never grouped
		return []*alert.Alert{a}
	})
}
