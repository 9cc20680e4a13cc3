package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
)

// AlertRetention is how long (in event time) raised alert ids are
// remembered in the state store.
const AlertRetention = 30 * 24 * time.Hour

// Options configure an Engine.
type Options struct {
	// Sink receives the alerts. Required.
	Sink alert.Sink
	// Store keeps what outlives one run (alert ids raised, new-terms
	// history, dedup groups). Optional: without it nothing is remembered
	// between engines.
	Store state.Store
	// Materialize returns e with every field read, for the alert's event
	// document (readers fill only the fields rules need). Optional.
	Materialize func(e *event.Event) *event.Event
	// LearnOnly makes new_terms rules learn their history without alerting.
	LearnOnly bool
	// GroupUpdates chooses how groups of rules with a dedup key are
	// delivered (see dedup.go). False (kanon scan, rule tests): a group is
	// delivered once, when it closes or at Close, with its final count.
	// True (a long-running serve): its first alert is delivered at once,
	// and again as an update with the final count when it closes.
	GroupUpdates bool
	// GroupUpdateEvery, with GroupUpdates, also delivers an open group
	// again while it grows: at most once per this much event time, when
	// alerts joined it since its last delivery (0: only when it opens and
	// when it closes). See dedup.go.
	GroupUpdateEvery time.Duration
	// Windows chooses whether the open runs of ES|QL rules are written to
	// Store at each Checkpoint, and whether New restores or deletes those
	// stored before (see WindowMode). Rebuild and Restore need a Store.
	Windows WindowMode
	// Replica names this engine among engines that share Store as
	// replicas (kanon serve replicas on one Redis): each keeps the ES|QL
	// runs it checkpoints in a slot of its own, and the replica that
	// closes a run merges the others' slots into it (see replicas.go).
	// Empty: the engine is alone with its store. Needs a window mode other
	// than WindowsInMemory to have any effect.
	Replica string
	// Shared is the store that Store (a write overlay) writes to, when
	// replicas share it: with Replica set, the engine takes every
	// decision that replicas could take twice (an alert raised, a new
	// term, a dedup group opened or delivered, a shared ES|QL run closed)
	// in a transaction on Shared, and keeps an outbox there so that an
	// alert decided is delivered even if its replica dies (claims.go).
	// Nil: decisions are taken through Store, exact for one engine.
	Shared state.Store
	// Now is the wall clock, for the outbox's leases. Required with
	// Shared.
	Now func() time.Time
	// OutboxLease is how long an alert decided by a replica is left to it
	// before another replica delivers it (0: DefaultOutboxLease).
	OutboxLease time.Duration
	// OnError reports a rule-level problem that does not stop the engine
	// (a memory budget exceeded, a state store error on one rule).
	OnError func(ruleID string, err error)
	// RuleMemoryBudget bounds the bytes the open runs of one windowed rule
	// may hold together (0: rule.MemoryBudget). A run that would take the
	// rule over it is dropped, with an error naming the rule.
	RuleMemoryBudget int64
	// Hunt narrows the events judged and says what becomes of the hits
	// dropped at max_signals (kanon scan); see Hunt.
	Hunt Hunt
}

// RuleStats counts what one rule did.
type RuleStats struct {
	Matched    int64 // events that passed the rule's query (or prefix)
	Alerts     int64 // alerts raised
	Dropped    int64 // alerts not raised because a run reached max_signals
	Suppressed int64 // alerts already raised before (state store)
	Late       int64 // events that arrived after their runs had closed
	Errors     int64
	Grouped    int64 // alerts folded into an open group of the same key (dedup)
	Updates    int64 // group updates delivered (the new count of a group)
}

// Stats counts what the engine did.
type Stats struct {
	Events int64
	Rules  map[string]*RuleStats
	// Swept counts expired store entries removed by Sweep.
	Swept int64
}

// runner runs one rule.
type runner interface {
	process(ctx context.Context, e *event.Event) error
	// matches reports whether e passes the rule's query (for ES|QL, its
	// per-event part), without effects: of the two readings of a record
	// with repeated keys, the rule processes one that matches.
	matches(e *event.Event) bool
	// advance closes the runs that ended at or before watermark.
	advance(ctx context.Context, watermark time.Time) error
	// flush closes every open run.
	flush(ctx context.Context) error
}

// Engine runs rules over events.
type Engine struct {
	opts    Options
	rules   []*rule.Compiled
	runners []runner
	stats   Stats
	fields  event.FieldSet
	newest  time.Time // newest event time seen, for Sweep
	dedups  []*dedup
	esql    []*esqlRunner // the ES|QL runners, for Checkpoint and Handover
	claims  *claimer      // decisions on the shared store (replicas), or nil
	counts  []*runCounts  // durable run counts of KQL rules (counts.go)
}

