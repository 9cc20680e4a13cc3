package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// WebhookConfig configures a WebhookSink (see OutputConfig for the
// meaning and defaults of each field).
type WebhookConfig struct {
	// Name names the sink in errors and stats.
	Name               string
	URL                string
	Headers            map[string]string
	Timeout            time.Duration
	CAFile             string
	InsecureSkipVerify bool
	// SpoolDir is required.
	SpoolDir     string
	SpoolMaxSize int64
	// SegmentSize is the size at which spool segments roll (default 4MiB).
	SegmentSize int64
	QueueSize   int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	// SyncInterval is how often spooled alerts are fsync'd when nobody
	// calls Flush (default 1s).
	SyncInterval time.Duration
	// OnError, if set, is called (from the sink's goroutines) with every
	// failed attempt and every alert given up.
	OnError func(err error)
}

// entry is an alert ready to send: its id and request body.
type entry struct {
	id   string
	body []byte
}

// where the sender's current entry is.
const (
	fromNone = iota
	fromQueue
	fromSpool
)

// WebhookSink POSTs each alert, as JSON, to a URL, one alert per request,
// in order, with the alert's delivery key (Alert.DeliveryKey: the id, and
// the count of a group) in the Idempotency-Key header. Write never
// waits for the network: the alert goes to a bounded in-memory queue, or
// to the disk spool when the spool is not empty or the queue is full, and
// one goroutine delivers the queue, then the spool. A failed request is
// retried with exponential backoff and jitter (honouring Retry-After on
// 429 and 503) until it succeeds; on the first failure the queue is moved
// to the spool, so alerts survive a restart. Responses 4xx other than 408,
// 425 and 429 are not retried: the alert is counted as failed and skipped.
// Alerts whose delivery key was written recently (or is pending in the
// spool) are skipped as duplicates.
//
// A WebhookSink is safe for concurrent use.
type WebhookSink struct {
	typ    string
	cfg    WebhookConfig
	client *http.Client
	encode func(*Alert) ([]byte, error)
	ctype  string

	mu      sync.Mutex
	cond    *sync.Cond
	q       []entry
	spool   *Spool
	cur     entry
	from    int
	seen    *recentIDs
	closing bool
	closed  bool

	stats     counters
	runCtx    context.Context
	cancelRun context.CancelFunc
	done      chan struct{}
	syncDone  chan struct{}
}

// NewWebhookSink opens the spool and starts delivering, beginning with
// the alerts left in the spool by a previous run.
func NewWebhookSink(cfg WebhookConfig) (*WebhookSink, error) {
	return newWebhookSink(TypeWebhook, cfg, Marshal, "application/json")
}

