package redis_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// replicas opens n stores on one server with one prefix, each with a
// client of its own, as n kanon replicas would.
func replicas(t *testing.T, addr string, n int) []*redis.Store {
	prefix := uniquePrefix(t)
	ss := make([]*redis.Store, n)
	for i := range ss {
		ss[i] = open(t, redis.Options{Addr: addr, Prefix: prefix})
	}
	return ss
}

// retry runs an update until it commits, as the engine's callers do with
// state.ErrConflict.
func retry(t *testing.T, fn func() error) {
	t.Helper()
	for {
		err := fn()
		if err == nil {
			return
		}
		if !errors.Is(err, state.ErrConflict) {
			t.Error(err)
			return
		}
	}
}

// TestReplicas runs the engine's state operations from several goroutines
// on each of several stores (separate clients: separate replicas) sharing
// one server, and checks that each is atomic across them: an alert id is
// marked by exactly one caller, a term is new for exactly one, and a group
// is opened once and counts every alert added.
func TestReplicas(t *testing.T) {
	srv := redistest.Start(t)
	const nReplicas, perReplica = 4, 3
	ss := replicas(t, srv.Addr, nReplicas)
	run := func(fn func(s *redis.Store, worker int)) {
		var wg sync.WaitGroup
		for i, s := range ss {
			for w := range perReplica {
				wg.Go(func() { fn(s, i*perReplica+w) })
			}
		}
		wg.Wait()
	}

	t.Run("AlertMarkedOnce", func(t *testing.T) {
		var firsts [10]atomic.Int32
		run(func(s *redis.Store, _ int) {
			ids, _ := state.NewAlertIDs(s, "rule", time.Hour)
			for i := range firsts {
				retry(t, func() error {
					first, err := ids.Mark(ctx, []byte("alert-"+strconv.Itoa(i)), t0)
					if first {
						firsts[i].Add(1)
					}
					return err
				})
			}
		})
		for i := range firsts {
			if n := firsts[i].Load(); n != 1 {
				t.Errorf("alert-%d was marked first by %d callers, want 1", i, n)
			}
		}
	})

	t.Run("TermNewOnce", func(t *testing.T) {
		var news [10]atomic.Int32
		run(func(s *redis.Store, w int) {
			terms, _ := state.NewTerms(s, state.TermsConfig{Rule: "nt", Window: time.Hour})
			for i := range news {
				retry(t, func() error {
					_, isNew, err := terms.Observe(ctx, []byte("term-"+strconv.Itoa(i)), t0.Add(time.Duration(w)*time.Millisecond))
					if isNew {
						news[i].Add(1)
					}
					return err
				})
			}
		})
		for i := range news {
			if n := news[i].Load(); n != 1 {
				t.Errorf("term-%d was new for %d callers, want 1", i, n)
			}
		}
		// The term's first-seen time is the earliest observation's.
		terms, _ := state.NewTerms(ss[0], state.TermsConfig{Rule: "nt", Window: time.Hour})
		if ti, ok, err := terms.Seen(ctx, []byte("term-0"), t0.Add(time.Minute)); err != nil || !ok || !ti.FirstSeen.Equal(t0) {
			t.Errorf("term-0 = %+v, %t, %v; want first seen at %v", ti, ok, err, t0)
		}
	})

	t.Run("GroupCountedExactly", func(t *testing.T) {
		const each = 15
		var opened atomic.Int32
		run(func(s *redis.Store, w int) {
			gs, _ := state.NewGroups(s, state.GroupsConfig{Rule: "dedup", Period: time.Hour})
			for i := range each {
				id := fmt.Sprintf("a-%d-%d", w, i)
				retry(t, func() error {
					var o bool
					err := s.Update(ctx, t0.Add(time.Duration(i)*time.Second), func(tx state.Tx) (err error) {
						_, o, err = gs.AddTx(tx, []byte("curl"), id, []byte(id))
						return err
					})
					if err == nil && o {
						opened.Add(1)
					}
					return err
				})
			}
		})
		gs, _ := state.NewGroups(ss[1], state.GroupsConfig{Rule: "dedup", Period: time.Hour})
		g, found, err := gs.Get(ctx, []byte("curl"), t0)
		want := int64(nReplicas * perReplica * each)
		if err != nil || !found || g.Count != want || opened.Load() != 1 {
			t.Fatalf("group = %+v, %t, %v, opened %d times; want count %d, opened once", g, found, err, opened.Load(), want)
		}
	})
}

// counted opens a store whose round trips are counted.
func counted(tb testing.TB, opts redis.Options) (*redis.Store, *redistest.RoundTrips) {
	s := open(tb, opts)
	c := &redistest.RoundTrips{}
	s.Client().AddHook(c)
	return s, c
}

