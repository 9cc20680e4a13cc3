package alert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func spoolAppend(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := s.Append([]string{fmt.Sprint("id", i)}, [][]byte{[]byte(fmt.Sprintf(`{"n":%d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// spoolDrain consumes up to n records and returns their ids.
func spoolDrain(t *testing.T, s *Spool, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		id, body, ok, err := s.Peek()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if want := fmt.Sprintf(`{"n":%s}`, id[2:]); string(body) != want {
			t.Fatalf("body of %s: %q, want %q", id, body, want)
		}
		if err := s.Ack(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func seqIDs(from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, fmt.Sprint("id", i))
	}
	return ids
}

// Records come out in order across segments and reopenings; the cursor
// keeps the read position; consumed segments are removed.
func TestSpoolOrderAcrossSegmentsAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 0, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	spoolAppend(t, s, 0, 50)
	if got := spoolDrain(t, s, 20); !slices.Equal(got, seqIDs(0, 20)) {
		t.Fatalf("first drain: %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var pending []string
	s, err = OpenSpool(dir, 0, 100, func(id string) { pending = append(pending, id) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pending, seqIDs(20, 50)) || s.Len() != 30 {
		t.Fatalf("reopened: len %d, pending %v", s.Len(), pending)
	}
	spoolAppend(t, s, 50, 60)
	if got := spoolDrain(t, s, 100); !slices.Equal(got, seqIDs(20, 60)) {
		t.Fatalf("second drain: %v", got)
	}
	if s.Len() != 0 || s.Size() != 0 {
		t.Fatalf("drained spool: len %d size %d", s.Len(), s.Size())
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments left: %v", segs)
	}
	s.Close()
}

// A torn record at the end (a crash mid-append) is cut off; a torn cursor
// restarts at the segment's start (at least once).
func TestSpoolRecovery(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	spoolAppend(t, s, 0, 10)
	spoolDrain(t, s, 3)
	s.Close()

	seg := filepath.Join(dir, segName(1))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendRecord(nil, "torn", []byte("body"))[:9])
	f.Close()
	s, err = OpenSpool(dir, 0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 7 || s.corrupt != 1 {
		t.Fatalf("after torn append: len %d corrupt %d", s.Len(), s.corrupt)
	}
	spoolAppend(t, s, 10, 12)
	s.Close()

	// Flip a byte of the cursor: its checksum fails.
	cur := filepath.Join(dir, "cursor")
	b, _ := os.ReadFile(cur)
	b[8] ^= 0xff
	os.WriteFile(cur, b, 0o600)
	s, err = OpenSpool(dir, 0, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := spoolDrain(t, s, 100); !slices.Equal(got, seqIDs(0, 12)) {
		t.Fatalf("after torn cursor: %v", got)
	}
}

func TestSpoolBound(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 200, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ids := seqIDs(0, 20)
	bodies := make([][]byte, len(ids))
	for i := range ids {
		bodies[i] = []byte(fmt.Sprintf(`{"n":%d}`, i))
	}
	n, err := s.Append(ids, bodies)
	if n == 0 || n == 20 || err == nil || s.Size() > 200 {
		t.Fatalf("n=%d err=%v size=%d", n, err, s.Size())
	}
	if got := spoolDrain(t, s, 100); !slices.Equal(got, seqIDs(0, n)) {
		t.Fatalf("drain: %v", got)
	}
}

// PeekN reads ahead within the first segment and AckN consumes what it
// read; together they give every record once, in order, across
// segments and reopenings.
func TestSpoolPeekNAckN(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 0, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	spoolAppend(t, s, 0, 40)
	var got []string
	for round := 0; s.Len() > 0; round++ {
		ids, bodies, err := s.PeekN(7, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) == 0 || len(ids) > 7 || len(ids) != len(bodies) {
			t.Fatalf("round %d: PeekN gave %d ids, %d bodies", round, len(ids), len(bodies))
		}
		// A second look gives the same records.
		again, _, err := s.PeekN(7, 0)
		if err != nil || !slices.Equal(again, ids) {
			t.Fatalf("round %d: second PeekN %v, first %v (%v)", round, again, ids, err)
		}
		for i, id := range ids {
			if want := fmt.Sprintf(`{"n":%s}`, id[2:]); string(bodies[i]) != want {
				t.Fatalf("body of %s: %q", id, bodies[i])
			}
		}
		// Consume part, then reopen: the rest comes again.
		k := len(ids)
		if round%3 == 1 {
			k = 1
		}
		if err := s.AckN(k); err != nil {
			t.Fatal(err)
		}
		got = append(got, ids[:k]...)
		if round%4 == 2 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = OpenSpool(dir, 0, 100, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(got, seqIDs(0, 40)) {
		t.Fatalf("consumed %v", got)
	}
	if err := s.AckN(1); err == nil {
		t.Fatal("ack of an empty spool")
	}
	s.Close()
}

// PeekN's byte bound: at least one record, else bodies within the bound.
func TestSpoolPeekNBytes(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	spoolAppend(t, s, 0, 20) // bodies of 8 bytes ({"n":1}) to 9
	ids, _, err := s.PeekN(100, 1)
	if err != nil || len(ids) != 1 {
		t.Fatalf("bound below one body: %v, %v", ids, err)
	}
	ids, bodies, err := s.PeekN(100, 40)
	n := 0
	for _, b := range bodies {
		n += len(b)
	}
	if err != nil || len(ids) != 5 || n > 40 {
		t.Fatalf("bound 40: %d records of %d bytes, %v", len(ids), n, err)
	}
}

// AppendAll appends every record or none.
func TestSpoolAppendAll(t *testing.T) {
	s, err := OpenSpool(t.TempDir(), 100, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bodies := [][]byte{[]byte("0123456789012345678901234567890123456789"), []byte("0123456789012345678901234567890123456789")}
	if err := s.AppendAll([]string{"a", "b"}, bodies); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAll([]string{"c", "d"}, bodies); !errors.Is(err, ErrSpoolFull) {
		t.Fatalf("over the bound: %v", err)
	}
	if s.Len() != 2 {
		t.Fatalf("%d records after a refused AppendAll, want 2", s.Len())
	}
}
