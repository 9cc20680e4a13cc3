package bolt_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

var t0 = time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)

// fill writes n entries of the kinds kanon writes into the store in dir, in
// batches: terms, raised alerts and input positions in turn.
func fill(t testing.TB, dir string, n int) {
	t.Helper()
	s, err := bolt.Open(dir, bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	terms, _ := state.NewTerms(s, state.TermsConfig{Rule: "rule-t", Window: 7 * 24 * time.Hour})
	alerts, _ := state.NewAlertIDs(s, "rule-a", 24*time.Hour)
	pos, _ := state.NewPositions(s, "input")
	for i := 0; i < n; i += 200 {
		err := s.Update(ctx, t0.Add(time.Duration(i)*time.Second), func(tx state.Tx) error {
			for j := i; j < min(i+200, n); j++ {
				var err error
				switch j % 3 {
				case 0:
					_, _, err = terms.ObserveTx(tx, state.AppendTermField(nil, fmt.Sprintf("user-agent-%06d/1.0 (linux; amd64)", j)))
				case 1:
					_, err = alerts.MarkTx(tx, []byte(fmt.Sprintf("alert-%06d-%040d", j, j)))
				case 2:
					err = pos.PutTx(tx, fmt.Sprintf("/var/log/audit/%06d.log", j), state.Position{Dev: 1, Ino: uint64(j), Offset: int64(j) * 100, Line: int64(j)})
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// entries returns every entry of the store in dir, key → expiry and value.
func entries(t testing.TB, dir string) map[string]string {
	t.Helper()
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := map[string]string{}
	err = s.Scan(ctx, nil, time.Time{}, func(e state.Entry) error {
		m[string(e.Key)] = e.Expiry.String() + " " + string(e.Value)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// damage rewrites the store file of dir with fn.
func damage(t testing.TB, dir string, fn func(b []byte) []byte) []byte {
	t.Helper()
	path := filepath.Join(dir, bolt.FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = fn(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// refused checks that Open of dir fails with an error wrapping ErrCorrupt
// that names the file, says what to do and contains want, and that the
// file is left as it was.
func refused(t *testing.T, dir, want string) {
	t.Helper()
	path := filepath.Join(dir, bolt.FileName)
	before, _ := os.ReadFile(path)
	s, err := bolt.Open(dir, bolt.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("open succeeded, want an error containing %q", want)
	}
	if !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("open: %v, want an error wrapping ErrCorrupt", err)
	}
	for _, w := range []string{"state store file " + path + " ", want, "kanon state repair --state-dir " + dir, "move"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("the refused file was changed from %d to %d bytes", len(before), len(after))
	}
}

// TestOpenTruncated: a store cut to half, to one page or to nothing is
// refused, never panics, and is never reinitialised.
func TestOpenTruncated(t *testing.T) {
	ps := os.Getpagesize()
	for _, c := range []struct {
		name string
		size func(n int) int
		want string
	}{
		{"half", func(n int) int { return n / 2 }, "it was truncated"},
		{"one page", func(int) int { return ps }, "it was truncated"},
		{"one page and a bit", func(int) int { return ps + 100 }, "not a multiple of the page size"},
		{"zero", func(int) int { return 0 }, "the file is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir, 3000)
			damage(t, dir, func(b []byte) []byte { return b[:c.size(len(b))] })
			refused(t, dir, c.want)
		})
	}
}

// TestOpenForeign: files that are not kanon stores are refused, not
// reinitialised; a kanon store written before the format marker opens.
func TestOpenForeign(t *testing.T) {
	bboltFile := func(t *testing.T, fn func(tx *bbolt.Tx) error) string {
		dir := t.TempDir()
		db, err := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fn); err != nil {
			t.Fatal(err)
		}
		db.Close()
		return dir
	}
	t.Run("other program", func(t *testing.T) {
		dir := bboltFile(t, func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("sessions"))
			if err == nil {
				err = b.Put([]byte("alice"), []byte("x"))
			}
			return err
		})
		refused(t, dir, `not a kanon state store: it is a bbolt file with the buckets "sessions"`)
	})
	t.Run("no buckets", func(t *testing.T) {
		refused(t, bboltFile(t, func(*bbolt.Tx) error { return nil }), "a bbolt file with no buckets")
	})
	t.Run("other format", func(t *testing.T) {
		dir := bboltFile(t, func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err == nil {
				err = b.Put([]byte("format"), []byte("someone else"))
			}
			return err
		})
		refused(t, dir, `a bbolt file of format "someone else"`)
	})
	t.Run("text", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, bolt.FileName), []byte(strings.Repeat("not a database\n", 1000)), 0o600)
		refused(t, dir, "not a bbolt database")
	})
	t.Run("kanon store without marker", func(t *testing.T) {
		dir := bboltFile(t, func(tx *bbolt.Tx) error {
			meta, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			if err := meta.Put([]byte("schema"), []byte{0, 0, 0, 1}); err != nil {
				return err
			}
			tx.CreateBucket([]byte("data"))
			_, err = tx.CreateBucket([]byte("expiry"))
			return err
		})
		s := open(t, dir, bolt.Options{})
		checked(t, s)
		s.Close()
		db, _ := bbolt.Open(filepath.Join(dir, bolt.FileName), 0o600, &bbolt.Options{ReadOnly: true})
		defer db.Close()
		db.View(func(tx *bbolt.Tx) error {
			if f := tx.Bucket([]byte("meta")).Get([]byte("format")); string(f) != "kanon state store" {
				t.Errorf("format marker %q after open", f)
			}
			return nil
		})
	})
}

// TestOpenDamagedPages: a flipped byte in any page in use is refused or
// harmless; the page header flips below are always found.
func TestOpenDamagedPages(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 600)
	clean, _ := os.ReadFile(filepath.Join(dir, bolt.FileName))
	ps := os.Getpagesize()
	found, opened := 0, 0
	for pg := 2; pg*ps < len(clean); pg++ {
		for _, off := range []int{0, 8, 10, 12} { // id, flags, count, overflow
			d := t.TempDir()
			b := append([]byte(nil), clean...)
			b[pg*ps+off] ^= 0x5a
			os.WriteFile(filepath.Join(d, bolt.FileName), b, 0o600)
			s, err := bolt.Open(d, bolt.Options{NoSync: true})
			if err != nil {
				if !errors.Is(err, state.ErrCorrupt) {
					t.Fatalf("page %d offset %d: %v, want ErrCorrupt", pg, off, err)
				}
				found++
				continue
			}
			opened++
			exercise(t, s)
			s.Close()
		}
	}
	t.Logf("%d damaged files refused, %d opened", found, opened)
	if found == 0 {
		t.Fatal("no damaged page header was refused")
	}
}

// exercise calls every method of s: each works or returns an error.
func exercise(t testing.TB, s *bolt.Store) {
	t.Helper()
	var keys [][]byte
	s.Scan(ctx, nil, time.Time{}, func(e state.Entry) error {
		keys = append(keys, append([]byte(nil), e.Key...))
		return nil
	})
	for _, k := range keys {
		s.Get(ctx, k, time.Time{})
	}
	s.Get(ctx, []byte("missing"), time.Time{})
	s.Update(ctx, t0, func(tx state.Tx) error {
		for i, k := range keys {
			if i%2 == 0 {
				tx.Delete(k)
			}
		}
		return tx.Put([]byte("new"), []byte("v"), t0.Add(time.Hour))
	})
	s.DeleteExpired(ctx, t0.Add(30*24*time.Hour))
	s.Stats(ctx)
	s.Check(ctx)
	state.Reset(ctx, s, state.Selection{})
}

// TestDamagedWhileOpen: a file cut while the store is open makes bbolt
// fault; the store turns that into an error wrapping ErrCorrupt, keeps
// returning it, and closes.
func TestDamagedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 3000)
	s := open(t, dir, bolt.Options{})
	if err := os.Truncate(s.Path(), int64(os.Getpagesize())*3); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, state.Key(state.NSAlerts, "rule-a", []byte("x")), time.Time{})
	if !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), "state store file "+s.Path()+" is damaged") {
		t.Fatalf("get from a cut file: %v, want the damage", err)
	}
	if err := state.Put(ctx, s, []byte("k"), []byte("v"), time.Time{}); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("put after the damage: %v", err)
	}
	if err := s.Scan(ctx, nil, time.Time{}, func(state.Entry) error { return nil }); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("scan after the damage: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The lock is released: a repair can run.
	if _, err := bolt.Discard(dir, bolt.RepairOptions{LockTimeout: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
}
