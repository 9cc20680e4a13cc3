package alert

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzSpoolOpen opens a spool whose segment and cursor hold arbitrary
// bytes: it never panics, and it delivers exactly the records it counts.
func FuzzSpoolOpen(f *testing.F) {
	good := appendRecord(appendRecord(nil, "a", []byte(`{"n":1}`)), "bb", []byte(`{"n":2}`))
	f.Add(good, []byte{})
	f.Add(good[:len(good)-3], []byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1}, []byte{})
	f.Add(good, []byte{1, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, seg, cursor []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), seg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cursor"), cursor, 0o600); err != nil {
			t.Fatal(err)
		}
		var ids []string
		s, err := OpenSpool(dir, 0, 0, func(id string) { ids = append(ids, id) })
		if err != nil {
			return
		}
		defer s.Close()
		if s.Len() != len(ids) {
			t.Fatalf("Len %d, %d ids reported", s.Len(), len(ids))
		}
		for i := range ids {
			id, _, ok, err := s.Peek()
			if err != nil || !ok || id != ids[i] {
				t.Fatalf("record %d: %q ok=%v err=%v, want %q", i, id, ok, err, ids[i])
			}
			if err := s.Ack(); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, ok, err := s.Peek(); ok || err != nil {
			t.Fatalf("records past the counted ones: ok=%v err=%v", ok, err)
		}
	})
}
