package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/internal/tail"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors of Pipeline submissions; test with errors.Is.
var (
	// ErrBusy means the engine's queue is full: the caller should answer
	// 429 or 503 and let the sender retry.
	ErrBusy = errors.New("engine queue is full")
	// ErrClosed means the pipeline is shutting down or has shut down.
	ErrClosed = errors.New("pipeline is closed")
)

// Defaults of PipelineConfig.
const (
	DefaultLateness       = 30 * time.Second
	DefaultIdleCheck      = time.Second
	DefaultQueueSize      = 64
	DefaultMaxGroupEvents = 50000
	DefaultMaxGroupDelay  = 100 * time.Millisecond
	DefaultCommitTimeout  = 30 * time.Second
)

// PipelineConfig configures a Pipeline.
type PipelineConfig struct {
	// Rules are the compiled rules to run. Required.
	Rules []*rule.Compiled
	// Store is the state store (alert ids raised, new-terms history,
	// input positions). Required. The pipeline writes to it in groups
	// (see Pipeline) and never closes it.
	Store state.Store
	// Sink receives the alerts: alert.Outputs, or any alert.Sink. A sink
	// that is an alert.Flusher (or has a Flush() error method) is flushed
	// before each commit.
	Sink alert.Sink
	// Registry holds the input formats. Required.
	Registry *ingest.Registry
	// Format forces one input format ("" or "auto" detects each record).
	Format string
	// MaxRecordBytes limits one record (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
	// Lateness is how far behind the newest event time a windowed run
	// still takes events (0: DefaultLateness; negative is invalid).
	Lateness time.Duration
	// IdleCheck is how often an idle input's windows are advanced by the
	// wall clock (0: DefaultIdleCheck).
	IdleCheck time.Duration
	// SweepEvery is how often (wall clock) the store's expired entries are
	// removed (0: DefaultSweepEvery).
	SweepEvery time.Duration
	// LearnOnly makes new_terms rules learn without alerting.
	LearnOnly bool
	// GroupUpdates delivers the first alert of a dedup group at once and
	// the group again, with its count, when it closes (engine.Options).
	GroupUpdates bool
	// QueueSize bounds the batches waiting for the engine
	// (0: DefaultQueueSize).
	QueueSize int
	// MaxGroupEvents and MaxGroupDelay bound a commit group: batches are
	// evaluated until the queue is empty or a bound is reached, then the
	// outputs are flushed, the state committed and the batches
	// acknowledged (0: the defaults).
	MaxGroupEvents int
	MaxGroupDelay  time.Duration
	// Logger receives the pipeline's log (nil: slog.Default()).
	Logger *slog.Logger
	// OnAlert, if set, is called in the engine's goroutine with each alert
	// and the time since its input was received (tests, load tests).
	OnAlert func(a *alert.Alert, sinceReceipt time.Duration)
}

// Pipeline evaluates the events of every input (webhook bodies, followed
// files, streams) with one engine in one goroutine, the engine's goroutine,
// fed by a bounded queue. The engine is fast (about a microsecond per event
// and rule set), so one goroutine keeps up; decoding happens there too, on
// the request's buffer, without copies.
//
// Batches are committed in groups. After a group of batches is evaluated,
// the outputs are flushed (their alerts are durable or delivered), then the
// group's state writes (alert ids, new terms, file positions, and the open
// runs of ES|QL rules, which engine.Checkpoint writes just before) are
// committed to the store in one transaction, then the batches are
// acknowledged. A crash loses only unacknowledged batches, which their
// senders send again; the restarted engine restores the open runs as of
// the last commit (engine.WindowsRestore), so a burst spanning the crash
// is aggregated whole. The alerts raised again carry the same ids, and the
// outputs deduplicate them. A batch committed whose answer was lost (the
// crash between commit and reply) is sent again and counted twice in the
// open ES|QL runs.
//
// The methods of a Pipeline are safe for concurrent use.
type Pipeline struct {
	cfg   PipelineConfig
	log   *slog.Logger
	m     *metrics
	ov    *overlay.Store
	jobs  chan *job
	quit  chan struct{}
	done  chan struct{}
	ctx   context.Context    // the engine's: never canceled
	inCtx context.Context    // the inputs': canceled by Close
	stop  context.CancelFunc // cancels inCtx
	input sync.WaitGroup

	mu     sync.RWMutex
	closed bool

	// Owned by the engine's goroutine.
	eng          *engine.Engine
	fields       event.FieldSet
	readers      map[string]*ingest.Reader
	listFastPath bool // EventList bodies are read item by item
	cur          *job
	newest       time.Time // newest event time seen
	swept        time.Time // wall-clock time of the last sweep of the store
	lastArrival  time.Time // wall time of the last event
	idleMark     time.Time // last watermark set by the idle clock
	dirty        bool      // alerts or writes not yet committed outside a job
}

