package alert

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// transport delivers batches of encoded alerts to one receiver. The
// sink's sending goroutine is its only caller, one call at a time.
type transport interface {
	// deliver sends the entries of batch, in order, and sets res[i] to
	// the outcome of batch[i]: nil when the receiver took it, an error
	// wrapping errDuplicate when the receiver already had it (it counts
	// as delivered), a *permanentError when retrying cannot help (the
	// alert is given up), and any other error to retry it. wait is how
	// long the receiver asked to be left alone (Retry-After), 0 if it
	// did not say. deliver returns when ctx ends at the latest.
	deliver(ctx context.Context, batch []entry, res []error) (wait time.Duration)
	// close releases the transport's connections.
	close() error
}

// errDuplicate is the outcome of an alert the receiver already had (a
// 409 from Elasticsearch's create, JetStream's duplicate
// acknowledgement): it counts as delivered.
var errDuplicate = errors.New("the receiver already has this alert")

// permanentError is an outcome that retrying would not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// entry is an alert ready to send: its delivery key and encoded body.
type entry struct {
	id   string
	body []byte
}

// where the sender's current batch is.
const (
	fromNone = iota
	fromQueue
	fromSpool
)

// senderConfig configures a SpooledSink (see OutputConfig for the
// meaning and defaults of each field).
type senderConfig struct {
	typ, name    string
	spoolDir     string
	spoolMaxSize int64
	segmentSize  int64
	queueSize    int
	// batchSize and batchBytes bound a delivery: at most batchSize
	// alerts whose bodies add up to at most batchBytes (the first alert
	// of a batch is sent whatever its size).
	batchSize    int
	batchBytes   int64
	minBackoff   time.Duration
	maxBackoff   time.Duration
	syncInterval time.Duration
	onError      func(error)
}

// SpooledSink is the delivery machinery of every output that sends
// alerts over the network (webhook, Slack, Elasticsearch, Splunk,
// Alertmanager, Loki, syslog, Kafka, NATS): a bounded in-memory queue, a
// disk spool, and one goroutine that delivers them in order, in batches,
// through the output's transport.
//
// Write never waits for the network: the alert is encoded and goes to
// the queue, or to the spool when the spool is not empty or the queue is
// full. A failed delivery moves the queue to the spool (so alerts survive
// a restart) and is retried with exponential backoff and jitter,
// honouring the receiver's Retry-After, until it succeeds; only the
// alerts of a batch that failed are sent again. An outcome that retrying
// cannot change gives the alert up (counted in Failed); when a whole
// batch of several alerts is refused that way, its alerts are sent again
// one by one, so one bad alert costs only itself. Alerts whose delivery
// key was written recently (or is pending in the spool) are skipped as
// duplicates.
//
// A SpooledSink is safe for concurrent use.
type SpooledSink struct {
	cfg    senderConfig
	tr     transport
	encode func(*Alert) ([]byte, error)

	mu       sync.Mutex
	cond     *sync.Cond
	q        []entry
	spool    *Spool
	from     int
	inflight int // entries at the head of q being delivered (from == fromQueue)
	nAck     int // records at the head of the spool being delivered (from == fromSpool)
	seen     *recentIDs
	closing  bool
	closed   bool

	stats     counters
	runCtx    context.Context
	cancelRun context.CancelFunc
	done      chan struct{}
	syncDone  chan struct{}
}

