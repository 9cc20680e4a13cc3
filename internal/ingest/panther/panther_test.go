package panther_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/ingest/panther"
)

func newReader(t testing.TB, fs event.FieldSet, bad func(ingest.BadRecord)) *ingest.Reader {
	t.Helper()
	r, err := ingest.NewReader(ingest.NewRegistry(panther.New(), k8saudit.New()), ingest.Options{Fields: fs, OnBad: bad, OnSkip: bad})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testEvents(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "panther", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test events: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

type typed struct {
	user, ua, uri, reader, cluster string
	ips                            []string
	code                           int64
}

func read(t testing.TB, fs event.FieldSet, rec []byte) ([]typed, int) {
	bad := 0
	r := newReader(t, fs, func(ingest.BadRecord) { bad++ })
	var out []typed
	err := r.Record(event.Origin{Name: "fuzz"}, rec, func(e *event.Event) error {
		_ = e.AppendECS(nil)
		out = append(out, typed{e.User.Username, e.UserAgent, e.RequestURI, e.Reader, e.ClusterName, append([]string(nil), e.SourceIPs...), e.ResponseStatus.Code})
		return nil
	})
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	return out, bad
}

// TestOtherLogTypesSkipped: a Panther event of another log type, and an
// Azure activity record that is not kube-audit, are skipped.
func TestOtherLogTypesSkipped(t *testing.T) {
	for _, rec := range []string{
		`{"p_log_type":"AWS.CloudTrail","eventName":"GetObject"}`,
		`{"p_log_type":"Azure.MonitorActivity","category":"Administrative","properties":{"log":"x"}}`,
		`{"p_log_type":"GCP.AuditLog","protoPayload":{"serviceName":"storage.googleapis.com","methodName":"storage.objects.get"}}`,
	} {
		var reports []ingest.BadRecord
		r := newReader(t, event.AllFields(), func(b ingest.BadRecord) { reports = append(reports, b) })
		if err := r.Record(event.Origin{Name: "in"}, []byte(rec), func(*event.Event) error { t.Fatalf("%s: event", rec); return nil }); err != nil {
			t.Fatal(err)
		}
		if st := r.Stats(); len(reports) != 1 || st.Skipped != 1 || st.Bad != 0 {
			t.Errorf("%s: reports %v, stats %+v", rec, reports, st)
		}
	}
}

// FuzzPanther never panics, reads the same typed fields whether the p_*
// fields are kept as raw parts (every field) or not (a rule's fields), and
// another p_ field changes nothing.
func FuzzPanther(f *testing.F) {
	for _, b := range testEvents(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		all, badAll := read(t, event.AllFields(), b)
		var fs event.FieldSet
		for _, id := range []event.FieldID{event.FieldUsername, event.FieldSourceIPs, event.FieldUserAgent, event.FieldRequestURI, event.FieldRespCode} {
			fs.AddID(id)
		}
		rule, badRule := read(t, fs, b)
		// Reading fewer fields validates less (the k8s reader parses
		// requestReceivedTimestamp only when asked), so it may accept
		// more; what both read must agree.
		if len(all) == len(rule) && !reflect.DeepEqual(all, rule) || len(all) > len(rule) {
			t.Fatalf("all fields %v (%d bad), rule fields %v (%d bad)", all, badAll, rule, badRule)
		}
		// Adding a p_ field (other than the routing ones) changes nothing.
		i := bytes.IndexByte(b, '{')
		if i < 0 || len(all) != 1 {
			return
		}
		more := append(append(append([]byte(nil), b[:i+1]...), `"p_any_trace_ids":["x"],`...), b[i+1:]...)
		again, badAgain := read(t, event.AllFields(), more)
		if !reflect.DeepEqual(all, again) || badAgain != badAll {
			t.Fatalf("with another p_ field: %v / %v", all, again)
		}
	})
}

// BenchmarkPanther reads the three anonymous-access test events of seed
// 003 (EKS, AKS, GKE).
func BenchmarkPanther(b *testing.B) {
	ev := testEvents(b)
	for _, name := range []string{"seed003-01.json", "seed003-02.json", "seed003-03.json"} {
		rec := bytes.TrimSpace(ev[name])
		b.Run(name, func(b *testing.B) {
			r := newReader(b, event.AllFields(), func(br ingest.BadRecord) { b.Fatal(br) })
			n := 0
			fn := func(e *event.Event) error { n++; return nil }
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := r.Record(event.Origin{Name: "bench"}, rec, fn); err != nil {
					b.Fatal(err)
				}
			}
			if n != b.N {
				b.Fatalf("%d events", n)
			}
		})
	}
}
