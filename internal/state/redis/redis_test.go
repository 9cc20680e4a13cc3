package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

var ctx = context.Background()

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// prefixes makes every store of a test binary a store of its own.
var prefixes atomic.Int64

func uniquePrefix(tb testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "-", "{", "", "}", "").Replace(tb.Name())
	return fmt.Sprintf("test-%d-%s", prefixes.Add(1), name)
}

func open(tb testing.TB, opts redis.Options) *redis.Store {
	tb.Helper()
	s, err := redis.Open(ctx, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	prefixOf := map[state.Store]string{}
	newStore := func(t *testing.T) state.Store {
		s := open(t, redis.Options{Addr: srv.Addr, Prefix: uniquePrefix(t), SweepBatch: 700, ScanPage: 3})
		t.Cleanup(func() { checkConsistent(t, srv.Addr, s.Prefix()) })
		prefixOf[s] = s.Prefix()
		return s
	}
	reopen := func(t *testing.T, s state.Store) state.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := open(t, redis.Options{Addr: srv.Addr, Prefix: prefixOf[s]})
		prefixOf[s2] = prefixOf[s]
		return s2
	}
	statetest.Run(t, newStore, statetest.WithReopen(reopen))
}

// checkConsistent checks, with a client of its own, that the store's
// indexes and counters agree with its entries.
func checkConsistent(t *testing.T, addr, prefix string) {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	base := "{" + prefix + "}:"
	keys, err := c.Keys(ctx, base+"d:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var entries, size, expiring int64
	for _, dk := range keys {
		raw, err := c.Get(ctx, dk).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		exp, v, err := state.DecodeEntry(raw)
		if err != nil {
			t.Fatalf("entry %q: %v", dk, err)
		}
		key := strings.TrimPrefix(dk, base+"d:")
		entries++
		size += int64(len(key) + len(v))
		if _, err := c.ZScore(ctx, base+"k", key).Result(); err != nil {
			t.Errorf("key %q is missing from the key index: %v", key, err)
		}
		score, err := c.ZScore(ctx, base+"x", key).Result()
		switch {
		case exp == 0 && err == nil:
			t.Errorf("key %q without expiry is in the expiry index", key)
		case exp != 0 && err != nil:
			t.Errorf("key %q expiring at %d is missing from the expiry index", key, exp)
		case exp != 0 && int64(score) != floorMillis(exp):
			t.Errorf("key %q expiring at %d has score %v", key, exp, score)
		}
		if exp != 0 {
			expiring++
		}
	}
	if n := c.ZCard(ctx, base+"k").Val(); n != entries {
		t.Errorf("key index has %d members for %d entries", n, entries)
	}
	if n := c.ZCard(ctx, base+"x").Val(); n != expiring {
		t.Errorf("expiry index has %d members for %d expiring entries", n, expiring)
	}
	m := c.HGetAll(ctx, base+"m").Val()
	if fmt.Sprint(entries) != orZero(m["entries"]) || fmt.Sprint(size) != orZero(m["bytes"]) {
		t.Errorf("counters say %s entries of %s bytes, found %d of %d", m["entries"], m["bytes"], entries, size)
	}
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func floorMillis(ns int64) int64 {
	q := ns / 1e6
	if ns%1e6 < 0 {
		q--
	}
	return q
}

// TestPrefixes checks that stores with different prefixes on one server
// are separate, and that options are validated.
func TestPrefixes(t *testing.T) {
	srv := redistest.Start(t)
	a := open(t, redis.Options{Addr: srv.Addr, Prefix: "a"})
	b := open(t, redis.Options{Addr: srv.Addr, Prefix: "ab"})
	if err := state.Put(ctx, a, []byte("k"), []byte("in a"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, []byte("k"), t0); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("store ab sees store a's key: %v", err)
	}
	if st, _ := b.Stats(ctx); st.Entries != 0 {
		t.Fatalf("store ab counts store a's entries: %+v", st)
	}
	n := 0
	b.Scan(ctx, nil, time.Time{}, func(state.Entry) error { n++; return nil })
	if n != 0 {
		t.Fatalf("store ab scans %d entries of store a", n)
	}
	for _, o := range []redis.Options{{}, {Addr: srv.Addr, Prefix: "x{y}"}, {Addr: srv.Addr, DB: -1}, {Addr: srv.Addr, MaxAttempts: -1}} {
		if _, err := redis.Open(ctx, o); err == nil {
			t.Errorf("Open(%+v) succeeded", o)
		}
	}
}

// TestSchemaAndScripts checks that a store of another schema version is
// refused, and that a server that lost the scripts (SCRIPT FLUSH) gets
// them again.
func TestSchemaAndScripts(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redis.Options{Addr: srv.Addr, Prefix: "p"})
	c := s.Client()
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := state.Put(ctx, s, []byte("k"), []byte("v"), t0.Add(time.Second)); err != nil {
		t.Fatalf("put after SCRIPT FLUSH: %v", err)
	}
	c.ScriptFlush(ctx)
	err := s.Update(ctx, t0, func(tx state.Tx) error {
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		return tx.Put([]byte("k2"), v, t0.Add(time.Second))
	})
	if err != nil {
		t.Fatalf("read-modify-write after SCRIPT FLUSH: %v", err)
	}
	c.ScriptFlush(ctx)
	if n, err := s.DeleteExpired(ctx, t0.Add(time.Second)); err != nil || n != 2 {
		t.Fatalf("DeleteExpired after SCRIPT FLUSH = %d, %v", n, err)
	}
	c.HSet(ctx, "{q}:m", "schema", "99")
	if _, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Prefix: "q"}); !errors.Is(err, state.ErrSchema) {
		t.Fatalf("open of schema 99 = %v, want ErrSchema", err)
	}
}

// TestPassword checks authentication against a server with requirepass.
func TestPassword(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret")
	if _, err := redis.Open(ctx, redis.Options{Addr: srv.Addr}); err == nil {
		t.Fatal("open without the password succeeded")
	}
	s := open(t, redis.Options{Addr: srv.Addr, Password: "s3cret"})
	if err := state.Put(ctx, s, []byte("k"), []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
}

// TestServerDown checks that a store whose server is gone fails with
// errors, not hangs or panics, and that Close still works.
func TestServerDown(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redis.Options{Addr: srv.Addr})
	srv.Stop()
	// go-redis retries dialing for a few seconds; each call gets its own
	// deadline so that every one of them meets the dead server.
	op := func() context.Context {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t.Cleanup(cancel)
		return cctx
	}
	if _, err := s.Get(op(), []byte("k"), t0); err == nil || errors.Is(err, state.ErrNotFound) {
		t.Fatalf("get with the server down = %v, want an error", err)
	}
	if err := state.Put(op(), s, []byte("k"), []byte("v"), time.Time{}); err == nil {
		t.Fatal("put with the server down succeeded")
	}
	err := s.Update(op(), t0, func(tx state.Tx) error {
		_, err := tx.Get([]byte("k"))
		return err
	})
	if err == nil || errors.Is(err, state.ErrNotFound) {
		t.Fatalf("update reading with the server down = %v, want an error", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Healthy is nil while the server answers and says so while it does not.
func TestHealthy(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, redis.Options{Addr: srv.Addr, Prefix: uniquePrefix(t)})
	if err := s.Healthy(); err != nil {
		t.Fatalf("up: %v", err)
	}
	srv.Stop()
	if err := s.Healthy(); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("down: %v", err)
	}
}
