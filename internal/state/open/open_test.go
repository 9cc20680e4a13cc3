package open_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/open"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

var ctx = context.Background()

func TestStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, _, err := open.Store(ctx, open.Config{Dir: dir, Existing: true}); err == nil {
		t.Fatal("opening a missing state directory with Existing succeeded")
	}
	s, where, err := open.Store(ctx, open.Config{Dir: dir})
	if err != nil || where != dir {
		t.Fatalf("bolt store = %q, %v", where, err)
	}
	s.Close()
	if s, where, err = open.Store(ctx, open.Config{Dir: dir, URL: "redis://x", Memory: true}); err != nil || where != "memory" {
		t.Fatalf("memory store = %q, %v", where, err)
	}
	s.Close()

	srv := redistest.Start(t, "--requirepass", "pw")
	env := func(string) string { return "pw" }
	url := "redis://" + srv.Addr + "/2?prefix=open-test"
	s, where, err = open.Store(ctx, open.Config{URL: url, Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.Contains(where, srv.Addr) || !strings.Contains(where, "open-test") || strings.Contains(where, "pw") {
		t.Fatalf("description %q", where)
	}
	if err := state.Put(ctx, s, []byte("k"), []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := open.Store(ctx, open.Config{URL: url}); err == nil {
		t.Fatal("opening without the password succeeded")
	}
	for _, u := range []string{"bolt:///x", "nats://h:1/x", "redis://h?bad=1"} {
		if _, _, err := open.Store(ctx, open.Config{URL: u}); err == nil {
			t.Errorf("open %q succeeded", u)
		}
		if err := open.Validate(u); err == nil {
			t.Errorf("Validate(%q) succeeded", u)
		}
	}
	for _, u := range []string{"", url, "rediss://somewhere:6380/1?prefix=p"} {
		if err := open.Validate(u); err != nil {
			t.Errorf("Validate(%q): %v", u, err)
		}
	}
}
