package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestMarkUnlessLiveTx checks that MarkUnlessLiveTx gives the verdict of
// Raised followed by MarkTx at the same time: it marks an id not marked,
// not one marked and remembered, and again one whose mark has expired; the
// mark it writes is the one MarkTx writes (Raised reads it back with its
// event time).
func TestMarkUnlessLiveTx(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := mem.New()
	defer s.Close()
	ids, _ := state.NewAlertIDs(s, "r", time.Hour)
	mark := func(at time.Time) bool {
		t.Helper()
		var first bool
		err := s.Update(ctx, at, func(tx state.Tx) (err error) {
			first, err = ids.MarkUnlessLiveTx(tx, []byte("a"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	raised := func(at time.Time) (time.Time, bool) {
		t.Helper()
		m, ok, err := ids.Raised(ctx, []byte("a"), at)
		if err != nil {
			t.Fatal(err)
		}
		return m, ok
	}
	if _, ok := raised(t0); ok {
		t.Fatal("raised before any mark")
	}
	if !mark(t0) {
		t.Fatal("the first mark did not mark")
	}
	if m, ok := raised(t0.Add(time.Minute)); !ok || !m.Equal(t0) {
		t.Fatalf("Raised after the mark: %v, %v; want %v, true", m, ok, t0)
	}
	if mark(t0.Add(59 * time.Minute)) {
		t.Fatal("a mark within the retention marked again")
	}
	if _, ok := raised(t0.Add(time.Hour)); ok {
		t.Fatal("the mark is remembered past its retention")
	}
	if !mark(t0.Add(time.Hour)) {
		t.Fatal("a mark past its retention did not mark again")
	}
	if m, ok := raised(t0.Add(time.Hour + time.Minute)); !ok || !m.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Raised after the second mark: %v, %v", m, ok)
	}
	err := s.Update(ctx, time.Time{}, func(tx state.Tx) error {
		_, err := ids.MarkUnlessLiveTx(tx, []byte("b"))
		return err
	})
	if err == nil {
		t.Fatal("a mark at the zero time was accepted")
	}
}
