package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
)

// TestKQLRunCountsRestored stops a scheduled KQL rule (Elastic's query
// rule, max_signals 3) in the middle of a run, after a checkpoint, and
// restarts it on the same store: the run's count is restored, so the two
// engines together raise the run's three alerts, as one engine reading
// without stopping does, and not three more after the restart. In
// WindowsRebuild (a scan reading its input again) the count is deleted.
func TestKQLRunCountsRestored(t *testing.T) {
	c := withMaxSignals(stRule(t, anonRule("anon-query", "type: query\n", rule.LangKuery)), 3)
	rs := []*rule.Compiled{c}
	evs := anonBurst("q", []string{"curl/8"}, []int{10})
	want := func() []string {
		var sink alert.Collector
		h := newHarness(t, rs, engine.Options{Sink: &sink, Store: memStore(t)}, untilClose)
		h.feedEvents(evs...)
		h.close()
		return alertKeys(sink.Alerts)
	}()
	if len(want) != 3 {
		t.Fatalf("one engine raised %d alerts, want max_signals (3)", len(want))
	}
	for _, stopAt := range []int{1, 2, 3, 5} {
		store := memStore(t)
		var a, b alert.Collector
		opts := func(sink alert.Sink) engine.Options {
			return engine.Options{Sink: sink, Store: store, Windows: engine.WindowsRestore,
				OnError: func(id string, err error) { t.Errorf("rule %s: %v", id, err) }}
		}
		h := newHarness(t, rs, opts(&a), untilClose)
		h.feedEvents(evs[:stopAt]...)
		h.checkpoint() // a stop: the run stays open, its count in the store
		g := newHarness(t, rs, opts(&b), untilClose)
		g.feedEvents(evs[stopAt:]...)
		g.close()
		if got := alertKeys(append(slices.Clone(a.Alerts), b.Alerts...)); !slices.Equal(got, want) {
			t.Errorf("stopped after %d events: alerts\n%s\nwant\n%s", stopAt, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if n := h.eng.Stats().Rules[c.ID].Dropped + g.eng.Stats().Rules[c.ID].Dropped; n != int64(len(evs)-3) {
			t.Errorf("stopped after %d events: the two engines dropped %d, want %d", stopAt, n, len(evs)-3)
		}
		// Rebuild forgets the count: a scan that reads the input again
		// counts the run from zero.
		newHarness(t, rs, engine.Options{Sink: &alert.Collector{}, Store: store, Windows: engine.WindowsRebuild}, untilClose)
		var left int
		store.Scan(stCtx, []byte{byte(state.NSWindows)}, time.Time{}, func(state.Entry) error { left++; return nil })
		if left != 0 {
			t.Errorf("stopped after %d events: %d window entries left after a rebuild", stopAt, left)
		}
	}
}
