package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
)

// Errors of Submit; test with errors.Is.
var (
	// ErrBusy means the queue is full: the sender should retry later
	// (the webhook answers 429).
	ErrBusy = errors.New("the driver's queue is full")
	// ErrClosed means the driver is shutting down or has shut down.
	ErrClosed = errors.New("the driver is closed")
)

// Driver is kanon's one loop between sources and the engine. Sources
// (files, standard input, followed files, webhook bodies, rule tests) hand
// it batches of framed records; in one goroutine of its own it decodes
// them through the one ingest path, drops repeated deliveries, feeds the
// engine, moves the event-time watermark, sweeps expired state and commits
// the state in groups; it acknowledges each batch (Batch.Done) only once
// its alerts and its state are durable.
//
// Commits. The engine writes to a write overlay over the store; a commit
// first checkpoints the open ES|QL runs into the overlay, then flushes the
// sink (the alerts of the group are durable or delivered), then writes the
// overlay to the store in one transaction, then acknowledges the group's
// batches. The next batches are evaluated while a commit runs. A crash
// loses only unacknowledged batches; the alerts raised again when they
// are sent again carry the same ids, and the store remembers which were
// raised.
//
// The methods of a Driver are safe for concurrent use.
type Driver struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	ov   *overlay.Store
	own  state.Store // the memory store made for a Config without one
	jobs chan *job
	// held bounds the bytes of the batches submitted and not done
	// (Config.QueueBytes); a job's weight is released when it is done.
	held *semaphore.Weighted
	// closing is canceled when the driver starts closing (quit).
	closing     context.Context
	stopClosing context.CancelFunc
	// starved is set, and wake signalled, when a Submit waits for bytes
	// held: the driver then commits without waiting for CommitEvery, so
	// that the batches it holds are done and their bytes given back.
	starved atomic.Bool
	wake    chan struct{}
	// decodeQ feeds the decoding goroutines (Config.Decoders), in the
	// order of jobs; decodeCfg is what they decode with.
	decodeQ   chan *job
	decodeCfg atomic.Pointer[decodeConfig]
	quit      chan struct{}
	done      chan struct{}
	checks    []healthCheck   // what Readiness checks besides (health.go)
	ctx       context.Context // the driver's goroutine's: never canceled

	mu     sync.RWMutex
	closed bool
	// sending counts the submissions between their check of closed and
	// their job's queueing (or giving up): they register under mu, so
	// that none starts once closed is set, and the driver waits for them
	// before its last drain of the queue. They wait for room without mu:
	// the driver takes mu to count each batch it finishes.
	sending  sync.WaitGroup
	endInput bool // Close, not Stop
	closeErr error
	fatal    error // a strict run's first bad record, or a failed commit of a batch run
	storeErr error // the error of the last commit, if it failed
	stats    Stats

	// Owned by the driver's goroutine.
	eng         *engine.Engine
	dec         *decoder // decodes in the driver's goroutine
	dedup       *ingest.Dedup
	cur         *job
	newest      time.Time // newest event time seen
	swept       time.Time // newest event time at the last sweep
	lastArrival time.Time // wall time of the last event
	redelivered time.Time // wall time of the last look in the outbox (replicas)
	idleMark    time.Time // last watermark set by the idle clock
	dirty       bool      // alerts or writes not yet committed
	lastCommit  time.Time
	retired     engine.Stats // counts of engines replaced by reloads
	drops       *dropTracker // what the rules dropped (drops.go)
}

// Stats counts what a driver read and did.
type Stats struct {
	// Files and Bytes are the input files started and the input bytes
	// read, as the sources count them.
	Files int64
	Bytes int64
	// Records, Events, Bad and Skipped are the readers' counts
	// (ingest.Stats) summed over the inputs.
	Records, Events, Bad, Skipped int64
	// Duplicates are events dropped as repeated deliveries.
	Duplicates int64
	// Warnings are records read with a warning: repeated object keys that
	// the rules' fields read two ways (ingest.ErrAmbiguous).
	Warnings int64
	// Engine holds the engine's counts per rule.
	Engine engine.Stats
}

type jobKind int

const (
	jobBatch jobKind = iota
	jobReload
)

