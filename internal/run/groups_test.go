package run_test

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// Panther's groups count every matching event exactly, even when batches
// of four rounds a year apart arrive interleaved (as from concurrent
// senders) and stores are swept while they do: the sum of the groups'
// final counts is the number of events the rule matched.
func TestGroupsCountEveryEventOutOfOrder(t *testing.T) {
	var rs []*rule.Compiled
	for _, r := range builtinRules(t) {
		if r.ID == "Kubernetes.API.AnonymousAccess" {
			rs = append(rs, r)
		}
	}
	rng := rand.New(rand.NewSource(1))
	var batches [][]ingest.Record
	base := time.Date(2024, 5, 6, 9, 0, 0, 0, time.UTC)
	n := 0
	for r := 0; r < 4; r++ {
		for k := 0; k < 20; k++ {
			var recs []ingest.Record
			for i := 0; i < 20; i++ {
				n++
				ts := base.AddDate(r, 0, 0).Add(time.Duration(k*20+i) * 3 * time.Second)
				line := fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"id-%d","stage":"ResponseComplete","requestURI":"/api/v1/pods","verb":"list","user":{"username":"system:anonymous"},"sourceIPs":["203.0.113.%d"],"userAgent":"ua-%d","stageTimestamp":"%s"}`, n, i, (k*20+i)%5, ts.Format(time.RFC3339Nano))
				recs = append(recs, ingest.Record{Origin: event.Origin{Name: "x", Line: int64(n)}, Data: []byte(line)})
			}
			batches = append(batches, recs)
		}
	}
	// Interleave the batches within a window of 16.
	order := make([]int, len(batches))
	for i := range order {
		order[i] = i
	}
	for i := range order {
		j := i + rng.Intn(16)
		if j < len(order) {
			order[i], order[j] = order[j], order[i]
		}
	}
	d, col := newDriver(t, run.Config{Rules: rs, Store: mem.New(), Policy: run.LivePolicy(30 * time.Second), GroupUpdates: true})
	ctx := context.Background()
	for _, i := range order {
		if _, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: batches[i]}, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, a := range col.Alerts {
		c := int64(1)
		if a.Group != nil {
			c = a.Group.Count
		}
		counts[a.ID] = max(counts[a.ID], c)
	}
	var sum int64
	for _, c := range counts {
		sum += c
	}
	st := d.Stats().Engine.Rules["Kubernetes.API.AnonymousAccess"]
	if st.Matched != int64(n) || sum != st.Matched || len(counts) != 20 {
		t.Fatalf("%d groups count %d events; the rule matched %d of %d (stats %+v)", len(counts), sum, st.Matched, n, *st)
	}
}
