package ingest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
)

func TestDedup(t *testing.T) {
	if _, err := ingest.NewDedup(1); !errors.Is(err, ingest.ErrBadOptions) {
		t.Fatalf("capacity 1: %v", err)
	}
	s, err := ingest.NewDedup(4)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id, stage string) *event.Event { return &event.Event{AuditID: id, Stage: stage} }
	f := func(id, stage string, want bool) {
		t.Helper()
		if got := s.Duplicate(ev(id, stage)); got != want {
			t.Errorf("Duplicate(%q, %q) = %v, want %v", id, stage, got, want)
		}
	}
	f("a", "ResponseComplete", false)
	f("a", "ResponseComplete", true)
	f("a", "ResponseStarted", false) // another stage of the same request
	f("", "ResponseComplete", false) // no auditID: never a repeat
	f("", "ResponseComplete", false)
	f("b", "", false) // fills the current generation (2 keys): rotates next
	f("c", "", false)
	f("a", "ResponseComplete", true) // still remembered in the old generation, refreshed
	f("d", "", false)
	f("e", "", false) // rotation: b and c are forgotten
	f("b", "", false)
	if s.Len() > 4 {
		t.Fatalf("Len %d over the capacity", s.Len())
	}
	if s.Dropped() != 2 {
		t.Fatalf("Dropped %d", s.Dropped())
	}
	// Bounded memory under a stream of distinct keys.
	for i := 0; i < 10000; i++ {
		s.Duplicate(ev(fmt.Sprint(i), "ResponseComplete"))
		if s.Len() > 4 {
			t.Fatalf("Len %d over the capacity after %d keys", s.Len(), i)
		}
	}
}

// BenchmarkDedup measures the redelivery dedup per event, on distinct
// events (the common case: no repeat), across rotations.
func BenchmarkDedup(b *testing.B) {
	s, err := ingest.NewDedup(ingest.DefaultDedupCapacity)
	if err != nil {
		b.Fatal(err)
	}
	evs := make([]event.Event, 1<<20)
	for i := range evs {
		evs[i] = event.Event{AuditID: fmt.Sprintf("5f3c%04x-8a1b-4c2d-9e3f-%012d", i&0xffff, i), Stage: "ResponseComplete"}
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		s.Duplicate(&evs[n&(len(evs)-1)])
		n++
	}
}
