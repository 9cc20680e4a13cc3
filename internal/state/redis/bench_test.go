package redis_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/overlay"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

// BenchmarkStore runs the benchmarks every implementation runs, on a
// redis-server of its own.
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	statetest.Bench(b, func(b *testing.B) state.Store {
		s, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Prefix: uniquePrefix(b)})
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// BenchmarkRoundTrips reports the round trips (rt/op) and the time of the
// operations the engine and the driver make, and, for a commit, the round
// trips per write (rt/write): what doc.go's table of costs says.
func BenchmarkRoundTrips(b *testing.B) {
	srv := redistest.Start(b)
	key := []byte("k")
	report := func(b *testing.B, rt *redistest.RoundTrips, writes int) {
		per := float64(rt.N()) / float64(b.N)
		b.ReportMetric(per, "rt/op")
		if writes > 0 {
			b.ReportMetric(per/float64(writes), "rt/write")
		}
	}
	b.Run("Get", func(b *testing.B) {
		s, rt := counted(b, redis.Options{Addr: srv.Addr, Prefix: uniquePrefix(b)})
		state.Put(ctx, s, key, make([]byte, 100), time.Time{})
		rt.Set(0)
		for b.Loop() {
			if _, err := s.Get(ctx, key, t0); err != nil {
				b.Fatal(err)
			}
		}
		report(b, rt, 0)
	})
	b.Run("MarkAlert", func(b *testing.B) {
		s, rt := counted(b, redis.Options{Addr: srv.Addr, Prefix: uniquePrefix(b)})
		ids, _ := state.NewAlertIDs(s, "r", time.Hour)
		i := 0
		for b.Loop() {
			i++
			if _, err := ids.Mark(ctx, strconv.AppendInt(nil, int64(i), 10), t0); err != nil {
				b.Fatal(err)
			}
		}
		report(b, rt, 0)
	})
	for _, n := range []int{1, 100, 1000} {
		b.Run("OverlayCommit"+strconv.Itoa(n), func(b *testing.B) {
			s, rt := counted(b, redis.Options{Addr: srv.Addr, Prefix: uniquePrefix(b)})
			ov := overlay.New(s, nil)
			val := make([]byte, 100)
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = state.Key(state.NSAlerts, "bench", []byte("id-"+strconv.Itoa(i)))
			}
			b.SetBytes(int64(n * len(val)))
			var commits int64
			for b.Loop() {
				for _, k := range keys {
					if err := state.Put(ctx, ov, k, val, t0.Add(time.Hour)); err != nil {
						b.Fatal(err)
					}
				}
				before := rt.N()
				if err := ov.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				commits += rt.N() - before
			}
			rt.Set(commits)
			report(b, rt, n)
		})
	}
}
