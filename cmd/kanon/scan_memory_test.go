package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestScanStateBoundedInEventTime: what a stateless scan of an
// all-anonymous log keeps grows with the events it has matched, not with
// the input's length once its event time spans more than
// engine.AlertRetention. Panther's rule counts every anonymous event in a
// dedup group and marks each counted event's alert id raised, so that an
// event read twice (beyond the redelivery dedup's window) is never
// counted twice; Elastic's scheduled rules mark the alerts of each run.
// Those marks are kept AlertRetention (30 days) of event time and swept
// every Policy.SweepEvery, so a log spanning 92 days leaves about as many
// entries as one spanning 23 days; without sweeping, 4x the events leave
// about 4x the entries.
func TestScanStateBoundedInEventTime(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 100k generated events")
	}
	const rate = 0.005 // events per second of event time: 30 days are 12960 events
	scan := func(events int, sweep bool) (int64, map[byte]int) {
		o := loadgen.DefaultOptions(events, 1)
		o.AnonymousRatio, o.BodyRatio, o.Rate = 1, 0, rate
		var log bytes.Buffer
		if _, err := loadgen.Generate(&log, o); err != nil {
			t.Fatal(err)
		}
		var rf ruleFlags
		compiled, err := rf.load()
		if err != nil {
			t.Fatal(err)
		}
		store := mem.New()
		defer store.Close()
		pol := run.BatchPolicy()
		pol.Windows = engine.WindowsInMemory
		if !sweep {
			pol.SweepEvery = 0
		}
		d, err := run.New(run.Config{Rules: compiled, Registry: registry(), Store: store, Sink: alert.NewJSONSink(discard{}),
			Policy: pol, Dedup: run.DefaultDedup})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := d.Run(ctx, &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(log.Bytes())}); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if st := d.Stats(); st.Bad != 0 || alertsRaised(st) == 0 {
			t.Fatalf("%d bad records, %d alerts in the generated log", st.Bad, alertsRaised(st))
		}
		s, err := store.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byNS := map[byte]int{}
		store.Scan(ctx, nil, state.FromUnixNano(0), func(e state.Entry) error {
			byNS[e.Key[0]]++
			return nil
		})
		return s.Entries, byNS
	}
	short, shortNS := scan(10_000, true)
	long, longNS := scan(40_000, true)
	t.Logf("entries after 10k events (23 days): %d %v; after 40k (92 days): %d %v", short, shortNS, long, longNS)
	if long > short*3/2 {
		t.Errorf("4x the events spanning 92 days left %d entries, 10k spanning 23 days %d: the state grows with the input", long, short)
	}
	unswept, _ := scan(40_000, false)
	if unswept < 3*short {
		t.Errorf("without sweeping 40k events left %d entries, 10k %d: the test does not see the marks it bounds", unswept, short)
	}
}