// job is one unit of work for the driver's goroutine.
type job struct {
	kind     jobKind
	b        *Batch
	rules    []*rule.Compiled
	received time.Time
	weight   int64    // its part of Driver.held
	dec      *decoded // being decoded by a decoding goroutine, if any
	res      Result
	reply    chan Result // reloads
}

// New builds the engine and starts the driver's goroutine.
func New(cfg Config) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, log: cfg.Logger, jobs: make(chan *job, cfg.QueueSize), held: semaphore.NewWeighted(cfg.QueueBytes),
		quit: make(chan struct{}), done: make(chan struct{}), ctx: context.Background()}
	d.dec = &decoder{d: d}
	d.closing, d.stopClosing = context.WithCancel(context.Background())
	d.wake = make(chan struct{}, 1)
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	d.m = newMetrics(reg)
	base := cfg.Store
	if base == nil {
		d.own = mem.New()
		base = d.own
	}
	d.ov = overlay.New(base, d.flushSink)
	d.drops = newDropTracker(d)
	if cfg.Dedup > 0 {
		dd, err := ingest.NewDedup(cfg.Dedup)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		d.dedup = dd
	}
	eng, err := d.newEngine(cfg.Rules)
	if err != nil {
		return nil, err
	}
	d.eng = eng
	d.decodeCfg.Store(d.newDecodeConfig(1, eng))
	if cfg.Decoders > 0 {
		d.decodeQ = make(chan *job, cfg.QueueSize+1)
		for range cfg.Decoders {
			go d.decodeLoop()
		}
	}
	if err := d.drops.restore(d.ctx); err != nil {
		return nil, fmt.Errorf("run: cannot read the newest event time of the last run: %w", err)
	}
	d.drops.rules(cfg.Rules)
	d.m.rules.Set(float64(len(cfg.Rules)))
	d.m.reg.MustRegister(newStoreCollector(d.ov))
	if ost, ok := cfg.Sink.(OutputStatser); ok {
		d.m.reg.MustRegister(newOutputCollector(ost))
	}
	d.lastCommit = cfg.Now()
	go d.loop()
	return d, nil
}

func (d *Driver) newEngine(rules []*rule.Compiled) (*engine.Engine, error) {
	var shared state.Store
	if d.cfg.Replica != "" {
		shared = d.ov.Base()
	}
	return engine.New(rules, engine.Options{
		Sink: driverSink{d}, Store: d.ov, Materialize: d.cfg.Registry.Materialize,
		Replica: d.cfg.Replica, Shared: shared, Now: d.cfg.Now, OutboxLease: d.cfg.OutboxLease,
		LearnOnly: d.cfg.LearnOnly, GroupUpdates: d.cfg.GroupUpdates, GroupUpdateEvery: d.cfg.GroupUpdateEvery,
		Windows: d.cfg.Policy.Windows, RuleMemoryBudget: d.cfg.RuleMemoryBudget, Hunt: d.drops.hunt(),
		OnError: func(id string, err error) {
			d.m.ruleErrors.WithLabelValues(id).Inc()
			d.drops.ruleError(id, err)
			if d.cfg.OnRuleError != nil {
				d.cfg.OnRuleError(id, err)
			} else {
				d.log.Warn("rule error", "rule", id, "err", err)
			}
		},
	})
}

// Fields is the union of the fields the loaded rules read.
func (d *Driver) Fields() event.FieldSet {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.eng.Fields()
}

// Store returns the store the driver writes to (its write overlay), for
// sources that keep state of their own (a followed file's position) and
// read it back before they start.
func (d *Driver) Store() state.Store { return d.ov }

// Replica is the name the driver runs under among replicas (Config.Replica),
// or "".
func (d *Driver) Replica() string { return d.cfg.Replica }

// Metrics returns the registry of the driver's metrics.
func (d *Driver) Metrics() *prometheus.Registry { return d.m.reg }

// Ready reports whether the driver takes batches and its state store
// takes writes (Health is nil).
func (d *Driver) Ready() bool { return d.Health() == nil }

