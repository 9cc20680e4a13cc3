package run_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/jsonx"
	"github.com/kanon-dev/kanon/internal/run"
)

// alertsFor runs one record through a driver with the built-in rules and
// returns the ids of its alerts.
func alertsFor(t *testing.T, rec []byte) map[string]bool {
	t.Helper()
	d, col := newDriver(t, run.Config{Policy: run.TestPolicy()})
	ctx := context.Background()
	if _, err := d.SubmitWait(ctx, &run.Batch{Input: "file", Records: []ingest.Record{{Origin: event.Origin{Name: "r"}, Data: rec}}}, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range col.Alerts {
		out[a.Rule.ID] = true
	}
	return out
}

// FuzzRepeatedKeys: a parser differential can neither hide an event nor
// forge one. For any record with repeated keys, every rule alerts on it
// exactly when it alerts on one of its two readings (the first of each
// key kept, or the last) read as records without repetition.
func FuzzRepeatedKeys(f *testing.F) {
	log := bytes.Split(bytes.TrimSpace(exampleLog(f)), []byte("\n"))
	for _, l := range log[:40] {
		if !bytes.Contains(l, []byte(`"system:anonymous"`)) {
			continue
		}
		f.Add(bytes.Replace(l, []byte(`"user":{`), []byte(`"user":{"username":"alice",`), 1))
		f.Add(bytes.Replace(l, []byte(`"verb":"`), []byte(`"verb":"delete","verb":"`), 1))
		f.Add(bytes.Replace(l, []byte(`"annotations":{`), []byte(`"annotations":{"authorization.k8s.io/decision":"forbid",`), 1))
		f.Add(bytes.Replace(l, []byte(`"requestURI":"`), []byte(`"requestURI":"/healthz","requestURI":"`), 1))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		first, last, dups, err := jsonx.Readings(rec, 0)
		if err != nil || len(dups) == 0 {
			return
		}
		got, a, b := alertsFor(t, rec), alertsFor(t, first), alertsFor(t, last)
		for id := range got {
			if !a[id] && !b[id] {
				t.Fatalf("rule %s alerts on %q, but on neither reading (forged)", id, rec)
			}
		}
		for _, m := range []map[string]bool{a, b} {
			for id := range m {
				if !got[id] {
					t.Fatalf("rule %s alerts on a reading of %q but not on the record (hidden)", id, rec)
				}
			}
		}
	})
}
