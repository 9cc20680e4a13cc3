package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func sample() *Event {
	return &Event{
		Kind: "Event", APIVersion: "audit.k8s.io/v1", Level: "Metadata", Stage: "ResponseComplete",
		RequestURI: "/api/v1/pods", Verb: "list", UserAgent: "kubectl/v1.29",
		User:           UserInfo{Username: "system:anonymous", Groups: []string{"system:unauthenticated"}},
		SourceIPs:      []string{"203.0.113.7", "10.0.0.1"},
		ObjectRef:      ObjectRef{Resource: "pods"},
		ResponseStatus: ResponseStatus{Code: 403, HasCode: true},
		StageTimestamp: Timestamp{Raw: "2025-01-02T03:04:05.5Z", T: time.Date(2025, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		Annotations:    []Annotation{{"authorization_k8s_io/decision", "forbid"}, {"authorization_k8s_io/reason", ""}},
		Raws: []Raw{{Prefix: "kubernetes.audit", Key: "requestObject", DropKey: "metadata",
			JSON: []byte(`{"metadata":{"name":"x"},"spec":{"containers":[{"image":"nginx","securityContext":{"privileged":true}},{"image":"busybox"}]}}`)}},
	}
}

func TestGet(t *testing.T) {
	e := sample()
	f := func(name string, want ...Value) {
		t.Helper()
		got := e.Get(Lookup(name), nil)
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Get(%s) = %v, want %v", name, got, want)
		}
	}
	f("kubernetes.audit.user.username", Str("system:anonymous"))
	f("user.name", Str("system:anonymous"))
	f("event.action", Str("list"))
	f("event.outcome", Str("failure"))
	f("event.dataset", Str("kubernetes.audit_logs"))
	f("kubernetes.audit.sourceIPs", Str("203.0.113.7"), Str("10.0.0.1"))
	f("source.ip", Str("203.0.113.7"), Str("10.0.0.1"))
	f("kubernetes.audit.responseStatus.code", Int(403))
	f("kubernetes.audit.annotations.authorization_k8s_io/decision", Str("forbid"))
	f("kubernetes.audit.annotations.authorization_k8s_io/reason") // empty is missing
	f("kubernetes.audit.user.uid")
	f("@timestamp", Time(time.Date(2025, 1, 2, 3, 4, 5, 5e8, time.UTC)))
	f("kubernetes.audit.requestObject.spec.containers.image", Str("nginx"), Str("busybox"))
	f("kubernetes.audit.requestObject.spec.containers.securityContext.privileged", Bool(true))
	f("kubernetes.audit.requestObject.metadata.name") // removed by Elastic's pipeline
	if !e.Exists(Lookup("kubernetes.audit.requestObject.spec")) || !e.Exists(Lookup("kubernetes.audit.objectRef")) {
		t.Fatal("objects should exist")
	}
	if e.Exists(Lookup("kubernetes.audit.impersonatedUser")) {
		t.Fatal("impersonatedUser should not exist")
	}
	e.SourceIPs = append(e.SourceIPs, "not-an-ip")
	f("source.ip") // one bad value: the ip conversion fails as a whole
}

func TestExpand(t *testing.T) {
	names := func(fs []Field) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Name)
		}
		return out
	}
	got := names(Expand("kubernetes.audit.user.*"))
	want := []string{"kubernetes.audit.user.groups", "kubernetes.audit.user.uid", "kubernetes.audit.user.username"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Expand = %v", got)
	}
	fs := Expand("kubernetes.audit.annotations.*decision")
	if len(fs) != 1 || fs[0].ID() != FieldAnnotationGlob {
		t.Fatalf("annotation glob: %v", names(fs))
	}
	if v := sample().Get(fs[0], nil); len(v) != 1 || v[0].S != "forbid" {
		t.Fatalf("glob get = %v", v)
	}
}

func TestDocument(t *testing.T) {
	b := sample().AppendECS(nil)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	audit := m["kubernetes"].(map[string]any)["audit"].(map[string]any)
	if audit["annotations"].(map[string]any)["authorization_k8s_io/decision"] != "forbid" {
		t.Fatalf("annotations: %v", audit["annotations"])
	}
	if _, ok := audit["annotations"].(map[string]any)["authorization_k8s_io/reason"]; ok {
		t.Fatal("empty annotation kept")
	}
	if _, ok := audit["requestObject"].(map[string]any)["metadata"]; ok {
		t.Fatal("requestObject.metadata kept")
	}
	if m["user"].(map[string]any)["name"] != "system:anonymous" || m["event"].(map[string]any)["outcome"] != "failure" {
		t.Fatalf("ecs copies wrong: %s", b)
	}
}

func TestParseTime(t *testing.T) {
	f := func(s string, want time.Time) {
		t.Helper()
		got, ok := ParseTime(s)
		if !ok || !got.Equal(want) {
			t.Fatalf("ParseTime(%q) = %v %v, want %v", s, got, ok, want)
		}
	}
	f("2025-03-04T06:22:18.819232Z", time.Date(2025, 3, 4, 6, 22, 18, 819232000, time.UTC))
	f("2025-03-04T06:22:18Z", time.Date(2025, 3, 4, 6, 22, 18, 0, time.UTC))
	f("2022-11-29 00:09:04.38", time.Date(2022, 11, 29, 0, 9, 4, 380000000, time.UTC))
	f("2025-03-04T08:22:18.5+02:00", time.Date(2025, 3, 4, 6, 22, 18, 5e8, time.UTC))
	if _, ok := ParseTime("2025-02-30T00:00:00Z"); ok {
		t.Fatal("accepted February 30")
	}
	if _, ok := ParseTime("yesterday"); ok {
		t.Fatal("accepted garbage")
	}
}

func BenchmarkGetTyped(b *testing.B) {
	e := sample()
	f := Lookup("kubernetes.audit.user.username")
	var buf [4]Value
	b.ReportAllocs()
	for b.Loop() {
		if len(e.Get(f, buf[:0])) != 1 {
			b.Fatal("missing")
		}
	}
}
