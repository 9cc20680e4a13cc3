package alert

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// lineSink is a sink of encoded NDJSON lines (JSONSink, FileSink).
type lineSink interface {
	// writeRaw writes one line (ending in a newline) of the alert whose
	// delivery key is key; written is false if the line was skipped as a
	// duplicate.
	writeRaw(key string, line []byte) (written bool, err error)
	Flush() error
	Close() error
}

// queuedSink puts a bounded queue and a goroutine in front of a lineSink.
// Write encodes the alert (so the caller keeps ownership of it) and waits
// for room in the queue at most block, then drops the alert. The goroutine
// writes the lines in order and flushes the sink whenever the queue is
// empty.
type queuedSink struct {
	name, typ string
	inner     lineSink
	ch        chan qitem
	block     time.Duration
	onError   func(error)

	mu     sync.RWMutex // held for reading by senders on ch; Shutdown closes ch
	closed bool
	abort  atomic.Bool
	done   chan struct{}
	stats  counters
}

type qitem struct {
	key     string // the alert's delivery key
	line    []byte
	flushed chan error // a flush marker when not nil
}

func newQueuedSink(name, typ string, inner lineSink, size int, block time.Duration, onError func(error)) *queuedSink {
	if size <= 0 {
		size = DefaultQueueSize
	}
	q := &queuedSink{
		name: name, typ: typ, inner: inner, block: block, onError: onError,
		ch:   make(chan qitem, size),
		done: make(chan struct{}),
	}
	go q.run()
	return q
}

func (q *queuedSink) report(err error) {
	q.stats.setErr(err)
	if q.onError != nil {
		q.onError(err)
	}
}

// Write queues the alert. An error wrapping ErrDropped means the queue
// stayed full for the block timeout (or ctx ended first).
func (q *queuedSink) Write(ctx context.Context, a *Alert) error {
	b, err := Marshal(a)
	if err != nil {
		q.stats.failed.Add(1)
		return fmt.Errorf("%s output %q: cannot encode alert %s: %w", q.typ, q.name, a.ID, err)
	}
	it := qitem{key: a.DeliveryKey(), line: append(b, '\n')}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.stats.dropped.Add(1)
		return fmt.Errorf("%s output %q: cannot take alert %s: %w", q.typ, q.name, a.ID, ErrClosed)
	}
	select {
	case q.ch <- it:
		return nil
	default:
	}
	var why string
	if q.block > 0 {
		t := time.NewTimer(q.block)
		defer t.Stop()
		select {
		case q.ch <- it:
			return nil
		case <-t.C:
			why = fmt.Sprintf("queue full for %s", q.block)
		case <-ctx.Done():
			why = "queue full: " + ctx.Err().Error()
		}
	} else {
		why = "queue full"
	}
	q.stats.dropped.Add(1)
	err = fmt.Errorf("%s output %q: alert %s: %s: %w", q.typ, q.name, a.ID, why, ErrDropped)
	q.stats.setErr(err)
	return err
}

func (q *queuedSink) run() {
	defer close(q.done)
	for it := range q.ch {
		if it.flushed != nil {
			it.flushed <- q.inner.Flush()
			continue
		}
		if q.abort.Load() {
			q.stats.dropped.Add(1)
			continue
		}
		written, err := q.inner.writeRaw(it.key, it.line)
		switch {
		case err != nil:
			q.stats.failed.Add(1)
			q.report(err)
		case !written:
			q.stats.duplicates.Add(1)
		default:
			q.stats.delivered.Add(1)
		}
		if len(q.ch) == 0 {
			if err := q.inner.Flush(); err != nil {
				q.report(err)
			}
		}
	}
	if err := q.inner.Close(); err != nil {
		q.report(err)
	}
}

// Flush waits until the alerts queued before it are written and the sink
// flushed (for a file: fsync'd).
func (q *queuedSink) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return nil
	}
	select {
	case q.ch <- qitem{flushed: done}:
	case <-ctx.Done():
		q.mu.RUnlock()
		return fmt.Errorf("%s output %q: flush: %w", q.typ, q.name, ctx.Err())
	}
	q.mu.RUnlock()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s output %q: flush: %w", q.typ, q.name, ctx.Err())
	}
}

// Shutdown stops taking alerts and writes the queued ones until ctx ends;
// then the rest is dropped (and counted) and the sink closed.
func (q *queuedSink) Shutdown(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		q.abort.Store(true)
		return fmt.Errorf("%s output %q: shutdown cut short, %d queued alerts dropped: %w", q.typ, q.name, len(q.ch), ctx.Err())
	}
}

// Close shuts down with DefaultDrainTimeout.
func (q *queuedSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDrainTimeout)
	defer cancel()
	return q.Shutdown(ctx)
}

// Stats returns the counters.
func (q *queuedSink) Stats() OutputStats {
	st := q.stats.snapshot(q.name, q.typ)
	st.QueueDepth = len(q.ch)
	return st
}
