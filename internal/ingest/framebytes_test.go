package ingest_test

import (
	"bytes"
	"compress/gzip"
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

// FrameMessage frames a message as kanon scan frames a file of its bytes:
// plain text in place (the records alias the message), gzip read, a
// UTF-8 byte order mark skipped, UTF-16 refused as an encoding error.
func TestFrameMessage(t *testing.T) {
	plain := []byte("{\"a\":1}\n{\n  \"b\": 2\n}\n")
	recs := ingest.FrameMessage("m", plain, 0, nil)
	if len(recs) != 2 || recs[0].Err != nil || &recs[0].Data[0] != &plain[0] {
		t.Fatalf("plain: %+v (want two records aliasing the message)", recs)
	}
	want := frameAll(t, plain, 0)
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(plain)
	zw.Close()
	for name, data := range map[string][]byte{"gzip": z.Bytes(), "BOM": append([]byte{0xef, 0xbb, 0xbf}, plain...)} {
		var got [][]byte
		for _, r := range ingest.FrameMessage("m", data, 0, nil) {
			if r.Err != nil {
				t.Fatalf("%s: %v", name, r.Err)
			}
			got = append(got, r.Data)
		}
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("%s: %q, want %q", name, got, want)
		}
	}
	utf16 := []byte{'{', 0, '}', 0}
	if recs := ingest.FrameMessage("m", utf16, 0, nil); len(recs) != 1 || !errors.Is(recs[0].Err, ingest.ErrEncoding) {
		t.Fatalf("UTF-16: %+v", recs)
	}
}
