package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kanon-dev/kanon/internal/state"
)

// Update implements state.Store optimistically: each attempt runs fn on a
// connection of its own, where every key fn reads is WATCHed and read in
// one round trip; the writes are buffered and applied by applyScript,
// inside MULTI/EXEC when fn read anything (so that EXEC fails if a read key
// changed) or alone when it read nothing (a script is atomic by itself).
// A failed EXEC runs fn again, up to Options.MaxAttempts times with a
// short random pause, and then Update returns an error wrapping
// state.ErrConflict. An error from fn is returned only if what fn read
// was consistent (checked with an empty MULTI/EXEC), so fn never fails for
// having seen half of another transaction.
func (s *Store) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	pause := 100 * time.Microsecond
	for attempt := 1; ; attempt++ {
		var retry bool
		err := s.c.Watch(ctx, func(rtx *goredis.Tx) error {
			var err error
			retry, err = s.attempt(ctx, rtx, now, fn)
			return err
		})
		if !retry {
			return err
		}
		if attempt == s.opts.MaxAttempts {
			return fmt.Errorf("cannot commit to redis state store %s: concurrent commits changed what the update read %d times: %w", s.opts.Prefix, attempt, state.ErrConflict)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause/2 + rand.N(pause)):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// attempt runs fn once on rtx and commits its writes. It reports whether
// the attempt must be run again.
func (s *Store) attempt(ctx context.Context, rtx *goredis.Tx, now time.Time, fn func(tx state.Tx) error) (retry bool, err error) {
	t := &tx{s: s, ctx: ctx, rtx: rtx, now: now, nowN: state.UnixNano(now)}
	defer func() {
		t.done = true
		if t.watching {
			// Release the watches on the way out (an error or a panic
			// in fn): the connection goes back to the pool.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			rtx.Unwatch(cctx)
			cancel()
		}
	}()
	ferr := fn(t)
	t.done = true
	if ferr != nil {
		if t.watching && t.err == nil {
			// Was what fn read consistent? An empty transaction fails
			// if a watched key changed.
			_, err := rtx.TxPipelined(ctx, func(p goredis.Pipeliner) error { p.Ping(ctx); return nil })
			t.watching = false
			if errors.Is(err, goredis.TxFailedErr) {
				return true, nil
			}
		}
		return false, ferr
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if len(t.writes) == 0 && !t.watching {
		return false, nil
	}
	keys, args := t.scriptArgs()
	var cmds []goredis.Cmder
	if t.watching {
		cmds, err = rtx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			if len(t.writes) > 0 {
				applyScript.EvalSha(ctx, p, keys, args...)
			} else {
				p.Ping(ctx) // a read-only transaction: EXEC checks the reads
			}
			return nil
		})
		t.watching = false
		if errors.Is(err, goredis.TxFailedErr) {
			return true, nil
		}
	} else {
		err = applyScript.EvalSha(ctx, rtx, keys, args...).Err()
	}
	if err != nil && goredis.HasErrorPrefix(firstErr(err, cmds), "NOSCRIPT") {
		if lerr := s.loadScripts(ctx); lerr != nil {
			return false, lerr
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot commit to redis state store %s: %w", s.opts.Prefix, err)
	}
	return false, nil
}

// firstErr returns the error of the first failed command of a
// transaction, or err.
func firstErr(err error, cmds []goredis.Cmder) error {
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	return err
}

// scriptArgs lays out the writes for applyScript.
func (t *tx) scriptArgs() ([]string, []any) {
	s := t.s
	keys := make([]string, 3, 3+len(t.writes))
	keys[0], keys[1], keys[2] = s.meta, s.index, s.expiry
	args := make([]any, 1, 1+2*len(t.writes))
	args[0] = len(s.data)
	for k, w := range t.writes {
		keys = append(keys, s.data+k)
		switch {
		case w.del:
			args = append(args, "d", "")
		case w.exp == 0:
			args = append(args, "p", w.raw)
		default:
			args = append(args, strconv.FormatInt(expiryScore(w.exp), 10), w.raw)
		}
	}
	return keys, args
}

// tx is the state.Tx of one attempt of Update.
type tx struct {
	s        *Store
	ctx      context.Context
	rtx      *goredis.Tx
	now      time.Time
	nowN     int64
	done     bool
	watching bool  // a WATCH is active on rtx's connection
	err      error // the first read error
	reads    map[string][]byte
	writes   map[string]write
}

// write is a buffered Put (raw is the stored entry) or Delete.
type write struct {
	raw []byte
	exp int64
	del bool
}

// missing marks a key read and found absent in tx.reads.
var missing = []byte(nil)

func (t *tx) Now() time.Time { return t.now }

// Get watches key and reads it in one round trip, the first time it is
// read; later reads see the same value, or the transaction's own write.
func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	if w, ok := t.writes[string(key)]; ok {
		if w.del {
			return nil, state.ErrNotFound
		}
		return decode(key, w.raw, t.nowN)
	}
	raw, ok := t.reads[string(key)]
	if !ok {
		var err error
		if raw, err = t.fetch(key); err != nil {
			if t.err == nil {
				t.err = err
			}
			return nil, err
		}
	}
	if raw == nil {
		return nil, state.ErrNotFound
	}
	return decode(key, raw, t.nowN)
}

