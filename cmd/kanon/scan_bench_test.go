package main

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

var (
	benchLogOnce sync.Once
	benchLog     []byte
	benchEvents  int64
)

// realisticLog is a generated audit log (see internal/loadgen): mostly
// controller, kubelet and kubectl traffic, ~1.4 KB mean, ~10 % with
// bodies, ~2 % anonymous, marshalled from the upstream audit types.
func realisticLog(b *testing.B) []byte {
	benchLogOnce.Do(func() {
		var buf bytes.Buffer
		st, err := loadgen.Generate(&buf, loadgen.DefaultOptions(50_000, 1))
		if err != nil {
			b.Fatal(err)
		}
		benchLog, benchEvents = buf.Bytes(), int64(st.Events)
	})
	return benchLog
}

// BenchmarkScan measures kanon scan's whole path — read, frame, parse,
// normalise, evaluate every built-in rule, raise alerts (into a discarding
// JSON sink) — on a realistic generated log. Run on one core with
// go test -run XXX -bench BenchmarkScan -cpu 1 ./cmd/kanon
func BenchmarkScan(b *testing.B) {
	data := realisticLog(b)
	var rf ruleFlags
	compiled, err := rf.load()
	if err != nil {
		b.Fatal(err)
	}
	reg := registry()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var alerts int64
	for b.Loop() {
		store := mem.New()
		sink := alert.NewJSONSink(discard{})
		eng, err := engine.New(compiled, engine.Options{Sink: sink, Store: store, Materialize: reg.Materialize})
		if err != nil {
			b.Fatal(err)
		}
		rd, err := ingest.NewReader(reg, ingest.Options{Fields: eng.Fields()})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := rd.ReadStream(ctx, "bench", bytes.NewReader(data), func(e *event.Event) error { return eng.Process(ctx, e) }); err != nil {
			b.Fatal(err)
		}
		if err := eng.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if rd.Stats().Bad != 0 {
			b.Fatalf("%d bad records in the generated log", rd.Stats().Bad)
		}
		alerts = 0
		for _, s := range eng.Stats().Rules {
			alerts += s.Alerts
		}
		store.Close()
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(alerts), "alerts/scan")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
