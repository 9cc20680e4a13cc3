package run_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/redis"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// enumEvents are three bursts of anonymous forbidden requests, each from
// two scanners (each raising Elastic's enumeration rule once), 15 minutes
// apart, among a controller's requests every 20 seconds, in time order.
func enumEvents() [][]byte {
	t0 := time.Date(2025, 6, 2, 8, 0, 0, 0, time.UTC)
	type ev struct {
		at   time.Time
		line []byte
	}
	var evs []ev
	add := func(at time.Time, user, ua, ip, uri, res, decision string, code int) {
		ts := at.Format(time.RFC3339Nano)
		b, _ := json.Marshal(map[string]any{
			"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request",
			"auditID": fmt.Sprintf("order-%04d", len(evs)), "stage": "ResponseComplete",
			"requestURI": uri, "verb": "get", "user": map[string]any{"username": user},
			"sourceIPs": []string{ip}, "userAgent": ua, "objectRef": map[string]any{"resource": res},
			"responseStatus": map[string]any{"code": code}, "requestReceivedTimestamp": ts, "stageTimestamp": ts,
			"annotations": map[string]any{"authorization.k8s.io/decision": decision},
		})
		evs = append(evs, ev{at, b})
	}
	for i := range 150 {
		add(t0.Add(time.Duration(i)*20*time.Second), "system:kube-controller-manager", "kube-controller-manager/v1.33.13",
			"10.0.0.4", "/api/v1/namespaces/kube-system/configmaps", "configmaps", "allow", 200)
	}
	resources := []string{"pods", "secrets", "configmaps", "services", "deployments"}
	for k := range 3 {
		start := t0.Add(time.Duration(10+15*k)*time.Minute + 5*time.Second)
		for i := range 25 {
			res := resources[i%len(resources)]
			add(start.Add(time.Duration(i)*2*time.Second), "system:anonymous", fmt.Sprintf("zgrab/0.%d", k),
				fmt.Sprintf("203.0.113.%d", 10+k), fmt.Sprintf("/api/v1/namespaces/ns%d/%s", i, res), res, "forbid", 403)
			add(start.Add(2*time.Minute+time.Duration(i)*2*time.Second), "system:anonymous", fmt.Sprintf("masscan/1.%d", k),
				fmt.Sprintf("203.0.113.%d", 20+k), fmt.Sprintf("/apis/apps/v1/namespaces/ns%d/%s", i, res), res, "forbid", 403)
		}
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	out := make([][]byte, len(evs))
	for i, e := range evs {
		out[i] = e.line
	}
	return out
}

// orderBatches frames lines into webhook batches of n lines.
func orderBatches(lines [][]byte, n int) [][]ingest.Record {
	var out [][]ingest.Record
	fr := ingest.NewFramer("webhook", 0)
	for i := 0; i < len(lines); i += n {
		var recs []ingest.Record
		for j := i; j < min(i+n, len(lines)); j++ {
			recs = fr.Line(int64(j+1), lines[j], recs)
		}
		out = append(out, recs)
	}
	return out
}

// esqlAlerts are the ids of the enumeration rule's alerts, sorted.
func esqlAlerts(as []*alert.Alert) []string {
	var out []string
	for _, a := range as {
		if a.Rule.ID == enumRule {
			out = append(out, a.ID)
		}
	}
	slices.Sort(out)
	return out
}

// orderStep is one batch given to one replica.
type orderStep struct{ replica, batch int }

// runOrder feeds batches to n replica drivers on one Redis in the order of
// steps, one at a time, closes them in order, and returns every alert and
// the late events they counted.
func runOrder(t *testing.T, addr, prefix string, n int, pol run.Policy, batches [][]ingest.Record, steps []orderStep) ([]*alert.Alert, int64) {
	t.Helper()
	ctx := context.Background()
	ds := make([]*run.Driver, n)
	cols := make([]*alert.Collector, n)
	for k := range ds {
		s, err := redis.Open(ctx, redis.Options{Addr: addr, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ds[k], cols[k] = newDriver(t, run.Config{Store: s, Replica: fmt.Sprintf("r%d", k), Policy: pol, GroupUpdates: true})
	}
	for _, st := range steps {
		if res, err := ds[st.replica].SubmitWait(ctx, &run.Batch{Input: "webhook", Records: batches[st.batch]}, true); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
	}
	var all []*alert.Alert
	var late int64
	for k, d := range ds {
		if err := d.Close(ctx); err != nil {
			t.Fatal(err)
		}
		all = append(all, cols[k].Alerts...)
		if rs := d.Stats().Engine.Rules[enumRule]; rs != nil {
			late += rs.Late
		}
	}
	return all, late
}

// aloneOrder is what one driver raises, and the late events it counts,
// over batches in the order of steps (each batch whoever it goes to).
func aloneOrder(t *testing.T, pol run.Policy, batches [][]ingest.Record, steps []orderStep) ([]string, int64) {
	t.Helper()
	ctx := context.Background()
	d, col := newDriver(t, run.Config{Store: mem.New(), Policy: pol, GroupUpdates: true})
	for _, st := range steps {
		if res, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: batches[st.batch]}, true); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var late int64
	if rs := d.Stats().Engine.Rules[enumRule]; rs != nil {
		late = rs.Late
	}
	return esqlAlerts(col.Alerts), late
}

// TestReplicaESQLOutOfOrder feeds the enumeration bursts to three replica
// drivers on one Redis out of the stream's order — a replica given later
// batches before another is given earlier ones, its watermark ahead — and
// asserts that together they raise the ES|QL alerts one driver raises in
// order, whenever every event arrives within the lateness of the newest
// event any replica saw.
func TestReplicaESQLOutOfOrder(t *testing.T) {
	srv := redistest.Start(t)
	lines := enumEvents()
	closing := strings.Replace(string(lines[len(lines)-1]), "2025-06-02", "2025-06-06", 2)
	lines = append(lines, []byte(closing))
	batches := orderBatches(lines, 10)
	last := len(batches) - 1

	ahead := func() []orderStep {
		var s []orderStep
		for i := 0; i < last; i += 3 {
			for k := 2; k >= 0; k-- {
				if i+k < last {
					s = append(s, orderStep{2 - k, i + k})
				}
			}
		}
		return append(s, orderStep{1, last})
	}
	cases := []struct {
		name     string
		lateness time.Duration
		late     bool // some events arrive later than the lateness
		steps    func() []orderStep
	}{{
		// Round robin, the runs open until the closing event, four days
		// later, which one replica alone reads: the others' parts of the
		// runs it never held must still be merged.
		name: "round-robin-closing", lateness: 48 * time.Hour,
		steps: func() []orderStep {
			var s []orderStep
			for i := range last {
				s = append(s, orderStep{i % 3, i})
			}
			return append(s, orderStep{0, last})
		},
	}, {
		// Each replica takes three batches ahead of the next one: r0
		// reads batches i+2, r1 i+1, r2 i, so r0's watermark is ahead and
		// it closes runs the others still read events of, all within a
		// lateness of 15 minutes of the newest event read.
		name: "ahead", lateness: 15 * time.Minute, steps: ahead,
	}, {
		// The same with a lateness of 5 minutes: some events arrive at a
		// replica after another closed their runs, and count as late.
		name: "ahead-late", lateness: 5 * time.Minute, late: true, steps: ahead,
	}, {
		// The same without the closing event: the runs close by the
		// watermarks and at Close, and no sweep passes them.
		name: "ahead-unswept", lateness: 5 * time.Minute, late: true,
		steps: func() []orderStep { s := ahead(); return s[:len(s)-1] },
	}}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pol := run.LivePolicy(c.lateness)
			steps := c.steps()
			// The batches the case feeds, in the stream's order.
			inOrder := slices.Clone(steps)
			slices.SortFunc(inOrder, func(a, b orderStep) int { return a.batch - b.batch })
			want, _ := aloneOrder(t, pol, batches, inOrder)
			if len(want) != 6 {
				t.Fatalf("one driver raised %d enumeration alerts, want 6: %v", len(want), want)
			}
			// One driver given the batches in the replicas' order: what
			// it counts late, the replicas must too, and raise the rest.
			arrival, wantLate := aloneOrder(t, pol, batches, steps)
			if c.late != (wantLate > 0) {
				t.Fatalf("one driver in the replicas' order counts %d late events; the case wants late events: %v", wantLate, c.late)
			}
			if !c.late && !slices.Equal(arrival, want) {
				t.Fatalf("one driver raises %v in the replicas' order, %v in order", arrival, want)
			}
			got, late := runOrder(t, srv.Addr, fmt.Sprintf("order-%d", i), 3, pol, batches, steps)
			if g := esqlAlerts(got); !slices.Equal(g, arrival) {
				t.Errorf("replicas raised %d enumeration alerts\n%s\none driver raises %d in their order\n%s", len(g), strings.Join(g, "\n"), len(arrival), strings.Join(arrival, "\n"))
			}
			if late != wantLate {
				t.Errorf("replicas counted %d late events, one driver in their order %d", late, wantLate)
			}
		})
	}
}

