package ingest_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/loadgen"
)

// benchFile writes a realistic generated log (internal/loadgen) of n
// events to a file of its own and returns its path and contents.
func benchFile(b *testing.B, n int) (string, []byte) {
	b.Helper()
	var buf bytes.Buffer
	if _, err := loadgen.Generate(&buf, loadgen.DefaultOptions(n, 1)); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "audit.log")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	return p, buf.Bytes()
}

// BenchmarkReadBlocks is the read stage alone: the file read in blocks of
// DefaultBlockBytes (the page cache's speed, the read calls' cost), as a
// Stream reads it, without framing.
func BenchmarkReadBlocks(b *testing.B) {
	p, data := benchFile(b, 20_000)
	buf := make([]byte, ingest.DefaultBlockBytes)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := f.Read(buf); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		f.Close()
	}
}

// BenchmarkStreamFile is the read and frame stages: a Stream over the
// file, its blocks cut into records of one line each (how kanon scan
// reads a file), without decoding them.
func BenchmarkStreamFile(b *testing.B) {
	p, data := benchFile(b, 20_000)
	var buf []byte
	var recs []ingest.Record
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ingest.NewStream(p, f, ingest.StreamOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			buf, recs, err = s.Read(buf, recs[:0])
			n += len(recs)
			if err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
		f.Close()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFramer is the frame stage alone: the lines of the log, already
// in memory, framed into records.
func BenchmarkFramer(b *testing.B) {
	_, data := benchFile(b, 20_000)
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	fr := ingest.NewFramer("bench", 0)
	var recs []ingest.Record
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		recs = recs[:0]
		for i, l := range lines {
			recs = fr.Line(int64(i+1), l, recs)
		}
		recs = fr.End(recs)
		if len(recs) != len(lines) {
			b.Fatalf("%d records of %d lines", len(recs), len(lines))
		}
	}
}