func newWebhookSink(typ string, cfg WebhookConfig, encode func(*Alert) ([]byte, error), ctype string) (*WebhookSink, error) {
	if cfg.Name == "" {
		cfg.Name = typ
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("%s output %q: no url", typ, cfg.Name)
	}
	if cfg.SpoolDir == "" {
		return nil, fmt.Errorf("%s output %q: no spool directory", typ, cfg.Name)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.CAFile != "" || cfg.InsecureSkipVerify {
		tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // asked for, for tests
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%s output %q: cannot read ca_file: %w", typ, cfg.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s output %q: ca_file %s holds no PEM certificate", typ, cfg.Name, cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	s := &WebhookSink{
		typ: typ, cfg: cfg, encode: encode, ctype: ctype,
		client:   &http.Client{Transport: tr},
		seen:     newRecentIDs(defaultRecentIDs),
		done:     make(chan struct{}),
		syncDone: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	sp, err := OpenSpool(cfg.SpoolDir, cfg.SpoolMaxSize, cfg.SegmentSize, s.seen.add)
	if err != nil {
		return nil, fmt.Errorf("%s output %q: %w", typ, cfg.Name, err)
	}
	s.spool = sp
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	go s.run()
	go s.syncLoop()
	return s, nil
}

// Write queues or spools the alert; it never waits for the network. An
// error wrapping ErrSpoolFull means the alert was dropped; one wrapping
// ErrClosed means the sink is closed.
func (s *WebhookSink) Write(_ context.Context, a *Alert) error {
	body, err := s.encode(a)
	if err != nil {
		return fmt.Errorf("%s output %q: cannot encode alert %s: %w", s.typ, s.cfg.Name, a.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.stats.dropped.Add(1)
		return fmt.Errorf("%s output %q: cannot take alert %s: %w", s.typ, s.cfg.Name, a.ID, ErrClosed)
	}
	key := a.DeliveryKey()
	if s.seen.has(key) {
		s.stats.duplicates.Add(1)
		return nil
	}
	e := entry{id: key, body: body}
	if s.spool.Len() == 0 && len(s.q) < s.cfg.QueueSize {
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
		err = fmt.Errorf("%s output %q: %w", s.typ, s.cfg.Name, err)
		s.stats.setErr(err)
		return err
	}
	s.stats.spooled.Add(1)
	s.seen.add(key)
	s.cond.Signal()
	return nil
}

// spillLocked moves the queue, in order, to the (empty) spool. The
// sender's current entry, if it came from the queue, is the spool's head
// afterwards. Entries that do not fit are dropped and counted. s.mu is
// held.
func (s *WebhookSink) spillLocked() {
	if len(s.q) == 0 {
		return
	}
	ids := make([]string, len(s.q))
	bodies := make([][]byte, len(s.q))
	for i, e := range s.q {
		ids[i], bodies[i] = e.id, e.body
	}
	n, err := s.spool.Append(ids, bodies)
	s.stats.spooled.Add(uint64(n))
	if n == 0 && s.from == fromQueue {
		// Keep the entry being sent where it is; drop the rest.
		s.stats.dropped.Add(uint64(len(s.q) - 1))
		s.q = s.q[:1]
	} else {
		s.stats.dropped.Add(uint64(len(s.q) - n))
		s.q = nil
		if s.from == fromQueue {
			s.from = fromSpool
		}
	}
	if err != nil {
		err = fmt.Errorf("%s output %q: %w", s.typ, s.cfg.Name, err)
		s.stats.setErr(err)
		s.report(err)
	}
}

func (s *WebhookSink) report(err error) {
	if s.cfg.OnError != nil {
		s.cfg.OnError(err)
	}
}

// next waits for the entry to send; ok is false when the sink is closing
// and nothing is left, or the spool cannot be read (err).
func (s *WebhookSink) next() (e entry, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.from != fromNone {
			return s.cur, true, nil
		}
		if len(s.q) > 0 {
			s.cur, s.from = s.q[0], fromQueue
			continue
		}
		if s.spool.Len() > 0 {
			id, body, ok, err := s.spool.Peek()
			if err != nil {
				err = fmt.Errorf("%s output %q: %w", s.typ, s.cfg.Name, err)
				s.stats.setErr(err)
				s.report(err)
				return entry{}, false, err
			}
			if ok {
				s.cur, s.from = entry{id: id, body: body}, fromSpool
				continue
			}
		}
		if s.closing {
			return entry{}, false, nil
		}
		s.cond.Wait()
	}
}

// finish consumes the current entry.
func (s *WebhookSink) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.from {
	case fromQueue:
		s.q[0] = entry{}
		s.q = s.q[1:]
		if len(s.q) == 0 {
			s.q = nil
		}
	case fromSpool:
		if err := s.spool.Ack(); err != nil {
			err = fmt.Errorf("%s output %q: %w", s.typ, s.cfg.Name, err)
			s.stats.setErr(err)
			s.report(err)
		}
	}
	s.cur, s.from = entry{}, fromNone
}

func (s *WebhookSink) run() {
	defer close(s.done)
	for failures := 0; ; {
		e, ok, err := s.next()
		if err != nil {
			// The spool cannot be read now (e.g. an I/O error): wait and
			// try again, unless shutting down.
			if !s.sleep(backoff(failures, s.cfg.MinBackoff, s.cfg.MaxBackoff)) || s.isClosing() {
				return
			}
			failures++
			continue
		}
		if !ok {
			return
		}
		failures = 0
		for attempt := 0; ; attempt++ {
			wait, err := s.post(e)
			if err == nil {
				s.stats.delivered.Add(1)
				s.finish()
				break
			}
			if s.runCtx.Err() != nil {
				return
			}
			var perm *permanentError
			if errors.As(err, &perm) {
				s.stats.failed.Add(1)
				s.stats.setErr(err)
				s.report(err)
				s.finish()
				break
			}
			s.stats.retried.Add(1)
			s.stats.setErr(err)
			s.report(err)
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
				// Shutting down and the receiver is failing: leave the
				// rest in the spool.
				return
			}
			if wait <= 0 {
				wait = backoff(attempt, s.cfg.MinBackoff, s.cfg.MaxBackoff)
			}
			if !s.sleep(wait) {
				return
			}
		}
	}
}

// sleep waits d; false if the sink was stopped meanwhile.
func (s *WebhookSink) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.runCtx.Done():
		return false
	}
}