// newSpooledSink opens the spool and starts delivering through tr,
// beginning with the alerts left in the spool by a previous run. On
// error, tr is closed.
func newSpooledSink(cfg senderConfig, tr transport, encode func(*Alert) ([]byte, error)) (*SpooledSink, error) {
	if cfg.name == "" {
		cfg.name = cfg.typ
	}
	if cfg.spoolDir == "" {
		tr.close()
		return nil, fmt.Errorf("%s output %q: no spool directory", cfg.typ, cfg.name)
	}
	if cfg.queueSize <= 0 {
		cfg.queueSize = DefaultQueueSize
	}
	if cfg.batchSize <= 0 {
		cfg.batchSize = 1
	}
	if cfg.batchBytes <= 0 {
		cfg.batchBytes = DefaultBatchBytes
	}
	if cfg.minBackoff <= 0 {
		cfg.minBackoff = DefaultMinBackoff
	}
	if cfg.maxBackoff <= 0 {
		cfg.maxBackoff = max(DefaultMaxBackoff, cfg.minBackoff)
	}
	if cfg.syncInterval <= 0 {
		cfg.syncInterval = DefaultSyncInterval
	}
	s := &SpooledSink{
		cfg: cfg, tr: tr, encode: encode,
		seen:     newRecentIDs(defaultRecentIDs),
		done:     make(chan struct{}),
		syncDone: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	sp, err := OpenSpool(cfg.spoolDir, cfg.spoolMaxSize, cfg.segmentSize, s.seen.add)
	if err != nil {
		tr.close()
		return nil, s.errorf("%w", err)
	}
	s.spool = sp
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	go s.run()
	go s.syncLoop()
	return s, nil
}

// errorf returns an error naming the output.
func (s *SpooledSink) errorf(format string, args ...any) error {
	return fmt.Errorf("%s output %q: "+format, append([]any{s.cfg.typ, s.cfg.name}, args...)...)
}

// Write queues or spools the alert; it never waits for the network. An
// error wrapping ErrSpoolFull means the alert was dropped; one wrapping
// ErrClosed means the sink is closed.
func (s *SpooledSink) Write(_ context.Context, a *Alert) error {
	body, err := s.encode(a)
	if err != nil {
		s.stats.failed.Add(1)
		return s.errorf("cannot encode alert %s: %w", a.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.stats.dropped.Add(1)
		return s.errorf("cannot take alert %s: %w", a.ID, ErrClosed)
	}
	key := a.DeliveryKey()
	if s.seen.has(key) {
		s.stats.duplicates.Add(1)
		return nil
	}
	e := entry{id: key, body: body}
	if s.spool.Len() == 0 && len(s.q) < s.cfg.queueSize {
		s.q = append(s.q, e)
		s.seen.add(key)
		s.cond.Signal()
		return nil
	}
	if len(s.q) > 0 {
		// Full queue (the spool is empty whenever the queue is not):
		// move it to the spool so the order is kept.
		s.spillLocked()
	}
	if _, err := s.spool.Append([]string{e.id}, [][]byte{e.body}); err != nil {
		s.stats.dropped.Add(1)
		err = s.errorf("%w", err)
		s.stats.setErr(err)
		return err
	}
	s.stats.spooled.Add(1)
	s.seen.add(key)
	s.cond.Signal()
	return nil
}

// spillLocked moves the queue, in order, to the (empty) spool. A batch
// being delivered from the queue goes whole or not at all: afterwards it
// is the spool's head, or, when it does not fit, it stays in memory and
// the rest of the queue is dropped. Entries that do not fit are dropped
// and counted. s.mu is held.
func (s *SpooledSink) spillLocked() {
	if len(s.q) == 0 {
		return
	}
	k := 0
	if s.from == fromQueue {
		k = s.inflight
	}
	if k > 0 {
		ids, bodies := splitEntries(s.q[:k])
		if err := s.spool.AppendAll(ids, bodies); err != nil {
			s.stats.dropped.Add(uint64(len(s.q) - k))
			clear(s.q[k:])
			s.q = s.q[:k]
			s.reportLocked(s.errorf("%w", err))
			return
		}
		s.stats.spooled.Add(uint64(k))
		s.from, s.nAck, s.inflight = fromSpool, k, 0
	}
	ids, bodies := splitEntries(s.q[k:])
	n, err := s.spool.Append(ids, bodies)
	s.stats.spooled.Add(uint64(n))
	s.stats.dropped.Add(uint64(len(s.q) - k - n))
	s.q = nil
	if err != nil {
		s.reportLocked(s.errorf("%w", err))
	}
}

func splitEntries(es []entry) ([]string, [][]byte) {
	ids := make([]string, len(es))
	bodies := make([][]byte, len(es))
	for i, e := range es {
		ids[i], bodies[i] = e.id, e.body
	}
	return ids, bodies
}

func (s *SpooledSink) reportLocked(err error) {
	s.stats.setErr(err)
	s.report(err)
}

func (s *SpooledSink) report(err error) {
	if s.cfg.onError != nil {
		s.cfg.onError(err)
	}
}

// batchLen is how many entries of the queue make the next batch.
func (s *SpooledSink) batchLen() int {
	n, bytes := 0, int64(0)
	for _, e := range s.q {
		if n == s.cfg.batchSize || n > 0 && bytes+int64(len(e.body)) > s.cfg.batchBytes {
			break
		}
		n++
		bytes += int64(len(e.body))
	}
	return n
}

// next waits for the next batch to send; ok is false when the sink is
// closing and nothing is left, or the spool cannot be read (err).
func (s *SpooledSink) next() (batch []entry, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.from == fromQueue {
			return slices.Clone(s.q[:s.inflight]), true, nil
		}
		n := s.cfg.batchSize
		if s.from == fromSpool {
			n = s.nAck
		}
		if len(s.q) > 0 && s.from == fromNone {
			s.from, s.inflight = fromQueue, s.batchLen()
			continue
		}
		if s.spool.Len() > 0 {
			ids, bodies, err := s.spool.PeekN(n, s.cfg.batchBytes)
			if err != nil {
				err = s.errorf("%w", err)
				s.reportLocked(err)
				return nil, false, err
			}
			if len(ids) > 0 {
				if s.from == fromSpool && len(ids) != s.nAck {
					return nil, false, fmt.Errorf("BUG: %s output %q: batch of %d spooled alerts reads back as %d", s.cfg.typ, s.cfg.name, s.nAck, len(ids))
				}
				s.from, s.nAck = fromSpool, len(ids)
				batch = make([]entry, len(ids))
				for i := range ids {
					batch[i] = entry{id: ids[i], body: bodies[i]}
				}
				return batch, true, nil
			}
		}
		if s.closing {
			return nil, false, nil
		}
		s.cond.Wait()
	}
}

// finish consumes the current batch.
func (s *SpooledSink) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.from {
	case fromQueue:
		clear(s.q[:s.inflight])
		s.q = s.q[s.inflight:]
		if len(s.q) == 0 {
			s.q = nil
		}
	case fromSpool:
		if err := s.spool.AckN(s.nAck); err != nil {
			s.reportLocked(s.errorf("%w", err))
		}
	}
	s.from, s.inflight, s.nAck = fromNone, 0, 0
}

