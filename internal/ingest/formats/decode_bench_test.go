package formats_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
)

// BenchmarkDecode is the decode stage alone: records already framed (one
// generated audit event each) validated and decoded, format detected,
// with the fields the built-in rules read, as the driver's decoders read
// them; over a realistic log and one where every event is anonymous.
func BenchmarkDecode(b *testing.B) {
	rs, err := rule.Load(rules.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	var fields event.FieldSet
	for _, r := range rs {
		fields.Union(r.Fields)
	}
	logs, err := loadgen.StageLogs(20_000)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range logs {
		b.Run(c.Name, func(b *testing.B) {
			recs := c.Records
			bad := 0
			r, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: fields, OnBad: func(ingest.BadRecord) { bad++ }})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			fn := func(*event.Event) error { n++; return nil }
			b.SetBytes(int64(len(c.Log)))
			b.ReportAllocs()
			for b.Loop() {
				for i, rec := range recs {
					if err := r.Record(event.Origin{Name: "bench", Line: int64(i + 1)}, rec, fn); err != nil {
						b.Fatal(err)
					}
				}
			}
			if bad != 0 || n != b.N*len(recs) {
				b.Fatalf("%d bad records, %d events of %d records", bad, n, b.N*len(recs))
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
