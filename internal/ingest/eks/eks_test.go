package eks_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
)

func TestClusterFromLogGroup(t *testing.T) {
	f := func(group, want string) {
		t.Helper()
		if got := eks.ClusterFromLogGroup(group); got != want {
			t.Errorf("ClusterFromLogGroup(%q) = %q, want %q", group, got, want)
		}
	}
	f("/aws/eks/example-cluster/cluster", "example-cluster")
	f("/aws/eks/a.b_c-1/cluster", "a.b_c-1")
	f("/aws/eks//cluster", "")
	f("/aws/eks/x/y/cluster", "")
	f("/aws/lambda/fn", "")
	f("/aws/eks/x/cluster/", "")
	f("", "")
}

func newReader(t testing.TB, fs event.FieldSet, bad func(ingest.BadRecord)) *ingest.Reader {
	t.Helper()
	r, err := ingest.NewReader(ingest.NewRegistry(eks.New(), k8saudit.New()), ingest.Options{Format: eks.Name, Fields: fs, OnBad: bad, OnSkip: bad})
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

func lambda(payload []byte) []byte {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(payload)
	zw.Close()
	return []byte(`{"awslogs":{"data":"` + base64.StdEncoding.EncodeToString(gz.Bytes()) + `"}}`)
}

// readRecord reads one record and returns the ECS documents and the
// number of bad or skipped parts.
func readRecord(t testing.TB, rec []byte) ([]string, int) {
	bad := 0
	r := newReader(t, event.AllFields(), func(ingest.BadRecord) { bad++ })
	var docs []string
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

// FuzzEKS never panics, and reads a subscription payload and its Lambda
// envelope (base64 of gzip) into the same documents.
func FuzzEKS(f *testing.F) {
	for _, name := range []string{"eks-cloudwatch-subscription.json", "eks-cloudwatch-subscription.awslogs-event.json", "eks-filter-log-events.json"} {
		f.Add(sample(f, name))
	}
	f.Add([]byte(`{"messageType":"CONTROL_MESSAGE","logEvents":[]}`))
	f.Add([]byte(`{"logGroup":"/aws/eks/c/cluster","logStream":"x","logEvents":[{"id":"1","message":"{\"auditID\":\"a\"[Truncated...]"}]}`))
	f.Add([]byte(`{"kind":"Event","auditID":"a","stage":"ResponseComplete"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		docs, _ := readRecord(t, b)
		var top map[string]json.RawMessage
		if json.Unmarshal(b, &top) != nil || top["logEvents"] == nil || top["awslogs"] != nil {
			return
		}
		wrapped, _ := readRecord(t, lambda(b))
		if !reflect.DeepEqual(docs, wrapped) {
			t.Fatalf("payload and Lambda envelope differ:\n%q\n%q", docs, wrapped)
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

// BenchmarkEKS reads a subscription payload of three audit events, plain
// and in the Lambda envelope, with a rule's fields and with every field.
func BenchmarkEKS(b *testing.B) {
	plain := sample(b, "eks-cloudwatch-subscription.json")
	for _, c := range []struct {
		name string
		rec  []byte
		fs   event.FieldSet
	}{
		{"subscription/rule-fields", plain, benchFields()},
		{"subscription/all-fields", plain, event.AllFields()},
		{"lambda/rule-fields", lambda(plain), benchFields()},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := newReader(b, c.fs, func(br ingest.BadRecord) { b.Fatal(br) })
			n := 0
			fn := func(e *event.Event) error { n++; return nil }
			b.SetBytes(int64(len(c.rec)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := r.Record(event.Origin{Name: "bench"}, c.rec, fn); err != nil {
					b.Fatal(err)
				}
			}
			if n != 3*b.N {
				b.Fatalf("%d events", n)
			}
		})
	}
}
