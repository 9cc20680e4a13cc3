package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

func TestPositions(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	p, err := state.NewPositions(s, "tail")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := p.Get(ctx, "/var/log/audit.log"); ok || err != nil {
		t.Fatalf("Get of an unknown path = %v, %v", ok, err)
	}
	want := state.Position{Dev: 2049, Ino: 1 << 40, Offset: 123456789, Line: 4242}
	if err := p.Put(ctx, "/var/log/audit.log", want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := p.Get(ctx, "/var/log/audit.log")
	if !ok || err != nil || got != want {
		t.Fatalf("Get = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	// Another input and another path are separate.
	q, _ := state.NewPositions(s, "tail2")
	if _, ok, _ := q.Get(ctx, "/var/log/audit.log"); ok {
		t.Fatal("input tail2 sees the position of input tail")
	}
	if _, ok, _ := p.Get(ctx, "/var/log/audit.log.1"); ok {
		t.Fatal("another path has a position")
	}
	// A corrupt entry is an error, not a position.
	if err := state.Put(ctx, s, p.AppendKey(nil, "/bad"), []byte("xx"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Get(ctx, "/bad"); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("Get of a corrupt entry = %v, want ErrCorrupt", err)
	}
	if _, err := state.NewPositions(s, ""); err == nil {
		t.Fatal("NewPositions accepted an empty input name")
	}
}
