package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// Option adjusts what Run checks.
type Option func(*config)

type config struct {
	reopen func(t *testing.T, s state.Store) state.Store
}

// WithReopen gives Run a way to close a durable store and open the same
// storage again, which enables the persistence tests. reopen must close s.
func WithReopen(reopen func(t *testing.T, s state.Store) state.Store) Option {
	return func(c *config) { c.reopen = reopen }
}

// t0 is the event time the tests start at.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// Run runs the conformance suite against stores made by newStore, each one
// new and empty. The suite closes every store it is given, and newStore may
// also register a cleanup that closes it, since Close is idempotent.
func Run(t *testing.T, newStore func(t *testing.T) state.Store, opts ...Option) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	mk := func(t *testing.T) state.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"GetPutDelete", testGetPutDelete},
		{"EmptyValueVsMissing", testEmptyValue},
		{"Ownership", testOwnership},
		{"Limits", testLimits},
		{"LargeValues", testLargeValues},
		{"UpdateFailsAtomically", testUpdateFails},
		{"UpdatePanics", testUpdatePanics},
		{"UpdateCanceled", testUpdateCanceled},
		{"ReadYourWrites", testReadYourWrites},
		{"TxDone", testTxDone},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"Isolation", testIsolation},
		{"Expiry", testExpiry},
		{"DeleteExpired", testDeleteExpired},
		{"DeleteExpiredMany", testDeleteExpiredMany},
		{"ScanOrder", testScanOrder},
		{"ScanStops", testScanStops},
		{"Stats", testStats},
		{"Terms", testTerms},
		{"TermsConcurrent", testTermsConcurrent},
		{"AlertIDs", testAlertIDs},
		{"Groups", testGroups},
		{"GroupsConcurrent", testGroupsConcurrent},
		{"GroupsJoinMany", testGroupsJoinMany},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, mk(t)) })
	}
	t.Run("Reopen", func(t *testing.T) {
		if c.reopen == nil {
			t.Skip("store is not durable: no WithReopen option")
		}
		testReopen(t, mk(t), c.reopen)
	})
}

var ctx = context.Background()

func k(s string) []byte { return []byte(s) }

func put(t *testing.T, s state.Store, key, val string, exp time.Time) {
	t.Helper()
	if err := state.Put(ctx, s, k(key), k(val), exp); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// mustGet checks that key holds want at now.
func mustGet(t *testing.T, s state.Store, key string, now time.Time, want string) {
	t.Helper()
	got, err := s.Get(ctx, k(key), now)
	if err != nil {
		t.Fatalf("get %q at %v: %v", key, now, err)
	}
	if string(got) != want {
		t.Fatalf("get %q at %v = %q, want %q", key, now, got, want)
	}
}

// mustMiss checks that key has no live entry at now.
func mustMiss(t *testing.T, s state.Store, key string, now time.Time) {
	t.Helper()
	got, err := s.Get(ctx, k(key), now)
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("get %q at %v = %q, %v; want ErrNotFound", key, now, got, err)
	}
	if got != nil {
		t.Fatalf("get %q at %v returned %q with ErrNotFound, want nil", key, now, got)
	}
}

func scanKeys(t *testing.T, s state.Store, prefix string, now time.Time) []string {
	t.Helper()
	var keys []string
	err := s.Scan(ctx, k(prefix), now, func(e state.Entry) error {
		keys = append(keys, string(e.Key))
		return nil
	})
	if err != nil {
		t.Fatalf("scan %q: %v", prefix, err)
	}
	return keys
}

func stats(t *testing.T, s state.Store) state.Stats {
	t.Helper()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatalf("stats: %v", err)
	}
	return st
}

func eqStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testGetPutDelete(t *testing.T, s state.Store) {
	mustMiss(t, s, "a", time.Time{})
	put(t, s, "a", "1", time.Time{})
	mustGet(t, s, "a", time.Time{}, "1")
	mustGet(t, s, "a", t0, "1")
	put(t, s, "a", "22", time.Time{})
	mustGet(t, s, "a", t0, "22")
	if err := state.Delete(ctx, s, k("a")); err != nil {
		t.Fatalf("delete: %v", err)
	}
	mustMiss(t, s, "a", time.Time{})
	if err := state.Delete(ctx, s, k("a")); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	// Keys differing in one byte, and keys that are prefixes of each other.
	put(t, s, "ab", "x", time.Time{})
	put(t, s, "abc", "y", time.Time{})
	mustGet(t, s, "ab", t0, "x")
	mustGet(t, s, "abc", t0, "y")
	mustMiss(t, s, "a", t0)
	mustMiss(t, s, "abd", t0)
	// Binary keys and values.
	bk, bv := []byte{0, 0xff, 0, 1}, []byte{0xff, 0, 0xfe}
	if err := state.Put(ctx, s, bk, bv, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, bk, t0); err != nil || !bytes.Equal(got, bv) {
		t.Fatalf("binary get = %x, %v; want %x", got, err, bv)
	}
}