// TestRoundTrips checks what each operation costs in round trips, as
// doc.go says.
func TestRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	s, rt := counted(t, redis.Options{Addr: srv.Addr, SweepBatch: 100, ScanPage: 100})
	cost := func(what string, want int64, fn func() error) {
		t.Helper()
		before := rt.N()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := rt.N() - before; got != want {
			t.Errorf("%s took %d round trips, want %d", what, got, want)
		}
	}
	key := []byte("k")
	cost("a blind put", 1, func() error { return state.Put(ctx, s, key, []byte("v"), t0.Add(time.Hour)) })
	cost("a get", 1, func() error { _, err := s.Get(ctx, key, t0); return err })
	cost("a read-modify-write", 2, func() error {
		return s.Update(ctx, t0, func(tx state.Tx) error {
			v, err := tx.Get(key)
			if err != nil {
				return err
			}
			v2, _ := tx.Get(key) // read again: no round trip
			return tx.Put(key, append(v, v2...), t0.Add(time.Hour))
		})
	})
	cost("a read-only transaction", 2, func() error {
		return s.Update(ctx, t0, func(tx state.Tx) error { _, err := tx.Get([]byte("other")); return ignoreMissing(err) })
	})
	ids, _ := state.NewAlertIDs(s, "r", time.Hour)
	cost("marking an alert", 2, func() error { _, err := ids.Mark(ctx, []byte("a"), t0); return err })
	terms, _ := state.NewTerms(s, state.TermsConfig{Rule: "nt", Window: time.Hour, Slack: time.Minute})
	cost("learning a new term", 3, func() error { _, _, err := terms.Observe(ctx, []byte("t"), t0); return err })
	cost("seeing a known term", 1, func() error { _, _, err := terms.Observe(ctx, []byte("t"), t0.Add(time.Second)); return err })

	// A transaction that prefetches the keys it reads: one round trip for
	// the reads whatever their number, one for the commit.
	cost("a read-modify-write of 50 prefetched keys", 2, func() error {
		return s.Update(ctx, t0, func(tx state.Tx) error {
			keys := make([][]byte, 50)
			for i := range keys {
				keys[i] = []byte("pf/" + strconv.Itoa(i))
			}
			keys = append(keys, key, keys[0]) // one stored, one repeated
			if err := state.Prefetch(tx, keys); err != nil {
				return err
			}
			if v, err := tx.Get(key); err != nil || string(v) != "vv" {
				return fmt.Errorf("prefetched %q: %q, %v", key, v, err)
			}
			for _, k := range keys[:50] {
				if _, err := tx.Get(k); !errors.Is(err, state.ErrNotFound) {
					return fmt.Errorf("prefetched %q: %v, want not found", k, err)
				}
				if err := tx.Put(k, []byte("x"), t0.Add(time.Hour)); err != nil {
					return err
				}
			}
			return nil
		})
	})

	// The driver's commit: the engine's transactions of a group of
	// batches run on the overlay, which writes them to Redis in one
	// script call.
	ov := overlay.New(s, nil)
	for i := range 1000 {
		if err := state.Put(ctx, ov, []byte("ov/"+strconv.Itoa(i)), []byte("v"), t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	cost("committing 1000 writes", 1, func() error { return ov.Commit(ctx) })
	cost("scanning 1000 entries in pages of 100", 2*10+1, func() error {
		return s.Scan(ctx, []byte("ov/"), t0, func(state.Entry) error { return nil })
	})
	cost("sweeping 1053 entries in batches of 100", 2*11, func() error {
		n, err := s.DeleteExpired(ctx, t0.Add(2*time.Hour))
		if n != 1053 {
			return fmt.Errorf("swept %d, want 1053", n)
		}
		return err
	})
	cost("stats", 1, func() error { _, err := s.Stats(ctx); return err })
}

// TestPrefetchWatches checks that a prefetched key is watched like a key
// read with Get: another client's commit to it between the prefetch and
// the commit runs the transaction again, on the new value.
func TestPrefetchWatches(t *testing.T) {
	srv := redistest.Start(t)
	ss := replicas(t, srv.Addr, 2)
	a, b := ss[0], ss[1]
	key := []byte("n")
	if err := state.Put(ctx, a, key, []byte("1"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	attempts := 0
	err := a.Update(ctx, t0, func(tx state.Tx) error {
		attempts++
		if err := state.Prefetch(tx, [][]byte{key, []byte("absent")}); err != nil {
			return err
		}
		if attempts == 1 {
			// Another replica commits to the key after it was read.
			if err := state.Put(ctx, b, key, []byte("2"), time.Time{}); err != nil {
				return err
			}
		}
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		return tx.Put(key, append(v, '+'), time.Time{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if attempts != 2 {
		t.Errorf("ran %d times, want 2 (the first commit must fail)", attempts)
	}
	if v, err := a.Get(ctx, key, t0); err != nil || string(v) != "2+" {
		t.Errorf("%q: %q, %v; want \"2+\"", key, v, err)
	}
}

func ignoreMissing(err error) error {
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	return err
}
