package run_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// A source whose Submit waits for room in a full queue does not stall
// the driver: the driver takes its lock to count each batch it finishes,
// and a waiting Submit used to hold the lock shared while it waited, so
// that neither could go on (a NATS replica fetching one message at a time
// stopped within a second). Every batch is done, and Stats still answers.
func TestSubmitWaitingForRoom(t *testing.T) {
	d, _ := newDriver(t, run.Config{QueueSize: 1, Store: mem.New(), Policy: run.LivePolicy(time.Second)})
	line := bytes.SplitN(exampleLog(t), []byte{'\n'}, 2)[0]
	const batches = 500
	var done sync.WaitGroup
	done.Add(batches)
	ctx := context.Background()
	go func() {
		for i := range batches {
			recs := ingest.NewFramer("source", 0).Line(int64(i+1), line, nil)
			b := &run.Batch{Input: "source", Records: recs, Done: func(run.Result) { done.Done() }}
			if err := d.Submit(ctx, b); err != nil {
				t.Error(err)
				done.Done()
			}
		}
	}()
	all := make(chan struct{})
	go func() { done.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(time.Minute):
		t.Fatalf("%d batches submitted, not all done after a minute: the driver and Submit wait for each other", batches)
	}
	if st := d.Stats(); st.Records == 0 {
		t.Fatalf("stats %+v", st)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
