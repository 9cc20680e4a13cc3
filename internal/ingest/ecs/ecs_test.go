package ecs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/ecs"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
)

// read decodes one ECS document with every field materialised and
// renders the fields the test looks at.
func read(t *testing.T, doc string) (string, error) {
	t.Helper()
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{Format: ecs.Name, Fields: event.AllFields(), Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	err = r.Record(event.Origin{Name: "doc"}, []byte(doc), func(e *event.Event) error {
		out = fmt.Sprintf("verb=%s uri=%s code=%d ips=%v annotations=%v ts=%s cluster=%s",
			e.Verb, e.RequestURI, e.ResponseStatus.Code, e.SourceIPs, e.Annotations, e.Timestamp.UTC().Format("15:04:05"), e.ClusterName)
		return nil
	})
	return out, err
}

// TestDottedAndNested checks that nested objects, dotted top-level keys
// and a mix of both (as Elasticsearch's _source may hold) read the same,
// whatever the order of the keys.
func TestDottedAndNested(t *testing.T) {
	want := "verb=get uri=/api code=403 ips=[10.0.0.1] annotations=[{authorization_k8s_io/decision forbid}] ts=10:00:00 cluster=c1"
	for _, doc := range []string{
		`{"@timestamp":"2024-05-01T10:00:00Z","orchestrator":{"cluster":{"name":"c1"}},"kubernetes":{"audit":{"verb":"get","requestURI":"/api","responseStatus":{"code":403},"sourceIPs":["10.0.0.1"],"annotations":{"authorization_k8s_io/decision":"forbid"}}}}`,
		`{"@timestamp":"2024-05-01T10:00:00Z","orchestrator.cluster.name":"c1","kubernetes.audit.verb":"get","kubernetes.audit.requestURI":"/api","kubernetes.audit.responseStatus.code":403,"kubernetes.audit.sourceIPs":["10.0.0.1"],"kubernetes.audit.annotations.authorization_k8s_io/decision":"forbid"}`,
		`{"kubernetes.audit.verb":"get","kubernetes":{"audit":{"requestURI":"/api","responseStatus":{"code":403}}},"kubernetes.audit.responseStatus":{},"kubernetes.audit.sourceIPs":["10.0.0.1"],"kubernetes.audit.annotations":{"authorization_k8s_io/decision":"forbid"},"@timestamp":"2024-05-01T10:00:00Z","orchestrator":{"cluster":{"name":"c1"}}}`,
		`{"kubernetes":{"audit":{"requestURI":"/api"}},"kubernetes.audit":{"verb":"get","responseStatus":{"code":403}},"kubernetes.audit.sourceIPs":["10.0.0.1"],"kubernetes.audit.annotations.authorization_k8s_io/decision":"forbid","@timestamp":"2024-05-01T10:00:00Z","orchestrator.cluster":{"name":"c1"}}`,
	} {
		// Go's map order is random: read each document many times.
		for range 20 {
			got, err := read(t, doc)
			if err != nil || got != want {
				t.Fatalf("%s:\n got  %s (%v)\n want %s", doc, got, err, want)
			}
		}
	}
}

// TestDottedConflicts checks that a key given twice, once dotted and once
// nested, is a shape error naming it.
func TestDottedConflicts(t *testing.T) {
	for _, doc := range []string{
		`{"kubernetes.audit.verb":"get","kubernetes":{"audit":{"verb":"list"}}}`,
		`{"kubernetes.audit":"x","kubernetes.audit.verb":"get"}`,
	} {
		for range 20 {
			_, err := read(t, doc)
			if !errors.Is(err, ingest.ErrShape) {
				t.Fatalf("%s: error %v, want a shape error", doc, err)
			}
		}
	}
}
