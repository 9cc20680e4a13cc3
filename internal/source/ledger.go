package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// Retentions of the ids of deliveries: how long a provider may send a
// delivery again after its first attempt.
const (
	// FirehoseRetention covers Firehose's longest retry duration (7200 s)
	// with room to spare.
	FirehoseRetention = 24 * time.Hour
	// PubSubRetention is Pub/Sub's longest message retention (7 days).
	PubSubRetention = 7 * 24 * time.Hour
	// WebhookRetention covers kube-apiserver's retries of an audit
	// webhook batch: its backoff starts at --audit-webhook-initial-backoff
	// (10 s) and grows by 1.5 for 5 attempts, about 2 minutes in all.
	WebhookRetention = 10 * time.Minute
	// NATSRetention covers a JetStream message whose acknowledgement was
	// lost and that comes again once its ack wait has passed, after an
	// outage of the server too.
	NATSRetention = 24 * time.Hour
)

// maxUnsure bounds the ids remembered as not known to be durable.
const maxUnsure = 1 << 16

// Ledger is the set of deliveries of one input (firehose, pubsub:SUB)
// whose batches are durable, kept in the driver's state store so that it
// spans restarts and the replicas that share the store. Each id is an
// entry of the store's positions namespace (input "delivery:" + input,
// path the id; its offset is the time the delivery was received, in
// milliseconds, and its line the number of records), written by the
// batch's Commit — in the same transaction as the state of the batch's
// events — and expiring after the retention.
//
// A Ledger also orders the attempts of one id within a process: a second
// attempt that arrives while the first is evaluated waits for it, and is
// a redelivery if the first became durable. A Ledger is safe for
// concurrent use.
type Ledger struct {
	s         state.Store
	pos       *state.Positions
	input     string
	retention time.Duration

	mu       sync.Mutex
	inflight map[string]*Claim
	// unsure holds the ids whose last attempt failed: the store may hold
	// their entry as a write not yet committed (a live driver keeps the
	// writes of a failed commit for the next one), so it is not proof.
	unsure map[string]struct{}
}

// NewLedger returns the ledger of input in s (the driver's store,
// run.Driver.Store), remembering each id for retention.
func NewLedger(s state.Store, input string, retention time.Duration) (*Ledger, error) {
	if retention <= 0 {
		return nil, fmt.Errorf("invalid delivery ledger of input %q: retention %s is not positive", input, retention)
	}
	pos, err := state.NewPositions(s, "delivery:"+input)
	if err != nil {
		return nil, fmt.Errorf("invalid delivery ledger: %w", err)
	}
	return &Ledger{s: s, pos: pos, input: input, retention: retention,
		inflight: map[string]*Claim{}, unsure: map[string]struct{}{}}, nil
}

// Claim is one attempt of a delivery: the right to evaluate it, until
// Finish.
type Claim struct {
	l        *Ledger
	id       string
	received time.Time
	done     chan struct{}
	durable  bool
	finished bool
}

// ErrEmptyID is the error of Claim for a delivery without an id.
var ErrEmptyID = errors.New("delivery without an id")

// Claim starts an attempt of the delivery id, received at received. It
// returns dup true (and no claim) when the delivery is known durable: the
// sender should be acknowledged at once. Otherwise the caller evaluates
// the delivery, writes Record in its batch's Commit and calls Finish with
// the outcome. When another attempt of id is in progress, Claim waits for
// it until ctx ends.
func (l *Ledger) Claim(ctx context.Context, id string, received time.Time) (c *Claim, dup bool, err error) {
	if id == "" {
		return nil, false, ErrEmptyID
	}
	for {
		l.mu.Lock()
		other := l.inflight[id]
		if other == nil {
			c = &Claim{l: l, id: id, received: received, done: make(chan struct{})}
			l.inflight[id] = c
			_, unsure := l.unsure[id]
			l.mu.Unlock()
			if unsure {
				return c, false, nil
			}
			_, seen, err := l.pos.Get(ctx, id)
			if err != nil {
				c.Finish(false)
				return nil, false, fmt.Errorf("cannot look up delivery %s of input %s: %w", id, l.input, err)
			}
			if seen {
				c.Finish(true)
				return nil, true, nil
			}
			return c, false, nil
		}
		l.mu.Unlock()
		select {
		case <-other.done:
			if other.durable {
				return nil, true, nil
			}
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Begin starts an attempt of a delivery that its sender says it never
// delivered before (a JetStream message delivered for the first time):
// no store can hold its id yet, so none is asked, and the hot path makes
// no round trip for it. The caller writes Record in its batch's Commit
// and calls Finish, as after Claim.
func (l *Ledger) Begin(id string, received time.Time) *Claim {
	c := &Claim{l: l, id: id, received: received, done: make(chan struct{})}
	l.mu.Lock()
	if l.inflight[id] == nil {
		l.inflight[id] = c
	}
	l.mu.Unlock()
	return c
}

// Record writes the delivery's id, with the number of records it held, in
// tx: pass it to the batch's Commit.
func (c *Claim) Record(tx state.Tx, records int) error {
	p := state.Position{Offset: c.received.UnixMilli(), Line: int64(records)}
	var vb [32]byte
	return tx.Put(c.l.pos.AppendKey(nil, c.id), state.AppendPosition(vb[:0], p), c.received.Add(c.l.retention))
}

// Finish ends the attempt: durable says its batch was committed (the
// sender is acknowledged). Waiting attempts of the same id go on. Only
// the first call counts.
func (c *Claim) Finish(durable bool) {
	l := c.l
	l.mu.Lock()
	if c.finished {
		l.mu.Unlock()
		return
	}
	c.finished = true
	if l.inflight[c.id] == c {
		delete(l.inflight, c.id)
	}
	if durable {
		delete(l.unsure, c.id)
	} else {
		if len(l.unsure) >= maxUnsure {
			clear(l.unsure)
		}
		l.unsure[c.id] = struct{}{}
	}
	c.durable = durable
	l.mu.Unlock()
	close(c.done)
}
