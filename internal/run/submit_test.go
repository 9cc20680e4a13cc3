package run_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
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

// The driver holds at most QueueBytes of input from submission until a
// batch is done, whatever the room in its queue: TrySubmit answers
// ErrBusy, Submit waits (a batch over the bound waits for the driver to
// hold nothing else), and a Submit waiting so when the driver closes
// returns ErrClosed instead of holding up the close.
func TestQueueBytes(t *testing.T) {
	d, _ := newDriver(t, run.Config{QueueSize: 64, QueueBytes: 1000, Store: mem.New(), Policy: run.LivePolicy(time.Second)})
	line := bytes.SplitN(exampleLog(t), []byte{'\n'}, 2)[0]
	ctx := context.Background()
	var firstDone atomic.Bool
	batch := func(n int64, commit <-chan struct{}, done func()) *run.Batch {
		return &run.Batch{Input: "source", Bytes: n, Records: ingest.NewFramer("source", 0).Line(1, line, nil),
			Commit: func(state.Tx) error {
				if commit != nil {
					<-commit
				}
				return nil
			},
			Done: func(run.Result) {
				if done != nil {
					done()
				}
			}}
	}
	hold := make(chan struct{})
	if err := d.Submit(ctx, batch(800, hold, func() { firstDone.Store(true) })); err != nil {
		t.Fatal(err)
	}
	if err := d.TrySubmit(batch(300, nil, nil)); !errors.Is(err, run.ErrBusy) {
		t.Fatalf("TrySubmit of 300 bytes with 800 of 1000 held: %v, want ErrBusy", err)
	}
	if err := d.TrySubmit(batch(200, nil, nil)); err != nil {
		t.Fatalf("TrySubmit of 200 bytes with 800 of 1000 held: %v", err)
	}
	big := make(chan error, 1)
	go func() { big <- d.Submit(ctx, batch(5000, nil, nil)) }()
	close(hold)
	if err := <-big; err != nil {
		t.Fatal(err)
	}
	if !firstDone.Load() {
		t.Fatal("a batch over QueueBytes was queued while another was held")
	}

	// Closing while a Submit waits for bytes.
	hold = make(chan struct{})
	if err := d.Submit(ctx, batch(1000, hold, nil)); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- d.Submit(ctx, batch(10, nil, nil)) }()
	closed := make(chan error, 1)
	go func() { closed <- d.Close(ctx) }()
	if err := <-waiting; !errors.Is(err, run.ErrClosed) {
		t.Fatalf("a Submit waiting for bytes when the driver closed: %v, want ErrClosed", err)
	}
	close(hold)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}
