package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	. "github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// The driver's run entries round-trip, pass CheckEntry (so repair keeps
// them), decode in Each with the replica of a slot, and anything else of
// their namespace is refused.
func TestRunEntries(t *testing.T) {
	at := time.Date(2025, 6, 2, 8, 0, 0, 123, time.UTC)
	d := RunDrops{Late: 3, MaxSignals: 1 << 40, Budget: 1}
	if got, err := DecodeRunDrops(AppendRunDrops(nil, d)); err != nil || got != d {
		t.Fatalf("drops round trip: %+v %v", got, err)
	}
	if got, err := DecodeWatermark(AppendWatermark(nil, at)); err != nil || !got.Equal(at) {
		t.Fatalf("watermark round trip: %v %v", got, err)
	}
	if d.Add(RunDrops{Late: 1}) != (RunDrops{Late: 4, MaxSignals: 1 << 40, Budget: 1}) || !(RunDrops{}).Zero() || d.Zero() {
		t.Fatal("Add or Zero")
	}
	ok := func(key, value []byte) {
		t.Helper()
		if err := CheckEntry(key, value); err != nil {
			t.Errorf("CheckEntry(%q, %x) = %v", key, value, err)
		}
	}
	bad := func(key, value []byte, want error) {
		t.Helper()
		if err := CheckEntry(key, value); !errors.Is(err, want) {
			t.Errorf("CheckEntry(%q, %x) = %v, want %v", key, value, err, want)
		}
	}
	ok(AppendRunDropsKey(nil, "r"), AppendRunDrops(nil, d))
	ok(AppendWatermarkKey(nil), AppendWatermark(nil, at))
	ok(AppendRunSlot(AppendRunDropsKey(nil, "r"), "replica-1"), AppendRunDrops(nil, d))
	bad(AppendRunDropsKey(nil, "r"), AppendWatermark(nil, at), ErrCorrupt)
	bad(AppendRunDropsKey(nil, "r"), append(AppendRunDrops(nil, d), 0), ErrCorrupt)
	bad(AppendRunDropsKey(nil, "r"), []byte{9, 1, 1, 1}, ErrCorrupt)
	bad(AppendRunDropsKey(nil, "r"), []byte{1, 0x80}, ErrCorrupt)
	bad(AppendWatermarkKey(nil), []byte{1, 2, 3}, ErrCorrupt)
	bad(Key(NSRun, "r", []byte("watermark")), AppendWatermark(nil, at), ErrInvalidKey) // a rule's watermark
	bad(Key(NSRun, "r", []byte("other")), AppendRunDrops(nil, d), ErrInvalidKey)
	bad(AppendRunSlot(AppendRunDropsKey(nil, "r"), ""), AppendRunDrops(nil, d), ErrInvalidKey)
	bad(Key(NSRun, "r", []byte("drops"), []byte("a"), []byte("b")), AppendRunDrops(nil, d), ErrInvalidKey)

	s := mem.New()
	defer s.Close()
	err := s.Update(context.Background(), time.Time{}, func(tx Tx) error {
		if err := tx.Put(AppendRunSlot(AppendRunDropsKey(nil, "r"), "replica-1"), AppendRunDrops(nil, d), time.Time{}); err != nil {
			return err
		}
		return tx.Put(AppendWatermarkKey(nil), AppendWatermark(nil, at), time.Time{})
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	err = Each(context.Background(), s, Selection{Namespaces: []Namespace{NSRun}}, func(it *Item) error {
		switch string(it.Part) {
		case "drops":
			if it.Rule != "r" || it.Replica != "replica-1" || it.Drops != d {
				t.Errorf("drops item %+v", it)
			}
		case "watermark":
			if it.Rule != "" || !it.Watermark.Equal(at) {
				t.Errorf("watermark item %+v", it)
			}
		}
		seen = append(seen, string(it.Part))
		return nil
	})
	if err != nil || len(seen) != 2 {
		t.Fatalf("Each: %v %v", seen, err)
	}
	if ns, err := ParseNamespace("run"); err != nil || ns != NSRun {
		t.Fatalf("ParseNamespace(run) = %v %v", ns, err)
	}
}

// FuzzDecodeRun: the run entries' decoders never panic and accept only
// what the encoders write.
func FuzzDecodeRun(f *testing.F) {
	f.Add(AppendRunDrops(nil, RunDrops{Late: 1, MaxSignals: 2, Budget: 3}))
	f.Add(AppendWatermark(nil, time.Unix(1, 2)))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, v []byte) {
		if d, err := DecodeRunDrops(v); err == nil && string(AppendRunDrops(nil, d)) != string(v) {
			t.Fatalf("drops %x decode to %+v, which encodes otherwise", v, d)
		}
		if w, err := DecodeWatermark(v); err == nil && string(AppendWatermark(nil, w)) != string(v) {
			t.Fatalf("watermark %x decodes to %v, which encodes otherwise", v, w)
		}
	})
}
