package overlay_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

var (
	ctx = context.Background()
	t0  = time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC)
)

// The overlay is a Store: it passes the conformance suite over mem and,
// with reopening, over bolt.
func TestConformanceMem(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return overlay.New(mem.New(), nil) })
}

func TestConformanceBolt(t *testing.T) {
	open := func(t *testing.T, dir string) state.Store {
		s, err := bolt.Open(dir, bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return overlay.New(s, nil)
	}
	statetest.Run(t, func(t *testing.T) state.Store { return open(t, t.TempDir()) },
		statetest.WithReopen(func(t *testing.T, s state.Store) state.Store {
			dir := s.(*overlay.Store).Base().(*bolt.Store).Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dir[:len(dir)-len(bolt.FileName)-1])
		}))
}

func put(t *testing.T, s state.Store, key, val string, exp time.Time) {
	t.Helper()
	if err := state.Put(ctx, s, []byte(key), []byte(val), exp); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

// get returns the value of key at now, or "<none>".
func get(t *testing.T, s state.Store, key string, now time.Time) string {
	t.Helper()
	v, err := s.Get(ctx, []byte(key), now)
	if errors.Is(err, state.ErrNotFound) {
		return "<none>"
	}
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return string(v)
}

// Pending writes reach the base only at Commit, after beforeCommit; a
// failing beforeCommit keeps them pending.
func TestCommit(t *testing.T) {
	base := mem.New()
	fail := errors.New("output down")
	var flushErr error
	flushes := 0
	o := overlay.New(base, func() error { flushes++; return flushErr })
	put(t, o, "k", "v", t0.Add(time.Hour))
	if got := get(t, base, "k", t0); got != "<none>" {
		t.Fatalf("base has the write before Commit: %q", got)
	}
	if got := get(t, o, "k", t0); got != "v" {
		t.Fatalf("overlay Get = %q", got)
	}
	flushErr = fail
	if err := o.Commit(ctx); !errors.Is(err, fail) {
		t.Fatalf("Commit with a failing flush = %v", err)
	}
	if o.Pending() != 1 {
		t.Fatalf("pending after failed commit = %d, want 1", o.Pending())
	}
	flushErr = nil
	if err := o.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, base, "k", t0); got != "v" {
		t.Fatalf("base after Commit = %q", got)
	}
	if o.Pending() != 0 || flushes != 2 {
		t.Fatalf("pending %d, flushes %d", o.Pending(), flushes)
	}
	// A pending delete hides the base's entry.
	if err := state.Delete(ctx, o, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if got := get(t, o, "k", t0); got != "<none>" {
		t.Fatalf("Get after pending delete = %q", got)
	}
	n := 0
	o.Scan(ctx, nil, t0, func(state.Entry) error { n++; return nil })
	if n != 0 {
		t.Fatalf("scan sees %d entries after pending delete", n)
	}
}

// A frozen layer is seen by reads while it commits; writes made meanwhile
// are newer; a failed commit puts the layer back under them; a second
// Freeze waits for the first layer's commit.
func TestFreezeAndCommitLayer(t *testing.T) {
	base := mem.New()
	flushErr := errors.New("output down")
	var mu sync.Mutex
	o := overlay.New(base, func() error { mu.Lock(); defer mu.Unlock(); return flushErr })
	put(t, o, "a", "a1", time.Time{})
	put(t, o, "b", "b1", time.Time{})
	l, err := o.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 {
		t.Fatalf("layer of %d writes, want 2", l.Len())
	}
	put(t, o, "b", "b2", time.Time{})
	if a, b := get(t, o, "a", t0), get(t, o, "b", t0); a != "a1" || b != "b2" {
		t.Fatalf("reads during the commit: a %q, b %q; want a1, b2", a, b)
	}
	if o.Pending() != 3 {
		t.Fatalf("pending = %d, want 3 (2 frozen, 1 newer)", o.Pending())
	}

	// Another commit waits for the frozen layer.
	second := make(chan error, 1)
	go func() { second <- o.Commit(ctx) }()
	select {
	case err := <-second:
		t.Fatalf("Commit returned %v while a layer was frozen", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := o.CommitLayer(ctx, l); !errors.Is(err, flushErr) {
		t.Fatalf("CommitLayer with a failing flush = %v", err)
	}
	if err := <-second; !errors.Is(err, flushErr) {
		t.Fatalf("the waiting Commit = %v, want the flush error", err)
	}
	// Both failed: everything is pending, the newer b on top.
	if a, b := get(t, o, "a", t0), get(t, o, "b", t0); a != "a1" || b != "b2" {
		t.Fatalf("after failed commits: a %q, b %q; want a1, b2", a, b)
	}
	mu.Lock()
	flushErr = nil
	mu.Unlock()
	if err := o.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := get(t, base, "a", t0), get(t, base, "b", t0); a != "a1" || b != "b2" || o.Pending() != 0 {
		t.Fatalf("base after commit: a %q, b %q, %d pending", a, b, o.Pending())
	}
	// A layer commits once.
	if err := o.CommitLayer(ctx, l); err == nil {
		t.Fatal("a layer committed twice")
	}
	if err := o.CommitLayer(ctx, nil); err == nil {
		t.Fatal("CommitLayer of nil succeeded")
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Freeze(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Freeze after Close = %v, want ErrClosed", err)
	}
}

// DeleteExpired commits nothing: pending writes stay pending (expired ones
// as deletions) and beforeCommit is not called.
func TestDeleteExpiredKeepsPending(t *testing.T) {
	base := mem.New()
	flushes := 0
	o := overlay.New(base, func() error { flushes++; return nil })
	put(t, base, "swept", "old", t0.Add(time.Minute))
	put(t, o, "live", "l", t0.Add(time.Hour))
	put(t, o, "expired", "e", t0.Add(time.Minute))
	n, err := o.DeleteExpired(ctx, t0.Add(2*time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpired = %d, %v; want 2 (swept and expired)", n, err)
	}
	if flushes != 0 {
		t.Fatalf("DeleteExpired flushed the outputs %d times", flushes)
	}
	if o.Pending() != 2 {
		t.Fatalf("pending = %d, want 2 (a put and a deletion)", o.Pending())
	}
	for key, want := range map[string]string{"swept": "<none>", "live": "<none>", "expired": "<none>"} {
		if got := get(t, base, key, time.Time{}); got != want {
			t.Errorf("base %q = %q, want %q", key, got, want)
		}
	}
	if got := get(t, o, "live", time.Time{}); got != "l" {
		t.Fatalf("pending live write = %q", got)
	}
	if got := get(t, o, "expired", time.Time{}); got != "<none>" {
		t.Fatalf("expired pending write still visible unswept: %q", got)
	}
	if st, err := o.Stats(ctx); err != nil || st.Entries != 1 {
		t.Fatalf("stats = %+v, %v; want the live entry only", st, err)
	}
	if err := o.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, base, "live", time.Time{}); got != "l" || flushes != 1 {
		t.Fatalf("after Commit: base live = %q, %d flushes", got, flushes)
	}
}

// An expired pending put over a live base value becomes a deletion: the
// base's older value does not come back, before or after the commit.
func TestDeleteExpiredDoesNotResurrect(t *testing.T) {
	base := mem.New()
	o := overlay.New(base, nil)
	put(t, base, "k", "old", time.Time{})
	put(t, o, "k", "new", t0.Add(time.Minute))
	if n, err := o.DeleteExpired(ctx, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1", n, err)
	}
	if got := get(t, o, "k", time.Time{}); got != "<none>" {
		t.Fatalf("after the sweep, k = %q; want none", got)
	}
	if got := get(t, base, "k", time.Time{}); got != "old" {
		t.Fatalf("the sweep wrote to the base before the commit: k = %q", got)
	}
	if err := o.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := get(t, base, "k", time.Time{}); got != "<none>" {
		t.Fatalf("after the commit, base k = %q; want none", got)
	}
}

// The count is of pending writes turned into deletions plus the base's
// removals, shadowed or not; every expired entry goes from the base.
func TestDeleteExpiredCount(t *testing.T) {
	base := mem.New()
	o := overlay.New(base, nil)
	exp := t0.Add(time.Minute)
	put(t, base, "both", "b0", exp)
	put(t, base, "under-live", "u0", exp)
	put(t, base, "under-delete", "d0", exp)
	put(t, base, "alone", "a0", exp)
	put(t, base, "live", "l0", t0.Add(time.Hour))
	put(t, o, "both", "b1", exp)
	put(t, o, "under-live", "u1", t0.Add(time.Hour))
	if err := state.Delete(ctx, o, []byte("under-delete")); err != nil {
		t.Fatal(err)
	}
	n, err := o.DeleteExpired(ctx, exp)
	if err != nil || n != 5 {
		t.Fatalf("DeleteExpired = %d, %v; want 5 (1 pending, 4 in the base)", n, err)
	}
	if st, err := base.Stats(ctx); err != nil || st.Entries != 1 {
		t.Fatalf("base stats = %+v, %v; want every expired entry swept", st, err)
	}
	for key, want := range map[string]string{"both": "<none>", "under-live": "u1", "under-delete": "<none>", "alone": "<none>", "live": "l0"} {
		if got := get(t, o, key, time.Time{}); got != want {
			t.Errorf("after the sweep, %s = %q, want %q", key, got, want)
		}
	}
	if n, err := o.DeleteExpired(ctx, exp); err != nil || n != 0 {
		t.Fatalf("DeleteExpired again = %d, %v; want 0", n, err)
	}
	if n, err := o.DeleteExpired(ctx, time.Time{}); err != nil || n != 0 {
		t.Fatalf("DeleteExpired at the zero time = %d, %v; want 0", n, err)
	}
}

// A frozen layer is left alone by the sweep: its expired writes are still
// committed and swept from the base afterwards.
func TestDeleteExpiredLeavesFrozenLayer(t *testing.T) {
	base := mem.New()
	o := overlay.New(base, nil)
	put(t, o, "frozen", "f", t0.Add(time.Minute))
	l, err := o.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := o.DeleteExpired(ctx, t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteExpired during the commit = %d, %v; want 0", n, err)
	}
	if err := o.CommitLayer(ctx, l); err != nil {
		t.Fatal(err)
	}
	if got := get(t, base, "frozen", time.Time{}); got != "f" {
		t.Fatalf("frozen write in the base = %q, want f", got)
	}
	if n, err := o.DeleteExpired(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired after the commit = %d, %v; want 1", n, err)
	}
}

// Sweeps running while layers commit in the background lose no live write
// and bring back no deleted or expired one. Run with -race.
func TestDeleteExpiredConcurrentCommit(t *testing.T) {
	for _, name := range []string{"mem", "bolt"} {
		t.Run(name, func(t *testing.T) {
			var base state.Store = mem.New()
			if name == "bolt" {
				b, err := bolt.Open(t.TempDir(), bolt.Options{NoSync: true})
				if err != nil {
					t.Fatal(err)
				}
				base = b
			}
			testConcurrentSweep(t, base)
		})
	}
}

func testConcurrentSweep(t *testing.T, base state.Store) {
	o := overlay.New(base, nil)
	defer o.Close()
	type write struct {
		val string
		exp time.Time
		del bool
	}
	const keys, writes, sweeps = 40, 3000, 200
	last := t0.Add(sweeps * time.Second)
	model := map[string]write{}
	r := rand.New(rand.NewPCG(7, 8))

	done := make(chan struct{})
	sweepErr := make(chan error, 1)
	go func() {
		defer close(sweepErr)
		for j := 1; ; j++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := o.DeleteExpired(ctx, t0.Add(time.Duration(j%sweeps)*time.Second)); err != nil {
				sweepErr <- err
				return
			}
		}
	}()

	var commits sync.WaitGroup
	commitErr := make(chan error, writes)
	for i := range writes {
		key := fmt.Sprintf("k%02d", r.IntN(keys))
		w := write{val: fmt.Sprintf("v%d", i), exp: t0.Add(time.Duration(r.IntN(2*sweeps)) * time.Second)}
		if r.IntN(10) == 0 {
			w = write{del: true}
		}
		err := o.Update(ctx, t0, func(tx state.Tx) error {
			if w.del {
				return tx.Delete([]byte(key))
			}
			return tx.Put([]byte(key), []byte(w.val), w.exp)
		})
		if err != nil {
			t.Fatal(err)
		}
		model[key] = w
		if i%25 == 24 {
			l, err := o.Freeze() // waits for the previous layer
			if err != nil {
				t.Fatal(err)
			}
			commits.Add(1)
			go func() {
				defer commits.Done()
				if err := o.CommitLayer(ctx, l); err != nil {
					commitErr <- err
				}
			}()
		}
	}
	commits.Wait()
	close(done)
	if err := <-sweepErr; err != nil {
		t.Fatal(err)
	}
	close(commitErr)
	if err := <-commitErr; err != nil {
		t.Fatal(err)
	}
	if _, err := o.DeleteExpired(ctx, last); err != nil {
		t.Fatal(err)
	}
	if err := o.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for k, w := range model {
		if !w.del && w.exp.After(last) {
			want[k] = w.val
		}
	}
	got := map[string]string{}
	err := base.Scan(ctx, nil, time.Time{}, func(e state.Entry) error {
		got[string(e.Key)] = string(e.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("key %s = %q, want %q (its newest write)", k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("key %s = %q, want none (deleted or expired)", k, v)
		}
	}
}
