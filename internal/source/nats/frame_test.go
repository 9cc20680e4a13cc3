package nats

import (
	"bytes"
	"compress/gzip"
	"testing"
)

// frame's records alias a block of about the message's size, not a
// file-sized block: the records of a message in flight keep it alive. A
// gzipped message gives the same records.
func TestFrameBlockIsTheMessage(t *testing.T) {
	var data []byte
	for range 100 {
		data = append(data, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete"}`+"\n"...)
	}
	recs := frame("nats:S/1", data, 0, nil)
	if len(recs) != 100 {
		t.Fatalf("%d records, want 100", len(recs))
	}
	for i, r := range recs {
		if r.Err != nil || !bytes.Equal(r.Data, bytes.TrimSuffix(data[:len(data)/100], []byte("\n"))) {
			t.Fatalf("record %d: %q %v", i, r.Data, r.Err)
		}
		// The block holds what follows the record in the message, and
		// little more.
		if c := cap(r.Data) - (len(data)/100)*(99-i); c > 4096+len(data)/100 {
			t.Fatalf("record %d aliases a block of %d bytes past the message's end", i, c)
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
