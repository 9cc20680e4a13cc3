package state

import (
	"bytes"
	"testing"
	"time"
)

func TestGroupRoundTrip(t *testing.T) {
	t0 := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	g := Group{ID: "0123abcd", FirstSeen: t0, LastSeen: t0.Add(time.Minute), End: t0.Add(time.Hour), Count: 300, Delivered: 1,
		Samples: [][]byte{[]byte(`{"a":1}`), {}, []byte("x")}}
	b := appendGroup(nil, &g)
	got, err := DecodeGroup(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != g.ID || !got.FirstSeen.Equal(g.FirstSeen) || !got.LastSeen.Equal(g.LastSeen) || !got.End.Equal(g.End) ||
		got.Count != g.Count || got.Delivered != g.Delivered || len(got.Samples) != 3 || !bytes.Equal(got.Samples[0], g.Samples[0]) {
		t.Fatalf("round trip: %+v, want %+v", got, g)
	}
	for i := range b {
		if _, err := DecodeGroup(b[:i]); err == nil {
			t.Fatalf("a group cut to %d bytes decodes", i)
		}
	}
}

func FuzzDecodeGroup(f *testing.F) {
	t0 := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	f.Add(appendGroup(nil, &Group{ID: "g", FirstSeen: t0, LastSeen: t0, End: t0.Add(time.Hour), Count: 2, Samples: [][]byte{[]byte("s")}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := DecodeGroup(b)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		if out := appendGroup(nil, &g); !bytes.Equal(out, b) {
			t.Fatalf("re-encoding %x gives %x", b, out)
		}
	})
}
