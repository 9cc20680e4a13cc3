package nats

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// frame's records of a plain message alias the message's data: nothing
// is copied, and a message in flight is held once. A gzipped message
// gives the same records.
func TestFrameBlockIsTheMessage(t *testing.T) {
	var data []byte
	for range 100 {
		data = append(data, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete"}`+"\n"...)
	}
	recs := frame("nats:S/1", data, 0, nil)
	if len(recs) != 100 {
		t.Fatalf("%d records, want 100", len(recs))
	}
	line := len(data) / 100
	for i, r := range recs {
		if r.Err != nil || !bytes.Equal(r.Data, bytes.TrimSuffix(data[:line], []byte("\n"))) {
			t.Fatalf("record %d: %q %v", i, r.Data, r.Err)
		}
		if &r.Data[0] != &data[i*line] {
			t.Fatalf("record %d is a copy, not the message's bytes", i)
		}
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(data)
	zw.Close()
	zrecs := frame("nats:S/2", z.Bytes(), 0, nil)
	if len(zrecs) != 100 {
		t.Fatalf("gzipped: %d records, want 100", len(zrecs))
	}
	for i, r := range zrecs {
		if r.Err != nil || !bytes.Equal(r.Data, recs[i].Data) {
			t.Fatalf("gzipped record %d: %q %v", i, r.Data, r.Err)
		}
	}
}
