package alert

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrDropped is returned (wrapped) when an output without a spool could
// not take an alert before its block timeout.
var ErrDropped = errors.New("alert dropped")

// OutputStats are the counters of one output, for /metrics. Counters only
// grow; depths are current values.
type OutputStats struct {
	// Name and Type identify the output.
	Name string
	Type string
	// Delivered counts alerts written (stdout, file) or taken by the
	// receiver: a 2xx answer (HTTP outputs; for Elasticsearch, the
	// item's), the acknowledgement of every in-sync replica (Kafka) or of
	// the stream (NATS), a write to the connection (syslog, which has no
	// acknowledgement). An alert the receiver already had counts too.
	Delivered uint64
	// Retried counts failed delivery attempts that were retried.
	Retried uint64
	// Failed counts alerts given up: a write error (stdout, file) or an
	// answer that retrying cannot change (a 4xx other than 401, 403,
	// 408, 425 and 429; an Elasticsearch item refused with a 4xx other
	// than 409 and 429; a Kafka record refused as too large or invalid),
	// or an alert that cannot be encoded.
	Failed uint64
	// Dropped counts alerts not taken: the queue stayed full past the
	// block timeout, the spool was full, or the output was shutting down.
	Dropped uint64
	// Spooled counts alerts written to the spool.
	Spooled uint64
	// Duplicates counts alerts skipped because their delivery key was
	// seen before, by the output or by the receiver (Elasticsearch's 409,
	// JetStream's duplicate acknowledgement; those count as delivered
	// too).
	Duplicates uint64
	// Filtered counts alerts the output's filter did not pass.
	Filtered uint64
	// QueueDepth is the number of alerts in the in-memory queue.
	QueueDepth int
	// SpoolDepth and SpoolBytes measure the spool's pending alerts.
	SpoolDepth int
	SpoolBytes int64
	// LastError is the text of the latest error, empty if none.
	LastError string
}

// counters are an output's counters, updated atomically.
type counters struct {
	delivered, retried, failed, dropped, spooled, duplicates, filtered atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

func (c *counters) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err.Error()
	c.mu.Unlock()
}

func (c *counters) snapshot(name, typ string) OutputStats {
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	return OutputStats{
		Name: name, Type: typ,
		Delivered: c.delivered.Load(), Retried: c.retried.Load(), Failed: c.failed.Load(),
		Dropped: c.dropped.Load(), Spooled: c.spooled.Load(), Duplicates: c.duplicates.Load(),
		Filtered: c.filtered.Load(), LastError: last,
	}
}

// recentIDs remembers the last n ids (a ring and a set), so re-delivered
// alerts are recognised. Not safe for concurrent use.
type recentIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecentIDs(n int) *recentIDs {
	return &recentIDs{set: make(map[string]struct{}, min(n, 1024)), ring: make([]string, n)}
}

func (r *recentIDs) has(id string) bool {
	_, ok := r.set[id]
	return ok
}

func (r *recentIDs) add(id string) {
	if _, ok := r.set[id]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// reset forgets every id.
func (r *recentIDs) reset() {
	clear(r.set)
	clear(r.ring)
	r.next = 0
}
