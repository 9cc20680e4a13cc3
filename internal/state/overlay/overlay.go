package overlay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// Store is a state.Store that buffers the writes of its transactions in
// memory over a base store, until Commit (or Freeze and CommitLayer) writes
// them to the base in one transaction.
//
// Reads see the pending writes, then the frozen layer, then the base.
// Update functions run one at a time, so transactions are serialisable.
// Close commits the pending writes and closes the base; DeleteExpired
// commits nothing. A Store is safe for concurrent use.
type Store struct {
	base         state.Store
	beforeCommit func() error // flushes the outputs; may be nil

	// slot is the commit slot: held from Freeze until CommitLayer returns,
	// so that at most one layer is frozen at a time.
	slot sync.Mutex

	mu         sync.Mutex
	closed     bool
	pending    map[string]entry
	committing map[string]entry // the frozen layer, nil when there is none
	// free holds the values of pending writes replaced by newer ones,
	// for tx.Put to reuse: a key written over and over (a dedup group
	// counted at each alert) costs no allocation per write.
	free [][]byte
	// writes is an empty map for the next transaction's writes: the map
	// of the last one, cleared, so that a transaction (one alert's mark,
	// most often) allocates no map.
	writes map[string]entry
}

// Bounds of Store.free.
const (
	maxFree      = 32
	maxFreeBytes = 64 << 10
)

// take returns an empty buffer of at least n bytes' capacity, reused if
// one is free. The caller holds o.mu.
func (o *Store) take(n int) []byte {
	for i := len(o.free) - 1; i >= 0; i-- {
		if b := o.free[i]; cap(b) >= n {
			last := len(o.free) - 1
			o.free[i], o.free[last] = o.free[last], nil
			o.free = o.free[:last]
			return b[:0]
		}
	}
	return make([]byte, 0, n)
}

// recycle gives back the value of a pending write that a newer one
// replaced. Nothing refers to it any more: a transaction's Gets are valid
// until it ends, Store.Get and Scan copy, and a pending write is never in
// the frozen layer. The caller holds o.mu.
func (o *Store) recycle(b []byte) {
	if cap(b) == 0 || cap(b) > maxFreeBytes {
		return
	}
	if len(o.free) == maxFree {
		o.free[0] = o.free[len(o.free)-1]
		o.free = o.free[:len(o.free)-1]
	}
	o.free = append(o.free, b)
}

// entry is one write not yet committed: a value with its expiry, or a
// deletion.
type entry struct {
	val     []byte // owned, never modified
	exp     int64  // state.UnixNano of the expiry, 0 for none
	deleted bool
}

var _ state.Store = (*Store)(nil)

// New returns a Store over base. beforeCommit, if not nil, is called before
// each commit writes to the base (kanon flushes its outputs there); if it
// fails, nothing is written and the writes stay pending. The Store owns
// base from then on: Close closes it.
func New(base state.Store, beforeCommit func() error) *Store {
	return &Store{base: base, beforeCommit: beforeCommit, pending: map[string]entry{}}
}

// Base returns the store the overlay writes to.
func (o *Store) Base() state.Store { return o.base }

// Pending returns the number of writes not yet committed: the pending ones
// and those of the frozen layer.
func (o *Store) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending) + len(o.committing)
}

// lookup returns the newest uncommitted write of key, if any. The caller
// holds o.mu.
func (o *Store) lookup(key []byte) (entry, bool) {
	if p, ok := o.pending[string(key)]; ok {
		return p, true
	}
	p, ok := o.committing[string(key)]
	return p, ok
}

// Get implements state.Store.
func (o *Store) Get(ctx context.Context, key []byte, now time.Time) ([]byte, error) {
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil, state.ErrClosed
	}
	p, ok := o.lookup(key)
	if !ok {
		o.mu.Unlock()
		return o.base.Get(ctx, key, now)
	}
	if p.deleted || !state.Live(p.exp, state.UnixNano(now)) {
		o.mu.Unlock()
		return nil, state.ErrNotFound
	}
	// Copied under the lock: a replaced value's storage is reused by the
	// next write (take), which may be another goroutine's.
	v := append(make([]byte, 0, len(p.val)), p.val...)
	o.mu.Unlock()
	return v, nil
}

// Update implements state.Store: the writes stay in memory until they are
// committed.
func (o *Store) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return state.ErrClosed
	}
	tx := &tx{o: o, ctx: ctx, now: now, nowN: state.UnixNano(now)}
	err := fn(tx)
	tx.done = true
	defer o.reuse(tx)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for k, w := range tx.writes {
		if old, ok := o.pending[k]; ok {
			o.recycle(old.val)
		}
		o.pending[k] = w
	}
	return nil
}

