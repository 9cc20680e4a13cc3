package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// overlay is a state.Store that keeps the writes of its transactions in
// memory, over a base store, until Commit writes all of them to the base in
// one transaction. It is how serve commits in groups: the engine's writes
// for a group of webhook batches (alert ids raised, new terms, input
// positions) reach the disk in one fsync, after the group's alerts were
// handed to the outputs (beforeCommit) and before the batches are
// acknowledged. A crash before the commit loses the group's writes, and the
// unacknowledged batches are sent again and evaluated again: their alerts
// carry the same ids, which the outputs deduplicate.
//
// Reads see the pending writes over the base. Update functions run one at a
// time, so transactions are serialisable. DeleteExpired and Close commit the
// pending writes first. overlay is safe for concurrent use.
type overlay struct {
	base         state.Store
	beforeCommit func() error // flushes the outputs; may be nil

	mu         sync.Mutex
	closed     bool
	pending    map[string]pendingEntry
	committing map[string]pendingEntry // frozen by freeze, being committed

	commitMu sync.Mutex // held while a layer is committed
}

// pendingEntry is one write not yet committed: a value with its expiry, or
// a deletion.
type pendingEntry struct {
	val     []byte // owned, never modified
	exp     int64  // state.UnixNano of the expiry, 0 for none
	deleted bool
}

var _ state.Store = (*overlay)(nil)

func newOverlay(base state.Store, beforeCommit func() error) *overlay {
	return &overlay{base: base, beforeCommit: beforeCommit, pending: map[string]pendingEntry{}}
}

// Pending returns the number of writes not yet committed.
func (o *overlay) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pending) + len(o.committing)
}

// lookup returns the pending write of key, if any: the newest layer
// first. The caller holds o.mu.
func (o *overlay) lookup(key []byte) (pendingEntry, bool) {
	if p, ok := o.pending[string(key)]; ok {
		return p, true
	}
	p, ok := o.committing[string(key)]
	return p, ok
}

// Get implements state.Store.
func (o *overlay) Get(ctx context.Context, key []byte, now time.Time) ([]byte, error) {
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
	o.mu.Unlock()
	if !ok {
		return o.base.Get(ctx, key, now)
	}
	if p.deleted || !state.Live(p.exp, state.UnixNano(now)) {
		return nil, state.ErrNotFound
	}
	return append(make([]byte, 0, len(p.val)), p.val...), nil
}

// Update implements state.Store: the writes stay in memory until Commit.
func (o *overlay) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return state.ErrClosed
	}
	tx := &overlayTx{o: o, ctx: ctx, now: now, nowN: state.UnixNano(now)}
	err := fn(tx)
	tx.done = true
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for k, w := range tx.writes {
		o.pending[k] = w
	}
	return nil
}

// overlayTx is the transaction of overlay.Update; the overlay's lock is
// held while it runs.
type overlayTx struct {
	o      *overlay
	ctx    context.Context
	now    time.Time
	nowN   int64
	done   bool
	writes map[string]pendingEntry
}

func (t *overlayTx) Now() time.Time { return t.now }

func (t *overlayTx) Get(key []byte) ([]byte, error) {
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

func (t *overlayTx) Put(key, value []byte, expiry time.Time) error {
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
		t.writes = map[string]pendingEntry{}
	}
	t.writes[string(key)] = pendingEntry{val: append([]byte{}, value...), exp: state.UnixNano(expiry)}
	return nil
}

func (t *overlayTx) Delete(key []byte) error {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
	if t.writes == nil {
		t.writes = map[string]pendingEntry{}
	}
	t.writes[string(key)] = pendingEntry{deleted: true}
	return nil
}

// Scan implements state.Store: the base's entries merged with the pending
// writes, in key order.
func (o *overlay) Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e state.Entry) error) error {
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
		p   pendingEntry
	}
	var mine []kv
	for k, p := range o.pending {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
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
			return nil // shadowed by a pending write, emitted next
		}
		return fn(e)
	})
	if err != nil {
		return err
	}
	return emitMine(nil)
}

// Commit writes the pending writes to the base store in one transaction,
// after calling beforeCommit. On error the writes stay pending.
func (o *overlay) Commit(ctx context.Context) error {
	o.commitMu.Lock()
	defer o.commitMu.Unlock()
	layer, err := o.freeze()
	if err != nil {
		return err
	}
	return o.commitLayer(ctx, layer)
}

// freeze moves the pending writes to a layer of their own, which reads
// still see, so that it can be committed while new writes go on. Only
// one layer is frozen at a time: the caller holds commitMu until
// commitLayer returns.
func (o *overlay) freeze() (map[string]pendingEntry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, state.ErrClosed
	}
	if o.committing != nil {
		panic("BUG: overlay: a layer is frozen already")
	}
	o.committing = o.pending
	o.pending = make(map[string]pendingEntry, len(o.committing))
	return o.committing, nil
}

// commitLayer calls beforeCommit and writes the frozen layer to the base.
// On error the layer's writes go back under the newer pending ones.
func (o *overlay) commitLayer(ctx context.Context, layer map[string]pendingEntry) error {
	err := o.writeLayer(ctx, layer)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		for k, p := range layer {
			if _, newer := o.pending[k]; !newer {
				o.pending[k] = p
			}
		}
	}
	o.committing = nil
	return err
}

func (o *overlay) writeLayer(ctx context.Context, layer map[string]pendingEntry) error {
	if o.beforeCommit != nil {
		if err := o.beforeCommit(); err != nil {
			return fmt.Errorf("cannot flush the outputs before committing state: %w", err)
		}
	}
	if len(layer) == 0 {
		return nil
	}
	err := o.base.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for k, p := range layer {
			var err error
			if p.deleted {
				err = tx.Delete([]byte(k))
			} else {
				err = tx.Put([]byte(k), p.val, state.FromUnixNano(p.exp))
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

// DeleteExpired implements state.Store: it commits the pending writes and
// sweeps the base.
func (o *overlay) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	if err := o.Commit(ctx); err != nil {
		return 0, err
	}
	return o.base.DeleteExpired(ctx, now)
}

// Stats implements state.Store: the base's counts adjusted by the pending
// writes.
func (o *overlay) Stats(ctx context.Context) (state.Stats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return state.Stats{}, state.ErrClosed
	}
	st, err := o.base.Stats(ctx)
	if err != nil {
		return st, err
	}
	all := make(map[string]pendingEntry, len(o.pending)+len(o.committing))
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

// Close commits the pending writes and closes the base store.
func (o *overlay) Close() error {
	o.mu.Lock()
	closed := o.closed
	o.mu.Unlock()
	if closed {
		return nil
	}
	err := o.Commit(context.Background())
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	if cerr := o.base.Close(); err == nil {
		err = cerr
	}
	return err
}
