package main

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// BenchmarkScanRedis is BenchmarkScan's path with the state in Redis (a
// redis-server of its own on loopback): it reports events/s and the round
// trips to Redis per event (rt/event) and per commit (rt/commit is not
// separable here: rt/event includes the commits). Run with
// go test -run XXX -bench BenchmarkScanRedis -benchtime 1x ./cmd/kanon
func BenchmarkScanRedis(b *testing.B) {
	srv := redistest.Start(b)
	data, benchEvents := realLog.get(b)
	var rf ruleFlags
	compiled, err := rf.load()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	var rts, alerts int64
	i := 0
	for b.Loop() {
		i++
		store, err := redis.Open(context.Background(), redis.Options{Addr: srv.Addr, Prefix: fmt.Sprintf("bench-%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		hook := &redistest.RoundTrips{}
		store.Client().AddHook(hook)
		d, err := run.New(run.Config{Rules: compiled, Registry: registry(), Store: store, Sink: alert.NewJSONSink(discard{}),
			Policy: run.BatchPolicy(), Dedup: benchDedup})
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
		alerts = alertsRaised(d.Stats())
		rts += hook.N()
		store.Close()
	}
	b.ReportMetric(float64(benchEvents)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(rts)/float64(b.N)/float64(benchEvents), "rt/event")
	b.ReportMetric(float64(alerts), "alerts/scan")
}