func (s *WebhookSink) isClosing() bool {
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

// permanentError is a response that retrying would not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// post sends one entry. wait is the receiver's Retry-After, if any.
func (s *WebhookSink) post(e entry) (wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(e.body))
	if err != nil {
		return 0, &permanentError{fmt.Errorf("%s output %q: cannot build request: %w", s.typ, s.cfg.Name, err)}
	}
	req.Header.Set("Content-Type", s.ctype)
	req.Header.Set("User-Agent", "kanon")
	req.Header.Set("Idempotency-Key", e.id)
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s output %q: cannot deliver alert %s: %w", s.typ, s.cfg.Name, e.id, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBodyBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBodyBytes))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	err = fmt.Errorf("%s output %q: cannot deliver alert %s: %s: %s", s.typ, s.cfg.Name, e.id, resp.Status, cut(clean(string(bytes.TrimSpace(msg))), 200))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return min(retryAfter(resp.Header.Get("Retry-After"), time.Now()), s.cfg.MaxBackoff), err
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooEarly || resp.StatusCode >= 500:
		return 0, err
	case resp.StatusCode >= 400:
		return 0, &permanentError{err}
	}
	// 1xx and 3xx that were not followed: retry.
	return 0, err
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0 if
// absent or invalid.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (s *WebhookSink) syncLoop() {
	defer close(s.syncDone)
	t := time.NewTicker(s.cfg.SyncInterval)
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
func (s *WebhookSink) Flush(context.Context) error {
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
func (s *WebhookSink) Shutdown(ctx context.Context) error {
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
		cut = fmt.Errorf("%s output %q: delivery cut short, the rest is spooled: %w", s.typ, s.cfg.Name, ctx.Err())
		s.cancelRun()
		<-s.done
	}
	s.cancelRun()
	<-s.syncDone
	s.mu.Lock()
	s.from = fromNone
	s.spillLocked()
	s.closed = true
	s.mu.Unlock()
	if err := s.spool.Close(); err != nil {
		return errors.Join(cut, fmt.Errorf("%s output %q: %w", s.typ, s.cfg.Name, err))
	}
	return cut
}

// Close shuts down with DefaultDrainTimeout.
func (s *WebhookSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// Stats returns the sink's counters.
func (s *WebhookSink) Stats() OutputStats {
	st := s.stats.snapshot(s.cfg.Name, s.typ)
	s.mu.Lock()
	st.QueueDepth = len(s.q)
	s.mu.Unlock()
	st.SpoolDepth = s.spool.Len()
	st.SpoolBytes = s.spool.Size()
	return st
}
