package main

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

// benchLog is a generated log, made once.
type benchLog struct {
	once   sync.Once
	opts   loadgen.Options
	data   []byte
	events int64
}

func (l *benchLog) get(b *testing.B) ([]byte, int64) {
	l.once.Do(func() {
		var buf bytes.Buffer
		st, err := loadgen.Generate(&buf, l.opts)
		if err != nil {
			b.Fatal(err)
		}
		l.data, l.events = buf.Bytes(), int64(st.Events)
	})
	return l.data, l.events
}

// realLog is a generated audit log (see internal/loadgen): mostly
// controller, kubelet and kubectl traffic, ~1.4 KB mean, ~10 % with
// bodies, ~2 % anonymous, marshalled from the upstream audit types.
// anonLog is one where every event is anonymous (~0.7 KB): every event is
// parsed in full and evaluated by every rule.
var (
	realLog = &benchLog{opts: loadgen.DefaultOptions(50_000, 1)}
	anonLog = &benchLog{opts: func() loadgen.Options {
		o := loadgen.DefaultOptions(100_000, 1)
		o.AnonymousRatio, o.BodyRatio = 1, 0
		return o
	}()}
)

// BenchmarkScan measures kanon scan's whole path — read, frame, parse,
// normalise, dedup, evaluate every built-in rule, raise alerts (into a
// discarding JSON sink), commit — through the driver with the scan's
// batch policy, on a realistic generated log: with state in memory
// (a scan's default) and in the embedded store on disk (--state-dir). Run on
// one core with go test -run XXX -bench BenchmarkScan -cpu 1 ./cmd/kanon
func BenchmarkScan(b *testing.B) {
	for _, store := range []string{"memory", "bolt"} {
		b.Run(store, func(b *testing.B) { benchScan(b, realLog, store == "bolt") })
	}
	b.Run("memory-nodedup", func(b *testing.B) {
		defer func(d int) { benchDedup = d }(benchDedup)
		benchDedup = 0
		benchScan(b, realLog, false)
	})
	b.Run("memory-anonymous", func(b *testing.B) { benchScan(b, anonLog, false) })
}

func benchScan(b *testing.B, log *benchLog, onDisk bool) {
	data, events := log.get(b)
	var rf ruleFlags
	compiled, err := rf.load()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var alerts int64
	for b.Loop() {
		pol := run.BatchPolicy()
		var store state.Store
		if onDisk {
			if store, err = bolt.Open(b.TempDir(), bolt.Options{}); err != nil {
				b.Fatal(err)
			}
		} else {
			pol.Windows = engine.WindowsInMemory
		}
		d, err := run.New(run.Config{Rules: compiled, Registry: registry(), Store: store, Sink: alert.NewJSONSink(discard{}),
			Policy: pol, Dedup: benchDedup})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := d.Run(ctx, &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		if err := d.Close(ctx); err != nil {
			b.Fatal(err)
		}
		st := d.Stats()
		if st.Bad != 0 {
			b.Fatalf("%d bad records in the generated log", st.Bad)
		}
		alerts = alertsRaised(st)
		if store != nil {
			store.Close()
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(alerts), "alerts/scan")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// benchDedup is the redelivery dedup of BenchmarkScan (kanon scan's default).
var benchDedup = run.DefaultDedup