// jobKind says what a job carries.
type jobKind int

const (
	jobBody   jobKind = iota // a webhook body
	jobChunk                 // lines of a followed file
	jobEvents                // events read from a stream
	jobReload                // new rules
)

// job is one unit of work for the engine's goroutine.
type job struct {
	kind     jobKind
	input    string // metrics label and reader key: webhook, tail, stdin
	cluster  string
	origin   string
	body     []byte
	items    []span
	chunk    tail.Chunk
	posKey   string // followed path (positions key)
	pos      *state.Positions
	events   []*event.Event
	rules    []*rule.Compiled
	received time.Time
	release  func() // called once the body is no longer used
	done     chan Result
	res      Result
}

// Result is what became of one submitted batch.
type Result struct {
	// Events is the number of events read from the batch and evaluated.
	Events int
	// Bad is the number of records (or parts of records) that could not be
	// read; Errors holds the first few reasons.
	Bad    int
	Errors []string
	// Err is set when the batch could not be evaluated or committed: the
	// sender should retry.
	Err error
}

// maxResultErrors bounds Result.Errors.
const maxResultErrors = 5

// NewPipeline builds the engine and starts its goroutine.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("pipeline: no state store")
	case cfg.Sink == nil:
		return nil, errors.New("pipeline: no alert sink")
	case cfg.Registry == nil:
		return nil, errors.New("pipeline: no format registry")
	case len(cfg.Rules) == 0:
		return nil, errors.New("pipeline: no rules")
	case cfg.Lateness < 0:
		return nil, fmt.Errorf("pipeline: lateness %s is negative", cfg.Lateness)
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = DefaultLateness
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.IdleCheck <= 0 {
		cfg.IdleCheck = DefaultIdleCheck
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxGroupEvents <= 0 {
		cfg.MaxGroupEvents = DefaultMaxGroupEvents
	}
	if cfg.MaxGroupDelay <= 0 {
		cfg.MaxGroupDelay = DefaultMaxGroupDelay
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Pipeline{cfg: cfg, log: cfg.Logger, m: newMetrics(), jobs: make(chan *job, cfg.QueueSize),
		quit: make(chan struct{}), done: make(chan struct{}), readers: map[string]*ingest.Reader{}}
	p.ov = overlay.New(cfg.Store, p.flushSink)
	p.listFastPath = cfg.Format == "" || cfg.Format == "auto" || cfg.Format == k8saudit.Name
	p.ctx = context.Background()
	p.inCtx, p.stop = context.WithCancel(context.Background())
	if err := p.Validate(cfg.Format); err != nil {
		return nil, err
	}
	eng, err := p.newEngine(cfg.Rules)
	if err != nil {
		return nil, err
	}
	p.eng, p.fields = eng, eng.Fields()
	p.m.rules.Set(float64(len(cfg.Rules)))
	p.m.reg.MustRegister(newStoreCollector(p.ov))
	if ost, ok := cfg.Sink.(OutputStatser); ok {
		p.m.reg.MustRegister(newOutputCollector(ost))
	}
	go p.loop()
	return p, nil
}

// Validate checks that format names a known format of the registry.
func (p *Pipeline) Validate(format string) error {
	_, err := ingest.NewReader(p.cfg.Registry, ingest.Options{Format: format})
	return err
}

func (p *Pipeline) newEngine(rules []*rule.Compiled) (*engine.Engine, error) {
	return engine.New(rules, engine.Options{
		Sink: pipeSink{p}, Store: p.ov, Materialize: p.cfg.Registry.Materialize,
		Lateness: p.cfg.Lateness, LearnOnly: p.cfg.LearnOnly, GroupUpdates: p.cfg.GroupUpdates,
		Windows: engine.WindowsRestore,
		OnError: func(id string, err error) {
			p.m.ruleErrors.WithLabelValues(id).Inc()
			p.log.Warn("rule error", "rule", id, "err", err)
		},
	})
}

// Ready reports whether the pipeline takes batches: rules are loaded, the
// store is open and it is not shutting down.
func (p *Pipeline) Ready() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return !p.closed
}