func (s *SpooledSink) run() {
	defer close(s.done)
	for failures := 0; ; {
		batch, ok, err := s.next()
		if err != nil {
			// The spool cannot be read now (e.g. an I/O error): wait and
			// try again, unless shutting down.
			if !s.sleep(backoff(failures, s.cfg.minBackoff, s.cfg.maxBackoff)) || s.isClosing() {
				return
			}
			failures++
			continue
		}
		if !ok {
			return
		}
		failures = 0
		if !s.deliver(batch) {
			return
		}
		s.finish()
	}
}

// deliver sends batch until every alert of it is delivered or given up;
// false if the sink was stopped first, or is shutting down while the
// receiver fails (what is left stays at the head of the spool).
func (s *SpooledSink) deliver(batch []entry) bool {
	pending := make([]int, len(batch))
	for i := range pending {
		pending[i] = i
	}
	res := make([]error, len(batch))
	sub := make([]entry, 0, len(batch))
	subRes := make([]error, len(batch))
	single := len(batch) == 1
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		if single {
			for _, i := range pending {
				wait = max(wait, s.tr.deliver(s.runCtx, batch[i:i+1], res[i:i+1]))
				if s.runCtx.Err() != nil {
					return false
				}
			}
		} else {
			sub = sub[:0]
			for _, i := range pending {
				sub = append(sub, batch[i])
			}
			r := subRes[:len(sub)]
			clear(r)
			wait = s.tr.deliver(s.runCtx, sub, r)
			for j, i := range pending {
				res[i] = r[j]
			}
		}
		if s.runCtx.Err() != nil {
			return false
		}
		if !single && len(pending) > 1 && allPermanent(res, pending) {
			// The receiver refused the whole batch: find the alerts it
			// refuses by sending them one by one.
			single = true
			attempt--
			continue
		}
		var retry []int
		var first error
		for _, i := range pending {
			var perm *permanentError
			switch err := res[i]; {
			case err == nil:
				s.stats.delivered.Add(1)
			case errors.Is(err, errDuplicate):
				s.stats.delivered.Add(1)
				s.stats.duplicates.Add(1)
			case errors.As(err, &perm):
				s.stats.failed.Add(1)
				s.stats.setErr(err)
				s.report(err)
			default:
				retry = append(retry, i)
				if first == nil {
					first = err
				}
			}
		}
		if len(retry) == 0 {
			return true
		}
		s.stats.retried.Add(uint64(len(retry)))
		s.stats.setErr(first)
		s.report(first)
		// The receiver is not taking alerts: make the queue durable.
		s.mu.Lock()
		s.spillLocked()
		closing := s.closing
		s.mu.Unlock()
		if err := s.spool.Sync(); err != nil {
			s.stats.setErr(err)
			s.report(err)
		}
		if closing {
			// Shutting down and the receiver is failing: leave the rest
			// in the spool.
			return false
		}
		if wait <= 0 {
			wait = backoff(attempt, s.cfg.minBackoff, s.cfg.maxBackoff)
		}
		if !s.sleep(min(wait, s.cfg.maxBackoff)) {
			return false
		}
		pending = retry
	}
}

