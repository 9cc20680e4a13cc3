package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// Three kanon serve webhook replicas on one Redis, behind what would be
// one Service: the batches of a log are posted to them in turn, and some
// twice to another replica (an API server retrying after a lost answer).
// Together they raise what one serve raises alone and what kanon scan
// raises, each decision once: a delivery is in one replica's file only.
func TestServeWebhookReplicas(t *testing.T) {
	bin := kanonBinary(t)
	rs := redistest.Start(t)
	lines := replicaEvents(t)
	batches := tenLineBatches(lines)
	want := scanRaised(t, bin, lines)
	dir := t.TempDir()
	serve := func(name string, extra ...string) (*serveProc, string, string) {
		file := filepath.Join(dir, name+".ndjson")
		p := startServe(t, bin, true, append([]string{"--listen", "", "--insecure-listen", "127.0.0.1:0",
			"--state-dir", filepath.Join(dir, name), "--lateness", replicaLateness, "--output", "file:" + file}, extra...)...)
		return p, "http://" + p.waitAddr(t) + "/audit/lab", file
	}

	alone, url, aloneFile := serve("alone")
	postBatches(t, http.DefaultClient, url, batches, 0, len(batches))
	alone.stop(t)
	one, _ := replicaAlerts(t, aloneFile)
	for _, d := range sameRaised(t, one, want) {
		t.Errorf("one serve: group differs from scan's: %s", d)
	}

	store := "redis://" + rs.Addr + "/0?prefix=webhook-replicas"
	var procs []*serveProc
	var urls, files []string
	for i := range 3 {
		p, u, f := serve(fmt.Sprintf("r%d", i+1), "--store", store, "--replica", fmt.Sprintf("r%d", i+1))
		procs, urls, files = append(procs, p), append(urls, u), append(files, f)
	}
	again := 0
	for i := range batches {
		postBatches(t, http.DefaultClient, urls[i%3], batches, i, i+1)
		if i%4 == 1 { // the answer was lost: sent again, to another replica
			postBatches(t, http.DefaultClient, urls[(i+1)%3], batches, i, i+1)
			again++
		}
	}
	waitOutboxEmpty(t, store)
	for _, p := range procs {
		p.stop(t)
	}
	got, where := replicaAlerts(t, files...)
	for _, d := range sameRaised(t, got, want) {
		t.Errorf("replicas: group differs from scan's: %s", d)
	}
	for key, fs := range where {
		if len(fs) > 1 {
			t.Errorf("delivery %s written by %v: decided twice", key, fs)
		}
	}
	if !slices.Equal(got.alerts, one.alerts) {
		t.Errorf("replicas and one serve differ")
	}
	t.Logf("%d batches, %d sent twice to another replica: %d alerts and %d groups, as one serve and scan", len(batches), again, len(got.alerts), len(got.groups))
}
