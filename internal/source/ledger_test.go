package source

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

func TestLedger(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	l, err := NewLedger(st, "firehose", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1747213953420)
	commit := func(c *Claim) {
		t.Helper()
		if err := st.Update(ctx, time.Time{}, func(tx state.Tx) error { return c.Record(tx, 3) }); err != nil {
			t.Fatal(err)
		}
		c.Finish(true)
	}

	// A new id is claimed; once recorded it is a redelivery, in another
	// ledger on the same store too (a restart, a replica).
	c, dup, err := l.Claim(ctx, "r1", now)
	if err != nil || dup || c == nil {
		t.Fatalf("first claim: %v %v %v", c, dup, err)
	}
	commit(c)
	for _, lg := range []*Ledger{l, mustLedger(t, st)} {
		if c, dup, err := lg.Claim(ctx, "r1", now); err != nil || !dup || c != nil {
			t.Fatalf("claim of a durable id: %v %v %v", c, dup, err)
		}
	}
	pos, _ := state.NewPositions(st, "delivery:firehose")
	if p, ok, _ := pos.Get(ctx, "r1"); !ok || p.Offset != now.UnixMilli() || p.Line != 3 {
		t.Fatalf("entry: %+v %v", p, ok)
	}
	// The entry expires after the retention.
	if _, err := st.Get(ctx, pos.AppendKey(nil, "r1"), now.Add(time.Hour+time.Millisecond)); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("after the retention: %v", err)
	}

	// A second attempt while the first is evaluated waits for it, and is
	// a redelivery if the first became durable ...
	c, _, _ = l.Claim(ctx, "r2", now)
	got := make(chan bool, 1)
	go func() {
		_, dup, _ := l.Claim(ctx, "r2", now)
		got <- dup
	}()
	select {
	case <-got:
		t.Fatal("the second attempt did not wait for the first")
	case <-time.After(50 * time.Millisecond):
	}
	commit(c)
	if !<-got {
		t.Fatal("the second attempt after a durable first is not a redelivery")
	}

	// ... and takes over if it failed. A failed attempt whose write the
	// store holds anyway (a live driver keeps the writes of a failed
	// commit) is not taken for proof.
	c, _, _ = l.Claim(ctx, "r3", now)
	st.Update(ctx, time.Time{}, func(tx state.Tx) error { return c.Record(tx, 1) })
	c.Finish(false)
	c.Finish(true) // only the first Finish counts
	if c2, dup, err := l.Claim(ctx, "r3", now); err != nil || dup || c2 == nil {
		t.Fatalf("claim after a failed attempt: %v %v %v", c2, dup, err)
	} else {
		c2.Finish(true)
	}
	if _, dup, _ := l.Claim(ctx, "r3", now); !dup {
		t.Fatal("a durable retry is not remembered")
	}

	// A waiting attempt gives up with its context.
	c, _, _ = l.Claim(ctx, "r4", now)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := l.Claim(wctx, "r4", now); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting claim: %v", err)
	}
	c.Finish(true)
	if _, _, err := l.Claim(ctx, "", now); !errors.Is(err, ErrEmptyID) {
		t.Fatalf("empty id: %v", err)
	}
	if _, err := NewLedger(st, "x", 0); err == nil {
		t.Fatal("a ledger without retention")
	}
}

func mustLedger(t *testing.T, st state.Store) *Ledger {
	t.Helper()
	l, err := NewLedger(st, "firehose", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