// New returns an engine for rules. With Options.Windows set to
// WindowsRestore it restores the ES|QL runs stored for those rules; with
// WindowsRebuild it deletes them.
func New(rules []*rule.Compiled, opts Options) (*Engine, error) {
	if opts.Sink == nil {
		return nil, errors.New("engine: no alert sink")
	}
	if opts.Windows != WindowsInMemory && opts.Store == nil {
		return nil, fmt.Errorf("engine: window mode %s needs a state store", opts.Windows)
	}
	e := &Engine{opts: opts, rules: rules, stats: Stats{Rules: map[string]*RuleStats{}}}
	if opts.Shared != nil && opts.Replica != "" {
		if opts.Store == nil {
			return nil, errors.New("engine: a shared store needs the write overlay over it as Store")
		}
		c, err := newClaimer(e)
		if err != nil {
			return nil, err
		}
		e.claims = c
	}
	for _, r := range rules {
		st := &RuleStats{}
		e.stats.Rules[r.ID] = st
		e.fields.Union(r.Fields)
		base := &base{eng: e, rule: r, stats: st, sched: Schedule{Interval: r.Interval(), Lookback: r.Lookback()}}
		if e.claims != nil {
			e.claims.byID[r.ID] = base
		}
		if opts.Store != nil {
			ids, err := state.NewAlertIDs(e.decisions(), r.ID, AlertRetention)
			if err != nil {
				return nil, fmt.Errorf("engine: rule %s: %w", r.ID, err)
			}
			base.ids = ids
		}
		if r.Dedup != nil {
			d, err := newDedup(base)
			if err != nil {
				return nil, err
			}
			base.dedup = d
			e.dedups = append(e.dedups, d)
		}
		run, err := e.newRunner(base)
		if err != nil {
			return nil, err
		}
		e.runners = append(e.runners, run)
	}
	if e.persist() {
		if err := e.loadWindows(context.Background()); err != nil {
			return nil, err
		}
		for _, rc := range e.counts {
			if err := rc.load(context.Background()); err != nil {
				return nil, err
			}
		}
	}
	if opts.Windows == WindowsRestore {
		// Groups left open by an earlier engine (a restart) close with
		// this one's watermark.
		for _, d := range e.dedups {
			if err := d.restoreOpen(context.Background()); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

// newRunner chooses the runner of b's rule by its firing and language
// (not by Elastic's type, which only declares them): per-event rules alert
// on every match with no run counter; scheduled rules follow Elastic's
// runs; new_terms rules learn and look up their terms.
func (e *Engine) newRunner(b *base) (runner, error) {
	r := b.rule
	switch {
	case r.Firing == rule.FiringPerEvent && r.Language == rule.LangKuery:
		return &kqlEventRunner{base: b}, nil
	case r.Firing == rule.FiringPerEvent && r.Language == rule.LangESQL:
		return newESQLEventRunner(b)
	case r.Firing == rule.FiringScheduled && r.Language == rule.LangKuery:
		q := &queryRunner{base: b}
		e.trackCounts(b, &q.runs)
		return q, nil
	case r.Firing == rule.FiringScheduled && r.Language == rule.LangESQL:
		run := newESQLRunner(b)
		e.esql = append(e.esql, run)
		return run, nil
	case r.Firing == rule.FiringNewTerms && r.Language == rule.LangKuery:
		nt, err := newNewTermsRunner(b)
		if err == nil {
			e.trackCounts(b, &nt.counter)
		}
		return nt, err
	}
	return nil, fmt.Errorf("engine: rule %s: no runner for firing %q in language %q", r.ID, r.Firing, r.Language)
}

// decisions is the store the views of alert ids, terms and groups work
// on: the shared store of replicas, where their transactions decide, or
// Store.
func (e *Engine) decisions() state.Store {
	if e.claims != nil {
		return e.claims.shared
	}
	return e.opts.Store
}

// Fields is the union of the fields the rules read: what readers must
// materialise.
func (e *Engine) Fields() event.FieldSet { return e.fields }

// Stats returns the counts so far.
func (e *Engine) Stats() Stats { return e.stats }

// Process runs every rule on one event and notes its time if it is the
// newest seen (Sweep's clock). It never closes runs or sweeps by itself:
// the caller moves the watermark (Advance) and sweeps (Sweep), as
// internal/run's driver does. The event may be reused by the caller after
// Process returns.
func (e *Engine) Process(ctx context.Context, ev *event.Event) error {
	if h := &e.opts.Hunt; h.Cluster != "" || h.bounded() {
		if h.bounded() && !h.inRange(ev.Time()) {
			if h.Counts != nil {
				h.Counts.OutOfRange++
			}
			return nil
		}
		for x := ev; x != nil; x = x.Alt {
			if x.ClusterName == "" {
				x.ClusterName = h.Cluster
			}
		}
	}
	e.stats.Events++
	for _, r := range e.runners {
		x := ev
		if ev.Alt != nil && !r.matches(ev) && r.matches(ev.Alt) {
			// The record's repeated keys read two ways (event.Alt): the
			// rule matches the other reading. One reading is processed
			// per rule, so the event counts once either way.
			x = ev.Alt
		}
		if err := r.process(ctx, x); err != nil {
			return err
		}
	}
	if t := ev.Time(); t.After(e.newest) {
		e.newest = t
	}
	return nil
}

// Skip counts an event that no rule can match (a prefilter said so)
// without evaluating it: it moves the newest event time as Process would.
func (e *Engine) Skip(ev *event.Event) {
	e.stats.Events++
	if t := ev.Time(); t.After(e.newest) {
		e.newest = t
	}
}

// Rules returns the engine's rules.
func (e *Engine) Rules() []*rule.Compiled { return e.rules }

// ruleBudget is the memory budget of each windowed rule's open runs.
func (e *Engine) ruleBudget() int64 {
	if e.opts.RuleMemoryBudget > 0 {
		return e.opts.RuleMemoryBudget
	}
	return rule.MemoryBudget
}

// Sweep removes the store's entries that expired before the newest event
// time seen (the store's clock is event time).
func (e *Engine) Sweep(ctx context.Context) error {
	if e.opts.Store == nil || e.newest.IsZero() {
		return nil
	}
	if err := e.Settle(ctx); err != nil {
		return err
	}
	// Groups whose period is over are delivered before their entries can
	// expire (a group is kept one period past its end): those this engine
	// touched, and those an earlier one left undelivered (a crash).
	for _, d := range e.dedups {
		if err := d.advance(ctx, e.newest); err != nil {
			return err
		}
		if err := d.deliverEnded(ctx, e.newest); err != nil {
			return err
		}
	}
	for _, r := range e.esql {
		if err := r.closeAdopted(ctx); err != nil {
			return err
		}
	}
	n, err := e.opts.Store.DeleteExpired(ctx, e.newest)
	if err != nil {
		return fmt.Errorf("cannot remove expired state: %w", err)
	}
	e.stats.Swept += int64(n)
	return nil
}

// Advance closes every run, and every dedup group, that ended at or
// before watermark. The caller owns the watermark: internal/run's driver
// calls Advance with the newest event time minus its lateness as event
// time moves on, and by the wall clock when an input is idle.
func (e *Engine) Advance(ctx context.Context, watermark time.Time) error {
	for _, r := range e.runners {
		if err := r.advance(ctx, watermark); err != nil {
			return err
		}
	}
	for _, d := range e.dedups {
		if err := d.advance(ctx, watermark); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every open run and delivers every dedup group whose count
// grew (the end of the input). It does not sweep: the caller sweeps after
// it if it sweeps at all.
func (e *Engine) Close(ctx context.Context) error {
	if err := e.Settle(ctx); err != nil {
		return err
	}
	for _, r := range e.runners {
		if err := r.flush(ctx); err != nil {
			return err
		}
	}
	for _, d := range e.dedups {
		if err := d.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// base holds what every runner shares.
type base struct {
	eng   *Engine
	rule  *rule.Compiled
	stats *RuleStats
	sched Schedule
	ids   *state.AlertIDs
	dedup *dedup
	// keyOf and key are the dedup key of the alert eventAlert built last,
	// for emit (alerts built otherwise have no event and are not grouped).
	keyOf *alert.Alert
	key   string
}

func (b *base) ruleError(err error) {
	b.stats.Errors++
	if b.eng.opts.OnError != nil {
		b.eng.opts.OnError(b.rule.ID, err)
	}
}

// identity is the event's identity for alert ids: auditID and stage when
// the event has them, else a hash of the record.
func identity(e *event.Event) string {
	return string(appendIdentity(nil, e))
}

func appendIdentity(b []byte, e *event.Event) []byte {
	if e.AuditID != "" {
		return append(append(append(b, e.AuditID...), '/'), e.Stage...)
	}
	sum := sha256.Sum256(e.Record)
	return hex.AppendEncode(append(b, "record:"...), sum[:16])
}

// eventAlertID is alert.ID(rule, identity(e)), or alert.ID(rule,
// identity(e), after) if after is not empty, without building the
// identity string.
func eventAlertID(rule string, e *event.Event, after string) string {
	var stack [256]byte
	b := alert.AppendIDPart(stack[:0], rule)
	b = append(appendIdentity(b, e), 0)
	if after != "" {
		b = alert.AppendIDPart(b, after)
	}
	return alert.IDOf(b)
}

// emit delivers an alert unless the store says it was raised before.
func (b *base) emit(ctx context.Context, a *alert.Alert, at time.Time) error {
	return b.emitWith(ctx, a, at, nil)
}

// emitWith delivers an alert and records it in the store, committing the
// writes of commit (the runner's own state, e.g. the new term that raised
// the alert) in the same transaction as the alert's mark.
//
// The order makes a crash lose nothing: the store is read first (an alert
// already marked is suppressed, though commit still runs), then the alert
// is written to the sink, and only when Write has returned is the mark
// committed with commit. A crash before the commit leaves no trace in the
// store, so a re-run over the same input raises the alert again under the
// same id; a sink that keeps the ids it holds (the alerts file of kanon
// scan) drops that repeat, so with it every alert is delivered exactly
// once, and with other sinks at least once. Alerts of rules with a dedup
// key go through the rule's groups instead (see dedup.go).
func (b *base) emitWith(ctx context.Context, a *alert.Alert, at time.Time, commit func(tx state.Tx) error) error {
	if b.ids == nil || at.IsZero() && commit == nil {
		// Without a store, or for an event without a time (the store
		// judges everything in event time), the alert is delivered and
		// not remembered.
		if commit != nil {
			return fmt.Errorf("BUG: rule %s: state to commit without a store", b.rule.ID)
		}
		b.stats.Alerts++
		return b.write(ctx, a)
	}
	if b.eng.claims != nil && commit == nil {
		// A replica: decided with the batch's other decisions, on the
		// shared store (claims.go).
		if b.dedup != nil && b.keyOf == a {
			return b.dedup.claimGroup(a, b.key, at, false)
		}
		b.claimAlert(a, at, false)
		return nil
	}
	if _, raised, err := b.ids.Raised(ctx, []byte(a.ID), at); err != nil {
		return fmt.Errorf("rule %s: cannot look up alert %s: %w", b.rule.ID, a.ID, err)
	} else if raised {
		b.stats.Suppressed++
		if commit == nil {
			return nil
		}
		return b.commit(ctx, a.ID, at, commit)
	}
	if b.dedup != nil && b.keyOf == a {
		return b.dedup.add(ctx, a, b.key, at, commit)
	}
	if err := b.write(ctx, a); err != nil {
		return err
	}
	if err := b.commit(ctx, a.ID, at, commit); err != nil {
		return err
	}
	b.stats.Alerts++
	return nil
}

// write delivers a to the sink.
func (b *base) write(ctx context.Context, a *alert.Alert) error {
	if err := b.eng.opts.Sink.Write(ctx, a); err != nil {
		return fmt.Errorf("cannot deliver alert of rule %s: %w", b.rule.ID, err)
	}
	return nil
}

// commit marks the alert id raised and runs fn, in one transaction at at.
func (b *base) commit(ctx context.Context, id string, at time.Time, fn func(tx state.Tx) error) error {
	err := b.eng.opts.Store.Update(ctx, at, func(tx state.Tx) error {
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		_, err := b.ids.MarkTx(tx, []byte(id))
		return err
	})
	if err != nil {
		return fmt.Errorf("rule %s: cannot record alert %s: %w", b.rule.ID, id, err)
	}
	return nil
}

// RuleInfo returns the alert's description of a rule.
func RuleInfo(r *rule.Compiled) alert.Rule {
	ar := alert.Rule{
		ID: r.ID, Name: r.Name, Type: r.Type, Language: r.Language, Firing: r.Firing,
		Severity: r.Severity, RiskScore: r.RiskScore,
		References: r.References, Tags: r.Tags, Runbook: r.Runbook, Note: r.Note,
		Description: r.Description, FalsePositives: r.FalsePositives,
	}
	if r.Source != nil {
		ar.Source = r.Source.Vendor
		if r.Source.RuleID != "" {
			ar.Source += ":" + r.Source.RuleID
		}
	}
	for _, t := range r.Threat {
		at := alert.Threat{Framework: t.Framework, Tactic: alert.Ref{ID: t.Tactic.ID, Name: t.Tactic.Name, Reference: t.Tactic.Reference}}
		for _, tech := range t.Technique {
			x := alert.Technique{Ref: alert.Ref{ID: tech.ID, Name: tech.Name, Reference: tech.Reference}}
			for _, s := range tech.Subtechnique {
				x.Subtechnique = append(x.Subtechnique, alert.Ref{ID: s.ID, Name: s.Name, Reference: s.Reference})
			}
			at.Technique = append(at.Technique, x)
		}
		ar.Threat = append(ar.Threat, at)
	}
	return ar
}

// eventAlert builds the alert of an event matched by a rule.
func (b *base) eventAlert(e *event.Event, id string) *alert.Alert {
	full := e
	if b.eng.opts.Materialize != nil {
		full = b.eng.opts.Materialize(e)
	}
	doc := full.Document()
	a := &alert.Alert{
		ID:        id,
		Timestamp: full.Time(),
		Title:     b.rule.Title(full),
		Rule:      RuleInfo(b.rule),
		Fields:    OutputFields(b.rule, full, doc),
		Origin:    full.Origin.String(),
		Reader:    full.Reader,
		Event:     doc,
	}
	if len(e.Ambiguous) > 0 {
		// The record repeats object keys that parsers read two ways, and
		// the rule's fields differ between the readings: say which.
		amb := make([]string, len(e.Ambiguous))
		for i, f := range e.Ambiguous {
			amb[i] = strings.Clone(f) // the event's strings die with its batch
		}
		a.Fields = append(a.Fields, alert.Field{Name: AmbiguousField, Value: amb})
	}
	if b.dedup != nil {
		b.keyOf, b.key = a, b.rule.DedupTmpl.Render(full)
	}
	return a
}

// AmbiguousField is the alert field naming the event fields that two
// readings of its record give different values (ingest.ErrAmbiguous).
const AmbiguousField = "ambiguous_fields"

// runCounter counts alerts per run for max_signals.
type runCounter struct {
	counts map[int64]int
	track  *bool // set when counts change, if not nil (counts.go)
}

// changed notes that the counts changed.
func (c *runCounter) changed() {
	if c.track != nil {
		*c.track = true
	}
}

// take finds the earliest run covering t with room for one more alert and
// counts it there, returning its end; when every run is full it returns
// the end of the first and false.
func (c *runCounter) take(s Schedule, t time.Time, max int) (int64, bool) {
	if c.counts == nil {
		c.counts = map[int64]int{}
	}
	first, ok := s.FirstRun(t), false
	s.Runs(t, func(end int64) bool {
		if c.counts[end] < max {
			c.counts[end]++
			c.changed()
			first, ok = end, true
			return false
		}
		return true
	})
	return first, ok
}

// prune forgets runs that ended before watermark.
func (c *runCounter) prune(watermark time.Time) {
	w := watermark.UnixNano()
	for end := range c.counts {
		if end < w {
			delete(c.counts, end)
			c.changed()
		}
	}
}

// queryRunner runs a scheduled KQL rule (Elastic's query rule): an alert
// per matching event, at most max_signals per run.
type queryRunner struct {
	*base
	runs runCounter
}

func (q *queryRunner) matches(e *event.Event) bool { return q.rule.Matcher.Match(e) }

func (q *queryRunner) process(ctx context.Context, e *event.Event) error {
	if !q.rule.Matcher.Match(e) {
		return nil
	}
	q.stats.Matched++
	if q.sharesSignals(e.Time()) {
		// A replica: the hit takes its run's slot in the batch's
		// decisions on the shared store (counts.go).
		return q.claimHit(q.eventAlert(e, eventAlertID(q.rule.ID, e, "")), e.Time())
	}
	end, ok := q.take(&q.runs, e.Time())
	if !ok {
		// Hashed only if the dropped hit is delivered: most hits of a
		// burst are over max_signals.
		return q.dropEvent(ctx, e, func() string { return eventAlertID(q.rule.ID, e, "") }, end)
	}
	a := q.eventAlert(e, eventAlertID(q.rule.ID, e, ""))
	a.Window = q.window(end)
	return q.emit(ctx, a, e.Time())
}

func (q *queryRunner) advance(_ context.Context, w time.Time) error {
	if len(q.runs.counts) > 64 {
		q.runs.prune(w.Add(-q.sched.Lookback))
	}
	return nil
}

func (q *queryRunner) flush(context.Context) error { return nil }

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[int64]V) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}
