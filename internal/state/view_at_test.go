package state_test

import (
	"context"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestAtTx checks the views' transactions at an event time of their own:
// in a transaction judged at the zero time (every entry not yet swept
// visible), an entry that expired by the given time counts as missing,
// exactly as a transaction at that time would see it, and each view
// writes the expiry it judges by.
func TestAtTx(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := mem.New()
	defer s.Close()
	ids, _ := state.NewAlertIDs(s, "r", time.Hour)
	terms, _ := state.NewTerms(s, state.TermsConfig{Rule: "r", Window: time.Hour})
	groups, _ := state.NewGroups(s, state.GroupsConfig{Rule: "r", Period: time.Minute})
	upd := func(fn func(tx state.Tx) error) {
		t.Helper()
		if err := s.Update(ctx, time.Time{}, fn); err != nil {
			t.Fatal(err)
		}
	}
	upd(func(tx state.Tx) error {
		if first, err := ids.MarkAtTx(tx, []byte("a"), t0); err != nil || !first {
			t.Errorf("first mark: %v, %v", first, err)
		}
		if first, _ := ids.MarkAtTx(tx, []byte("a"), t0.Add(time.Minute)); first {
			t.Error("a mark within the retention marked again")
		}
		if _, isNew, err := terms.ObserveAtTx(tx, []byte("x"), t0); err != nil || !isNew {
			t.Errorf("first term: %v, %v", isNew, err)
		}
		if _, isNew, _ := terms.ObserveAtTx(tx, []byte("x"), t0.Add(59*time.Minute)); isNew {
			t.Error("a term seen within the window is new")
		}
		if _, opened, err := groups.AddAtTx(tx, []byte("k"), "id1", nil, t0); err != nil || !opened {
			t.Errorf("first alert of a group: %v, %v", opened, err)
		}
		if g, opened, _ := groups.AddAtTx(tx, []byte("k"), "id2", nil, t0.Add(30*time.Second)); opened || g.Count != 2 {
			t.Errorf("an alert within the period: opened %v, count %d", opened, g.Count)
		}
		return nil
	})
	// Later, in a transaction still judged at the zero time.
	late := t0.Add(59*time.Minute + time.Hour)
	upd(func(tx state.Tx) error {
		if _, raised, _ := ids.RaisedTx(tx, []byte("a"), t0.Add(time.Hour)); raised {
			t.Error("a mark is remembered past its retention")
		}
		if first, _ := ids.MarkAtTx(tx, []byte("a"), t0.Add(time.Hour)); !first {
			t.Error("a mark past its retention does not mark again")
		}
		if _, isNew, _ := terms.ObserveAtTx(tx, []byte("x"), late); !isNew {
			t.Error("a term not seen for the window is not new")
		}
		if g, found, _ := groups.GetTx(tx, []byte("k")); !found || g.Count != 2 || g.ID != "id1" {
			t.Errorf("GetTx: %+v, %v", g, found)
		}
		if g, opened, _ := groups.AddAtTx(tx, []byte("k"), "id3", nil, t0.Add(time.Minute)); !opened || g.ID != "id3" {
			t.Errorf("an alert at the end of the period: opened %v, %+v", opened, g)
		}
		return nil
	})
	// What was written expires as judged: a transaction at the time sees
	// the same.
	if _, raised, _ := ids.Raised(ctx, []byte("a"), t0.Add(2*time.Hour-time.Nanosecond)); !raised {
		t.Error("the new mark does not last its retention")
	}
	if _, seen, _ := terms.Seen(ctx, []byte("x"), late.Add(time.Hour-time.Nanosecond)); !seen {
		t.Error("the term observed late does not last its window")
	}
	if _, seen, _ := terms.Seen(ctx, []byte("x"), late.Add(time.Hour)); seen {
		t.Error("the term observed late outlasts its window")
	}
}
