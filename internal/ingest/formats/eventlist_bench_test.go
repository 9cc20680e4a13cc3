package formats_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
)

// BenchmarkReadEventList reads webhook-sized EventList bodies (400 events,
// as kube-apiserver batches them) as one record each, the way kanon scan
// reads an EventList file and serve a body it does not split itself:
// detection, the list check and decoding. Detection and the list check
// read only the leading "kind" member, so each body is scanned once.
func BenchmarkReadEventList(b *testing.B) {
	bodies, _, err := loadgen.GenerateEventList(loadgen.DefaultOptions(4_000, 1), 400)
	if err != nil {
		b.Fatal(err)
	}
	var fs event.FieldSet
	for _, n := range []string{"kubernetes.audit.user.username", "kubernetes.audit.userAgent", "kubernetes.audit.requestURI",
		"kubernetes.audit.verb", "kubernetes.audit.responseStatus.code"} {
		fs.Add(event.Lookup(n))
	}
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: fs})
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for _, body := range bodies {
		size += len(body)
	}
	n := 0
	fn := func(*event.Event) error { n++; return nil }
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			if err := r.Record(event.Origin{Name: "bench"}, body, fn); err != nil {
				b.Fatal(err)
			}
		}
	}
	if n == 0 {
		b.Fatal("no event read")
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// An EventList is found by its leading kind (any spacing), and only then.
func TestFirstKind(t *testing.T) {
	f := func(rec, want string, wantOK bool) {
		t.Helper()
		got, ok := ingest.FirstKind([]byte(rec))
		if ok != wantOK || string(got) != want {
			t.Errorf("FirstKind(%s) = %q, %v; want %q, %v", rec, got, ok, want, wantOK)
		}
	}
	f(`{"kind":"EventList","items":[]}`, "EventList", true)
	f(" {\n  \"kind\" : \"EventList\",\n  \"items\": []\n}", "EventList", true)
	f(`{"kind":"Event\u004cist"}`, "EventList", true)
	f(`{"kind":"Event","auditID":"x"}`, "Event", true)
	f(`{"items":[],"kind":"EventList"}`, "", false)
	f(`{"kind":1}`, "", false)
	f(`{"kind":"EventList`, "", false)
	f(`["kind"]`, "", false)
	f(``, "", false)
	f(`{}`, "", false)
}