// Health says why the driver cannot take batches now: it is closing, a
// strict run failed, or the last commit to the state store failed (a full
// disk, an unreachable store) — until a commit succeeds again. The driver
// retries a failed commit at its next tick, so a store that recovers makes
// it ready without new batches.
func (d *Driver) Health() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.fatal != nil:
		return d.fatal
	case d.storeErr != nil:
		return fmt.Errorf("the state store cannot be written: %w", d.storeErr)
	}
	return nil
}

// Stats returns the counts so far. The engine's counts are those of the
// last finished batch.
func (d *Driver) Stats() Stats {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.stats
}

// driverSink counts each alert and measures its latency before handing it
// to the configured sink. It runs in the driver's goroutine.
type driverSink struct{ d *Driver }

func (s driverSink) Write(ctx context.Context, a *alert.Alert) error {
	d := s.d
	d.m.alerted(a)
	d.dirty = true
	var since time.Duration
	now, received := d.cfg.Now(), d.lastArrival
	if j := d.cur; j != nil {
		received = j.received
		since = now.Sub(j.received)
	}
	d.m.latency(a, kindOf(a), now, received)
	if d.cfg.OnAlert != nil {
		d.cfg.OnAlert(a, since)
	}
	return d.cfg.Sink.Write(ctx, a)
}

func (s driverSink) Close() error { return nil }

// flushSink makes the alerts handed to the sink durable; the overlay calls
// it before each commit.
func (d *Driver) flushSink() error {
	switch f := d.cfg.Sink.(type) {
	case alert.Flusher:
		ctx, cancel := context.WithTimeout(context.Background(), DefaultCommitTimeout)
		defer cancel()
		return f.Flush(ctx)
	case interface{ Flush() error }:
		return f.Flush()
	}
	return nil
}

// Submit queues b, waiting for room until ctx ends. It returns ErrClosed
// once the driver is closing, and the run's error once a strict run met a
// bad record. When Submit returns an error, b.Release and b.Done are not
// called.
func (d *Driver) Submit(ctx context.Context, b *Batch) error {
	return d.submit(ctx, &job{kind: jobBatch, b: b, received: b.Received}, true)
}

// TrySubmit queues b if there is room, and returns ErrBusy at once if not.
func (d *Driver) TrySubmit(b *Batch) error {
	return d.submit(context.Background(), &job{kind: jobBatch, b: b, received: b.Received}, false)
}

func (d *Driver) submit(ctx context.Context, j *job, wait bool) error {
	d.mu.RLock()
	switch {
	case d.fatal != nil:
		err := d.fatal
		d.mu.RUnlock()
		return err
	case d.closed:
		d.mu.RUnlock()
		return ErrClosed
	}
	d.sending.Add(1)
	d.mu.RUnlock()
	defer d.sending.Done()
	if j.received.IsZero() {
		j.received = d.cfg.Now()
	}
	if j.kind == jobBatch {
		j.weight = min(max(j.b.Bytes, 1), d.cfg.QueueBytes)
		if err := d.hold(ctx, j, wait); err != nil {
			return err
		}
	}
	if j.kind == jobBatch && d.decodeQ != nil {
		j.dec = getDecoded()
	}
	queued := func() error {
		d.m.queue.Inc()
		if j.dec != nil {
			// Never blocks: the queue holds at most one job more than
			// the driver's queue.
			d.decodeQ <- j
		}
		return nil
	}
	select {
	case d.jobs <- j:
		return queued()
	default:
	}
	if !wait {
		j.dec = nil
		d.release(j)
		return ErrBusy
	}
	select {
	case d.jobs <- j:
		return queued()
	case <-ctx.Done():
		j.dec = nil
		d.release(j)
		return ctx.Err()
	case <-d.quit:
		j.dec = nil
		d.release(j)
		return ErrClosed
	}
}

