package state_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// fill writes, through the views, the state of three rules: "nt" (two
// terms and an alert id), "ntx" (a term; its id extends "nt", so a
// careless prefix would take it for nt's) and "dd" (a group, an alert id
// and an ES|QL watermark), and the position of input "tail".
func fill(t *testing.T, s state.Store) {
	t.Helper()
	ctx := context.Background()
	for _, tc := range []struct {
		rule, agent string
		at          time.Duration
	}{{"nt", "curl", 0}, {"nt", "wget", time.Minute}, {"ntx", "curl", 0}} {
		terms, _ := state.NewTerms(s, state.TermsConfig{Rule: tc.rule, Window: time.Hour})
		term := state.AppendTermField(state.AppendTermField(nil, tc.agent), "1.0")
		if _, _, err := terms.Observe(ctx, term, goldenT.Add(tc.at)); err != nil {
			t.Fatal(err)
		}
	}
	ids, _ := state.NewAlertIDs(s, "nt", 24*time.Hour)
	if _, err := ids.Mark(ctx, []byte("id-nt"), goldenT); err != nil {
		t.Fatal(err)
	}
	ids, _ = state.NewAlertIDs(s, "dd", 0)
	if _, err := ids.Mark(ctx, []byte("id-dd"), goldenT); err != nil {
		t.Fatal(err)
	}
	groups, _ := state.NewGroups(s, state.GroupsConfig{Rule: "dd", Period: time.Hour})
	err := s.Update(ctx, goldenT, func(tx state.Tx) error {
		_, _, err := groups.AddTx(tx, []byte("198.51.100.7"), "id-dd", []byte(`{"id":"id-dd"}`))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	meta := state.AppendWindowMeta(nil, state.WindowMeta{Fingerprint: 9, Closed: goldenT.UnixNano()})
	if err := state.Put(ctx, s, state.AppendWindowMetaKey(nil, "dd"), meta, time.Time{}); err != nil {
		t.Fatal(err)
	}
	pos, _ := state.NewPositions(s, "tail")
	if err := pos.Put(ctx, "/var/log/audit.log", state.Position{Ino: 7, Offset: 100, Line: 2}); err != nil {
		t.Fatal(err)
	}
}

// entries returns "ns rule" for every entry of s in key order.
func entries(t *testing.T, s state.Store) []string {
	t.Helper()
	var out []string
	err := s.Scan(context.Background(), nil, time.Time{}, func(e state.Entry) error {
		pk, err := state.ParseKey(e.Key)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %s", pk.NS, pk.Rule))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestSummarize(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	fill(t, s)
	sum, err := state.Summarize(ctx, s, state.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx)
	if sum.Total.Entries != 8 || sum.Total.Entries != st.Entries || sum.Total.Bytes != st.Bytes {
		t.Fatalf("total %+v, want 8 entries and the store's %+v", sum.Total, st)
	}
	var kinds []string
	for _, nu := range sum.Namespaces {
		kinds = append(kinds, fmt.Sprintf("%s:%d", nu.NS, nu.Entries))
	}
	if want := []string{"terms:3", "groups:1", "alerts:2", "windows:1", "positions:1"}; !slices.Equal(kinds, want) {
		t.Fatalf("namespaces %v, want %v", kinds, want)
	}
	var rules []string
	for _, rs := range sum.Rules {
		rules = append(rules, fmt.Sprintf("%s:%d", rs.Rule, rs.Total.Entries))
	}
	if want := []string{"dd:3", "nt:3", "ntx:1", "tail:1"}; !slices.Equal(rules, want) {
		t.Fatalf("rules %v, want %v", rules, want)
	}
	nt := sum.Rules[1]
	if u := nt.In(state.NSTerms); u.Entries != 2 || !u.FirstExpiry.Equal(goldenT.Add(time.Hour)) || !u.LastExpiry.Equal(goldenT.Add(time.Hour+time.Minute)) {
		t.Fatalf("nt's terms %+v, want 2 expiring at +1h and +1h1m", u)
	}
	if u := nt.Total; !u.FirstExpiry.Equal(goldenT.Add(time.Hour)) || !u.LastExpiry.Equal(goldenT.Add(24*time.Hour)) {
		t.Fatalf("nt's expiries %v – %v, want +1h – +24h (its alert id)", u.FirstExpiry, u.LastExpiry)
	}
	if u := sum.Rules[0].In(state.NSWindows); u.Entries != 1 || !u.FirstExpiry.IsZero() {
		t.Fatalf("dd's windows %+v, want 1 entry that never expires", u)
	}
	// One rule, some namespaces: rule ntx is not counted as nt's.
	sum, err = state.Summarize(ctx, s, state.Selection{Rule: "nt", Namespaces: []state.Namespace{state.NSTerms}})
	if err != nil || sum.Total.Entries != 2 || len(sum.Rules) != 1 || sum.Rules[0].Rule != "nt" {
		t.Fatalf("summary of nt's terms = %+v, %v", sum, err)
	}
	// Keys that do not decode are counted apart.
	if err := state.Put(ctx, s, []byte{'t', 0x80}, []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if sum, err = state.Summarize(ctx, s, state.Selection{}); err != nil || sum.Malformed.Entries != 1 || sum.Total.Entries != 9 || len(sum.Rules) != 4 {
		t.Fatalf("summary with a malformed key = %+v, %v", sum, err)
	}
}

func TestEach(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	fill(t, s)
	var got []string
	err := state.Each(ctx, s, state.Selection{}, func(it *state.Item) error {
		var v string
		switch it.NS {
		case state.NSTerms:
			v = fmt.Sprintf("%q first %s", it.Term, it.TermInfo.FirstSeen.Format(time.TimeOnly))
		case state.NSGroups:
			v = fmt.Sprintf("%s id %s count %d", it.Part, it.Group.ID, it.Group.Count)
		case state.NSAlerts:
			v = fmt.Sprintf("%s at %s", it.Part, it.RaisedAt.Format(time.TimeOnly))
		case state.NSWindows:
			v = fmt.Sprintf("%+v", it.Window)
		case state.NSPositions:
			v = fmt.Sprintf("%s offset %d", it.Part, it.Position.Offset)
		}
		got = append(got, fmt.Sprintf("%s %s: %s", it.NS, it.Rule, v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`terms nt: ["curl" "1.0"] first 00:00:00`,
		`terms nt: ["wget" "1.0"] first 00:01:00`,
		`terms ntx: ["curl" "1.0"] first 00:00:00`,
		`groups dd: 198.51.100.7 id id-dd count 1`,
		`alerts dd: id-dd at 00:00:00`,
		`alerts nt: id-nt at 00:00:00`,
		`windows dd: {Rule:dd Meta:true End:0 Replica: Closed:false}`,
		`positions tail: /var/log/audit.log offset 100`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Each gave\n%q\nwant\n%q", got, want)
	}
	// fn's error stops Each and comes back as is.
	stop := errors.New("stop")
	calls := 0
	if err := state.Each(ctx, s, state.Selection{}, func(*state.Item) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Each stopped by fn = %v after %d calls", err, calls)
	}
	// An entry that does not decode is an error naming its key.
	bad := state.Key(state.NSAlerts, "nt", []byte("broken"))
	if err := state.Put(ctx, s, bad, []byte("x"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	err = state.Each(ctx, s, state.Selection{Rule: "nt"}, func(*state.Item) error { return nil })
	if !errors.Is(err, state.ErrCorrupt) {
		t.Fatalf("Each over a corrupt entry = %v, want ErrCorrupt", err)
	}
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	fill(t, s)
	// Rule nt's terms only: its alert id and rule ntx stay.
	sum, err := state.Reset(ctx, s, state.Selection{Rule: "nt", Namespaces: []state.Namespace{state.NSTerms}})
	if err != nil || sum.Total.Entries != 2 || len(sum.Rules) != 1 || sum.Rules[0].In(state.NSTerms).Entries != 2 {
		t.Fatalf("reset of nt's terms = %+v, %v; want 2 terms of nt", sum, err)
	}
	want := []string{"alerts dd", "alerts nt", "groups dd", "positions tail", "terms ntx", "windows dd"}
	if got := entries(t, s); !slices.Equal(got, want) {
		t.Fatalf("after resetting nt's terms: %q, want %q", got, want)
	}
	// All of rule dd.
	sum, err = state.Reset(ctx, s, state.Selection{Rule: "dd"})
	if err != nil || sum.Total.Entries != 3 || len(sum.Namespaces) != 3 {
		t.Fatalf("reset of dd = %+v, %v; want its group, alert id and watermark", sum, err)
	}
	if got := entries(t, s); !slices.Equal(got, []string{"alerts nt", "positions tail", "terms ntx"}) {
		t.Fatalf("after resetting dd: %q", got)
	}
	if st, _ := s.Stats(ctx); sum.Total.Bytes == 0 || st.Entries != 3 {
		t.Fatalf("reset summary %+v, store %+v", sum.Total, st)
	}
	// Nothing left of dd.
	if sum, err := state.Reset(ctx, s, state.Selection{Rule: "dd"}); err != nil || sum.Total.Entries != 0 {
		t.Fatalf("second reset of dd = %+v, %v", sum, err)
	}
	// Everything, over several transactions.
	err = s.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for i := range 2500 {
			if err := tx.Put(state.Key(state.NSAlerts, "many", []byte(fmt.Sprint(i))), []byte("12345678"), goldenT); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := state.Reset(ctx, s, state.Selection{}); err != nil || sum.Total.Entries != 2503 || len(sum.Rules) != 4 {
		t.Fatalf("reset of everything = %+v, %v; want 2503 entries of 4 rules", sum.Total, err)
	}
	if got := entries(t, s); len(got) != 0 {
		t.Fatalf("after resetting everything: %q", got)
	}
}

// A failing store stops Reset with an error; the summary covers what was
// committed.
func TestResetFails(t *testing.T) {
	s := &failingStore{Store: mem.New()}
	fill(t, s.Store)
	s.fail = errors.New("disk full")
	sum, err := state.Reset(context.Background(), s, state.Selection{})
	if !errors.Is(err, s.fail) || sum.Total.Entries != 0 {
		t.Fatalf("Reset over a failing store = %+v, %v", sum.Total, err)
	}
	if len(entries(t, s.Store)) != 8 {
		t.Fatal("a failed reset deleted entries")
	}
}

type failingStore struct {
	state.Store
	fail error
}

func (f *failingStore) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	return f.fail
}

func TestParseNamespace(t *testing.T) {
	for _, ns := range state.KnownNamespaces() {
		if got, err := state.ParseNamespace(ns.String()); err != nil || got != ns {
			t.Errorf("ParseNamespace(%q) = %v, %v", ns, got, err)
		}
	}
	if _, err := state.ParseNamespace("term"); err == nil {
		t.Error(`ParseNamespace("term") succeeded`)
	}
}