// reuse keeps the writes map of a finished transaction, cleared, for the
// next one. Its entries were moved to pending or dropped with the
// transaction; the values they hold are not recycled here (a failed
// transaction's values may still be read by its caller). The caller holds
// o.mu.
func (o *Store) reuse(t *tx) {
	if t.writes == nil || len(t.writes) > maxReusedWrites {
		return
	}
	clear(t.writes)
	o.writes, t.writes = t.writes, nil
}

// maxReusedWrites bounds the map a transaction leaves for the next one:
// clear costs a map's capacity, not its length, so only a map of one group
// (Go's maps hold up to 8 entries without a table) is kept; a larger one
// (a checkpoint's, a sweep's) is let go rather than cleared at every
// single write after it.
const maxReusedWrites = 8

// newWrites returns an empty map for a transaction's writes: the one the
// last transaction left, if any. The caller holds o.mu.
func (o *Store) newWrites() map[string]entry {
	if w := o.writes; w != nil {
		o.writes = nil
		return w
	}
	return map[string]entry{}
}

// tx is the transaction of Store.Update; the store's lock is held while it
// runs.
type tx struct {
	o      *Store
	ctx    context.Context
	now    time.Time
	nowN   int64
	done   bool
	writes map[string]entry
}

func (t *tx) Now() time.Time { return t.now }

func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	p, ok := t.writes[string(key)]
	if !ok {
		p, ok = t.o.lookup(key)
	}
	if !ok {
		return t.o.base.Get(t.ctx, key, t.now)
	}
	if p.deleted || !state.Live(p.exp, t.nowN) {
		return nil, state.ErrNotFound
	}
	return p.val, nil
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
		t.writes = t.o.newWrites()
	}
	t.writes[string(key)] = entry{val: append(t.o.take(len(value)), value...), exp: state.UnixNano(expiry)}
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
		t.writes = t.o.newWrites()
	}
	t.writes[string(key)] = entry{deleted: true}
	return nil
}

// Scan implements state.Store: the base's entries merged with the
// uncommitted writes, in key order.
func (o *Store) Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e state.Entry) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return state.ErrClosed
	}
	type kv struct {
		key string
		p   entry
	}
	var mine []kv
	for k, p := range o.pending {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			// A copy: an Update may recycle the value once the lock is
			// released.
			p.val = bytes.Clone(p.val)
			mine = append(mine, kv{k, p})
		}
	}
	for k, p := range o.committing {
		if _, newer := o.pending[k]; !newer && len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			mine = append(mine, kv{k, p})
		}
	}
	o.mu.Unlock()
	sort.Slice(mine, func(i, j int) bool { return mine[i].key < mine[j].key })
	nowN := state.UnixNano(now)
	i := 0
	emitMine := func(upTo []byte) error {
		for ; i < len(mine) && (upTo == nil || mine[i].key < string(upTo)); i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := mine[i].p
			if p.deleted || !state.Live(p.exp, nowN) {
				continue
			}
			if err := fn(state.Entry{Key: []byte(mine[i].key), Value: p.val, Expiry: state.FromUnixNano(p.exp)}); err != nil {
				return err
			}
		}
		return nil
	}
	err := o.base.Scan(ctx, prefix, now, func(e state.Entry) error {
		if err := emitMine(e.Key); err != nil {
			return err
		}
		if i < len(mine) && mine[i].key == string(e.Key) {
			return nil // shadowed by an uncommitted write, emitted next
		}
		return fn(e)
	})
	if err != nil {
		return err
	}
	return emitMine(nil)
}

// Layer is a set of writes frozen by Freeze, to be written to the base by
// CommitLayer. Reads see it until then. A Layer is committed once.
type Layer struct {
	o       *Store
	entries map[string]entry
	done    bool // guarded by o.mu
}

// Len returns the number of writes in the layer.
func (l *Layer) Len() int { return len(l.entries) }

// Commit writes the pending writes to the base store in one transaction,
// after calling beforeCommit: Freeze, then CommitLayer. It waits for the
// commit of a layer frozen before. On error the writes stay pending.
func (o *Store) Commit(ctx context.Context) error {
	l, err := o.Freeze()
	if err != nil {
		return err
	}
	return o.CommitLayer(ctx, l)
}

// Freeze moves the pending writes to a layer of their own, which reads
// still see, so that it can be committed (CommitLayer) while new writes
// go on. Freeze takes the store's commit slot, which CommitLayer gives
// back: while another layer is frozen, Freeze blocks until that layer is
// committed. The caller must pass the layer to CommitLayer, or the store
// never commits again. After Close it returns ErrClosed.
func (o *Store) Freeze() (*Layer, error) {
	o.slot.Lock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.slot.Unlock()
		return nil, state.ErrClosed
	}
	l := &Layer{o: o, entries: o.pending}
	o.committing = o.pending
	o.pending = make(map[string]entry, len(o.committing))
	return l, nil
}

