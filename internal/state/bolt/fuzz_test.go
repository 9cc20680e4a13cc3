package bolt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

var (
	smallOnce  sync.Once
	smallStore []byte
)

// small returns the file of a small real store: 150 entries of the kinds
// kanon writes, in a few leaf pages under a branch page, cut to the pages
// in use.
func small(t testing.TB) []byte {
	smallOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kanon-fuzz-seed")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		fill(t, dir, 150)
		s, err := bolt.Open(dir, bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Stats(ctx)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		smallStore, err = os.ReadFile(filepath.Join(dir, bolt.FileName))
		if err != nil {
			t.Fatal(err)
		}
		// The pages beyond those in use are only room to grow: without
		// them the fuzzer has less to mutate.
		smallStore = smallStore[:st.DiskBytes]
	})
	return smallStore
}

// FuzzOpenDamaged: for any damage to a real store file, Open either works
// or refuses the file with an error wrapping ErrCorrupt (or ErrSchema, when
// the damage hits the schema version); an open store's every method works
// or returns an error, never panics; the salvage reader never panics and
// keeps only entries kanon writes; and on a file that passes Check, the
// salvage reader and bbolt read the same entries.
func FuzzOpenDamaged(f *testing.F) {
	clean := small(f)
	ps := os.Getpagesize()
	f.Add(clean)
	f.Add(clean[:len(clean)/2])
	f.Add(clean[:ps])
	f.Add([]byte{})
	for _, off := range []int{16, 16 + 56, ps + 16, 2*ps + 10, 3*ps + 10, 4*ps + 30, 5*ps + 100} {
		if off < len(clean) {
			b := bytes.Clone(clean)
			b[off] ^= 0xff
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, bolt.FileName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		salvaged := map[string]string{}
		n, err := bolt.Salvage(bytes.NewReader(data), int64(len(data)), func(key, raw []byte) error {
			exp, v, err := state.DecodeEntry(raw)
			if err == nil {
				err = state.CheckEntry(key, v)
			}
			if err != nil {
				t.Fatalf("salvage kept entry %q: %v", key, err)
			}
			salvaged[string(key)] = state.FromUnixNano(exp).String() + " " + string(v)
			return nil
		})
		if err != nil {
			t.Fatalf("salvage: %v", err)
		}
		if n != len(salvaged) {
			t.Fatalf("salvage reports %d keys, kept %d", n, len(salvaged))
		}
		if bytes.Equal(data, clean) && n != 150 {
			t.Fatalf("salvage of the sound file kept %d of its 150 entries", n)
		}

		s, err := bolt.Open(dir, bolt.Options{NoSync: true})
		if err != nil {
			if !errors.Is(err, state.ErrCorrupt) && !errors.Is(err, state.ErrSchema) {
				t.Fatalf("open: %v, want an error wrapping ErrCorrupt", err)
			}
			return
		}
		defer s.Close()
		if s.Check(ctx) == nil {
			got := map[string]string{}
			err := s.Scan(ctx, nil, time.Time{}, func(e state.Entry) error {
				if state.CheckEntry(e.Key, e.Value) == nil {
					got[string(e.Key)] = e.Expiry.String() + " " + string(e.Value)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("scan of a file that passes Check: %v", err)
			}
			if len(got) != len(salvaged) {
				t.Fatalf("bbolt reads %d entries of kanon's, salvage %d", len(got), len(salvaged))
			}
			for k, v := range got {
				if salvaged[k] != v {
					t.Fatalf("entry %q: bbolt reads %q, salvage %q", k, v, salvaged[k])
				}
			}
		}
		exercise(t, s)
	})
}
