package state_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// unhex decodes a golden byte string written with spaces between fields.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad golden %q: %v", s, err)
	}
	return b
}

// 2025-01-01T00:00:00Z is 0x1816687ec0570000 Unix nanoseconds.
var (
	goldenT   = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	goldenHex = "1816687ec0570000"
)

// TestKeyGolden pins the key of every kind of state kanon writes: the
// bytes are the on-disk format, and a store written by an earlier build
// must read the same.
func TestKeyGolden(t *testing.T) {
	s := mem.New()
	terms, _ := state.NewTerms(s, state.TermsConfig{Rule: "r1", Window: time.Hour})
	groups, _ := state.NewGroups(s, state.GroupsConfig{Rule: "g", Period: time.Hour})
	ids, _ := state.NewAlertIDs(s, "a", 0)
	pos, _ := state.NewPositions(s, "tail")
	term := state.AppendTermField(state.AppendTermField(nil, "tool"), "1.0")
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"term", term, "04 746f6f6c 03 312e30"},
		{"terms", terms.AppendKey(nil, term), "74 02 7231 09 04746f6f6c03312e30"},
		{"groups", groups.AppendKey(nil, []byte("k")), "67 01 67 01 6b"},
		{"alerts", ids.AppendKey(nil, []byte("id1")), "61 01 61 03 696431"},
		{"positions", pos.AppendKey(nil, "/x"), "70 04 7461696c 02 2f78"},
		{"window run", state.AppendWindowRunKey(nil, "w", int64(time.Second)), "77 01 77 08 800000003b9aca00"},
		{"window run before 1970", state.AppendWindowRunKey(nil, "w", -1), "77 01 77 08 7fffffffffffffff"},
		{"window meta", state.AppendWindowMetaKey(nil, "w"), "77 01 77 04 6d657461"},
		{"window prefix", state.AppendWindowPrefix(nil, "w"), "77 01 77"},
	} {
		if want := unhex(t, tc.want); !slices.Equal(tc.got, want) {
			t.Errorf("%s key = %x, want %x", tc.name, tc.got, want)
		}
	}
	// The readers decode the same bytes.
	if vals, err := state.SplitTerm(unhex(t, "04 746f6f6c 03 312e30")); err != nil || !slices.Equal(vals, []string{"tool", "1.0"}) {
		t.Errorf("SplitTerm = %q, %v", vals, err)
	}
	if wk, err := state.ParseWindowKey(unhex(t, "77 01 77 08 800000003b9aca00")); err != nil || wk != (state.WindowKey{Rule: "w", End: int64(time.Second)}) {
		t.Errorf("ParseWindowKey(run) = %+v, %v", wk, err)
	}
	if wk, err := state.ParseWindowKey(unhex(t, "77 01 77 04 6d657461")); err != nil || wk != (state.WindowKey{Rule: "w", Meta: true}) {
		t.Errorf("ParseWindowKey(meta) = %+v, %v", wk, err)
	}
	// Replicas' slots and a run's closed mark.
	for _, tc := range []struct {
		key  []byte
		want state.WindowKey
	}{
		{state.AppendWindowSlot(state.AppendWindowRunKey(nil, "w", int64(time.Second)), "r1"), state.WindowKey{Rule: "w", End: int64(time.Second), Replica: "r1"}},
		{state.AppendWindowSlot(state.AppendWindowMetaKey(nil, "w"), "r1"), state.WindowKey{Rule: "w", Meta: true, Replica: "r1"}},
		{state.AppendWindowClosedKey(nil, "w", -5), state.WindowKey{Rule: "w", End: -5, Closed: true}},
	} {
		if wk, err := state.ParseWindowKey(tc.key); err != nil || wk != tc.want {
			t.Errorf("ParseWindowKey(%x) = %+v, %v; want %+v", tc.key, wk, err, tc.want)
		}
		if !bytes.HasPrefix(tc.key, state.AppendWindowPrefix(nil, "w")) {
			t.Errorf("key %x is not under the rule's prefix", tc.key)
		}
	}
	if !bytes.HasPrefix(state.AppendWindowClosedKey(nil, "w", 7), state.AppendWindowRunKey(nil, "w", 7)) {
		t.Error("a run's closed mark does not share the run's prefix")
	}
	closed := state.AppendWindowRun(nil, state.WindowRun{Fingerprint: 3, Closed: true})
	if r, err := state.DecodeWindowRun(closed); err != nil || !r.Closed || r.Dropped || r.State != nil {
		t.Errorf("DecodeWindowRun(closed) = %+v, %v", r, err)
	}
}

