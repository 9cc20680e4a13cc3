package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
)

// BenchmarkDedupJoin is the cost per matching event of Panther's rule
// (per-event, dedup key by user agent) when the event joins an open
// group, the common case of a burst: build the alert, count it in its
// group (samples kept), mark its id; through the driver's write overlay,
// committed every 1,000 events. The bytes are the events' records.
func BenchmarkDedupJoin(b *testing.B) {
	r := stRule(b, pantherRule)
	ov := overlay.New(mem.New(), nil)
	defer ov.Close()
	var sink countSink
	h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink, Store: ov, GroupUpdates: true}, untilClose)
	events := ntEvents(h, 10000, func(i int) string { return fmt.Sprintf("scanner-%d/1.0", i%10) })
	for i, e := range events {
		e.AuditID = fmt.Sprint("d", i)
		e.Timestamp = stT0.Add(time.Duration(i) * time.Millisecond)
	}
	var bytes int64
	for _, e := range events {
		bytes += int64(len(e.Record))
	}
	b.SetBytes(bytes / int64(len(events)))
	b.ReportAllocs()
	ctx := context.Background()
	n := 0
	for b.Loop() {
		e := events[n%len(events)]
		if n >= len(events) {
			// Every id is raised by the first pass: give the event a new one.
			e.AuditID = fmt.Sprint("d", n)
		}
		if err := h.process(e); err != nil {
			b.Fatal(err)
		}
		n++
		if n%1000 == 0 {
			if err := ov.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
