package k8saudit_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/loadgen"
)

// BenchmarkEachItem splits webhook-sized EventList bodies (400 generated
// events, as kube-apiserver batches them): validation of every item and
// the audit-event check, no decoding.
func BenchmarkEachItem(b *testing.B) {
	bodies, _, err := loadgen.GenerateEventList(loadgen.DefaultOptions(4_000, 1), 400)
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for _, body := range bodies {
		size += len(body)
	}
	n := 0
	fn := func(_ int, item []byte, err error) error {
		if err != nil {
			return err
		}
		n += len(item)
		return nil
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			if err := k8saudit.EachItem(body, fn); err != nil {
				b.Fatal(err)
			}
		}
	}
	if n == 0 {
		b.Fatal("no item seen")
	}
	b.ReportMetric(float64(b.N*4_000)/b.Elapsed().Seconds(), "items/s")
}
