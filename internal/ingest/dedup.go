package ingest

import (
	"fmt"
	"hash/maphash"

	"github.com/kanon-dev/kanon/internal/event"
)

// DefaultDedupCapacity is a capacity for Dedup that covers minutes of a
// busy API server's audit log (each entry costs about 40 bytes).
const DefaultDedupCapacity = 1 << 18

// Dedup drops repeated deliveries of the same audit event: CloudWatch
// Logs subscriptions and Event Hubs deliver at least once, and reading
// overlapping exports gives the same events twice. An event is a repeat
// when an event with the same auditID and stage was seen recently; events
// without an auditID are never repeats. It works for events of any
// format (GKE events use the LogEntry's insertId as auditID).
//
// Memory is bounded: the set keeps two generations of keys, each of at
// most capacity/2 entries. When the current generation is full it becomes
// the old one and the oldest is dropped, so a key is remembered for at
// least capacity/2 and at most capacity distinct keys after it was last
// seen (a repeat refreshes its key). A key is remembered by a 128-bit hash
// of it (two seeded hashes): no allocation per event, 16 bytes an entry,
// and a chance of about 2^-128 per event of taking a new event for a
// repeat. The event is not kept.
//
// A Dedup is not safe for concurrent use; use one per Reader.
type Dedup struct {
	cur, old map[dedupKey]struct{}
	half     int
	seeds    [2]maphash.Seed
	key      []byte
	dropped  int64
}

type dedupKey [2]uint64

// NewDedup returns a set remembering up to capacity keys (at least 2).
func NewDedup(capacity int) (*Dedup, error) {
	if capacity < 2 {
		return nil, fmt.Errorf("%w: dedup capacity %d: want at least 2", ErrBadOptions, capacity)
	}
	half := capacity / 2
	return &Dedup{cur: make(map[dedupKey]struct{}), old: make(map[dedupKey]struct{}), half: half,
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}, nil
}

// Duplicate reports whether e repeats an event seen recently, and records
// it. Its signature is that of ingest.Deduper: pass d.Duplicate as
// Options.Dedup.
func (s *Dedup) Duplicate(e *event.Event) bool {
	if e.AuditID == "" {
		return false
	}
	s.key = append(append(append(s.key[:0], e.AuditID...), 0), e.Stage...)
	k := dedupKey{maphash.Bytes(s.seeds[0], s.key), maphash.Bytes(s.seeds[1], s.key)}
	if _, ok := s.cur[k]; ok {
		s.dropped++
		return true
	}
	_, seen := s.old[k]
	if len(s.cur) >= s.half {
		// The old generation goes; its map is reused for the new one.
		clear(s.old)
		s.old, s.cur = s.cur, s.old
	}
	s.cur[k] = struct{}{}
	if seen {
		s.dropped++
	}
	return seen
}

// Len returns the number of keys remembered (at most the capacity).
func (s *Dedup) Len() int { return len(s.cur) + len(s.old) }

// Dropped returns how many events Duplicate has reported as repeats.
func (s *Dedup) Dropped() int64 { return s.dropped }

var _ Deduper = (*Dedup)(nil).Duplicate
