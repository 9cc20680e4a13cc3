package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/state"
)

// TermsSlack bounds how often a known term's last-seen time is rewritten
// (see state.TermsConfig.Slack): a term may be forgotten up to this much
// before the history window ends.
const TermsSlack = time.Hour

// maxCombinations caps the term combinations of one event (several
// multi-valued fields multiply).
const maxCombinations = 100

// newTermsRunner runs a new_terms rule: for each event that matches the
// query, every value of the new_terms field (each value of an array field
// is a term of its own), or every combination of values when there are
// several fields, is a term; a term is new when it was not seen among
// matching events within the history window before the event, and a new
// term raises an alert (at most max_signals per run). The history is kept
// per rule in the state store, learned from matching events only, and
// expires with the window. With Options.LearnOnly terms are learned and
// nothing is raised.
//
// A new term is recorded in the same transaction as the mark of the alert
// it raises, after the alert was written (see base.emitWith): a crash
// between the two leaves the term unknown, so a re-run raises the same
// alert again instead of losing it. Terms that raise nothing (known terms,
// learn-only, dropped at max_signals) are recorded at once.
type newTermsRunner struct {
	*base
	terms   *state.Terms
	slack   time.Duration
	counter runCounter
	vals    [][]event.Value
	idx     []int
	key     []byte
}

func newNewTermsRunner(b *base) (*newTermsRunner, error) {
	if b.eng.opts.Store == nil {
		return nil, fmt.Errorf("engine: rule %s is a new_terms rule and needs a state store", b.rule.ID)
	}
	slack := TermsSlack
	if slack >= b.rule.History {
		slack = 0
	}
	t, err := state.NewTerms(b.eng.decisions(), state.TermsConfig{Rule: b.rule.ID, Window: b.rule.History, Slack: slack})
	if err != nil {
		return nil, err
	}
	n := len(b.rule.TermFields)
	return &newTermsRunner{base: b, terms: t, slack: slack, vals: make([][]event.Value, n), idx: make([]int, n)}, nil
}

func (r *newTermsRunner) matches(e *event.Event) bool { return r.rule.Matcher.Match(e) }

func (r *newTermsRunner) process(ctx context.Context, e *event.Event) error {
	if !r.rule.Matcher.Match(e) {
		return nil
	}
	r.stats.Matched++
	n := 1
	for i, f := range r.rule.TermFields {
		r.vals[i] = e.Get(f, r.vals[i][:0])
		n *= len(r.vals[i])
	}
	if n == 0 {
		return nil // a document without a value of every field has no term
	}
	if n > maxCombinations {
		n = maxCombinations
	}
	t := e.Time()
	if t.IsZero() {
		r.ruleError(fmt.Errorf("event %s has no time: new terms are judged in event time", e.Origin.String()))
		return nil
	}
	clear(r.idx)
	for c := 0; c < n; c++ {
		r.key = r.key[:0]
		for i, vs := range r.vals {
			r.key = state.AppendTermField(r.key, vs[r.idx[i]].String())
		}
		if err := r.term(ctx, e, t); err != nil {
			return err
		}
		// Next combination.
		for i := len(r.idx) - 1; i >= 0; i-- {
			r.idx[i]++
			if r.idx[i] < len(r.vals[i]) {
				break
			}
			r.idx[i] = 0
		}
	}
	return nil
}

// term handles the term in r.key (values r.vals at r.idx) of event e.
func (r *newTermsRunner) term(ctx context.Context, e *event.Event, t time.Time) error {
	ti, seen, err := r.terms.Seen(ctx, r.key, t)
	if err != nil {
		return fmt.Errorf("rule %s: cannot read new-terms history: %w", r.rule.ID, err)
	}
	if seen && ti.FirstSeen.Equal(t) && !r.eng.opts.LearnOnly {
		// The event that first showed the term: if its alert was raised
		// (an earlier scan of the same input), say so in the stats.
		id := alert.ID(r.rule.ID, "new_terms", string(r.key), identity(e))
		if _, raised, err := r.ids.Raised(ctx, []byte(id), t); err != nil {
			return fmt.Errorf("rule %s: cannot look up alert %s: %w", r.rule.ID, id, err)
		} else if raised {
			r.stats.Suppressed++
		}
	}
	if seen && !t.Before(ti.FirstSeen) && t.Sub(ti.LastSeen) < r.slack {
		return nil // known and recorded recently: nothing to write
	}
	if !seen && !r.eng.opts.LearnOnly && r.sharesSignals(t) {
		// A replica: the term is recorded, and its alert takes its run's
		// slot and is raised, by the batch's decisions on the shared
		// store (claims.go, counts.go).
		return r.claimTerm(r.key, t, r.termAlert(e), nil)
	}
	var end int64
	ok := false
	if !seen && !r.eng.opts.LearnOnly {
		if end, ok = r.take(&r.counter, t); !ok {
			if err := r.drop(ctx, end, 1, func() []*alert.Alert {
				a := r.termAlert(e)
				r.keyOf = nil // a dropped hit is never grouped
				return []*alert.Alert{a}
			}); err != nil {
				return err
			}
		}
	}
	if r.eng.claims != nil {
		// A replica: the term is recorded, and its alert raised, by the
		// batch's decisions on the shared store (claims.go).
		if !ok {
			return r.claimTerm(r.key, t, nil, nil)
		}
		a := r.termAlert(e)
		a.Window = r.window(end)
		return r.claimTerm(r.key, t, a, func() {
			if r.maxSignals() > 0 {
				r.counter.counts[end]--
			}
		})
	}
	if !ok {
		if _, _, err := r.terms.Observe(ctx, r.key, t); err != nil {
			return fmt.Errorf("rule %s: cannot record new-terms history: %w", r.rule.ID, err)
		}
		return nil
	}
	a := r.termAlert(e)
	a.Window = r.window(end)
	return r.emitWith(ctx, a, t, func(tx state.Tx) error {
		_, _, err := r.terms.ObserveTx(tx, r.key)
		return err
	})
}

// termAlert builds the alert of the new term in r.key (values r.vals at
// r.idx) of event e.
func (r *newTermsRunner) termAlert(e *event.Event) *alert.Alert {
	id := alert.ID(r.rule.ID, "new_terms", string(r.key), identity(e))
	a := r.eventAlert(e, id)
	terms := make([]any, len(r.vals))
	for i, vs := range r.vals {
		terms[i] = strings.Clone(vs[r.idx[i]].String()) // the event's strings die with its batch
	}
	a.Fields = append(alert.Fields{{Name: "new_terms", Value: terms}}, a.Fields...)
	return a
}

func (r *newTermsRunner) advance(_ context.Context, w time.Time) error {
	if len(r.counter.counts) > 64 {
		r.counter.prune(w.Add(-r.sched.Lookback))
	}
	return nil
}

func (r *newTermsRunner) flush(context.Context) error { return nil }