// TestReplicaESQLConcurrent gives the enumeration bursts to three replica
// drivers on one Redis at the same time, each its share of the batches
// from a goroutine of its own (so their commits and watermarks interleave
// as they happen), the runs open until the closing event, four days
// later, which one replica reads once all are done: together they raise
// the ES|QL alerts of one driver, and count nothing late.
func TestReplicaESQLConcurrent(t *testing.T) {
	srv := redistest.Start(t)
	lines := enumEvents()
	closing := strings.Replace(string(lines[len(lines)-1]), "2025-06-02", "2025-06-06", 2)
	batches := orderBatches(append(lines, []byte(closing)), 7)
	last := len(batches) - 1
	pol := run.LivePolicy(48 * time.Hour)
	var inOrder []orderStep
	for i := range batches {
		inOrder = append(inOrder, orderStep{0, i})
	}
	want, _ := aloneOrder(t, pol, batches, inOrder)
	if len(want) != 6 {
		t.Fatalf("one driver raised %d enumeration alerts, want 6: %v", len(want), want)
	}
	ctx := context.Background()
	for round := range 3 {
		var ds [3]*run.Driver
		var cols [3]*alert.Collector
		for k := range ds {
			s, err := redis.Open(ctx, redis.Options{Addr: srv.Addr, Prefix: fmt.Sprintf("concurrent-%d", round)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ds[k], cols[k] = newDriver(t, run.Config{Store: s, Replica: fmt.Sprintf("r%d", k), Policy: pol, GroupUpdates: true})
		}
		var wg sync.WaitGroup
		for k, d := range ds {
			wg.Go(func() {
				// Runs of 1, 2 and 4 batches in turn, so the replicas
				// drift apart in event time.
				for i := 0; i < last; i++ {
					if p := i % 7; p < 1 && k != 0 || p >= 1 && p < 3 && k != 1 || p >= 3 && k != 2 {
						continue
					}
					if res, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: batches[i]}, true); err != nil || res.Err != nil {
						t.Error(err, res.Err)
						return
					}
				}
			})
		}
		wg.Wait()
		if res, err := ds[round].SubmitWait(ctx, &run.Batch{Input: "webhook", Records: batches[last]}, true); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
		var got []*alert.Alert
		var late int64
		for k, d := range ds {
			if err := d.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got = append(got, cols[k].Alerts...)
			if rs := d.Stats().Engine.Rules[enumRule]; rs != nil {
				late += rs.Late
			}
		}
		if g := esqlAlerts(got); !slices.Equal(g, want) {
			t.Errorf("round %d: replicas raised %d enumeration alerts\n%s\none driver raises %d\n%s", round, len(g), strings.Join(g, "\n"), len(want), strings.Join(want, "\n"))
		}
		if late != 0 {
			t.Errorf("round %d: replicas counted %d late events", round, late)
		}
	}
}
