package mem

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// Store is an in-memory state.Store. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	closed bool
	m      map[string]entry
	bytes  int64
}

type entry struct {
	val []byte // owned by the store, never modified
	exp int64  // state.UnixNano of the expiry, 0 for none
}

var _ state.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{m: make(map[string]entry)}
}

// Get implements state.Store.
func (s *Store) Get(ctx context.Context, key []byte, now time.Time) ([]byte, error) {
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, state.ErrClosed
	}
	e, ok := s.m[string(key)]
	if !ok || !state.Live(e.exp, state.UnixNano(now)) {
		return nil, state.ErrNotFound
	}
	return append(make([]byte, 0, len(e.val)), e.val...), nil
}

// Update implements state.Store. Update functions run one at a time.
func (s *Store) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return state.ErrClosed
	}
	tx := &tx{s: s, now: now, nowN: state.UnixNano(now)}
	err := fn(tx)
	tx.done = true
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for k, w := range tx.writes {
		if old, ok := s.m[k]; ok {
			s.bytes -= int64(len(k) + len(old.val))
			if w.deleted {
				delete(s.m, k)
			}
		}
		if !w.deleted {
			s.m[k] = w.entry
			s.bytes += int64(len(k) + len(w.val))
		}
	}
	return nil
}

// Scan implements state.Store. It holds a read lock while fn runs.
func (s *Store) Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e state.Entry) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return state.ErrClosed
	}
	p := string(prefix)
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, p) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	nowN := state.UnixNano(now)
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := s.m[k]
		if !state.Live(e.exp, nowN) {
			continue
		}
		if err := fn(state.Entry{Key: []byte(k), Value: e.val, Expiry: state.FromUnixNano(e.exp)}); err != nil {
			return err
		}
	}
	return nil
}

// DeleteExpired implements state.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nowN := state.UnixNano(now)
	if nowN == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, state.ErrClosed
	}
	n := 0
	for k, e := range s.m {
		if !state.Live(e.exp, nowN) {
			s.bytes -= int64(len(k) + len(e.val))
			delete(s.m, k)
			n++
		}
	}
	return n, nil
}

// Stats implements state.Store. DiskBytes is always 0.
func (s *Store) Stats(ctx context.Context) (state.Stats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return state.Stats{}, state.ErrClosed
	}
	return state.Stats{Entries: int64(len(s.m)), Bytes: s.bytes}, nil
}

// Close implements state.Store; it drops all entries.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.m = nil
	s.bytes = 0
	return nil
}

// tx is a transaction: reads see the store (locked by Update) overlaid with
// the pending writes.
type tx struct {
	s      *Store
	now    time.Time
	nowN   int64
	writes map[string]write
	done   bool
}

// write is a pending write of a transaction: an entry, or a deletion.
type write struct {
	entry
	deleted bool
}

func (t *tx) Now() time.Time { return t.now }

func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	e, ok := t.s.m[string(key)]
	if w, pending := t.writes[string(key)]; pending {
		ok = !w.deleted
		e = w.entry
	}
	if !ok || !state.Live(e.exp, t.nowN) {
		return nil, state.ErrNotFound
	}
	return e.val, nil
}

func (t *tx) Put(key, value []byte, expiry time.Time) error {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
	if err := state.ValidateValue(value); err != nil {
		return err
	}
	if t.writes == nil {
		t.writes = make(map[string]write)
	}
	t.writes[string(key)] = write{entry: entry{val: append(make([]byte, 0, len(value)), value...), exp: state.UnixNano(expiry)}}
	return nil
}

func (t *tx) Delete(key []byte) error {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
	if t.writes == nil {
		t.writes = make(map[string]write)
	}
	t.writes[string(key)] = write{deleted: true}
	return nil
}
