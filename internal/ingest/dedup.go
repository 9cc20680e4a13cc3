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
// Each generation is an open-addressed table of the hashes, indexed by
// the first of them and at most half full, so that a new event (the
// common case) costs two probes and no map hashing; a rotation clears
// the old table's memory in one sweep.
//
// A Dedup is not safe for concurrent use; use one per Reader.
type Dedup struct {
	cur, old *dedupTable
	half     int
	seeds    [2]maphash.Seed
	key      []byte
	dropped  int64
}

// dedupKey is a key's two hashes; the zero value marks an empty slot (the
// low bit of the second hash is always set).
type dedupKey [2]uint64

// dedupTable is one generation: a set of keys with linear probing.
type dedupTable struct {
	slots []dedupKey
	mask  uint64
	n     int
}

func newDedupTable(half int) *dedupTable {
	size := 2
	for size < 2*half {
		size *= 2
	}
	return &dedupTable{slots: make([]dedupKey, size), mask: uint64(size - 1)}
}

// find returns the slot of k, or of the empty slot where it would go, and
// whether k is there.
func (t *dedupTable) find(k dedupKey) (int, bool) {
	for i := k[0] & t.mask; ; i = (i + 1) & t.mask {
		switch t.slots[i] {
		case k:
			return int(i), true
		case dedupKey{}:
			return int(i), false
		}
	}
}

func (t *dedupTable) reset() {
	clear(t.slots)
	t.n = 0
}

// NewDedup returns a set remembering up to capacity keys (at least 2).
func NewDedup(capacity int) (*Dedup, error) {
	if capacity < 2 {
		return nil, fmt.Errorf("%w: dedup capacity %d: want at least 2", ErrBadOptions, capacity)
	}
	half := capacity / 2
	return &Dedup{cur: newDedupTable(half), old: newDedupTable(half), half: half,
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
	k := dedupKey{maphash.Bytes(s.seeds[0], s.key), maphash.Bytes(s.seeds[1], s.key) | 1}
	i, ok := s.cur.find(k)
	if ok {
		s.dropped++
		return true
	}
	_, seen := s.old.find(k)
	if s.cur.n >= s.half {
		// The old generation goes; its table is reused for the new one.
		s.old.reset()
		s.old, s.cur = s.cur, s.old
		i, _ = s.cur.find(k)
	}
	s.cur.slots[i] = k
	s.cur.n++
	if seen {
		s.dropped++
	}
	return seen
}

// Len returns the number of keys remembered (at most the capacity).
func (s *Dedup) Len() int { return s.cur.n + s.old.n }

// Dropped returns how many events Duplicate has reported as repeats.
func (s *Dedup) Dropped() int64 { return s.dropped }

var _ Deduper = (*Dedup)(nil).Duplicate
