package formats_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
)

// BenchmarkReadK8s reads a realistic generated log (internal/loadgen) with the
// fields the built-in rules read: framing, validation, duplicate-key
// checks and typed decoding, without rules.
func BenchmarkReadK8s(b *testing.B) {
	var buf bytes.Buffer
	if _, err := loadgen.Generate(&buf, loadgen.DefaultOptions(20_000, 1)); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	var fs event.FieldSet
	for _, n := range []string{"kubernetes.audit.user.username", "kubernetes.audit.userAgent", "kubernetes.audit.requestURI",
		"kubernetes.audit.objectRef.resource", "kubernetes.audit.annotations.authorization_k8s_io/decision", "kubernetes.audit.sourceIPs",
		"kubernetes.audit.verb", "kubernetes.audit.level", "kubernetes.audit.responseStatus.code"} {
		fs.Add(event.Lookup(n))
	}
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: fs})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	fn := func(e *event.Event) error { n++; return nil }
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.ReadStream(context.Background(), "bench", bytes.NewReader(data), fn); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
