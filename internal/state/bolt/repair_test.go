package bolt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

var repairAt = func() time.Time { return time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC) }

// repaired runs Repair on dir and checks what every repair must give: a
// copy of the damaged file, byte for byte, and a new store that opens and
// passes Check, whose entries are a subset of want with the same values.
func repaired(t *testing.T, dir string, damaged []byte, want map[string]string) *bolt.RepairReport {
	t.Helper()
	rep, err := bolt.Repair(ctx, dir, bolt.RepairOptions{Now: repairAt})
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if rep.Damage == nil {
		t.Fatal("repair found no damage")
	}
	if wantCopy := filepath.Join(dir, "kanon.db.damaged-20260102T150405Z"); rep.Copy != wantCopy {
		t.Fatalf("copy at %q, want %q", rep.Copy, wantCopy)
	}
	if b, err := os.ReadFile(rep.Copy); err != nil || string(b) != string(damaged) {
		t.Fatalf("the copy of the damaged file differs from it (%d bytes, %v)", len(b), err)
	}
	s := open(t, dir, bolt.Options{})
	checked(t, s)
	s.Close()
	got := entries(t, dir)
	if int64(len(got)) != rep.Kept {
		t.Fatalf("report says %d entries kept, the store has %d", rep.Kept, len(got))
	}
	for k, v := range got {
		if want[k] != v {
			t.Fatalf("repaired entry %q is %q, was %q", k, v, want[k])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".repair-*")); len(left) > 0 {
		t.Fatalf("repair left %v behind", left)
	}
	return rep
}

// TestRepair: Repair salvages most entries of damaged stores, keeps the
// damaged file, and leaves a sound store alone.
func TestRepair(t *testing.T) {
	const n = 3000
	for _, c := range []struct {
		name    string
		damage  func(b []byte) []byte
		atLeast int
	}{
		// bbolt writes new pages at the end: the tree of the last commit
		// is lost with the second half, but the first half's leaf pages
		// are still there.
		{"cut to half", func(b []byte) []byte { return b[:len(b)/2] }, n * 4 / 10},
		{"leaf page zeroed", func(b []byte) []byte {
			ps := os.Getpagesize()
			for pg := 2; pg*ps < len(b); pg++ { // the first leaf page of many entries
				p := b[pg*ps:]
				if p[8] == 0x02 && p[10] > 20 {
					clear(p[:ps])
					return b
				}
			}
			t.Fatal("no leaf page")
			return nil
		}, n - 100},
		{"meta pages zeroed", func(b []byte) []byte {
			clear(b[:2*os.Getpagesize()])
			return b
		}, n},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir, n)
			want := entries(t, dir)
			damaged := damage(t, dir, c.damage)
			rep := repaired(t, dir, damaged, want)
			t.Logf("kept %d (%d from the previous commit, %d orphaned), dropped %d, lost pages %d, counted %d; %v; %v",
				rep.Kept, rep.FromPrevious, rep.Orphaned, rep.Dropped, rep.LostPages, rep.Counted, rep.Damage, rep.Problems)
			if rep.Kept < int64(c.atLeast) {
				t.Fatalf("kept %d of %d entries, want at least %d", rep.Kept, n, c.atLeast)
			}
		})
	}
	t.Run("sound", func(t *testing.T) {
		dir := t.TempDir()
		fill(t, dir, 100)
		rep, err := bolt.Repair(ctx, dir, bolt.RepairOptions{})
		if err != nil || rep.Damage != nil || rep.Copy != "" {
			t.Fatalf("repair of a sound store: %+v, %v", rep, err)
		}
		if got := entries(t, dir); len(got) != 100 {
			t.Fatalf("after repairing a sound store: %d entries", len(got))
		}
	})
	t.Run("empty and foreign", func(t *testing.T) {
		for _, content := range []string{"", "some text\n"} {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, bolt.FileName), []byte(content), 0o600)
			rep := repaired(t, dir, []byte(content), nil)
			if rep.Kept != 0 {
				t.Fatalf("kept %d entries of a file that was none", rep.Kept)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := bolt.Repair(ctx, t.TempDir(), bolt.RepairOptions{}); err == nil {
			t.Fatal("repair of a missing store succeeded")
		}
	})
}

// TestRepairLocked: Repair and Discard give up within their lock timeout
// while another process (here: another open file) holds the store, and
// change nothing.
func TestRepairLocked(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 100)
	s := open(t, dir, bolt.Options{})
	defer s.Close()
	start := time.Now()
	if _, err := bolt.Repair(ctx, dir, bolt.RepairOptions{LockTimeout: 200 * time.Millisecond}); !errors.Is(err, state.ErrLocked) {
		t.Fatalf("repair of a locked store: %v, want ErrLocked", err)
	}
	if _, err := bolt.Discard(dir, bolt.RepairOptions{LockTimeout: 200 * time.Millisecond}); !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "in use by another kanon process") {
		t.Fatalf("discard of a locked store: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	if copies, _ := filepath.Glob(filepath.Join(dir, "*.damaged-*")); len(copies) > 0 {
		t.Fatalf("a refused repair left %v", copies)
	}
}

// TestDiscard: Discard keeps a copy of a damaged file and starts an empty
// store in its place.
func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 300)
	damaged := damage(t, dir, func(b []byte) []byte { return b[:len(b)/2] })
	rep, err := bolt.Discard(dir, bolt.RepairOptions{Now: repairAt})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damage == nil || !strings.Contains(rep.Damage.Error(), "truncated") {
		t.Fatalf("damage %v", rep.Damage)
	}
	if b, _ := os.ReadFile(rep.Copy); string(b) != string(damaged) {
		t.Fatal("the copy differs from the damaged file")
	}
	// Twice in the same second: the second copy gets its own name.
	rep2, err := bolt.Discard(dir, bolt.RepairOptions{Now: repairAt})
	if err != nil || rep2.Copy == rep.Copy {
		t.Fatalf("second discard: %+v, %v", rep2, err)
	}
	s := open(t, dir, bolt.Options{})
	checked(t, s)
	if st, _ := s.Stats(ctx); st.Entries != 0 {
		t.Fatalf("%d entries after discard", st.Entries)
	}
}
