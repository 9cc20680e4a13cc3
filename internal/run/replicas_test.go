package run_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// decisions summarises what alerts decided, in a form that does not
// depend on which replica read which event first: a new term by its
// values, a group delivery by its key and count, any other alert by its
// id. Sorted, repeats kept.
func decisions(as []*alert.Alert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		switch {
		case a.Rule.Type == "new_terms":
			v, _ := a.Fields.Get("new_terms")
			out = append(out, fmt.Sprintf("%s term %v", a.Rule.ID, v))
		case a.Group != nil:
			out = append(out, fmt.Sprintf("%s group %s n=%d", a.Rule.ID, a.Group.Key, a.Group.Count))
		default:
			out = append(out, a.Rule.ID+" "+a.ID)
		}
	}
	slices.Sort(out)
	return out
}

// TestReplicaDrivers runs two drivers as replicas on one Redis, each
// given every other batch of the bundled kube-apiserver log, submitting
// at the same time from two goroutines, as two kanon serve replicas behind
// one Service take an API server's batches. Together they decide what one
// driver decides alone with the whole log: each new user agent raised
// once, each group opened once with every member counted, each other
// alert once.
func TestReplicaDrivers(t *testing.T) {
	srv := redistest.Start(t)
	lines := bytes.Split(bytes.TrimSpace(exampleLog(t)), []byte{'\n'})
	var batches [][]ingest.Record
	fr := ingest.NewFramer("webhook", 0)
	for i := 0; i < len(lines); i += 8 {
		var recs []ingest.Record
		for j := i; j < min(i+8, len(lines)); j++ {
			recs = fr.Line(int64(j+1), lines[j], recs)
		}
		batches = append(batches, recs)
	}
	ctx := context.Background()
	// The runs stay open until Close: the replicas' watermarks move
	// apart, and no event may come too late for either.
	pol := run.LivePolicy(24 * time.Hour)
	cfg := func(s state.Store, replica string) run.Config {
		return run.Config{Store: s, Replica: replica, Policy: pol, GroupUpdates: true}
	}

	alone, aloneCol := newDriver(t, cfg(mem.New(), ""))
	for _, b := range batches {
		if res, err := alone.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: b}, true); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
	}
	if err := alone.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := decisions(aloneCol.Alerts)
	if len(want) < 10 {
		t.Fatalf("one driver raised %d alerts; the log raises more", len(want))
	}

	var stores [2]state.Store
	for i := range stores {
		s, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Prefix: "replica-drivers"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores[i] = s
	}
	rt := &redistest.RoundTrips{}
	for _, s := range stores {
		s.(*redis.Store).Client().AddHook(rt)
	}
	da, ca := newDriver(t, cfg(stores[0], "a"))
	db, cb := newDriver(t, cfg(stores[1], "b"))
	var wg sync.WaitGroup
	for k, d := range []*run.Driver{da, db} {
		wg.Go(func() {
			for i := k; i < len(batches); i += 2 {
				if res, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: batches[i]}, true); err != nil || res.Err != nil {
					t.Error(err, res.Err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := da.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d round trips for %d events in %d batches: %.2f per event", rt.N(), len(lines), len(batches), float64(rt.N())/float64(len(lines)))
	// Two round trips per batch that decides, one per commit; the rest
	// are the sweeps (one per minute of event time: this log's 40
	// minutes are in 200 events) and the outbox's scans.
	got := decisions(append(slices.Clone(ca.Alerts), cb.Alerts...))
	if !slices.Equal(got, want) {
		t.Fatalf("two replica drivers decided\n%s\none driver decides\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every alert decided was delivered and its outbox entry deleted.
	left := 0
	if err := state.ScanOutbox(ctx, stores[0], func([]byte, state.OutboxEntry) error { left++; return nil }); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d alerts left in the outbox after both replicas closed", left)
	}
}

// BenchmarkReplicaRoundTrips runs two replica drivers on one Redis over a
// generated stream (20,000 events, 2 % anonymous, webhook batches of 400
// events, alternately to each replica) and reports the Redis round trips
// per event (rt/event) beside the throughput.
func BenchmarkReplicaRoundTrips(b *testing.B) {
	srv := redistest.Start(b)
	bodies, st, err := loadgen.GenerateEventList(loadgen.DefaultOptions(20000, 1), 400)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(st.Bytes)
	b.ReportAllocs()
	rt := &redistest.RoundTrips{}
	for i := 0; b.Loop(); i++ {
		var ds [2]*run.Driver
		for k := range ds {
			s, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Prefix: fmt.Sprintf("rt-%d", i)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			s.Client().AddHook(rt)
			ds[k], _ = newDriver(b, run.Config{Store: s, Replica: string(rune('a' + k)), Policy: run.LivePolicy(time.Minute), GroupUpdates: true})
		}
		var wg sync.WaitGroup
		for k, d := range ds {
			wg.Go(func() {
				for j := k; j < len(bodies); j += 2 {
					fr := ingest.NewFramer("webhook", 0)
					if res, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: fr.Line(1, bodies[j], nil)}, true); err != nil || res.Err != nil {
						b.Error(err, res.Err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, d := range ds {
			if err := d.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(rt.N())/float64(int64(b.N)*int64(st.Events)), "rt/event")
	b.ReportMetric(float64(int64(b.N)*int64(st.Events))/b.Elapsed().Seconds(), "events/s")
}