// MetricsRegistry returns the registry of the pipeline's metrics, which
// the Server serving it shares.
func (p *Pipeline) MetricsRegistry() *prometheus.Registry { return p.m.reg }

// pipeSink counts each alert and measures its latency before handing it
// to the configured sink. It runs in the engine's goroutine.
type pipeSink struct{ p *Pipeline }

func (s pipeSink) Write(ctx context.Context, a *alert.Alert) error {
	p := s.p
	p.m.alerted(a)
	p.dirty = true
	if p.cur != nil && !p.cur.received.IsZero() {
		d := time.Since(p.cur.received)
		p.m.alertDelay.Observe(d.Seconds())
		if p.cfg.OnAlert != nil {
			p.cfg.OnAlert(a, d)
		}
	} else if p.cfg.OnAlert != nil {
		p.cfg.OnAlert(a, 0)
	}
	return p.cfg.Sink.Write(ctx, a)
}

func (s pipeSink) Close() error { return nil }

// flushSink makes the alerts handed to the sink durable; the overlay calls
// it before each commit.
func (p *Pipeline) flushSink() error {
	switch f := p.cfg.Sink.(type) {
	case alert.Flusher:
		ctx, cancel := context.WithTimeout(context.Background(), DefaultCommitTimeout)
		defer cancel()
		return f.Flush(ctx)
	case interface{ Flush() error }:
		return f.Flush()
	}
	return nil
}

// submit queues j. With wait false a full queue gives ErrBusy at once;
// with wait true it waits for room until ctx ends.
func (p *Pipeline) submit(ctx context.Context, j *job, wait bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	if !wait {
		select {
		case p.jobs <- j:
			p.m.queue.Inc()
			return nil
		default:
			return ErrBusy
		}
	}
	select {
	case p.jobs <- j:
		p.m.queue.Inc()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.quit:
		return ErrClosed
	}
}

// Body is one webhook request body.
type Body struct {
	// Input names the input in metrics ("webhook").
	Input string
	// Cluster is the cluster the events come from (stamped on events
	// that do not name one).
	Cluster string
	// Data is the body; the pipeline reads it until Release is called.
	Data []byte
	// Received is when the request arrived.
	Received time.Time
	// Release, if set, is called once Data is no longer used (possibly
	// after SubmitBody returned, if ctx ended first).
	Release func()

	// items are the spans of the items of an EventList body, found by
	// the request's goroutine (splitEventList) so that the engine's
	// goroutine only decodes.
	items []span
}

// span is the [start, end) of one item in a body.
type span struct{ start, end int }

