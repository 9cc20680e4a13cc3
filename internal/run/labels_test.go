package run_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// TestMetricLabelsInvalidUTF8: a cluster name that is not UTF-8 (it comes
// from the record: GKE's resource.labels.cluster_name) or an input name
// that is not (a file name) does not stop the driver — Prometheus panics on
// such a label value — and is counted under the name with U+FFFD for each
// invalid byte. FuzzOptimisationsChangeNothing found it.
func TestMetricLabelsInvalidUTF8(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(anchors(t), "cloud-samples", "gke-logentry.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(b, &entries); err != nil {
		t.Fatal(err)
	}
	var recs []ingest.Record
	for i, e := range entries {
		var line bytes.Buffer
		if err := json.Compact(&line, e); err != nil {
			t.Fatal(err)
		}
		rec := bytes.Replace(line.Bytes(), []byte(`"cluster_name":"`), []byte("\"cluster_name\":\"\xdb\xdb"), 1)
		if bytes.Equal(rec, line.Bytes()) {
			t.Fatal("the GKE sample names no cluster")
		}
		recs = append(recs, ingest.Record{Origin: event.Origin{Name: "in\xffput", Line: int64(i + 1)}, Data: rec})
	}
	reg := prometheus.NewRegistry()
	store := mem.New() // the driver's own would be closed before the metrics are read
	defer store.Close()
	d, col := newDriver(t, run.Config{Policy: run.TestPolicy(), Metrics: reg, Store: store})
	ctx := context.Background()
	if _, err := d.SubmitWait(ctx, &run.Batch{Input: "in\xffput", Records: recs}, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(col.Alerts) == 0 {
		t.Fatal("no alert on GKE's anonymous sample")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var clusters, inputs int
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !utf8.ValidString(l.GetValue()) {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
				switch {
				case mf.GetName() == "kanon_alerts_total" && l.GetName() == "cluster" && strings.HasPrefix(l.GetValue(), "\uFFFD"):
					clusters++
				case mf.GetName() == "kanon_events_received_total" && l.GetName() == "input" && l.GetValue() == "in\uFFFDput":
					inputs++
				}
			}
		}
	}
	if clusters == 0 || inputs == 0 {
		t.Errorf("alerts counted under the cluster name with U+FFFD: %d series; events under the input name: %d", clusters, inputs)
	}
}
