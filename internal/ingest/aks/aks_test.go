package aks_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/aks"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
)

func TestClusterFromResourceID(t *testing.T) {
	f := func(id, want string) {
		t.Helper()
		if got := aks.ClusterFromResourceID(id); got != want {
			t.Errorf("ClusterFromResourceID(%q) = %q, want %q", id, got, want)
		}
	}
	f("/SUBSCRIPTIONS/97E9/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/DEMO-AKS", "DEMO-AKS")
	f("/subscriptions/xxx/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/cluster", "cluster")
	f("/subscriptions/xxx/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c1/", "c1")
	f("/subscriptions/xxx/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", "")
	f("managedClusters", "")
	f("", "")
}

func newReader(t testing.TB, fs event.FieldSet, bad func(ingest.BadRecord)) *ingest.Reader {
	t.Helper()
	r, err := ingest.NewReader(ingest.NewRegistry(aks.New(), k8saudit.New()), ingest.Options{Format: aks.Name, Fields: fs, OnBad: bad, OnSkip: bad})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "cloud", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readRecord(t testing.TB, rec []byte) (docs []string, bad int) {
	r := newReader(t, event.AllFields(), func(ingest.BadRecord) { bad++ })
	err := r.Record(event.Origin{Name: "fuzz"}, rec, func(e *event.Event) error {
		docs = append(docs, string(e.AppendECS(nil)))
		_ = e.Clone()
		return nil
	})
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	return docs, bad
}

// FuzzAKS never panics, and reads a record alone (the storage-account
// shape) and in an Event Hubs envelope into the same documents.
//
// Its seeds are small records (the samples of several KB are read by the
// other tests): Go's fuzzer minimises each new input for up to a minute,
// and makes almost no progress on large ones. Run it with a short
// -fuzzminimizetime (scripts/fuzz.sh does).
func FuzzAKS(f *testing.F) {
	for _, seed := range []string{
		`{"records":[{"category":"kube-audit","properties":{"log":"{\"auditID\":\"a\"}"}},5]}`,
		`{"category":"kube-audit","resourceId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerService/managedClusters/c","properties":{"log":"{\"kind\":\"Event\",\"auditID\":\"b\",\"stage\":\"ResponseComplete\",\"user\":{\"username\":\"system:anonymous\"}}","pod":"kube-apiserver-1"}}`,
		`{"category":"kube-audit-admin","properties":{"log":{"kind":"Event","auditID":"c","verb":"get"}}}`,
		`{"category":"cluster-autoscaler","properties":{"log":"x"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		docs, bad := readRecord(t, b)
		t2 := bytes.TrimSpace(b)
		if !json.Valid(t2) || t2[0] != '{' || bytes.Contains(b, []byte("records")) {
			return // only a single object is the same record in an envelope
		}
		env := append(append([]byte(`{"records":[`), b...), "]}"...)
		envDocs, envBad := readRecord(t, env)
		if !reflect.DeepEqual(docs, envDocs) || bad != envBad {
			t.Fatalf("record and envelope differ:\n%q (%d bad)\n%q (%d bad)", docs, bad, envDocs, envBad)
		}
	})
}

func benchFields() event.FieldSet {
	var fs event.FieldSet
	for _, id := range []event.FieldID{event.FieldUsername, event.FieldSourceIPs, event.FieldUserAgent, event.FieldRequestURI, event.FieldVerb, event.FieldAnnotation, event.FieldRespCode} {
		fs.AddID(id)
	}
	return fs
}

// BenchmarkAKS reads the Event Hubs envelope of the samples (three audit
// records and one skipped record).
func BenchmarkAKS(b *testing.B) {
	rec := sample(b, "aks-records.json")
	for _, c := range []struct {
		name string
		fs   event.FieldSet
	}{{"records/rule-fields", benchFields()}, {"records/all-fields", event.AllFields()}} {
		b.Run(c.name, func(b *testing.B) {
			skipped := 0
			r := newReader(b, c.fs, func(ingest.BadRecord) { skipped++ })
			n := 0
			fn := func(e *event.Event) error { n++; return nil }
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := r.Record(event.Origin{Name: "bench"}, rec, fn); err != nil {
					b.Fatal(err)
				}
			}
			if n != 3*b.N || skipped != b.N {
				b.Fatalf("%d events, %d skipped", n, skipped)
			}
		})
	}
}
