package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// testGroups checks the alert groups view (dedup): joining within the
// period, a new group after it, samples bounded, delivery records, expiry
// with the period, and separation by rule and key.
func testGroups(t *testing.T, s state.Store) {
	const period = time.Hour
	gs, err := state.NewGroups(s, state.GroupsConfig{Rule: "anon", Period: period, MaxSamples: 3, MaxSampleBytes: 16})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	add := func(key, id string, now time.Time, sample string) (state.Group, bool) {
		t.Helper()
		var g state.Group
		var opened bool
		err := s.Update(ctx, now, func(tx state.Tx) (err error) {
			var smp []byte
			if sample != "" {
				smp = k(sample)
			}
			g, opened, err = gs.AddTx(tx, k(key), id, smp)
			return err
		})
		if err != nil {
			t.Fatalf("add %q at %v: %v", key, now, err)
		}
		return g, opened
	}
	samples := func(g state.Group) string { return string(bytes.Join(g.Samples, k(","))) }

	g, opened := add("curl", "g1", at(0), "s1")
	if !opened || g.ID != "g1" || g.Count != 1 || !g.FirstSeen.Equal(at(0)) || !g.End.Equal(at(period)) || g.Delivered != 0 || samples(g) != "s1" {
		t.Fatalf("first alert: %+v opened %t", g, opened)
	}
	g, opened = add("curl", "g2", at(10*time.Minute), "s2")
	if opened || g.ID != "g1" || g.Count != 2 || !g.LastSeen.Equal(at(10*time.Minute)) {
		t.Fatalf("second alert within the period: %+v opened %t", g, opened)
	}
	// Out of order: an earlier alert widens the group but does not move End.
	g, _ = add("curl", "g3", at(-5*time.Minute), "s3")
	if g.Count != 3 || !g.FirstSeen.Equal(at(-5*time.Minute)) || !g.End.Equal(at(period)) || samples(g) != "s1,s2,s3" {
		t.Fatalf("out-of-order alert: %+v", g)
	}
	// Full: the latest sample replaces the last one; an oversized sample
	// is not kept; no sample keeps the samples.
	g, _ = add("curl", "g4", at(20*time.Minute), "s4")
	if samples(g) != "s1,s2,s4" {
		t.Fatalf("samples after the limit = %q, want s1,s2,s4", samples(g))
	}
	g, _ = add("curl", "g5", at(30*time.Minute), "a sample of more than sixteen bytes")
	g, _ = add("curl", "g6", at(40*time.Minute), "")
	if g.Count != 6 || samples(g) != "s1,s2,s4" {
		t.Fatalf("after oversized and empty samples: count %d, samples %q", g.Count, samples(g))
	}
	// Other keys and rules are other groups.
	if g, opened := add("wget", "w1", at(10*time.Minute), ""); !opened || g.Count != 1 || len(g.Samples) != 0 {
		t.Fatalf("other key: %+v opened %t", g, opened)
	}
	other, _ := state.NewGroups(s, state.GroupsConfig{Rule: "anon2", Period: period})
	if other.Config().MaxSamples != state.DefaultMaxSamples || other.Config().Retain != period {
		t.Fatalf("defaults not filled in: %+v", other.Config())
	}
	if _, found, err := other.Get(ctx, k("curl"), at(0)); err != nil || found {
		t.Fatalf("group of another rule found: %t, %v", found, err)
	}

	// Joining without a sample counts the alert and keeps the samples;
	// the latest sample is set later, for the group's id only.
	var jg state.Group
	var nsamp int
	var joined bool
	err = s.Update(ctx, at(41*time.Minute), func(tx state.Tx) (err error) {
		jg, nsamp, joined, err = gs.JoinTx(tx, k("curl"), at(41*time.Minute))
		return err
	})
	if err != nil || !joined || jg.ID != "g1" || jg.Count != 7 || nsamp != 3 || jg.Samples != nil || !jg.LastSeen.Equal(at(41*time.Minute)) {
		t.Fatalf("join = %+v, %d samples, %t, %v", jg, nsamp, joined, err)
	}
	setLatest := func(id, sample string) bool {
		t.Helper()
		var changed bool
		err := s.Update(ctx, at(41*time.Minute), func(tx state.Tx) (err error) {
			changed, err = gs.SetLatestTx(tx, k("curl"), id, k(sample))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	if !setLatest("g1", "s8") || setLatest("other", "s9") || setLatest("g1", "a sample of more than sixteen bytes") {
		t.Fatal("SetLatestTx changed the wrong groups")
	}
	if g, _, _ := gs.Get(ctx, k("curl"), at(41*time.Minute)); g.Count != 7 || samples(g) != "s1,s2,s8" {
		t.Fatalf("after join and latest sample: count %d, samples %q", g.Count, samples(g))
	}
	err = s.Update(ctx, at(period), func(tx state.Tx) (err error) {
		_, _, joined, err = gs.JoinTx(tx, k("curl"), at(period))
		return err
	})
	if err != nil || joined {
		t.Fatalf("join after the period: %t, %v", joined, err)
	}
	// Delivery records.
	deliver := func(key, id string, count int64, wantChanged bool) {
		t.Helper()
		var changed bool
		err := s.Update(ctx, at(50*time.Minute), func(tx state.Tx) (err error) {
			changed, err = gs.DeliveredTx(tx, k(key), id, count)
			return err
		})
		if err != nil || changed != wantChanged {
			t.Fatalf("delivered %q %s %d = %t, %v; want %t", key, id, count, changed, err, wantChanged)
		}
	}
	deliver("curl", "g1", 1, true)
	deliver("curl", "g1", 6, true)
	deliver("curl", "g1", 4, false)    // never goes back
	deliver("curl", "other", 7, false) // not this group
	deliver("nope", "g1", 7, false)    // no group
	if g, found, err := gs.Get(ctx, k("curl"), at(50*time.Minute)); err != nil || !found || g.Delivered != 6 || g.Count != 7 {
		t.Fatalf("get after delivery = %+v, %t, %v", g, found, err)
	}

	// At End the period is over: the group is still readable (closed),
	// and the next alert opens a new group.
	g, found, err := gs.Get(ctx, k("curl"), at(period))
	if err != nil || !found || g.OpenAt(at(period)) || !g.OpenAt(at(period-time.Nanosecond)) {
		t.Fatalf("closed group = %+v, %t, %v", g, found, err)
	}
	g, opened = add("curl", "g7", at(period), "s7")
	if !opened || g.ID != "g7" || g.Count != 1 || samples(g) != "s7" || !g.End.Equal(at(2*period)) {
		t.Fatalf("alert after the period: %+v opened %t", g, opened)
	}

	// Scan lists the rule's groups in key order.
	var listed []string
	err = gs.Scan(ctx, at(period), func(key []byte, g state.Group) error {
		listed = append(listed, fmt.Sprintf("%s=%s/%d", key, g.ID, g.Count))
		return nil
	})
	if err != nil || !eqStrings(listed, []string{"curl=g7/1", "wget=w1/1"}) {
		t.Fatalf("scan = %v, %v", listed, err)
	}

	// Entries are retained for one period after End, then expire and are
	// swept.
	if _, found, _ := gs.Get(ctx, k("wget"), at(10*time.Minute+2*period-time.Nanosecond)); !found {
		t.Fatal("group expired before its retention ended")
	}
	if _, found, _ := gs.Get(ctx, k("wget"), at(10*time.Minute+2*period)); found {
		t.Fatal("group visible after its retention ended")
	}
	if n, err := s.DeleteExpired(ctx, at(10*time.Minute+2*period)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want the wget group", n, err)
	}
	if _, found, _ := gs.Get(ctx, k("wget"), time.Time{}); found {
		t.Fatal("swept group still stored")
	}
	if _, found, _ := gs.Get(ctx, k("curl"), time.Time{}); !found {
		t.Fatal("live group swept")
	}

	// Bad input is an error, not a panic.
	err = s.Update(ctx, time.Time{}, func(tx state.Tx) error {
		_, _, err := gs.AddTx(tx, k("x"), "id", nil)
		return err
	})
	if err == nil {
		t.Fatal("add at the zero time succeeded")
	}
	err = s.Update(ctx, at(0), func(tx state.Tx) error {
		_, _, err := gs.AddTx(tx, k("x"), "", nil)
		return err
	})
	if err == nil {
		t.Fatal("add with an empty id succeeded")
	}
	for _, cfg := range []state.GroupsConfig{
		{Period: period}, {Rule: "r"}, {Rule: "r", Period: period, Retain: -1},
		{Rule: "r", Period: period, MaxSamples: state.MaxSamplesLimit + 1}, {Rule: "r", Period: period, MaxSampleBytes: -1},
	} {
		if _, err := state.NewGroups(s, cfg); err == nil {
			t.Errorf("NewGroups(%+v) succeeded", cfg)
		}
	}
	// A corrupt entry is reported as such.
	put(t, s, string(gs.AppendKey(nil, k("bad"))), "\x01junk", time.Time{})
	if _, _, err := gs.Get(ctx, k("bad"), at(0)); !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("get of a corrupt group = %v, want ErrCorrupt", err)
	}
}

// testGroupsConcurrent checks that concurrent alerts with one key open one
// group and are all counted.
func testGroupsConcurrent(t *testing.T, s state.Store) {
	gs, err := state.NewGroups(s, state.GroupsConfig{Rule: "r", Period: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened, added := 0, 0
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := "a-" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
				var o bool
				err := s.Update(ctx, t0.Add(time.Duration(i)*time.Second), func(tx state.Tx) (err error) {
					_, o, err = gs.AddTx(tx, k("key"), id, k(id))
					return err
				})
				if err != nil {
					if !errors.Is(err, state.ErrConflict) {
						t.Error(err)
					}
					return
				}
				mu.Lock()
				added++
				if o {
					opened++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	g, found, err := gs.Get(ctx, k("key"), t0)
	if err != nil || !found {
		t.Fatalf("get = %t, %v", found, err)
	}
	if opened != 1 || g.Count != int64(added) || added == 0 {
		t.Fatalf("%d groups opened, count %d; want 1 and %d (alerts added)", opened, g.Count, added)
	}
}

// testGroupsJoinMany checks JoinManyTx: the count grows by the number of
// alerts joined, first and last seen by their earliest and latest times,
// the samples stay, and a group that is no longer the one named joins
// nothing.
func testGroupsJoinMany(t *testing.T, s state.Store) {
	gs, err := state.NewGroups(s, state.GroupsConfig{Rule: "anon", Period: time.Hour, MaxSamples: 2})
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for i, id := range []string{"g1", "g2"} {
		if err := s.Update(ctx, at(time.Duration(i)*time.Minute), func(tx state.Tx) error {
			_, _, err := gs.AddTx(tx, k("curl"), id, k("s"+id))
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var joined, other bool
	err = s.Update(ctx, time.Time{}, func(tx state.Tx) (err error) {
		if joined, err = gs.JoinManyTx(tx, k("curl"), "g1", 40, at(-7*time.Minute), at(50*time.Minute)); err != nil {
			return err
		}
		other, err = gs.JoinManyTx(tx, k("curl"), "g2", 3, at(0), at(59*time.Minute))
		return err
	})
	if err != nil || !joined || other {
		t.Fatalf("join many: err %v, joined %t, joined a group of another id %t", err, joined, other)
	}
	g, found, err := gs.Get(ctx, k("curl"), at(0))
	if err != nil || !found || g.ID != "g1" || g.Count != 42 || !g.FirstSeen.Equal(at(-7*time.Minute)) || !g.LastSeen.Equal(at(50*time.Minute)) ||
		string(bytes.Join(g.Samples, k(","))) != "sg1,sg2" {
		t.Fatalf("after joining 40 at once: %+v found %t, %v", g, found, err)
	}
	if err := s.Update(ctx, time.Time{}, func(tx state.Tx) error {
		_, err := gs.JoinManyTx(tx, k("curl"), "g1", 0, at(0), at(0))
		return err
	}); err == nil {
		t.Error("joining 0 alerts succeeded")
	}
}