// splitEventList returns the spans of the items of an EventList body, or
// false when the body is not a well-formed EventList (the engine's
// goroutine then reads it the general way and reports what is wrong).
func splitEventList(body []byte, dst []span) ([]span, bool) {
	i := jsonx.SkipWS(body, 0)
	if !bytes.HasPrefix(body[i:], eventListPrefix) {
		return dst, false
	}
	var it jsonx.ObjectIter
	if it.Begin(body, i) != nil {
		return dst, false
	}
	found := false
	for it.Next() {
		if string(it.Key) != "items" {
			continue
		}
		if found || jsonx.TypeAt(body, it.Value) != jsonx.Array {
			return dst, false
		}
		found = true
		end, err := jsonx.ArrayEach(body, it.Value, func(at int) (int, error) {
			// Each item is validated here, in the request's goroutine, so
			// that the engine's goroutine decodes it without checking it
			// again (Reader.RecordValidated).
			end, err := jsonx.Skip(body, at)
			if err == nil {
				dst = append(dst, span{at, end})
			}
			return end, err
		})
		if err != nil {
			return dst, false
		}
		it.Consumed(end)
	}
	if it.Err != nil || !found || jsonx.SkipWS(body, it.End) != len(body) {
		return dst, false
	}
	return dst, true
}

