package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestServeSweepsExpiredState: serve removes entries that expired before
// the newest event time it has seen, so the store follows the rules'
// history windows while it runs.
func TestServeSweepsExpiredState(t *testing.T) {
	store := mem.New()
	ctx := context.Background()
	stale := state.Key(state.NSTerms, "some-rule", []byte("old term"))
	if err := state.Put(ctx, store, stale, []byte("x"), time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(dc *run.Config, _ *Config) {
		dc.Store, dc.Policy.IdleCheck, dc.Policy.SweepEvery = store, 10*time.Millisecond, 10*time.Millisecond
	})
	if r := mustPost(t, ts.client("client"), ts.url+"/audit/prod", eventList(exampleLines(t))); r.code != 200 {
		t.Fatalf("post: %d %s", r.code, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.Get(ctx, stale, time.Time{})
		if errors.Is(err, state.ErrNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired entry is still in the store: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
