// Package ruletest runs the tests embedded in rule files: each test feeds
// its events (in any format kanon reads) through kanon's driver, as a scan
// does, with an in-memory state store, and compares the alerts with what
// the test expects. Reporters print the results for people, as JSON, or as
// JUnit XML for CI systems.
package ruletest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"gopkg.in/yaml.v3"
)

// Result is the outcome of one test.
type Result struct {
	Rule     string         `json:"rule"`
	File     string         `json:"file"`
	Line     int            `json:"line"`
	Test     string         `json:"test"`
	Pass     bool           `json:"pass"`
	Expected string         `json:"expected"`
	Got      string         `json:"got"`
	Problems []string       `json:"problems,omitempty"`
	Alerts   []*alert.Alert `json:"alerts,omitempty"`
	// Duration is how long the test took (the JUnit report's time).
	Duration time.Duration `json:"-"`
}

// Run runs the tests of every rule. Formats are read with reg.
func Run(ctx context.Context, rules []*rule.Compiled, reg *ingest.Registry) []Result {
	var out []Result
	for _, r := range rules {
		for i := range r.Tests {
			t0 := time.Now()
			res := runOne(ctx, r, &r.Tests[i], reg)
			res.Duration = time.Since(t0)
			out = append(out, res)
		}
	}
	return out
}

// recordOf turns a test event (a YAML mapping, or a string holding a raw
// record) into record bytes.
func recordOf(n *yaml.Node) ([]byte, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		return []byte(n.Value), nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(jsonable(v))
}

// jsonable converts YAML-decoded values (map[string]any with time.Time
// and such) to what encoding/json writes as the original JSON would be.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			x[k] = jsonable(y)
		}
		return x
	case []any:
		for i, y := range x {
			x[i] = jsonable(y)
		}
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func runOne(ctx context.Context, r *rule.Compiled, t *rule.Test, reg *ingest.Registry) Result {
	res := Result{Rule: r.ID, File: r.File, Line: t.Line, Test: t.DisplayName()}
	res.Expected = "no alert"
	if t.WantAlert() {
		res.Expected = "alert"
		if t.Alerts != nil {
			res.Expected = fmt.Sprintf("%d alert(s)", *t.Alerts)
		}
	}
	fail := func(format string, args ...any) {
		res.Problems = append(res.Problems, fmt.Sprintf(format, args...))
	}
	store := mem.New()
	defer store.Close()
	var sink alert.Collector
	// Each feed is a run of the driver, as kanon scan's, over the same
	// in-memory store: history first, learning only, then the events.
	feed := func(nodes []*yaml.Node, learnOnly bool) {
		d, err := run.New(run.Config{
			Rules: []*rule.Compiled{r}, Registry: reg, Store: store, Sink: &sink, Policy: run.TestPolicy(),
			Dedup: run.DefaultDedup, LearnOnly: learnOnly,
			OnBad: func(_ string, b ingest.BadRecord) {
				fail("event %s cannot be read: %v", b.Origin.String(), b.Err)
			},
			OnRuleError: func(_ string, err error) { fail("engine: %v", err) },
		})
		if err != nil {
			fail("%v", err)
			return
		}
		recs := make([]ingest.Record, 0, len(nodes))
		for i, n := range nodes {
			rec, err := recordOf(n)
			if err != nil {
				fail("event %d: %v", i+1, err)
				continue
			}
			recs = append(recs, ingest.Record{Origin: event.Origin{Name: fmt.Sprintf("%s:%d", r.File, n.Line)}, Data: rec})
		}
		if res, err := d.SubmitWait(ctx, &run.Batch{Input: "test", Records: recs}, true); err != nil {
			fail("%v", err)
		} else if res.Err != nil {
			fail("%v", res.Err)
		}
		if err := d.Close(ctx); err != nil {
			fail("%v", err)
		}
	}
	if len(t.History) > 0 {
		feed(nodePtrs(t.History), true)
		sink.Alerts = nil
	}
	if t.Log != nil {
		feed([]*yaml.Node{t.Log}, false)
	} else {
		feed(nodePtrs(t.Events), false)
	}
	res.Alerts = sink.Alerts
	n := len(sink.Alerts)
	res.Got = fmt.Sprintf("%d alert(s)", n)
	if n == 0 {
		res.Got = "no alert"
	}
	switch {
	case t.WantAlert() && n == 0:
		fail("expected an alert, got none")
	case !t.WantAlert() && n > 0:
		fail("expected no alert, got %d: %s", n, summary(sink.Alerts))
	case t.Alerts != nil && n != *t.Alerts:
		fail("expected %d alert(s), got %d: %s", *t.Alerts, n, summary(sink.Alerts))
	}
	if len(t.Fields) > 0 && n > 0 {
		a := sink.Alerts[0]
		keys := make([]string, 0, len(t.Fields))
		for k := range t.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			want := normalise(jsonable(t.Fields[k]))
			got, ok := alertField(a, k)
			if !ok {
				fail("field %s: missing, want %s", k, show(want))
				continue
			}
			if !reflect.DeepEqual(normalise(got), want) {
				fail("field %s: got %s, want %s", k, show(normalise(got)), show(want))
			}
		}
	}
	res.Pass = len(res.Problems) == 0
	return res
}

func nodePtrs(ns []yaml.Node) []*yaml.Node {
	out := make([]*yaml.Node, len(ns))
	for i := range ns {
		out[i] = &ns[i]
	}
	return out
}

// alertField finds a field of an alert by name: an output field or row
// column, or "title", "group.count".
func alertField(a *alert.Alert, name string) (any, bool) {
	switch name {
	case "title":
		return a.Title, true
	case "group.count":
		if a.Group == nil {
			return int64(1), true
		}
		return a.Group.Count, true
	}
	return a.Fields.Get(name)
}

func normalise(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func summary(as []*alert.Alert) string {
	var parts []string
	for i, a := range as {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("… %d more", len(as)-3))
			break
		}
		parts = append(parts, fmt.Sprintf("[%s %s]", a.Origin, a.Title))
	}
	return strings.Join(parts, " ")
}
