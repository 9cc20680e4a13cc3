package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// watermark is the event-time policy a harness applies, as
// run.Policy's Lateness and SweepEvery.
type watermark struct {
	// lateness: after each event that moves the newest event time on,
	// the runs that ended lateness before it close (Engine.Advance);
	// negative keeps every run open until Close.
	lateness time.Duration
	// sweepEvery, when positive, sweeps the store (Engine.Sweep) each
	// time the newest event time has moved on by this much since the
	// last sweep, and after Close.
	sweepEvery time.Duration
}

// untilClose keeps every run open until Close and never sweeps: a scan of
// complete input, as rule tests run.
var untilClose = watermark{lateness: -1}

// harness feeds an engine the way kanon runs feed it. It reads records
// through the formats registry and moves the event-time watermark with
// the same rule as internal/run's driver: it mirrors the driver's observe
// (after each event whose time is newer than any seen, Advance to that
// time minus the lateness when the lateness is not negative, and Sweep
// when sweepEvery of event time has passed since the last sweep), its
// sweep, and its finishRun (Close, then Sweep when sweepEvery is
// positive). The engine itself never moves the watermark. internal/run's
// TestWatermarkMatchesEngine checks the driver against this rule; change
// both together.
//
// It is the only way the engine's tests feed events.
type harness struct {
	t    testing.TB
	eng  *engine.Engine
	rd   *ingest.Reader
	w    watermark
	sink *alert.Collector // the alerts, when Options.Sink was nil
	line int64            // the last line number feed gave

	newest time.Time // newest event time seen
	swept  time.Time // newest event time at the last sweep
}

// newHarness builds an engine for rs with opts (a collector as its sink
// if opts.Sink is nil) and a reader of every format, with the fields the
// rules read; a bad record fails the test.
func newHarness(t testing.TB, rs []*rule.Compiled, opts engine.Options, w watermark) *harness {
	t.Helper()
	h := &harness{t: t, w: w}
	if opts.Sink == nil {
		h.sink = &alert.Collector{}
		opts.Sink = h.sink
	}
	eng, err := engine.New(rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	h.rd, err = ingest.NewReader(formats.Registry(), ingest.Options{Fields: eng.Fields(), OnBad: func(b ingest.BadRecord) {
		t.Errorf("bad record %s: %v", b.Origin, b.Err)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// process runs the engine on one decoded event and moves the watermark
// with its time (the driver's observe).
func (h *harness) process(e *event.Event) error {
	ctx := context.Background()
	if err := h.eng.Process(ctx, e); err != nil {
		return err
	}
	t := e.Time()
	if !t.After(h.newest) {
		return nil
	}
	h.newest = t
	if h.w.lateness >= 0 {
		if err := h.eng.Advance(ctx, t.Add(-h.w.lateness)); err != nil {
			return err
		}
	}
	if h.w.sweepEvery > 0 && t.Sub(h.swept) >= h.w.sweepEvery {
		return h.sweep()
	}
	return nil
}

// sweep removes the expired state up to the newest event time (the
// driver's sweep).
func (h *harness) sweep() error {
	if h.newest.IsZero() {
		return nil
	}
	h.swept = h.newest
	return h.eng.Sweep(context.Background())
}

// readRecord reads one record and processes its events; it returns the
// engine's error.
func (h *harness) readRecord(origin event.Origin, rec []byte) error {
	return h.rd.Record(origin, rec, h.process)
}

// feed reads audit records, one per element in any format kanon reads,
// as the next lines of the input "log"; an engine error fails the test.
func (h *harness) feed(records []string) {
	h.t.Helper()
	for _, rec := range records {
		h.line++
		origin := event.Origin{Name: "log", Line: h.line}
		if err := h.readRecord(origin, []byte(rec)); err != nil {
			h.t.Fatalf("%s: %v", origin, err)
		}
	}
}

// readEvent reads one test event, its origin named by its id, and returns
// the engine's error.
func (h *harness) readEvent(e stEv) error {
	return h.readRecord(event.Origin{Name: e.id}, e.record())
}

// feedEvents reads test events; an engine error fails the test.
func (h *harness) feedEvents(evs ...stEv) {
	h.t.Helper()
	for _, e := range evs {
		if err := h.readEvent(e); err != nil {
			h.t.Fatalf("event %s: %v", e.id, err)
		}
	}
}

// decode appends copies of the events of one record to dst without
// processing them, for tests and benchmarks that process them later.
func (h *harness) decode(dst []*event.Event, origin event.Origin, rec []byte) []*event.Event {
	h.t.Helper()
	if err := h.rd.Record(origin, rec, func(e *event.Event) error {
		dst = append(dst, e.Clone())
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return dst
}

// close ends the input: the engine closes its open runs, then, when the
// harness sweeps, the store is swept (the driver's finishRun). An error
// fails the test.
func (h *harness) close() {
	h.t.Helper()
	if err := h.eng.Close(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	if h.w.sweepEvery > 0 {
		if err := h.sweep(); err != nil {
			h.t.Fatal(err)
		}
	}
}

// checkpoint checkpoints the open ES|QL runs; an error fails the test.
func (h *harness) checkpoint() {
	h.t.Helper()
	if err := h.eng.Checkpoint(context.Background()); err != nil {
		h.t.Fatal(err)
	}
}

// handover moves the open runs of h's engine to next's (a rule reload,
// engine.Handover) and returns the number moved; next goes on with h's
// watermark, as the driver keeps its own across a reload.
func (h *harness) handover(next *harness) int {
	next.newest, next.swept = h.newest, h.swept
	return h.eng.Handover(next.eng)
}

// result is what an engine did with a log.
type result struct {
	alerts []*alert.Alert
	stats  engine.Stats
	errs   []error
}

// runLog reads audit records (one per element, any format kanon reads)
// through a fresh engine with an in-memory store, moving the watermark
// with lateness (negative: runs stay open until Close), and closes it.
// Rule errors are collected, not failed on.
func runLog(t testing.TB, rs []*rule.Compiled, lateness time.Duration, records []string) result {
	t.Helper()
	var res result
	store := mem.New()
	defer store.Close()
	h := newHarness(t, rs, engine.Options{
		Store: store, Materialize: formats.Registry().Materialize,
		OnError: func(id string, err error) { res.errs = append(res.errs, err) },
	}, watermark{lateness: lateness})
	h.feed(records)
	h.close()
	res.alerts = h.sink.Alerts
	res.stats = h.eng.Stats()
	return res
}

// stRun feeds events through a new engine on store, every run open until
// Close, and returns the alerts delivered and the engine's stats. opts
// gets the sink, the store, the registry's Materialize (unless set) and an
// OnError that fails the test.
func stRun(t testing.TB, rs []*rule.Compiled, store state.Store, opts engine.Options, events ...stEv) ([]*alert.Alert, engine.Stats) {
	t.Helper()
	return stRunWith(t, rs, store, opts, untilClose, events...)
}

// stRunWith is stRun with the watermark w.
func stRunWith(t testing.TB, rs []*rule.Compiled, store state.Store, opts engine.Options, w watermark, events ...stEv) ([]*alert.Alert, engine.Stats) {
	t.Helper()
	opts.Sink, opts.Store = nil, store
	if opts.Materialize == nil {
		opts.Materialize = formats.Registry().Materialize
	}
	opts.OnError = func(id string, err error) { t.Errorf("rule %s: %v", id, err) }
	h := newHarness(t, rs, opts, w)
	h.feedEvents(events...)
	h.close()
	return h.sink.Alerts, h.eng.Stats()
}