// hold takes j's weight of the bytes the driver may hold (QueueBytes),
// waiting for it if wait, until ctx ends or the driver closes (whose last
// drain waits for the submissions under way); without wait it returns
// ErrBusy at once if they are taken.
func (d *Driver) hold(ctx context.Context, j *job, wait bool) error {
	j.weight = min(max(j.b.Bytes, 1), d.cfg.QueueBytes)
	if !wait {
		if !d.held.TryAcquire(j.weight) {
			j.weight = 0
			return ErrBusy
		}
	} else if !d.held.TryAcquire(j.weight) {
		d.starved.Store(true)
		select {
		case d.wake <- struct{}{}:
		default:
		}
		actx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(d.closing, cancel)
		err := d.held.Acquire(actx, j.weight)
		stop()
		cancel()
		if err != nil {
			j.weight = 0
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return ErrClosed
		}
	}
	d.m.queueBytes.Add(float64(j.weight))
	return nil
}

// release gives back j's weight, once j is done or not queued.
func (d *Driver) release(j *job) {
	if j.weight > 0 {
		d.held.Release(j.weight)
		d.m.queueBytes.Sub(float64(j.weight))
		j.weight = 0
	}
}

// SubmitWait submits b and waits until it is durable, returning its
// result: the way a sender that acknowledges upstream uses the driver.
// With wait false a full queue gives ErrBusy at once. If ctx ends first,
// the batch is still evaluated and committed, and ctx's error returned.
func (d *Driver) SubmitWait(ctx context.Context, b *Batch, wait bool) (Result, error) {
	done := make(chan Result, 1)
	inner := b.Done
	b.Done = func(r Result) {
		if inner != nil {
			inner(r)
		}
		done <- r
	}
	var err error
	if wait {
		err = d.Submit(ctx, b)
	} else {
		err = d.TrySubmit(b)
	}
	if err != nil {
		return Result{}, err
	}
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Reload swaps the rules between batches. The open runs of ES|QL rules
// whose query and schedule are unchanged carry over to the new engine
// (engine.Handover); the old engine's other open runs are closed (their
// alerts raised), so a reload is a run boundary only for ES|QL rules that
// changed or went. new_terms history and the ids of alerts raised live in
// the store and carry over.
func (d *Driver) Reload(ctx context.Context, rules []*rule.Compiled) error {
	if len(rules) == 0 {
		return errors.New("run: no rules")
	}
	j := &job{kind: jobReload, rules: rules, reply: make(chan Result, 1)}
	if err := d.submit(ctx, j, true); err != nil {
		return err
	}
	select {
	case r := <-j.reply:
		if r.Err != nil {
			d.m.reloads.WithLabelValues("refused").Inc()
		}
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RefuseReload counts a reload refused before it reached the driver (rule
// files with errors).
func (d *Driver) RefuseReload() { d.m.reloads.WithLabelValues("refused").Inc() }

// Close stops taking batches, evaluates those already queued, closes the
// engine's open runs (raising their alerts: the end of the input), sweeps,
// flushes the sink and commits the state. It returns the run's error: a
// strict run's bad record, or a commit that failed. It does not close the
// sink or the store. Close and Stop are idempotent: after the first, both
// wait for it and return its error.
func (d *Driver) Close(ctx context.Context) error { return d.shut(ctx, true) }

// Stop is Close without the end of the input: the queued batches are
// evaluated and the state committed, but open ES|QL runs and dedup groups
// are checkpointed, not closed, so that a later driver on the same store
// (WindowsRestore) goes on with them as if nothing had stopped. A scan
// that is interrupted stops; so does a server handing over to another.
func (d *Driver) Stop(ctx context.Context) error { return d.shut(ctx, false) }

func (d *Driver) shut(ctx context.Context, end bool) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		<-d.done
		return d.closeErr
	}
	d.closed, d.endInput = true, end
	d.mu.Unlock()
	close(d.quit)
	d.stopClosing()
	select {
	case <-d.done:
	case <-ctx.Done():
		return fmt.Errorf("run: cannot drain before the deadline: %w", ctx.Err())
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.closeErr
}

// setFatal ends a run that cannot go on: later submissions get err.
func (d *Driver) setFatal(err error) {
	d.mu.Lock()
	if d.fatal == nil {
		d.fatal = err
	}
	d.mu.Unlock()
}

// Format returns the forced input format ("" or "auto": detected).
func (d *Driver) Format() string { return d.cfg.Format }

// Queued returns the number of batches waiting for the driver.
func (d *Driver) Queued() int { return len(d.jobs) }