func testEmptyValue(t *testing.T, s state.Store) {
	put(t, s, "empty", "", time.Time{})
	got, err := s.Get(ctx, k("empty"), t0)
	if err != nil {
		t.Fatalf("get of empty value: %v", err)
	}
	if got == nil || len(got) != 0 {
		t.Fatalf("get of empty value = %#v, want a non-nil empty slice", got)
	}
	if err := s.Update(ctx, t0, func(tx state.Tx) error {
		v, err := tx.Get(k("empty"))
		if err != nil || len(v) != 0 {
			return fmt.Errorf("tx get of empty value = %q, %v", v, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, s, "missing", t0)
	if keys := scanKeys(t, s, "", t0); !eqStrings(keys, []string{"empty"}) {
		t.Fatalf("scan = %q, want [empty]", keys)
	}
	if st := stats(t, s); st.Entries != 1 || st.Bytes != int64(len("empty")) {
		t.Fatalf("stats = %+v, want 1 entry of 5 bytes", st)
	}
}

func testOwnership(t *testing.T, s state.Store) {
	key, val := k("key"), k("value")
	if err := state.Put(ctx, s, key, val, time.Time{}); err != nil {
		t.Fatal(err)
	}
	copy(key, "KEY")
	copy(val, "VALUE")
	mustGet(t, s, "key", t0, "value")
	got, _ := s.Get(ctx, k("key"), t0)
	copy(got, "XXXXX")
	mustGet(t, s, "key", t0, "value")
	// A value put in a transaction and modified before commit.
	if err := s.Update(ctx, t0, func(tx state.Tx) error {
		v := k("first")
		if err := tx.Put(k("tx"), v, time.Time{}); err != nil {
			return err
		}
		copy(v, "FIRST")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, "tx", t0, "first")
}

func testLimits(t *testing.T, s state.Store) {
	for _, key := range [][]byte{nil, {}, make([]byte, state.MaxKeySize+1)} {
		if err := state.Put(ctx, s, key, k("v"), time.Time{}); !errors.Is(err, state.ErrInvalidKey) {
			t.Errorf("put with a key of %d bytes: %v, want ErrInvalidKey", len(key), err)
		}
		if _, err := s.Get(ctx, key, t0); !errors.Is(err, state.ErrInvalidKey) {
			t.Errorf("get with a key of %d bytes: %v, want ErrInvalidKey", len(key), err)
		}
		if err := state.Delete(ctx, s, key); !errors.Is(err, state.ErrInvalidKey) {
			t.Errorf("delete with a key of %d bytes: %v, want ErrInvalidKey", len(key), err)
		}
	}
	big := bytes.Repeat([]byte{'k'}, state.MaxKeySize)
	if err := state.Put(ctx, s, big, k("v"), time.Time{}); err != nil {
		t.Fatalf("put with a key of MaxKeySize bytes: %v", err)
	}
	mustGet(t, s, string(big), t0, "v")
	err := state.Put(ctx, s, k("big"), make([]byte, state.MaxValueSize+1), time.Time{})
	if !errors.Is(err, state.ErrValueTooLarge) {
		t.Fatalf("put of MaxValueSize+1 bytes: %v, want ErrValueTooLarge", err)
	}
	mustMiss(t, s, "big", time.Time{})
}

func testLargeValues(t *testing.T, s state.Store) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := map[string][]byte{}
	for i, n := range []int{1 << 12, 1 << 16, 1 << 20, 4 << 20} {
		v := make([]byte, n)
		for j := range v {
			v[j] = byte(r.Uint32())
		}
		key := "large/" + strconv.Itoa(i)
		vals[key] = v
		if err := state.Put(ctx, s, k(key), v, t0.Add(time.Hour)); err != nil {
			t.Fatalf("put of %d bytes: %v", n, err)
		}
	}
	var total int64
	for key, want := range vals {
		got, err := s.Get(ctx, k(key), t0)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("get %q: %d bytes, %v; want %d bytes back unchanged", key, len(got), err, len(want))
		}
		total += int64(len(key) + len(want))
	}
	if st := stats(t, s); st.Entries != 4 || st.Bytes != total {
		t.Fatalf("stats = %+v, want 4 entries of %d bytes", st, total)
	}
	if n, err := s.DeleteExpired(ctx, t0.Add(time.Hour)); err != nil || n != 4 {
		t.Fatalf("DeleteExpired = %d, %v; want 4", n, err)
	}
	if st := stats(t, s); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("stats after sweep = %+v, want empty", st)
	}
}

var errTest = errors.New("statetest: update function failed")

func testUpdateFails(t *testing.T, s state.Store) {
	put(t, s, "keep", "old", time.Time{})
	put(t, s, "gone", "old", time.Time{})
	before := stats(t, s)
	err := s.Update(ctx, t0, func(tx state.Tx) error {
		for i := range 10 {
			if err := tx.Put(k("new/"+strconv.Itoa(i)), k("v"), time.Time{}); err != nil {
				return err
			}
		}
		if err := tx.Put(k("keep"), k("new"), t0.Add(time.Hour)); err != nil {
			return err
		}
		if err := tx.Delete(k("gone")); err != nil {
			return err
		}
		return fmt.Errorf("after writing: %w", errTest)
	})
	if !errors.Is(err, errTest) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	mustGet(t, s, "keep", time.Time{}, "old")
	mustGet(t, s, "gone", time.Time{}, "old")
	if keys := scanKeys(t, s, "new/", time.Time{}); len(keys) != 0 {
		t.Fatalf("a failed update left %q", keys)
	}
	if after := stats(t, s); after != before {
		t.Fatalf("stats after a failed update = %+v, want %+v", after, before)
	}
	// The store is still usable.
	put(t, s, "keep", "newer", time.Time{})
	mustGet(t, s, "keep", t0, "newer")
}

func testUpdatePanics(t *testing.T, s state.Store) {
	func() {
		defer func() {
			if r := recover(); r != "statetest panic" {
				t.Fatalf("recovered %v, want the update function's panic", r)
			}
		}()
		s.Update(ctx, t0, func(tx state.Tx) error {
			if err := tx.Put(k("p"), k("v"), time.Time{}); err != nil {
				return err
			}
			panic("statetest panic")
		})
	}()
	mustMiss(t, s, "p", time.Time{})
	put(t, s, "p", "after", time.Time{})
	mustGet(t, s, "p", t0, "after")
}

func testUpdateCanceled(t *testing.T, s state.Store) {
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	called := false
	err := s.Update(cctx, t0, func(tx state.Tx) error {
		called = true
		return tx.Put(k("c"), k("v"), time.Time{})
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a canceled context = %v, want context.Canceled", err)
	}
	if called {
		t.Error("Update called the function with a canceled context")
	}
	// Canceled while the function runs: nothing is committed.
	cctx, cancel = context.WithCancel(ctx)
	err = s.Update(cctx, t0, func(tx state.Tx) error {
		cancel()
		return tx.Put(k("c"), k("v"), time.Time{})
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update canceled during the function = %v, want context.Canceled", err)
	}
	mustMiss(t, s, "c", time.Time{})
}

func testReadYourWrites(t *testing.T, s state.Store) {
	put(t, s, "old", "1", time.Time{})
	err := s.Update(ctx, t0, func(tx state.Tx) error {
		if !tx.Now().Equal(t0) {
			return fmt.Errorf("tx.Now() = %v, want %v", tx.Now(), t0)
		}
		if err := tx.Put(k("new"), k("2"), time.Time{}); err != nil {
			return err
		}
		if v, err := tx.Get(k("new")); err != nil || string(v) != "2" {
			return fmt.Errorf("get after put = %q, %v", v, err)
		}
		if err := tx.Put(k("new"), k("3"), time.Time{}); err != nil {
			return err
		}
		if v, err := tx.Get(k("new")); err != nil || string(v) != "3" {
			return fmt.Errorf("get after second put = %q, %v", v, err)
		}
		if err := tx.Delete(k("old")); err != nil {
			return err
		}
		if v, err := tx.Get(k("old")); !errors.Is(err, state.ErrNotFound) {
			return fmt.Errorf("get after delete = %q, %v; want ErrNotFound", v, err)
		}
		if err := tx.Put(k("old"), k("4"), time.Time{}); err != nil {
			return err
		}
		if v, err := tx.Get(k("old")); err != nil || string(v) != "4" {
			return fmt.Errorf("get after delete and put = %q, %v", v, err)
		}
		// A put that is already expired at tx.Now() is invisible.
		if err := tx.Put(k("past"), k("5"), t0.Add(-time.Second)); err != nil {
			return err
		}
		if v, err := tx.Get(k("past")); !errors.Is(err, state.ErrNotFound) {
			return fmt.Errorf("get of an entry put already expired = %q, %v; want ErrNotFound", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, "new", t0, "3")
	mustGet(t, s, "old", t0, "4")
	mustMiss(t, s, "past", t0)
	mustGet(t, s, "past", time.Time{}, "5")
}

func testTxDone(t *testing.T, s state.Store) {
	var leaked state.Tx
	if err := s.Update(ctx, t0, func(tx state.Tx) error {
		leaked = tx
		return tx.Put(k("a"), k("1"), time.Time{})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := leaked.Get(k("a")); !errors.Is(err, state.ErrTxDone) {
		t.Errorf("Get on a finished tx: %v, want ErrTxDone", err)
	}
	if err := leaked.Put(k("b"), k("1"), time.Time{}); !errors.Is(err, state.ErrTxDone) {
		t.Errorf("Put on a finished tx: %v, want ErrTxDone", err)
	}
	if err := leaked.Delete(k("a")); !errors.Is(err, state.ErrTxDone) {
		t.Errorf("Delete on a finished tx: %v, want ErrTxDone", err)
	}
	mustGet(t, s, "a", t0, "1")
	mustMiss(t, s, "b", t0)
}

// update retries fn while the store reports ErrConflict, as callers must.
func update(s state.Store, now time.Time, fn func(tx state.Tx) error) error {
	for {
		err := s.Update(ctx, now, fn)
		if !errors.Is(err, state.ErrConflict) {
			return err
		}
	}
}

func testConcurrentUpdates(t *testing.T, s state.Store) {
	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				err := update(s, t0, func(tx state.Tx) error {
					n := 0
					switch v, err := tx.Get(k("counter")); {
					case err == nil:
						if n, err = strconv.Atoi(string(v)); err != nil {
							return err
						}
					case !errors.Is(err, state.ErrNotFound):
						return err
					}
					if err := tx.Put(k("counter"), k(strconv.Itoa(n+1)), time.Time{}); err != nil {
						return err
					}
					return tx.Put(k(fmt.Sprintf("w%d/%03d", w, i)), k(strconv.Itoa(n)), time.Time{})
				})
				if err != nil {
					errs <- err
					return
				}
				if _, err := s.Get(ctx, k("counter"), t0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent update: %v", err)
	}
	mustGet(t, s, "counter", t0, strconv.Itoa(workers*perWorker))
	// Every increment saw a distinct counter value: no two updates read
	// the same state.
	seen := map[string]bool{}
	s.Scan(ctx, k("w"), t0, func(e state.Entry) error {
		if seen[string(e.Value)] {
			t.Errorf("two updates read counter %s", e.Value)
		}
		seen[string(e.Value)] = true
		return nil
	})
	if len(seen) != workers*perWorker {
		t.Fatalf("%d updates recorded, want %d", len(seen), workers*perWorker)
	}
	if st := stats(t, s); st.Entries != workers*perWorker+1 {
		t.Fatalf("stats = %+v, want %d entries", st, workers*perWorker+1)
	}
}

// testIsolation checks that a transaction never sees half of another one:
// writers keep two keys equal, readers in transactions check them.
func testIsolation(t *testing.T, s state.Store) {
	put(t, s, "x", "0", time.Time{})
	put(t, s, "y", "0", time.Time{})
	const writers, readers, rounds = 2, 2, 30
	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for range writers {
		wg.Go(func() {
			for range rounds {
				err := update(s, t0, func(tx state.Tx) error {
					v, err := tx.Get(k("x"))
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					next := k(strconv.Itoa(n + 1))
					if err := tx.Put(k("x"), next, time.Time{}); err != nil {
						return err
					}
					return tx.Put(k("y"), next, time.Time{})
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for range rounds {
				err := update(s, t0, func(tx state.Tx) error {
					x, err := tx.Get(k("x"))
					if err != nil {
						return err
					}
					y, err := tx.Get(k("y"))
					if err != nil {
						return err
					}
					if !bytes.Equal(x, y) {
						return fmt.Errorf("a transaction saw x=%s y=%s, half of another one", x, y)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mustGet(t, s, "x", t0, strconv.Itoa(writers*rounds))
	mustGet(t, s, "y", t0, strconv.Itoa(writers*rounds))
}

func testExpiry(t *testing.T, s state.Store) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	put(t, s, "e/10", "a", at(10*time.Second))
	put(t, s, "e/20", "b", at(20*time.Second))
	put(t, s, "e/never", "c", time.Time{})

	mustGet(t, s, "e/10", at(0), "a")
	mustGet(t, s, "e/10", at(10*time.Second-1), "a")
	mustMiss(t, s, "e/10", at(10*time.Second)) // expiry <= now is expired
	mustMiss(t, s, "e/10", at(time.Hour))
	mustGet(t, s, "e/10", time.Time{}, "a") // the zero now filters nothing
	mustGet(t, s, "e/never", at(1000*time.Hour), "c")
	// Times before the expiry still see it: out-of-order events.
	mustGet(t, s, "e/20", at(-time.Hour), "b")

	if keys := scanKeys(t, s, "e/", at(15*time.Second)); !eqStrings(keys, []string{"e/20", "e/never"}) {
		t.Fatalf("scan at +15s = %q, want [e/20 e/never]", keys)
	}
	if keys := scanKeys(t, s, "e/", time.Time{}); len(keys) != 3 {
		t.Fatalf("scan at the zero time = %q, want all 3 keys", keys)
	}
	// Scan reports each entry's expiry.
	want := map[string]time.Time{"e/10": at(10 * time.Second), "e/20": at(20 * time.Second), "e/never": {}}
	s.Scan(ctx, k("e/"), time.Time{}, func(e state.Entry) error {
		if w := want[string(e.Key)]; !e.Expiry.Equal(w) {
			t.Errorf("scan: expiry of %q = %v, want %v", e.Key, e.Expiry, w)
		}
		return nil
	})

	// In a transaction at +15s, e/10 is gone and a put over it is an insert.
	err := s.Update(ctx, at(15*time.Second), func(tx state.Tx) error {
		if v, err := tx.Get(k("e/10")); !errors.Is(err, state.ErrNotFound) {
			return fmt.Errorf("tx get of an expired key = %q, %v; want ErrNotFound", v, err)
		}
		if v, err := tx.Get(k("e/20")); err != nil || string(v) != "b" {
			return fmt.Errorf("tx get of a live key = %q, %v", v, err)
		}
		return tx.Put(k("e/10"), k("a2"), at(30*time.Second))
	})
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, "e/10", at(25*time.Second), "a2")
	// Removing the expiry with a put of the zero time.
	put(t, s, "e/20", "b2", time.Time{})
	mustGet(t, s, "e/20", at(1000*time.Hour), "b2")
	if n, err := s.DeleteExpired(ctx, at(1000*time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1 (only the rewritten e/10)", n, err)
	}
	mustGet(t, s, "e/20", time.Time{}, "b2")
	mustMiss(t, s, "e/10", time.Time{})

	// Times far from now are clamped, not wrapped.
	put(t, s, "far/future", "f", time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
	put(t, s, "far/past", "p", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC))
	mustGet(t, s, "far/future", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), "f")
	mustMiss(t, s, "far/past", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC))
}

func testDeleteExpired(t *testing.T, s state.Store) {
	put(t, s, "d/1", "a", t0.Add(1*time.Second))
	put(t, s, "d/2", "bb", t0.Add(2*time.Second))
	put(t, s, "d/3", "ccc", t0.Add(3*time.Second))
	put(t, s, "d/never", "dddd", time.Time{})

	if n, err := s.DeleteExpired(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("DeleteExpired(zero time) = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteExpired(ctx, t0); err != nil || n != 0 {
		t.Fatalf("DeleteExpired(t0) = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteExpired(ctx, t0.Add(2*time.Second)); err != nil || n != 2 {
		t.Fatalf("DeleteExpired(+2s) = %d, %v; want 2", n, err)
	}
	mustMiss(t, s, "d/1", time.Time{})
	mustMiss(t, s, "d/2", time.Time{})
	mustGet(t, s, "d/3", time.Time{}, "ccc")
	if st := stats(t, s); st.Entries != 2 || st.Bytes != int64(3+3+7+4) {
		t.Fatalf("stats after sweep = %+v, want 2 entries of 17 bytes", st)
	}
	if n, err := s.DeleteExpired(ctx, t0.Add(2*time.Second)); err != nil || n != 0 {
		t.Fatalf("DeleteExpired repeated = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteExpired(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired(+1h) = %d, %v; want 1", n, err)
	}
	if keys := scanKeys(t, s, "", time.Time{}); !eqStrings(keys, []string{"d/never"}) {
		t.Fatalf("after sweeping, keys = %q, want [d/never]", keys)
	}
	// A deleted entry and an overwritten expiry leave nothing to sweep.
	put(t, s, "d/x", "x", t0.Add(time.Second))
	put(t, s, "d/x", "x", t0.Add(time.Hour))
	put(t, s, "d/y", "y", t0.Add(time.Second))
	state.Delete(ctx, s, k("d/y"))
	if n, err := s.DeleteExpired(ctx, t0.Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("DeleteExpired after rewrites = %d, %v; want 0", n, err)
	}
	mustGet(t, s, "d/x", t0.Add(time.Minute), "x")
}

func testDeleteExpiredMany(t *testing.T, s state.Store) {
	const n = 5000
	r := rand.New(rand.NewPCG(3, 4))
	expired := 0
	cut := t0.Add(n / 2 * time.Second)
	for lo := 0; lo < n; lo += 1000 {
		err := s.Update(ctx, t0, func(tx state.Tx) error {
			for i := lo; i < lo+1000; i++ {
				exp := t0.Add(time.Duration(r.IntN(n)+1) * time.Second)
				if !exp.After(cut) {
					expired++
				}
				if err := tx.Put(k(fmt.Sprintf("m/%05d", i)), k("v"), exp); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	live := len(scanKeys(t, s, "m/", cut))
	if live != n-expired {
		t.Fatalf("scan at the cut sees %d entries, want %d", live, n-expired)
	}
	got, err := s.DeleteExpired(ctx, cut)
	if err != nil || got != expired {
		t.Fatalf("DeleteExpired = %d, %v; want %d", got, err, expired)
	}
	if st := stats(t, s); st.Entries != int64(n-expired) {
		t.Fatalf("stats = %+v, want %d entries", st, n-expired)
	}
	if all := len(scanKeys(t, s, "m/", time.Time{})); all != n-expired {
		t.Fatalf("%d entries left, want %d", all, n-expired)
	}
}

func testScanOrder(t *testing.T, s state.Store) {
	keys := []string{"a", "a\x00", "a\x00\x01", "a\x01", "ab", "a\xff", "a\xff\xff", "b", "\xff", "\xff\xff\x00"}
	for _, i := range rand.New(rand.NewPCG(5, 6)).Perm(len(keys)) {
		put(t, s, keys[i], keys[i], time.Time{})
	}
	if got := scanKeys(t, s, "", time.Time{}); !eqStrings(got, keys) {
		t.Fatalf("scan of everything = %q, want %q", got, keys)
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a", keys[:7]},
		{"a\x00", []string{"a\x00", "a\x00\x01"}},
		{"a\xff", []string{"a\xff", "a\xff\xff"}},
		{"\xff", []string{"\xff", "\xff\xff\x00"}},
		{"\xff\xff", []string{"\xff\xff\x00"}},
		{"c", nil},
		{"ab\x00", nil},
	} {
		if got := scanKeys(t, s, tc.prefix, time.Time{}); !eqStrings(got, tc.want) {
			t.Errorf("scan %q = %q, want %q", tc.prefix, got, tc.want)
		}
	}
	// Values come with their keys.
	s.Scan(ctx, nil, time.Time{}, func(e state.Entry) error {
		if !bytes.Equal(e.Key, e.Value) {
			t.Errorf("scan: key %q has value %q", e.Key, e.Value)
		}
		return nil
	})
	// Keys made by the encoding helpers: a rule's prefix lists only its keys.
	for _, rule := range []string{"r", "r2", "rr"} {
		for _, part := range []string{"x", "y"} {
			if err := state.Put(ctx, s, state.Key(state.NSTerms, rule, k(part)), nil, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := scanKeys(t, s, string(state.AppendPrefix(nil, state.NSTerms, "r")), time.Time{}); len(got) != 2 {
		t.Fatalf("scan of rule r's prefix = %q, want its 2 keys only", got)
	}
}

func testScanStops(t *testing.T, s state.Store) {
	for i := range 10 {
		put(t, s, "s/"+strconv.Itoa(i), "v", time.Time{})
	}
	calls := 0
	err := s.Scan(ctx, k("s/"), time.Time{}, func(e state.Entry) error {
		calls++
		if calls == 3 {
			return errTest
		}
		return nil
	})
	if !errors.Is(err, errTest) || calls != 3 {
		t.Fatalf("scan stopped by its function: %v after %d calls, want errTest after 3", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = s.Scan(cctx, k("s/"), time.Time{}, func(e state.Entry) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("scan with a canceled context: %v, want context.Canceled", err)
	}
}

func testStats(t *testing.T, s state.Store) {
	if st := stats(t, s); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("stats of an empty store = %+v", st)
	}
	put(t, s, "abc", "12345", time.Time{})
	if st := stats(t, s); st.Entries != 1 || st.Bytes != 8 {
		t.Fatalf("stats = %+v, want 1 entry of 8 bytes", st)
	}
	put(t, s, "abc", "12", t0)
	put(t, s, "de", "", time.Time{})
	if st := stats(t, s); st.Entries != 2 || st.Bytes != 7 {
		t.Fatalf("stats after overwrite = %+v, want 2 entries of 7 bytes", st)
	}
	// Expired but not swept entries still count.
	mustMiss(t, s, "abc", t0)
	if st := stats(t, s); st.Entries != 2 {
		t.Fatalf("stats before sweep = %+v, want 2 entries", st)
	}
	state.Delete(ctx, s, k("de"))
	state.Delete(ctx, s, k("abc"))
	if st := stats(t, s); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("stats after deleting everything = %+v, want zero", st)
	}
}

func testTerms(t *testing.T, s state.Store) {
	terms, err := state.NewTerms(s, state.TermsConfig{Rule: "new-sa", Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	observe := func(term string, now time.Time, wantNew bool, wantFirst, wantLast time.Time) {
		t.Helper()
		ti, isNew, err := terms.Observe(ctx, k(term), now)
		if err != nil {
			t.Fatalf("observe %q at %v: %v", term, now, err)
		}
		if isNew != wantNew || !ti.FirstSeen.Equal(wantFirst) || !ti.LastSeen.Equal(wantLast) {
			t.Fatalf("observe %q at %v = %+v, new %t; want first %v, last %v, new %t", term, now, ti, isNew, wantFirst, wantLast, wantNew)
		}
	}
	seen := func(term string, now time.Time, want bool) {
		t.Helper()
		if _, ok, err := terms.Seen(ctx, k(term), now); err != nil || ok != want {
			t.Fatalf("seen %q at %v = %t, %v; want %t", term, now, ok, err, want)
		}
	}
	seen("alice", at(0), false)
	observe("alice", at(0), true, at(0), at(0))
	observe("alice", at(10*time.Minute), false, at(0), at(10*time.Minute))
	observe("alice", at(5*time.Minute), false, at(0), at(10*time.Minute))
	seen("alice", at(69*time.Minute), true)
	seen("alice", at(70*time.Minute), false) // not seen in the hour before
	observe("alice", at(70*time.Minute), true, at(70*time.Minute), at(70*time.Minute))
	// Out of order: an earlier event moves first seen back.
	observe("bob", at(30*time.Minute), true, at(30*time.Minute), at(30*time.Minute))
	observe("bob", at(20*time.Minute), false, at(20*time.Minute), at(30*time.Minute))
	// Terms of another rule are another history.
	other, _ := state.NewTerms(s, state.TermsConfig{Rule: "new-sa2", Window: time.Hour})
	if _, isNew, err := other.Observe(ctx, k("bob"), at(30*time.Minute)); err != nil || !isNew {
		t.Fatalf("observe in another rule = %t, %v; want new", isNew, err)
	}
	// The sweep removes terms not seen for the window.
	if n, err := s.DeleteExpired(ctx, at(91*time.Minute)); err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want bob in both rules", n, err)
	}
	seen("bob", time.Time{}, false)
	seen("alice", time.Time{}, true)

	// With slack, a known term seen again soon costs no write.
	slack, _ := state.NewTerms(s, state.TermsConfig{Rule: "slack", Window: time.Hour, Slack: 10 * time.Minute})
	if _, isNew, _ := slack.Observe(ctx, k("c"), at(0)); !isNew {
		t.Fatal("first observation with slack is not new")
	}
	if ti, isNew, err := slack.Observe(ctx, k("c"), at(5*time.Minute)); err != nil || isNew || !ti.LastSeen.Equal(at(0)) {
		t.Fatalf("observe within slack = %+v, %t, %v; want last seen unchanged", ti, isNew, err)
	}
	if ti, _, err := slack.Observe(ctx, k("c"), at(15*time.Minute)); err != nil || !ti.LastSeen.Equal(at(15*time.Minute)) {
		t.Fatalf("observe after slack = %+v, %v; want last seen moved", ti, err)
	}
	if _, _, err := terms.Observe(ctx, k("z"), time.Time{}); err == nil {
		t.Fatal("observe at the zero time succeeded")
	}
}

func testTermsConcurrent(t *testing.T, s state.Store) {
	terms, err := state.NewTerms(s, state.TermsConfig{Rule: "r", Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const workers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	news := map[string]int{}
	for w := range workers {
		wg.Go(func() {
			for i := range 10 {
				term := "term-" + strconv.Itoa(i)
				_, isNew, err := terms.Observe(ctx, k(term), t0.Add(time.Duration(w)*time.Second))
				if err != nil && !errors.Is(err, state.ErrConflict) {
					t.Error(err)
					return
				}
				if isNew {
					mu.Lock()
					news[term]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for i := range 10 {
		if n := news["term-"+strconv.Itoa(i)]; n != 1 {
			t.Errorf("term-%d reported new %d times, want once", i, n)
		}
	}
}

func testAlertIDs(t *testing.T, s state.Store) {
	ids, err := state.NewAlertIDs(s, "rule", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raised := func(id string, now time.Time, want bool) {
		t.Helper()
		if _, ok, err := ids.Raised(ctx, k(id), now); err != nil || ok != want {
			t.Fatalf("raised %q at %v = %t, %v; want %t", id, now, ok, err, want)
		}
	}
	mark := func(id string, at time.Time, want bool) {
		t.Helper()
		if first, err := ids.Mark(ctx, k(id), at); err != nil || first != want {
			t.Fatalf("mark %q at %v = %t, %v; want %t", id, at, first, err, want)
		}
	}
	raised("a1", t0, false)
	mark("a1", t0, true)
	mark("a1", t0.Add(time.Minute), false)
	raised("a1", t0.Add(23*time.Hour), true)
	if at, _, _ := ids.Raised(ctx, k("a1"), t0); !at.Equal(t0) {
		t.Fatalf("raised at %v, want %v", at, t0)
	}
	raised("a1", t0.Add(24*time.Hour), false)
	if err := ids.Unmark(ctx, k("a1")); err != nil {
		t.Fatal(err)
	}
	raised("a1", t0, false)

	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 8 {
		wg.Go(func() {
			first, err := ids.Mark(ctx, k("a2"), t0)
			if err != nil && !errors.Is(err, state.ErrConflict) {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d concurrent marks of one id were first, want 1", firsts)
	}
	forever, _ := state.NewAlertIDs(s, "forever", 0)
	if first, err := forever.Mark(ctx, k("a"), t0); err != nil || !first {
		t.Fatalf("mark = %t, %v", first, err)
	}
	if _, ok, _ := forever.Raised(ctx, k("a"), t0.Add(100000*time.Hour)); !ok {
		t.Fatal("an alert kept forever was forgotten")
	}
}

func testClose(t *testing.T, s state.Store) {
	put(t, s, "a", "1", time.Time{})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Get(ctx, k("a"), t0); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	called := false
	if err := s.Update(ctx, t0, func(tx state.Tx) error { called = true; return nil }); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Update after Close: %v, want ErrClosed", err)
	}
	if called {
		t.Error("Update after Close called its function")
	}
	if err := s.Scan(ctx, nil, t0, func(state.Entry) error { return nil }); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Scan after Close: %v, want ErrClosed", err)
	}
	if _, err := s.DeleteExpired(ctx, t0); !errors.Is(err, state.ErrClosed) {
		t.Errorf("DeleteExpired after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Stats(ctx); !errors.Is(err, state.ErrClosed) {
		t.Errorf("Stats after Close: %v, want ErrClosed", err)
	}
}

func testReopen(t *testing.T, s state.Store, reopen func(t *testing.T, s state.Store) state.Store) {
	put(t, s, "p/never", "1", time.Time{})
	put(t, s, "p/hour", "2", t0.Add(time.Hour))
	put(t, s, "p/empty", "", t0.Add(2*time.Hour))
	put(t, s, "p/deleted", "3", time.Time{})
	state.Delete(ctx, s, k("p/deleted"))
	s.Update(ctx, t0, func(tx state.Tx) error {
		tx.Put(k("p/failed"), k("4"), time.Time{})
		return errTest
	})
	before := stats(t, s)

	s = reopen(t, s)
	t.Cleanup(func() { s.Close() })
	mustGet(t, s, "p/never", t0, "1")
	mustGet(t, s, "p/hour", t0, "2")
	mustMiss(t, s, "p/hour", t0.Add(time.Hour))
	mustGet(t, s, "p/empty", t0, "")
	mustMiss(t, s, "p/deleted", time.Time{})
	mustMiss(t, s, "p/failed", time.Time{})
	if after := stats(t, s); after.Entries != before.Entries || after.Bytes != before.Bytes {
		t.Fatalf("stats after reopening = %+v, want %+v", after, before)
	}
	// The expiry index survives too.
	if n, err := s.DeleteExpired(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired after reopening = %d, %v; want 1", n, err)
	}
	if keys := scanKeys(t, s, "p/", time.Time{}); !eqStrings(keys, []string{"p/empty", "p/never"}) {
		t.Fatalf("keys after reopening and sweeping = %q", keys)
	}
	put(t, s, "p/new", "5", time.Time{})
	s = reopen(t, s)
	t.Cleanup(func() { s.Close() })
	mustGet(t, s, "p/new", t0, "5")
}
