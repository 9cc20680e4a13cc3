package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

// TestSweepBoundsTheStore runs seed 001 over 60 days of traffic with a new
// user agent every hour: swept every hour of event time (as the driver
// sweeps every Policy.SweepEvery), the store keeps about a history window's
// worth of terms (7 days), not the whole deployment's; without sweeping,
// everything stays.
func TestSweepBoundsTheStore(t *testing.T) {
	var events []stEv
	for h := 0; h < 60*24; h++ {
		events = append(events, stEv{id: fmt.Sprintf("sw-%d", h), at: stT0.Add(time.Duration(h) * time.Hour), ua: fmt.Sprintf("scanner/%d", h)})
	}
	entries := func(sweep time.Duration) (int64, engine.Stats) {
		store, err := bolt.Open(t.TempDir(), bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		as, st := stRunWith(t, []*rule.Compiled{stRule(t, seed001)}, store, engine.Options{}, watermark{lateness: -1, sweepEvery: sweep}, events...)
		if len(as) != len(events) {
			t.Fatalf("%d alerts for %d new user agents", len(as), len(events))
		}
		s, err := store.Stats(stCtx)
		if err != nil {
			t.Fatal(err)
		}
		return s.Entries, st
	}
	kept, _ := entries(0)
	swept, st := entries(time.Hour)
	// Each alert leaves a term (7-day window) and a raised-alert mark (30
	// days): without sweeping all 1440 of each stay.
	if kept < 2*int64(len(events)) {
		t.Fatalf("without sweeping the store holds %d entries, want all %d", kept, 2*len(events))
	}
	if want := int64(7*24 + 30*24 + 48); swept > want || st.Swept == 0 {
		t.Fatalf("with sweeping the store holds %d entries (swept %d), want at most %d", swept, st.Swept, want)
	}
}

// TestSweepDeliversGroupsFirst: a dedup group whose period is over is
// delivered before sweeping can remove it (two user agents five hours
// apart, with seed 003's 60-minute groups).
func TestSweepDeliversGroupsFirst(t *testing.T) {
	store, err := bolt.Open(t.TempDir(), bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	as, _ := stRunWith(t, []*rule.Compiled{stRule(t, "Kubernetes.API.AnonymousAccess")}, store, engine.Options{}, watermark{lateness: -1, sweepEvery: time.Hour},
		stEv{id: "g1", at: stT0, ua: "python-requests/2.31.0", ips: []string{"203.0.113.9"}},
		stEv{id: "g2", at: stT0.Add(5 * time.Hour), ua: "curl/8.5.0", ips: []string{"203.0.113.9"}},
	)
	if len(as) != 2 {
		t.Fatalf("%d alerts, want one per user agent", len(as))
	}
}
