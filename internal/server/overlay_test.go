package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

// The overlay is a Store: it passes the conformance suite over mem and,
// with reopening, over bolt.
func TestOverlayConformanceMem(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return newOverlay(mem.New(), nil) })
}

func TestOverlayConformanceBolt(t *testing.T) {
	open := func(t *testing.T, dir string) state.Store {
		s, err := bolt.Open(dir, bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return newOverlay(s, nil)
	}
	statetest.Run(t, func(t *testing.T) state.Store { return open(t, t.TempDir()) },
		statetest.WithReopen(func(t *testing.T, s state.Store) state.Store {
			dir := s.(*overlay).base.(*bolt.Store).Path()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return open(t, dir[:len(dir)-len(bolt.FileName)-1])
		}))
}

// Pending writes reach the base only at Commit, after beforeCommit; a
// failing beforeCommit keeps them pending.
func TestOverlayCommit(t *testing.T) {
	ctx := context.Background()
	base := mem.New()
	fail := errors.New("output down")
	var flushErr error
	flushes := 0
	o := newOverlay(base, func() error { flushes++; return flushErr })
	t0 := time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC)
	if err := state.Put(ctx, o, []byte("k"), []byte("v"), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := base.Get(ctx, []byte("k"), t0); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("base has the write before Commit: %v", err)
	}
	if v, err := o.Get(ctx, []byte("k"), t0); err != nil || string(v) != "v" {
		t.Fatalf("overlay Get = %q, %v", v, err)
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
	if v, err := base.Get(ctx, []byte("k"), t0); err != nil || string(v) != "v" {
		t.Fatalf("base after Commit = %q, %v", v, err)
	}
	if o.Pending() != 0 || flushes != 2 {
		t.Fatalf("pending %d, flushes %d", o.Pending(), flushes)
	}
	// A pending delete hides the base's entry.
	if err := state.Delete(ctx, o, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Get(ctx, []byte("k"), t0); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get after pending delete: %v", err)
	}
	n := 0
	o.Scan(ctx, nil, t0, func(state.Entry) error { n++; return nil })
	if n != 0 {
		t.Fatalf("scan sees %d entries after pending delete", n)
	}
}
