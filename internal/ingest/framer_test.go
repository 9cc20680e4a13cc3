package ingest_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/ingest"
)

// frameAll frames data through a Stream with blocks of block bytes and
// returns the records' data (framing errors left out).
func frameAll(t *testing.T, data []byte, block int) [][]byte {
	t.Helper()
	st, err := ingest.NewStream("in", bytes.NewReader(data), ingest.StreamOptions{BlockBytes: block, MaxRecordBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	var buf []byte
	var recs []ingest.Record
	for {
		var rerr error
		buf, recs, rerr = st.Read(buf, recs[:0])
		for _, r := range recs {
			if r.Err == nil {
				out = append(out, bytes.Clone(r.Data))
			}
		}
		if errors.Is(rerr, io.EOF) {
			return out
		}
		if rerr != nil {
			t.Fatal(rerr)
		}
	}
}

// FuzzFramerResync: for a valid JSON-lines log and any garbage inserted at
// any point, every line of the log that the garbage does not touch is
// still framed as a record of its own, with its bytes — a broken record
// costs at most its own lines. A line is touched when the garbage is
// inserted inside it, at its start or just before its line break.
func FuzzFramerResync(f *testing.F) {
	log, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.SplitAfter(log, []byte("\n"))
	base := bytes.Join(lines[:12], nil) // keep inputs small: the fuzzer minimises fast
	for _, seed := range []struct {
		garbage string
		at      uint
	}{
		{"{\n", 0}, {"[[\n", 300}, {"[1,2\n", 900}, {"{\n  \"a\": [\n", 2000}, {"[\n{\n", 50},
		{"\"", 10}, {"]\n", 700}, {"[\"\n", 400}, {"{\"x\":\n", 1500}, {"\n\n{\n\n", 5000},
	} {
		f.Add([]byte(seed.garbage), seed.at, uint8(7))
	}
	f.Fuzz(func(t *testing.T, garbage []byte, at uint, blockBits uint8) {
		p := int(at % uint(len(base)+1))
		data := make([]byte, 0, len(base)+len(garbage))
		data = append(append(append(data, base[:p]...), garbage...), base[p:]...)
		block := 64 << (blockBits % 10)
		got := map[string]int{}
		for _, r := range frameAll(t, data, block) {
			got[string(bytes.TrimSpace(r))]++
		}
		start := 0
		for _, l := range bytes.SplitAfter(base, []byte("\n")) {
			end := start + len(bytes.TrimSuffix(l, []byte("\n")))
			touched := p >= start && p <= end
			start += len(l)
			rec := string(bytes.TrimSpace(l))
			if touched || rec == "" {
				continue
			}
			if got[rec] == 0 {
				t.Fatalf("garbage %q at %d (block %d) lost the untouched line %.80q", garbage, p, block, rec)
			}
		}
	})
}

// A pretty-printed array as gcloud writes it, with objects spanning lines
// and indented inside, is still read element by element.
func TestFramerReadsPrettyArrays(t *testing.T) {
	data := []byte("[\n  {\n    \"a\": 1,\n    \"b\": [\n      {\"c\": 2}\n    ]\n  },\n  {\n    \"d\": {}\n  }\n]\n{\"e\":3}\n")
	got := frameAll(t, data, 16)
	want := []string{"{\n    \"a\": 1,\n    \"b\": [\n      {\"c\": 2}\n    ]\n  }", "{\n    \"d\": {}\n  }", `{"e":3}`}
	if len(got) != len(want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("record %d: %q, want %q", i, got[i], want[i])
		}
	}
}
