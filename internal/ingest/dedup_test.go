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
