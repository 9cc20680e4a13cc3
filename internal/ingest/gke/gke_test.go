package gke_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/gke"
)

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[int64]int64{0: 200, 1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401, 17: 500, -1: 500} {
		if got := gke.HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

func readEntry(t testing.TB, fs event.FieldSet, rec string) (*event.Event, []string) {
	t.Helper()
	var bad []string
	report := func(b ingest.BadRecord) { bad = append(bad, b.Error()) }
	r, err := ingest.NewReader(ingest.NewRegistry(gke.New()), ingest.Options{Fields: fs, OnBad: report, OnSkip: report})
	if err != nil {
		t.Fatal(err)
	}
	var got *event.Event
	err = r.Record(event.Origin{Name: "in"}, []byte(rec), func(e *event.Event) error {
		got = e.Clone()
		_ = e.AppendECS(nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, bad
}

// TestRequestMapping checks methodName and resourceName mapping: objectRef,
// verb and the rebuilt request path.
func TestRequestMapping(t *testing.T) {
	f := func(method, resource, want string) {
		t.Helper()
		rec := `{"insertId":"i","protoPayload":{"serviceName":"k8s.io","methodName":"` + method + `"`
		if resource != "" {
			rec += `,"resourceName":"` + resource + `"`
		}
		rec += `}}`
		e, bad := readEntry(t, event.AllFields(), rec)
		if e == nil {
			t.Fatalf("%s %s: no event (%v)", method, resource, bad)
		}
		o := e.ObjectRef
		got := strings.Join([]string{e.Verb, o.APIGroup, o.APIVersion, o.Namespace, o.Resource, o.Name, o.Subresource, e.RequestURI}, " | ")
		if got != want {
			t.Errorf("%s %s:\n got %s\nwant %s", method, resource, got, want)
		}
	}
	// verb | group | version | namespace | resource | name | subresource | requestURI
	f("io.k8s.core.v1.pods.get", "core/v1/namespaces/default/pods/test-pod", "get |  | v1 | default | pods | test-pod |  | /api/v1/namespaces/default/pods/test-pod")
	f("io.k8s.core.v1.pods.list", "core/v1/namespaces/default/pods", "list |  | v1 | default | pods |  |  | /api/v1/namespaces/default/pods")
	f("io.k8s.core.v1.pods.exec.create", "core/v1/namespaces/default/pods/test-pod/exec", "create |  | v1 | default | pods | test-pod | exec | /api/v1/namespaces/default/pods/test-pod/exec")
	f("io.k8s.apps.v1.deployments.create", "apps/v1/namespaces/prod/deployments/web", "create | apps | v1 | prod | deployments | web |  | /apis/apps/v1/namespaces/prod/deployments/web")
	f("io.k8s.authorization.rbac.v1.clusterrolebindings.create", "rbac.authorization.k8s.io/v1/clusterrolebindings/admin-binding", "create | rbac.authorization.k8s.io | v1 |  | clusterrolebindings | admin-binding |  | /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/admin-binding")
	f("io.k8s.core.v1.namespaces.delete", "core/v1/namespaces/team-a", "delete |  | v1 | team-a | namespaces | team-a |  | /api/v1/namespaces/team-a")
	f("io.k8s.core.v1.namespaces.finalize.update", "core/v1/namespaces/team-a/finalize", "update |  | v1 | team-a | namespaces | team-a | finalize | /api/v1/namespaces/team-a/finalize")
	f("io.k8s.core.v1.nodes.proxy.get", "core/v1/nodes/node-1/proxy", "get |  | v1 |  | nodes | node-1 | proxy | /api/v1/nodes/node-1/proxy")
	f("io.k8s.certificates.v1beta1.certificatesigningrequests.create", "certificates.k8s.io/v1beta1/certificatesigningrequests", "create | certificates.k8s.io | v1beta1 |  | certificatesigningrequests |  |  | /apis/certificates.k8s.io/v1beta1/certificatesigningrequests")
	// Without resourceName, the method alone (groups as GKE writes them).
	f("io.k8s.core.v1.componentstatuses.list", "", "list |  | v1 |  | componentstatuses |  |  | /api/v1/componentstatuses")
	f("io.k8s.authorization.rbac.v1.roles.list", "", "list | authorization.rbac | v1 |  | roles |  |  | /apis/authorization.rbac/v1/roles")
	// Non-resource requests.
	f("io.k8s.get", "readyz", "get |  |  |  |  |  |  | /readyz")
	f("io.k8s.get", "HNAP1", "get |  |  |  |  |  |  | /HNAP1")
	f("io.k8s.get", "/livez", "get |  |  |  |  |  |  | /livez")
	f("io.k8s.get", "", "get |  |  |  |  |  |  | ")
	// Shapes that do not parse keep what they can.
	f("io.k8s.core.pods.get", "core/pods", "get |  |  |  |  |  |  | ")
	f("io.k8s.core.v1.pods.get", "not/a/version/path", "get |  | v1 |  | pods |  |  | /api/v1/pods")
	f("io.k8s.", "", " |  |  |  |  |  |  | ")
	f("io.k8s..get", "", "get |  |  |  |  |  |  | ")
}

// TestUserDecisionStatus: username fallbacks, callerIp/callerIP, the
// decision from labels or authorizationInfo, and status codes.
func TestUserDecisionStatus(t *testing.T) {
	f := func(proto, labels, user, ip, decision, code string) {
		t.Helper()
		rec := `{"protoPayload":{"serviceName":"k8s.io","methodName":"io.k8s.get","resourceName":"version"` + proto + `}` + labels + `}`
		e, bad := readEntry(t, event.AllFields(), rec)
		if e == nil {
			t.Fatalf("%s: no event (%v)", proto, bad)
		}
		c := ""
		if e.ResponseStatus.HasCode {
			c = strconv.FormatInt(e.ResponseStatus.Code, 10)
		}
		got := strings.Join([]string{e.User.Username, strings.Join(e.SourceIPs, ","), e.Decision(), c}, " | ")
		want := strings.Join([]string{user, ip, decision, code}, " | ")
		if got != want {
			t.Errorf("%s %s:\n got %s\nwant %s", proto, labels, got, want)
		}
	}
	f(`,"authenticationInfo":{"principalEmail":"a@x","principalSubject":"s","authoritySelector":"z"}`, ``, "a@x", "", "", "")
	f(`,"authenticationInfo":{"principalSubject":"serviceAccount:x","authoritySelector":"z"}`, ``, "serviceAccount:x", "", "", "")
	f(`,"authenticationInfo":{"authoritySelector":"system:anonymous"}`, ``, "system:anonymous", "", "", "")
	f(`,"requestMetadata":{"callerIp":"192.0.2.1","callerIP":"192.0.2.2"}`, ``, "", "192.0.2.1", "", "")
	f(`,"requestMetadata":{"callerIP":"192.0.2.2"}`, ``, "", "192.0.2.2", "", "")
	f(`,"authorizationInfo":[{"granted":true},{"granted":true}]`, ``, "", "", "allow", "")
	f(`,"authorizationInfo":[{"granted":true},{"permission":"io.k8s.get"}]`, ``, "", "", "forbid", "")
	f(`,"authorizationInfo":[{"granted":false}]`, `,"labels":{"authorization.k8s.io/decision":"allow"}`, "", "", "allow", "")
	f(`,"status":{}`, ``, "", "", "", "200")
	f(`,"status":{"code":0}`, ``, "", "", "", "200")
	f(`,"status":{"code":7,"message":"PERMISSION_DENIED"}`, ``, "", "", "", "403")
	f(`,"status":{"code":16}`, ``, "", "", "", "401")
	f(`,"status":{"code":5}`, ``, "", "", "", "404")
	f(`,"status":null`, ``, "", "", "", "")
}

// TestSkipsOtherServices: a LogEntry of another service is skipped.
func TestSkipsOtherServices(t *testing.T) {
	e, bad := readEntry(t, event.AllFields(), `{"protoPayload":{"serviceName":"compute.googleapis.com","methodName":"v1.compute.instances.insert"}}`)
	if e != nil || len(bad) != 1 || !strings.Contains(bad[0], `skipped record: LogEntry of service "compute.googleapis.com"`) {
		t.Fatalf("event %v, reports %v", e, bad)
	}
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "cloud", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzGKE never panics, and a LogEntry reads the same with the raw parts
// kept (every field) and without (a rule's fields): the typed fields agree.
func FuzzGKE(f *testing.F) {
	var entries []json.RawMessage
	if err := json.Unmarshal(sample(f, "gke-logentry.json"), &entries); err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		var c bytes.Buffer
		if err := json.Compact(&c, e); err != nil {
			f.Fatal(err)
		}
		f.Add(c.Bytes())
	}
	f.Add(sample(f, "elastic-gke-test-audit-line4.json"))
	f.Add([]byte(`{"protoPayload":{"serviceName":"k8s.io","methodName":"io.k8s.core.v1.namespaces.status.update","resourceName":"core/v1/namespaces/a/status"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i] // one record
		}
		all, badAll := readEntry(t, event.AllFields(), string(b))
		var fs event.FieldSet
		fs.AddID(event.FieldUsername)
		typed, badTyped := readEntry(t, fs, string(b))
		if (all == nil) != (typed == nil) || len(badAll) != len(badTyped) {
			t.Fatalf("all fields: %v %v; rule fields: %v %v", all, badAll, typed, badTyped)
		}
		if all != nil && (all.User.Username != typed.User.Username || all.RequestURI != typed.RequestURI || all.AuditID != typed.AuditID) {
			t.Fatalf("typed fields differ: %+v / %+v", all, typed)
		}
	})
}

// BenchmarkGKE reads one LogEntry (the anonymous pods list of the samples).
func BenchmarkGKE(b *testing.B) {
	var rec []byte
	for _, line := range bytes.Split(sample(b, "elastic-gke-test-audit-line4.json"), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			rec = line
		}
	}
	var rule event.FieldSet
	for _, id := range []event.FieldID{event.FieldUsername, event.FieldSourceIPs, event.FieldUserAgent, event.FieldRequestURI, event.FieldVerb, event.FieldAnnotation, event.FieldRespCode} {
		rule.AddID(id)
	}
	for _, c := range []struct {
		name string
		fs   event.FieldSet
	}{{"entry/rule-fields", rule}, {"entry/all-fields", event.AllFields()}} {
		b.Run(c.name, func(b *testing.B) {
			r, err := ingest.NewReader(ingest.NewRegistry(gke.New()), ingest.Options{Format: gke.Name, Fields: c.fs, OnBad: func(br ingest.BadRecord) { b.Fatal(br) }})
			if err != nil {
				b.Fatal(err)
			}
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