// CommitLayer calls beforeCommit, then writes the frozen layer l to the
// base in one transaction, and gives back the commit slot Freeze took. It
// may run in another goroutine than Freeze. On error the layer's writes go
// back to the pending ones, under those written since Freeze, so that the
// next commit retries them. It returns an error without doing anything if
// l is not a layer of this store's Freeze, or was committed already.
func (o *Store) CommitLayer(ctx context.Context, l *Layer) error {
	o.mu.Lock()
	bad := l == nil || l.o != o || l.done
	if !bad {
		l.done = true
	}
	o.mu.Unlock()
	if bad {
		return errors.New("cannot commit state: the layer is not one frozen by this store, or was committed already")
	}
	defer o.slot.Unlock()
	err := o.writeLayer(ctx, l.entries)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		for k, p := range l.entries {
			if _, newer := o.pending[k]; !newer {
				o.pending[k] = p
			}
		}
	}
	o.committing = nil
	return err
}

func (o *Store) writeLayer(ctx context.Context, layer map[string]entry) error {
	if o.beforeCommit != nil {
		if err := o.beforeCommit(); err != nil {
			return fmt.Errorf("cannot flush the outputs before committing state: %w", err)
		}
	}
	if len(layer) == 0 {
		return nil
	}
	err := o.base.Update(ctx, time.Time{}, func(tx state.Tx) error {
		// One buffer for every key: Put and Delete copy their key.
		var kb []byte
		for k, p := range layer {
			var err error
			kb = append(kb[:0], k...)
			if p.deleted {
				err = tx.Delete(kb)
			} else {
				err = tx.Put(kb, p.val, state.FromUnixNano(p.exp))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot commit state: %w", err)
	}
	return nil
}

// DeleteExpired implements state.Store without committing anything: it
// turns every pending write expired at now into a pending deletion, and
// sweeps the base. The frozen layer, if any, is left alone; its expired
// entries are swept from the base once committed. A pending write is never
// dropped, only replaced by a deletion, because the base may hold an older,
// live value under its key, which the deletion removes at the next commit.
//
// A concurrent CommitLayer is safe: it writes only its frozen layer, which
// DeleteExpired neither reads nor changes, and the base serialises the
// layer's transaction with each of the sweep's transactions, every one of
// which removes only entries expired at now as it finds them (the Store
// contract). So an entry of the layer that lands before a sweep batch is
// judged by its own expiry like any other, and one that lands after it
// waits for the next sweep; a live value is never removed. Either way each
// key ends with the value of its newest write, or with none if that write
// expired at now: a deletion made here replaces a pending write, which is
// newer than the layer's write of the same key and is committed after it.
//
// The count is the number of pending writes turned into deletions plus
// the base's own count, so that a sweep costs the base's sweep and one pass
// over the pending writes, without reads: a base entry swept from under an
// uncommitted write of the same key, which reads through the overlay did
// not see, counts too.
func (o *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	nowN := state.UnixNano(now)
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return 0, state.ErrClosed
	}
	removed := 0
	for k, p := range o.pending {
		if !p.deleted && !state.Live(p.exp, nowN) {
			o.pending[k] = entry{deleted: true}
			removed++
		}
	}
	o.mu.Unlock()
	if nowN == 0 {
		return removed, nil // nothing expires at the zero time
	}
	n, err := o.base.DeleteExpired(ctx, now)
	return removed + n, err
}

// Stats implements state.Store: the base's counts adjusted by the
// uncommitted writes.
func (o *Store) Stats(ctx context.Context) (state.Stats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return state.Stats{}, state.ErrClosed
	}
	st, err := o.base.Stats(ctx)
	if err != nil {
		return st, err
	}
	all := make(map[string]entry, len(o.pending)+len(o.committing))
	for k, p := range o.committing {
		all[k] = p
	}
	for k, p := range o.pending {
		all[k] = p
	}
	for k, p := range all {
		old, err := o.base.Get(ctx, []byte(k), time.Time{})
		switch {
		case err == nil:
			st.Entries--
			st.Bytes -= int64(len(k) + len(old))
		case !errors.Is(err, state.ErrNotFound):
			return st, err
		}
		if !p.deleted {
			st.Entries++
			st.Bytes += int64(len(k) + len(p.val))
		}
	}
	return st, nil
}

// Close commits the pending writes (waiting for a frozen layer's commit
// first) and closes the base store. Calls made once Close has started
// return ErrClosed. If the commit fails, its writes are lost, the base is
// closed all the same and the error is returned.
func (o *Store) Close() error {
	o.slot.Lock()
	defer o.slot.Unlock()
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	layer := o.pending
	o.pending = map[string]entry{}
	o.mu.Unlock()
	err := o.writeLayer(context.Background(), layer)
	if cerr := o.base.Close(); err == nil {
		err = cerr
	}
	return err
}