// fetch sends WATCH and GET of key in one pipeline and remembers the value
// (nil: missing).
func (t *tx) fetch(key []byte) ([]byte, error) {
	dk := t.s.dataKey(key)
	var get *goredis.StringCmd
	t.watching = true
	_, err := t.rtx.Pipelined(t.ctx, func(p goredis.Pipeliner) error {
		p.Do(t.ctx, "watch", dk)
		get = p.Get(t.ctx, dk)
		return nil
	})
	raw, gerr := get.Bytes()
	switch {
	case errors.Is(gerr, goredis.Nil):
		raw = missing
	case gerr != nil:
		return nil, fmt.Errorf("cannot read key %q from redis: %w", key, gerr)
	case err != nil:
		return nil, fmt.Errorf("cannot read key %q from redis: %w", key, err)
	}
	if t.reads == nil {
		t.reads = make(map[string][]byte)
	}
	t.reads[string(key)] = raw
	return raw, nil
}

// Prefetch implements state.Prefetcher: it watches and reads every key of
// keys not read or written yet in one pipeline (WATCH, then MGET), one
// round trip whatever their number.
func (t *tx) Prefetch(keys [][]byte) error {
	if t.done {
		return state.ErrTxDone
	}
	var dks []string
	var todo [][]byte
	seen := map[string]bool{}
	for _, k := range keys {
		if err := state.ValidateKey(k); err != nil {
			return err
		}
		if _, ok := t.writes[string(k)]; ok {
			continue
		}
		if _, ok := t.reads[string(k)]; ok || seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		dks, todo = append(dks, t.s.dataKey(k)), append(todo, k)
	}
	if len(dks) == 0 {
		return nil
	}
	watch := make([]any, 0, 1+len(dks))
	watch = append(watch, "watch")
	for _, dk := range dks {
		watch = append(watch, dk)
	}
	var get *goredis.SliceCmd
	t.watching = true
	_, err := t.rtx.Pipelined(t.ctx, func(p goredis.Pipeliner) error {
		p.Do(t.ctx, watch...)
		get = p.MGet(t.ctx, dks...)
		return nil
	})
	vals, gerr := get.Result()
	if gerr == nil && err != nil {
		gerr = err
	}
	if gerr == nil && len(vals) != len(todo) {
		gerr = fmt.Errorf("MGET gave %d values for %d keys", len(vals), len(todo))
	}
	if gerr != nil {
		err := fmt.Errorf("cannot read %d keys from redis: %w", len(todo), gerr)
		if t.err == nil {
			t.err = err
		}
		return err
	}
	if t.reads == nil {
		t.reads = make(map[string][]byte, len(todo))
	}
	for i, k := range todo {
		switch v := vals[i].(type) {
		case nil:
			t.reads[string(k)] = missing
		case string:
			t.reads[string(k)] = []byte(v)
		default:
			err := fmt.Errorf("cannot read key %q from redis: MGET gave a %T", k, v)
			if t.err == nil {
				t.err = err
			}
			return err
		}
	}
	return nil
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
	exp := state.UnixNano(expiry)
	if t.writes == nil {
		t.writes = make(map[string]write)
	}
	t.writes[string(key)] = write{raw: state.AppendEntry(make([]byte, 0, state.EntryHeaderSize+len(value)), exp, value), exp: exp}
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
	t.writes[string(key)] = write{del: true}
	return nil
}
