package engine

import (
	"context"
	"encoding/binary"
	"fmt"
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
// query, every value (or combination of values, for several fields) is a
// term; a term is new when it was not seen among matching events within
// the history window before the event, and a new term raises an alert.
// The history lives in the state store and expires with the window.
type newTermsRunner struct {
	*base
	terms   *state.Terms
	counter runCounter
	vals    [][]event.Value
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
	t, err := state.NewTerms(b.eng.opts.Store, state.TermsConfig{Rule: b.rule.ID, Window: b.rule.History, Slack: slack})
	if err != nil {
		return nil, err
	}
	return &newTermsRunner{base: b, terms: t, vals: make([][]event.Value, len(b.rule.TermFields))}, nil
}

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
	idx := make([]int, len(r.vals))
	for c := 0; c < n; c++ {
		r.key = r.key[:0]
		var shown []string
		for i, vs := range r.vals {
			s := vs[idx[i]].String()
			r.key = binary.AppendUvarint(r.key, uint64(len(s)))
			r.key = append(r.key, s...)
			shown = append(shown, s)
		}
		// Next combination.
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < len(r.vals[i]) {
				break
			}
			idx[i] = 0
		}
		_, isNew, err := r.terms.Observe(ctx, r.key, t)
		if err != nil {
			return fmt.Errorf("rule %s: cannot record new-terms history: %w", r.rule.ID, err)
		}
		if !isNew || r.eng.opts.LearnOnly {
			continue
		}
		if !r.counter.take(r.sched, t, r.rule.Schedule.MaxSignals) {
			r.stats.Dropped++
			continue
		}
		id := alert.ID(r.rule.ID, "new_terms", string(r.key), identity(e))
		a := r.eventAlert(e, id)
		terms := make([]any, len(shown))
		for i, s := range shown {
			terms[i] = s
		}
		a.Fields = append(alert.Fields{{Name: "new_terms", Value: terms}}, a.Fields...)
		if err := r.emit(ctx, a, t); err != nil {
			return err
		}
	}
	return nil
}

func (r *newTermsRunner) advance(_ context.Context, w time.Time) error {
	if len(r.counter.counts) > 64 {
		r.counter.prune(w.Add(-r.sched.Lookback))
	}
	return nil
}

func (r *newTermsRunner) flush(context.Context) error { return nil }
