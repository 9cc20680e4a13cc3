package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestESQLRuleBudgetSumsRuns: the memory budget bounds a rule's open runs
// together, not each run alone. A scan keeps every run open until the end
// of the input (untilClose); bursts spread over two hours open two dozen
// runs, each small, that together exceed the rule's budget.
func TestESQLRuleBudgetSumsRuns(t *testing.T) {
	r := builtin(t, seed004)
	var log []string
	for i := range 48 {
		at := t0.Add(time.Duration(i) * 150 * time.Second)
		log = append(log, burst(fmt.Sprint("b", i), fmt.Sprintf("203.0.113.%d", i), probes, 8, at, time.Second)...)
	}
	run := func(budget int64) (int, []error) {
		var sink alert.Collector
		var errs []error
		store := mem.New()
		defer store.Close()
		h := newHarness(t, []*rule.Compiled{r}, engine.Options{
			Sink: &sink, Store: store, Materialize: formats.Registry().Materialize, RuleMemoryBudget: budget,
			OnError: func(id string, err error) { errs = append(errs, err) },
		}, untilClose)
		h.feed(log)
		h.close()
		return len(sink.Alerts), errs
	}
	full, errs := run(0)
	if len(errs) != 0 || full == 0 {
		t.Fatalf("default budget: %d alerts, errors %v", full, errs)
	}
	got, errs := run(64 << 10)
	if len(errs) == 0 || got >= full {
		t.Fatalf("a 64 KiB rule budget: %d alerts (of %d) and no error", got, full)
	}
	for _, err := range errs {
		if !errors.Is(err, esqleval.ErrBudgetExceeded) || !strings.Contains(err.Error(), "rule "+seed004) || !strings.Contains(err.Error(), "open runs hold") {
			t.Fatalf("error %q does not name the rule and its budget", err)
		}
	}
}
