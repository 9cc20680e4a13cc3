package overlay_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
)

// A key written over and over reuses the values its writes replaced: what a
// transaction read stays as it read it until the transaction ends, what
// Scan hands out is the value of its time, and every read sees the newest
// write, before and after a commit.
func TestRewritesReuseValues(t *testing.T) {
	s := overlay.New(mem.New(), nil)
	defer s.Close()
	val := func(i int) []byte { return bytes.Repeat([]byte(fmt.Sprintf("%04d", i)), 100) }
	put(t, s, "g/a", string(val(0)), t0.Add(24*time.Hour))
	for i := 1; i <= 200; i++ {
		err := s.Update(ctx, t0, func(tx state.Tx) error {
			old, err := tx.Get([]byte("g/a"))
			if err != nil {
				return err
			}
			kept := bytes.Clone(old)
			if err := tx.Put([]byte("g/a"), val(i), t0.Add(24*time.Hour)); err != nil {
				return err
			}
			if err := tx.Put([]byte(fmt.Sprintf("g/b%d", i%3)), old[:len(old)/2], t0.Add(24*time.Hour)); err != nil {
				return err
			}
			if !bytes.Equal(old, kept) {
				return fmt.Errorf("write %d changed the value the transaction read", i)
			}
			if !bytes.Equal(old, val(i-1)) {
				return fmt.Errorf("write %d read %.8q, want the previous write", i, old)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var scanned [][]byte
		if err := s.Scan(ctx, []byte("g/"), t0, func(e state.Entry) error {
			scanned = append(scanned, e.Value)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// Two more writes reuse the value scanned, then the same again.
		for _, v := range [][]byte{val(9999), val(9998), val(i)} {
			put(t, s, "g/a", string(v), t0.Add(24*time.Hour))
		}
		if len(scanned) == 0 || !bytes.Equal(scanned[0], val(i)) {
			t.Fatalf("write %d: scan gave %.8q after the next write", i, scanned)
		}
		if i%50 == 0 {
			if err := s.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := get(t, s, "g/a", t0); got != string(val(i)) {
			t.Fatalf("write %d: read %.8q", i, got)
		}
		if got, want := get(t, s, fmt.Sprintf("g/b%d", i%3), t0), string(val(i - 1)[:200]); got != want {
			t.Fatalf("write %d: b read %.8q, want %.8q", i, got, want)
		}
	}
}
