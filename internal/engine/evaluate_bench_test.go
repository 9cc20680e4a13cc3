package engine_test

import (
	"testing"

	"context"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/rules"
)

// BenchmarkEvaluate is the evaluate stage: the built-in pack run over
// events already decoded, in input order, with state in memory under the
// driver's write overlay (a scan's default), committed at the end; the watermark moved as a scan moves it and the runs closed at
// the end; every event is evaluated (no prefilter). One iteration is the
// whole log through a new engine; SetBytes counts its records' bytes.
func BenchmarkEvaluate(b *testing.B) {
	rs, err := rule.Load(rules.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	logs, err := loadgen.StageLogs(20_000)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range logs {
		b.Run(c.Name, func(b *testing.B) {
			var sink countSink
			h := newHarness(b, rs, engine.Options{Sink: &sink, Store: mem.New()}, untilClose)
			var evs []*event.Event
			for i, rec := range c.Records {
				evs = h.decode(evs, event.Origin{Name: "bench", Line: int64(i + 1)}, rec)
			}
			b.SetBytes(int64(len(c.Log)))
			b.ReportAllocs()
			for b.Loop() {
				sink.n = 0
				store := overlay.New(mem.New(), nil)
				h := newHarness(b, rs, engine.Options{Sink: &sink, Store: store, Windows: engine.WindowsInMemory}, untilClose)
				for _, e := range evs {
					if err := h.process(e); err != nil {
						b.Fatal(err)
					}
				}
				h.close()
				if err := store.Commit(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			if sink.n == 0 {
				b.Fatal("no alert")
			}
			b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(sink.n), "alerts/op")
		})
	}
}
