package formats_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
)

// BenchmarkReadK8s reads the bundled example log (repeated) with the
// fields the built-in rules read: framing, validation, duplicate-key
// checks and typed decoding, without rules.
func BenchmarkReadK8s(b *testing.B) {
	one, err := os.ReadFile("../../../examples/logs/audit.log")
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat(one, 20)
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