// TestValueGolden pins the values the views write, read back raw from the
// store, and checks that the decoders read them.
func TestValueGolden(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	terms, _ := state.NewTerms(s, state.TermsConfig{Rule: "r1", Window: time.Hour})
	if _, _, err := terms.Observe(ctx, []byte("x"), goldenT); err != nil {
		t.Fatal(err)
	}
	ids, _ := state.NewAlertIDs(s, "a", 0)
	if _, err := ids.Mark(ctx, []byte("id1"), goldenT); err != nil {
		t.Fatal(err)
	}
	groups, _ := state.NewGroups(s, state.GroupsConfig{Rule: "g", Period: time.Hour})
	err := s.Update(ctx, goldenT, func(tx state.Tx) error {
		_, _, err := groups.AddTx(tx, []byte("k"), "A1", []byte("s"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	pos, _ := state.NewPositions(s, "tail")
	if err := pos.Put(ctx, "/x", state.Position{Dev: 1, Ino: 2, Offset: 3, Line: 4}); err != nil {
		t.Fatal(err)
	}
	got := map[string]state.Entry{}
	s.Scan(ctx, nil, time.Time{}, func(e state.Entry) error {
		got[string(e.Key)] = state.Entry{Value: append([]byte(nil), e.Value...), Expiry: e.Expiry}
		return nil
	})
	for _, tc := range []struct {
		name   string
		key    []byte
		want   string
		expiry time.Time
	}{
		{"term", terms.AppendKey(nil, []byte("x")), goldenHex + goldenHex, goldenT.Add(time.Hour)},
		{"alert", ids.AppendKey(nil, []byte("id1")), goldenHex, time.Time{}},
		{"group", groups.AppendKey(nil, []byte("k")),
			"01 02 4131" + goldenHex + goldenHex + "18166bc4f10fa000" + "01 00 01 01 73", goldenT.Add(2 * time.Hour)},
		{"position", pos.AppendKey(nil, "/x"),
			"0000000000000001 0000000000000002 0000000000000003 0000000000000004", time.Time{}},
	} {
		e, ok := got[string(tc.key)]
		if !ok {
			t.Errorf("%s: no entry under %x", tc.name, tc.key)
			continue
		}
		if want := unhex(t, tc.want); !slices.Equal(e.Value, want) {
			t.Errorf("%s value = %x, want %x", tc.name, e.Value, want)
		}
		if !e.Expiry.Equal(tc.expiry) {
			t.Errorf("%s expiry = %v, want %v", tc.name, e.Expiry, tc.expiry)
		}
	}
	if ti, err := state.DecodeTermInfo(unhex(t, goldenHex+goldenHex)); err != nil || !ti.FirstSeen.Equal(goldenT) || !ti.LastSeen.Equal(goldenT) {
		t.Errorf("DecodeTermInfo = %+v, %v", ti, err)
	}
	if at, err := state.DecodeRaisedAt(unhex(t, goldenHex)); err != nil || !at.Equal(goldenT) {
		t.Errorf("DecodeRaisedAt = %v, %v", at, err)
	}

	// ES|QL windows: runs and the watermark.
	const fp = "0102030405060708"
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"run", state.AppendWindowRun(nil, state.WindowRun{Fingerprint: 0x0102030405060708, State: []byte("st")}), "01" + fp + "53 7374"},
		{"dropped run", state.AppendWindowRun(nil, state.WindowRun{Fingerprint: 0x0102030405060708, Dropped: true}), "01" + fp + "44"},
		{"meta", state.AppendWindowMeta(nil, state.WindowMeta{Fingerprint: 0x0102030405060708, Closed: int64(time.Second),
			Counts: []state.WindowCount{{End: 2 * int64(time.Second), Count: 3}}}), "01" + fp + "000000003b9aca00 01 0000000077359400 03"},
	} {
		if want := unhex(t, tc.want); !slices.Equal(tc.got, want) {
			t.Errorf("%s value = %x, want %x", tc.name, tc.got, want)
		}
	}
	if r, err := state.DecodeWindowRun(unhex(t, "01"+fp+"53 7374")); err != nil || r.Fingerprint != 0x0102030405060708 || r.Dropped || string(r.State) != "st" {
		t.Errorf("DecodeWindowRun = %+v, %v", r, err)
	}
	if r, err := state.DecodeWindowRun(unhex(t, "01"+fp+"44")); err != nil || !r.Dropped || r.State != nil {
		t.Errorf("DecodeWindowRun(dropped) = %+v, %v", r, err)
	}
	m, err := state.DecodeWindowMeta(unhex(t, "01"+fp+"000000003b9aca00 01 0000000077359400 03"))
	if err != nil || m.Closed != int64(time.Second) || len(m.Counts) != 1 || m.Counts[0] != (state.WindowCount{End: 2 * int64(time.Second), Count: 3}) {
		t.Errorf("DecodeWindowMeta = %+v, %v", m, err)
	}
}

func TestWindowCodecErrors(t *testing.T) {
	const fp = "0102030405060708"
	for _, v := range []string{
		"",
		"02" + fp + "44",   // unknown version
		"01 01020304",      // truncated header
		"01" + fp,          // no run kind
		"01" + fp + "4400", // trailing bytes after a dropped run
		"01" + fp + "58",   // unknown kind
	} {
		if r, err := state.DecodeWindowRun(unhex(t, v)); !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("DecodeWindowRun(%s) = %+v, %v; want ErrCorrupt", v, r, err)
		}
	}
	meta := "01" + fp + "000000003b9aca00 01 0000000077359400 03"
	b := unhex(t, meta)
	for i := range b {
		if m, err := state.DecodeWindowMeta(b[:i]); !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("DecodeWindowMeta of %d of %d bytes = %+v, %v; want ErrCorrupt", i, len(b), m, err)
		}
	}
	if _, err := state.DecodeWindowMeta(append(b, 0)); !errors.Is(err, state.ErrCorrupt) {
		t.Errorf("DecodeWindowMeta with a trailing byte: %v", err)
	}
	for _, k := range []string{
		"74 01 77 04 6d657461",                     // another namespace
		"77 01 77 03 6d6574",                       // neither meta nor 8 bytes
		"77 01 77",                                 // no part
		"77 01 77 04 6d657461 00",                  // meta with an empty slot
		"77 01 77 08 800000003b9aca00 01 61 01 62", // three parts
	} {
		if wk, err := state.ParseWindowKey(unhex(t, k)); !errors.Is(err, state.ErrInvalidKey) {
			t.Errorf("ParseWindowKey(%s) = %+v, %v; want ErrInvalidKey", k, wk, err)
		}
	}
	for _, term := range []string{"05 6162", "80", "04 6162 6364 00 01"} {
		if vals, err := state.SplitTerm(unhex(t, term)); !errors.Is(err, state.ErrCorrupt) {
			t.Errorf("SplitTerm(%s) = %q, %v; want ErrCorrupt", term, vals, err)
		}
	}
}

func FuzzDecodeWindow(f *testing.F) {
	f.Add(state.AppendWindowRun(nil, state.WindowRun{Fingerprint: 7, State: []byte("st")}))
	f.Add(state.AppendWindowMeta(nil, state.WindowMeta{Fingerprint: 7, Closed: 1, Counts: []state.WindowCount{{End: 2, Count: 3}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		// What decodes encodes back to the same bytes.
		if r, err := state.DecodeWindowRun(b); err == nil {
			if out := state.AppendWindowRun(nil, r); !slices.Equal(out, b) {
				t.Fatalf("run %x re-encodes as %x", b, out)
			}
		}
		if m, err := state.DecodeWindowMeta(b); err == nil {
			if out := state.AppendWindowMeta(nil, m); !slices.Equal(out, b) {
				t.Fatalf("meta %x re-encodes as %x", b, out)
			}
		}
		state.SplitTerm(b)
		state.ParseWindowKey(b)
	})
}