// SubmitBody evaluates a webhook body and waits until it is committed. It
// returns ErrBusy at once when the queue is full, ErrClosed when shutting
// down, and ctx's error when ctx ends first (the batch is still evaluated).
// When SubmitBody returns an error, Release is called by the pipeline
// anyway.
func (p *Pipeline) SubmitBody(ctx context.Context, b Body) (Result, error) {
	j := &job{kind: jobBody, input: b.Input, cluster: b.Cluster, origin: "webhook:" + b.Cluster, body: b.Data,
		items: b.items, received: b.Received, release: b.Release, done: make(chan Result, 1)}
	if j.input == "" {
		j.input = "webhook"
	}
	if err := p.submit(ctx, j, false); err != nil {
		if b.Release != nil {
			b.Release()
		}
		return Result{}, err
	}
	select {
	case r := <-j.done:
		return r, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Follow follows the file at path until ctx ends or Close, evaluating its
// lines and storing its position with the state it produced, so that a
// restart resumes after the last committed line. input names it in metrics
// and positions.
func (p *Pipeline) Follow(ctx context.Context, input, path string, opts tail.Options) error {
	pos, err := state.NewPositions(p.ov, input)
	if err != nil {
		return err
	}
	var start *tail.Position
	if sp, ok, err := pos.Get(ctx, path); err != nil {
		return err
	} else if ok {
		start = &tail.Position{Dev: sp.Dev, Ino: sp.Ino, Offset: sp.Offset, Line: sp.Line}
	}
	rot := opts.OnRotate
	opts.OnRotate = func(path string, r tail.Rotation) {
		p.m.rotations.WithLabelValues(path, r.String()).Inc()
		p.log.Info("followed file rotated", "path", path, "rotation", r.String())
		if rot != nil {
			rot(path, r)
		}
	}
	long := opts.OnTooLong
	opts.OnTooLong = func(file string, line int64) {
		p.m.bad.WithLabelValues(input).Inc()
		p.log.Warn("bad record", "input", input, "origin", fmt.Sprintf("%s:%d", file, line), "err", ingest.ErrTooLarge)
		if long != nil {
			long(file, line)
		}
	}
	if opts.MaxLineBytes == 0 {
		opts.MaxLineBytes = p.cfg.MaxRecordBytes
	}
	ctx, cancel := p.inputContext(ctx)
	if ctx == nil {
		return ErrClosed
	}
	defer cancel()
	defer p.input.Done()
	f := tail.New(path, start, opts)
	return f.Run(ctx, func(c tail.Chunk) error {
		j := &job{kind: jobChunk, input: input, chunk: c, posKey: path, pos: pos, received: time.Now(), done: make(chan Result, 1)}
		if err := p.submit(ctx, j, true); err != nil {
			return err
		}
		r := <-j.done
		return r.Err
	})
}

// inputContext registers an input goroutine; it returns a nil context when
// the pipeline is closed.
func (p *Pipeline) inputContext(ctx context.Context) (context.Context, context.CancelFunc) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, nil
	}
	p.input.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(p.inCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// streamBatch is how many events of a stream go to the engine at once.
const streamBatch = 512

// ReadStream reads a stream (standard input) with every reader of kanon
// scan — any format, gzip, multi-line JSON — and evaluates its events
// until its end, ctx's end or Close.
func (p *Pipeline) ReadStream(ctx context.Context, input, name string, r io.Reader) error {
	ctx, cancel := p.inputContext(ctx)
	if ctx == nil {
		return ErrClosed
	}
	defer cancel()
	defer p.input.Done()
	var evs []*event.Event
	var fields event.FieldSet
	p.mu.RLock()
	fields = p.fields
	p.mu.RUnlock()
	rd, err := ingest.NewReader(p.cfg.Registry, ingest.Options{
		Format: p.cfg.Format, Fields: fields, MaxRecordBytes: p.cfg.MaxRecordBytes,
		OnBad: func(b ingest.BadRecord) {
			p.m.bad.WithLabelValues(input).Inc()
			p.log.Warn("bad record", "input", input, "err", b)
		},
		OnSkip: func(ingest.BadRecord) { p.m.skipped.WithLabelValues(input).Inc() },
	})
	if err != nil {
		return err
	}
	send := func() error {
		if len(evs) == 0 {
			return nil
		}
		j := &job{kind: jobEvents, input: input, events: evs, received: time.Now(), done: make(chan Result, 1)}
		evs = nil
		if err := p.submit(ctx, j, true); err != nil {
			return err
		}
		return (<-j.done).Err
	}
	err = rd.ReadStream(ctx, name, r, func(e *event.Event) error {
		evs = append(evs, e.Clone())
		if len(evs) >= streamBatch {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Reload swaps the rules. The new rules are compiled by the caller; the
// engine is rebuilt in the engine's goroutine between batches. The open
// runs of ES|QL rules whose query and schedule are unchanged carry over to
// the new engine (engine.Handover); the old engine's other open runs are
// closed (their alerts raised), so a reload is a run boundary only for
// ES|QL rules that changed or went. new_terms history and the ids of
// alerts raised live in the store and carry over.
func (p *Pipeline) Reload(ctx context.Context, rules []*rule.Compiled) error {
	if len(rules) == 0 {
		return errors.New("pipeline: no rules")
	}
	j := &job{kind: jobReload, input: "reload", rules: rules, done: make(chan Result, 1)}
	if err := p.submit(ctx, j, true); err != nil {
		return err
	}
	select {
	case r := <-j.done:
		if r.Err != nil {
			p.m.reloads.WithLabelValues("refused").Inc()
		}
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RefuseReload counts a reload refused before it reached the pipeline
// (rule files with errors).
func (p *Pipeline) RefuseReload() { p.m.reloads.WithLabelValues("refused").Inc() }

// Close stops the inputs, evaluates the batches already queued, closes
// the engine's open windowed runs (raising their alerts), flushes the
// outputs and commits the state. It does not close the sink or the store.
func (p *Pipeline) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.stop()
	p.input.Wait()
	close(p.quit)
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("pipeline: cannot drain before the deadline: %w", ctx.Err())
	}
	if p.dirty || p.ov.Pending() > 0 {
		return errors.New("pipeline: state left uncommitted at shutdown")
	}
	return nil
}

// loop is the engine's goroutine. It evaluates jobs as they come and
// commits in groups: while one group's commit (output flush, store fsync)
// runs in the background, the next jobs are evaluated and wait for the
// following commit, so the engine never waits for the disk.
func (p *Pipeline) loop() {
	defer close(p.done)
	tick := time.NewTicker(p.cfg.IdleCheck)
	defer tick.Stop()
	var waiting, inFlight []*job
	committing := false
	done := make(chan error, 1)
	var started time.Time
	start := func() {
		p.checkpoint()
		layer, err := p.ov.Freeze()
		if err != nil {
			p.ack(waiting, err)
			waiting = nil
			return
		}
		inFlight, waiting = waiting, nil
		p.dirty = false
		committing, started = true, time.Now()
		go func() {
			ctx, cancel := context.WithTimeout(p.ctx, DefaultCommitTimeout)
			err := p.ov.CommitLayer(ctx, layer)
			cancel()
			done <- err
		}()
	}
	finish := func(err error) {
		committing = false
		p.m.commitTime.Observe(time.Since(started).Seconds())
		if err != nil {
			p.log.Error("cannot commit", "err", err)
			p.dirty = true
		}
		p.ack(inFlight, err)
		inFlight = nil
	}
	for {
		select {
		case j := <-p.jobs:
			waiting = p.gather(append(waiting, j), len(waiting))
			if !committing {
				start()
			}
		case err := <-done:
			finish(err)
			if len(waiting) > 0 || p.dirty {
				start()
			}
		case <-tick.C:
			p.idleAdvance()
			p.sweep()
			if p.dirty && !committing {
				start()
			}
		case <-p.quit:
			if committing {
				finish(<-done)
			}
			for {
				select {
				case j := <-p.jobs:
					waiting = p.gather(append(waiting, j), len(waiting))
					continue
				default:
				}
				break
			}
			p.cur = nil
			if err := p.eng.Close(p.ctx); err != nil {
				p.log.Error("cannot close the open runs", "err", err)
			}
			p.checkpoint()
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(p.ctx, DefaultCommitTimeout)
			err := p.ov.Commit(ctx)
			cancel()
			p.m.commitTime.Observe(time.Since(t0).Seconds())
			if err != nil {
				p.log.Error("cannot commit", "err", err)
			} else {
				p.dirty = false
			}
			p.ack(waiting, err)
			return
		}
	}
}

// DefaultSweepEvery is how often (wall clock) serve removes the store's
// expired entries unless PipelineConfig.SweepEvery says otherwise.
const DefaultSweepEvery = time.Minute

// sweep removes the store's entries that expired before the newest event
// time seen, so that the store's size follows the rules' history windows.
// It works on the base store: entries pending in the overlay are not
// touched, and nothing pending is committed ahead of its batch.
func (p *Pipeline) sweep() {
	if p.newest.IsZero() || time.Since(p.swept) < p.cfg.SweepEvery {
		return
	}
	p.swept = time.Now()
	n, err := p.ov.Base().DeleteExpired(p.ctx, p.newest)
	if err != nil {
		p.log.Warn("cannot remove expired state", "err", err)
		return
	}
	if n > 0 {
		p.log.Debug("removed expired state", "entries", n)
	}
}

// checkpoint writes the engine's changed ES|QL runs to the overlay, so
// that the commit that follows holds them with the alert ids and positions
// of the same batches: an acknowledged batch's events are in the stored
// runs. A failure (the overlay refuses a write) is logged: the runs stay
// marked changed and the next checkpoint writes them.
func (p *Pipeline) checkpoint() {
	if err := p.eng.Checkpoint(p.ctx); err != nil {
		p.log.Error("cannot checkpoint the open ES|QL runs", "err", err)
	}
}

// gather runs the jobs of group from index from on, then the queued ones,
// up to the group's bounds.
func (p *Pipeline) gather(group []*job, from int) []*job {
	start := time.Now()
	events := 0
	for _, j := range group[from:] {
		events += p.run(j)
	}
	for events < p.cfg.MaxGroupEvents && time.Since(start) < p.cfg.MaxGroupDelay {
		select {
		case j := <-p.jobs:
			group = append(group, j)
			events += p.run(j)
			continue
		default:
		}
		break
	}
	return group
}

// ack answers the jobs of a committed group.
func (p *Pipeline) ack(group []*job, err error) {
	for _, j := range group {
		if j.res.Err == nil && err != nil {
			j.res.Err = err
		}
		j.done <- j.res
	}
}

// run evaluates one job and returns the number of events it held.
func (p *Pipeline) run(j *job) int {
	p.m.queue.Dec()
	p.cur = j
	defer func() { p.cur = nil }()
	switch j.kind {
	case jobBody:
		p.runBody(j)
		if j.release != nil {
			j.release()
			j.release = nil
		}
		p.m.batchSize.Observe(float64(j.res.Events))
	case jobChunk:
		p.runChunk(j)
	case jobEvents:
		n := 0
		for _, e := range j.events {
			if err := p.process(e); err != nil {
				j.res.Err = err
				break
			}
			n++
		}
		j.res.Events = n
		p.m.counted(j.input, "", len(j.events), n)
	case jobReload:
		p.runReload(j)
	}
	return j.res.Events
}

// reader returns the reader of an input, built with the fields the rules
// read; bad records are reported to the current job.
func (p *Pipeline) reader(input string) *ingest.Reader {
	if rd := p.readers[input]; rd != nil {
		return rd
	}
	rd, err := ingest.NewReader(p.cfg.Registry, ingest.Options{
		Format: p.cfg.Format, Fields: p.fields, MaxRecordBytes: p.cfg.MaxRecordBytes,
		OnBad:  func(b ingest.BadRecord) { p.reportBad(input, b) },
		OnSkip: func(ingest.BadRecord) { p.m.skipped.WithLabelValues(input).Inc() },
	})
	if err != nil {
		panic("BUG: the format was validated when the pipeline was built: " + err.Error())
	}
	p.readers[input] = rd
	return rd
}

// reportBad counts a bad record and reports it to the current job.
func (p *Pipeline) reportBad(input string, b ingest.BadRecord) {
	p.m.bad.WithLabelValues(input).Inc()
	if j := p.cur; j != nil {
		j.res.Bad++
		if len(j.res.Errors) < maxResultErrors {
			j.res.Errors = append(j.res.Errors, b.Error())
		}
	}
	p.log.Debug("bad record", "input", input, "err", b)
}

// process evaluates one event.
func (p *Pipeline) process(e *event.Event) error {
	t0 := time.Now()
	err := p.eng.Process(p.ctx, e)
	p.m.evalTime.Observe(time.Since(t0).Seconds())
	if t := e.Time(); t.After(p.newest) {
		p.newest = t
	}
	p.lastArrival = t0
	return err
}

func (p *Pipeline) runBody(j *job) {
	rd := p.reader(j.input)
	n, evaluated := 0, 0
	fn := func(e *event.Event) error {
		if e.ClusterName == "" {
			e.ClusterName = j.cluster
		}
		n++
		if err := p.process(e); err != nil {
			return err
		}
		evaluated++
		return nil
	}
	var err error
	if len(j.items) > 0 && p.listFastPath {
		for i, sp := range j.items {
			if err = rd.RecordValidated(event.Origin{Name: j.origin, Line: int64(i + 1)}, j.body[sp.start:sp.end], fn); err != nil {
				break
			}
		}
	} else if body := bytes.TrimLeft(j.body, " \t\r\n"); p.listFastPath && bytes.HasPrefix(body, eventListPrefix) {
		err = p.eachItem(j, rd, body, fn)
	} else {
		err = rd.Record(event.Origin{Name: j.origin}, j.body, fn)
	}
	if err != nil {
		j.res.Err = err
	}
	j.res.Events = evaluated
	p.m.counted(j.input, j.cluster, n, evaluated)
}

// eventListPrefix starts the EventLists kube-apiserver sends.
var eventListPrefix = []byte(`{"kind":"EventList"`)

// consumerError marks an error of the engine (not of the input) inside
// eachItem.
type consumerError struct{ error }

func (e consumerError) Unwrap() error { return e.error }

// eachItem reads an EventList body item by item, each as a record of its
// own (origin line = item number). It takes one pass over the list, where
// the generic reader sniffs the whole body twice before decoding it; the
// events are the same. Structural errors are reported as bad records; the
// items before them stand. It returns only the engine's errors.
func (p *Pipeline) eachItem(j *job, rd *ingest.Reader, body []byte, fn func(*event.Event) error) error {
	bad := func(err error) {
		p.reportBad(j.input, ingest.BadRecord{Origin: event.Origin{Name: j.origin}, Err: err})
	}
	var it jsonx.ObjectIter
	if err := it.Begin(body, 0); err != nil {
		bad(err)
		return nil
	}
	found := false
	for it.Next() {
		if string(it.Key) != "items" {
			continue
		}
		found = true
		switch jsonx.TypeAt(body, it.Value) {
		case jsonx.Null:
			continue
		case jsonx.Array:
		default:
			bad(fmt.Errorf("%w: items: expected an array", ingest.ErrShape))
			return nil
		}
		idx := int64(0)
		end, err := jsonx.ArrayEach(body, it.Value, func(at int) (int, error) {
			// Each item is validated here, in the request's goroutine, so
			// that the engine's goroutine decodes it without checking it
			// again (Reader.RecordValidated).
			end, err := jsonx.Skip(body, at)
			if err != nil {
				return end, err
			}
			idx++
			if err := rd.Record(event.Origin{Name: j.origin, Line: idx}, body[at:end], fn); err != nil {
				return end, consumerError{err}
			}
			return end, nil
		})
		if err != nil {
			var ce consumerError
			if errors.As(err, &ce) {
				return ce.error
			}
			bad(fmt.Errorf("items[%d]: %w", idx, err))
			return nil
		}
		it.Consumed(end)
	}
	if it.Err != nil {
		bad(it.Err)
		return nil
	}
	if !found {
		bad(fmt.Errorf("%w: EventList without items", ingest.ErrShape))
	}
	return nil
}

func (p *Pipeline) runChunk(j *job) {
	rd := p.reader(j.input)
	data, line := j.chunk.Data, j.chunk.FirstLine
	n, evaluated := 0, 0
	for len(data) > 0 && j.res.Err == nil {
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(bytes.TrimSpace(l)) > 0 {
			err := rd.Record(event.Origin{Name: j.chunk.File, Line: line}, l, func(e *event.Event) error {
				n++
				if err := p.process(e); err != nil {
					return err
				}
				evaluated++
				return nil
			})
			if err != nil {
				j.res.Err = err
			}
		}
		line++
	}
	j.res.Events = evaluated
	p.m.counted(j.input, "", n, evaluated)
	if j.res.Err != nil {
		return
	}
	end := j.chunk.End
	err := p.ov.Update(p.ctx, time.Time{}, func(tx state.Tx) error {
		return j.pos.PutTx(tx, j.posKey, state.Position{Dev: end.Dev, Ino: end.Ino, Offset: end.Offset, Line: end.Line})
	})
	if err != nil {
		j.res.Err = err
	}
}

func (p *Pipeline) runReload(j *job) {
	eng, err := p.newEngine(j.rules)
	if err != nil {
		j.res.Err = err
		return
	}
	moved := p.eng.Handover(eng)
	if err := p.eng.Close(p.ctx); err != nil {
		p.log.Error("cannot close the open runs of the old rules", "err", err)
	}
	p.checkpoint() // deletes the runs the old engine closed
	p.log.Info("ES|QL runs carried over to the new rules", "runs", moved)
	p.mu.Lock()
	p.eng, p.fields = eng, eng.Fields()
	p.mu.Unlock()
	clear(p.readers)
	p.dirty = true
	p.m.rules.Set(float64(len(j.rules)))
	p.m.reloads.WithLabelValues("ok").Inc()
}

// idleAdvance closes windows by the wall clock when no event has arrived
// for a while: event time is taken to go on at the wall clock's pace from
// the newest event seen, so runs close once that passes their end plus
// the lateness.
func (p *Pipeline) idleAdvance() {
	if p.newest.IsZero() {
		return
	}
	idle := time.Since(p.lastArrival)
	if idle < p.cfg.IdleCheck {
		return
	}
	w := p.newest.Add(idle - p.cfg.Lateness)
	if !w.After(p.idleMark) || !w.After(p.newest.Add(-p.cfg.Lateness)) {
		return
	}
	p.idleMark = w
	if err := p.eng.Advance(p.ctx, w); err != nil {
		p.log.Error("cannot close runs by the wall clock", "err", err)
	}
}
