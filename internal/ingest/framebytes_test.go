package ingest_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest"
)

// FrameBytes frames a message as a Stream frames a file of the same
// bytes: lines, a pretty-printed value, a top-level array's elements; a
// value cut by the end of the message is reported in its place, and a
// line over the limit costs only itself.
func TestFrameBytesLikeStream(t *testing.T) {
	for _, data := range []string{
		`{"a":1}`,
		"{\"a\":1}\n{\"b\":2}\r\n\n{\"c\":3}\n",
		"{\n  \"records\": [\n    {\"x\": 1},\n    {\"x\": 2}\n  ]\n}",
		"[\n {\"a\":1},\n {\"a\":2}\n]",
		"[{\"a\":1},{\"a\":2}]",
	} {
		got := ingest.FrameBytes("m", []byte(data), 1<<20, nil)
		var gotData [][]byte
		for _, r := range got {
			if r.Err != nil {
				t.Fatalf("%q: %v", data, r.Err)
			}
			if r.Origin.Name != "m" || r.Origin.Line < 1 {
				t.Fatalf("%q: origin %+v", data, r.Origin)
			}
			gotData = append(gotData, r.Data)
		}
		want := frameAll(t, []byte(data), 0)
		if !slices.EqualFunc(gotData, want, func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatalf("%q: FrameBytes %q, Stream %q", data, gotData, want)
		}
	}
	recs := ingest.FrameBytes("m", []byte("{\"a\":1}\n{\n  \"cut\": [1,"), 0, nil)
	if len(recs) != 2 || recs[0].Err != nil || recs[1].Err == nil || recs[1].Origin.Line != 2 {
		t.Fatalf("a value cut by the end: %+v", recs)
	}
	recs = ingest.FrameBytes("m", []byte("{\"long\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}\n{\"a\":1}"), 16, nil)
	if len(recs) != 2 || !errors.Is(recs[0].Err, ingest.ErrTooLarge) || string(recs[1].Data) != `{"a":1}` {
		t.Fatalf("a line over the limit: %+v", recs)
	}
}