// allPermanent reports whether every pending outcome is a
// *permanentError.
func allPermanent(res []error, pending []int) bool {
	for _, i := range pending {
		var perm *permanentError
		if !errors.As(res[i], &perm) {
			return false
		}
	}
	return true
}

// sleep waits d; false if the sink was stopped meanwhile.
func (s *SpooledSink) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.runCtx.Done():
		return false
	}
}

func (s *SpooledSink) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// backoff returns the wait before retry attempt+1: min doubled per
// attempt, capped at max, with "equal jitter" (half fixed, half random).
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(half+1)
}

func (s *SpooledSink) syncLoop() {
	defer close(s.syncDone)
	t := time.NewTicker(s.cfg.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.spool.Sync(); err != nil {
				s.stats.setErr(err)
				s.report(err)
			}
		case <-s.runCtx.Done():
			return
		}
	}
}

// Flush makes every alert written before it durable: the queue is moved
// to the spool and the spool is fsync'd (alerts being delivered stay
// first in line).
func (s *SpooledSink) Flush(context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.spillLocked()
	s.mu.Unlock()
	return s.spool.Sync()
}

// Shutdown stops taking alerts and delivers what is queued and spooled
// until ctx ends or a delivery fails; what is left is saved in the spool
// for the next run. It returns ctx's error if the deadline cut delivery
// short.
func (s *SpooledSink) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.done
		<-s.syncDone
		return nil
	}
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	var cut error
	select {
	case <-s.done:
	case <-ctx.Done():
		cut = s.errorf("delivery cut short, the rest is spooled: %w", ctx.Err())
		s.cancelRun()
		<-s.done
	}
	s.cancelRun()
	<-s.syncDone
	s.mu.Lock()
	s.from, s.inflight, s.nAck = fromNone, 0, 0
	s.spillLocked()
	s.closed = true
	s.mu.Unlock()
	var errs []error
	if err := s.tr.close(); err != nil {
		errs = append(errs, s.errorf("%w", err))
	}
	if err := s.spool.Close(); err != nil {
		errs = append(errs, s.errorf("%w", err))
	}
	return errors.Join(append([]error{cut}, errs...)...)
}

// Close shuts down with DefaultDrainTimeout.
func (s *SpooledSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Stats returns the sink's counters.
func (s *SpooledSink) Stats() OutputStats {
	st := s.stats.snapshot(s.cfg.name, s.cfg.typ)
	s.mu.Lock()
	st.QueueDepth = len(s.q)
	s.mu.Unlock()
	st.SpoolDepth = s.spool.Len()
	st.SpoolBytes = s.spool.Size()
	return st
}
