package formats_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
)

// cloudData is internal/ingest/testdata (see its README for provenance).
const cloudData = "../testdata"

// got is what a read produced: cloned events, bad and skipped records.
type got struct {
	events  []*event.Event
	bad     []ingest.BadRecord
	skipped []ingest.BadRecord
	stats   ingest.Stats
}

func readCloud(t *testing.T, opts ingest.Options, paths ...string) got {
	t.Helper()
	var g got
	opts.Fields = event.AllFields()
	opts.OnBad = func(b ingest.BadRecord) { g.bad = append(g.bad, b) }
	opts.OnSkip = func(b ingest.BadRecord) { g.skipped = append(g.skipped, b) }
	r, err := ingest.NewReader(formats.Registry(), opts)
	if err != nil {
		t.Fatal(err)
	}
	err = r.ReadPaths(context.Background(), paths, nil, func(e *event.Event) error {
		g.events = append(g.events, e.Clone())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g.stats = r.Stats()
	return g
}

func readCloudString(t *testing.T, opts ingest.Options, input string) got {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.json")
	if err := os.WriteFile(p, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	return readCloud(t, opts, p)
}

// fields are the documented fields of one event, as strings.
type fields struct {
	user, ips, ua, verb, resource, ns, name, sub, uri, code, decision string
	cluster, provider, reader, stage, received                        string
}

func fieldsOf(e *event.Event) fields {
	code := ""
	if e.ResponseStatus.HasCode {
		code = fmt.Sprint(e.ResponseStatus.Code)
	}
	return fields{
		user: e.User.Username, ips: strings.Join(e.SourceIPs, ","), ua: e.UserAgent, verb: e.Verb,
		resource: e.ObjectRef.Resource, ns: e.ObjectRef.Namespace, name: e.ObjectRef.Name, sub: e.ObjectRef.Subresource,
		uri: e.RequestURI, code: code, decision: e.Decision(),
		cluster: e.ClusterName, provider: e.CloudProvider, reader: e.Reader,
		stage: e.StageTimestamp.Raw, received: e.RequestReceivedTimestamp.Raw,
	}
}

// TestCloudSamples reads every record of the cloud samples and checks the
// documented fields one by one, and that the ECS document shows the
// context (cloud.provider, orchestrator.cluster.name, kanon.reader).
func TestCloudSamples(t *testing.T) {
	const anon = "system:anonymous"
	want := map[string]map[string]fields{
		"eks-cloudwatch-subscription.json": {
			"0b6c5e2a-4f91-4d3e-a7c8-5e1d9b2f6a03": {anon, "198.51.100.14", "python-requests/2.31.0", "get", "configmaps", "kube-system", "aws-auth", "", "/api/v1/namespaces/kube-system/configmaps/aws-auth", "200", "allow", "example-cluster", "aws", "eks", "2025-05-14T09:12:33.420690Z", "2025-05-14T09:12:33.418221Z"},
			"6e2f8d41-0a7b-4c59-9e13-c4b7a2d5f816": {anon, "198.51.100.14", "python-requests/2.31.0", "list", "secrets", "", "", "", "/api/v1/secrets?limit=500", "403", "forbid", "example-cluster", "aws", "eks", "2025-05-14T09:12:33.703512Z", "2025-05-14T09:12:33.702954Z"},
			"a93d1f70-5b2e-4e8c-b6d4-17f0c8e2a9b5": {"kubernetes-admin", "192.0.2.33", "kubectl/v1.30.1 (linux/amd64) kubernetes/6911225", "list", "pods", "default", "", "", "/api/v1/namespaces/default/pods?limit=500", "200", "allow", "example-cluster", "aws", "eks", "2025-05-14T09:12:34.058906Z", "2025-05-14T09:12:34.051377Z"},
		},
		// filter-log-events output does not name the log group: no cluster.
		"eks-filter-log-events.json": {
			"35506555-dffc-4337-b2b1-c4af52b88e18": {"kubernetes-admin", "5.5.5.5", "kubectl/v1.25.4 (darwin/arm64) kubernetes/872a965", "get", "pods", "default", "kube-bench-drn4j", "log", "/api/v1/namespaces/default/pods/kube-bench-drn4j/log?container=kube-bench", "200", "allow", "", "aws", "eks", "2022-11-29T00:09:04.392000Z", "2022-11-29T00:09:04.380000Z"},
			"d976bfc6-a2bc-49d5-bdeb-074441e0b875": {anon, "44.238.138.237", "python-requests/2.31.0", "get", "", "", "", "", "/version", "200", "allow", "", "aws", "eks", "2024-11-13T18:34:10.595494Z", "2024-11-13T18:34:10.595141Z"},
			"edf35e8d-92c3-4507-9bc6-4dd9cf068bcf": {anon, "8.216.81.10", "Custom-AsyncHttpClient", "get", "", "", "", "", "/vendor/phpunit/src/Util/PHP/eval-stdin.php", "403", "forbid", "", "aws", "eks", "2024-11-13T23:50:32.673504Z", "2024-11-13T23:50:32.672347Z"},
		},
		"aks-records.json": {
			"7df19974-f894-454b-a1f2-137258598c45": {"system:serviceaccount:kube-system:metrics-server", "52.188.216.128", "metrics-server/v0.0.0 (linux/amd64) kubernetes/$Format", "create", "subjectaccessreviews", "", "", "", "/apis/authorization.k8s.io/v1beta1/subjectaccessreviews", "201", "allow", "DEMO-AKS", "azure", "aks", "2021-02-02T15:00:00.704551Z", "2021-02-02T15:00:00.703531Z"},
			"c2f5a3d1-8e4b-4f0a-9b7c-2d6e1f3a5b90": {anon, "203.0.113.45", "curl/7.68.0", "list", "pods", "default", "", "", "/api/v1/namespaces/default/pods?limit=500", "200", "allow", "DEMO-AKS", "azure", "aks", "2021-02-02T15:01:12.409598Z", "2021-02-02T15:01:12.402117Z"},
			"9d84e6b2-3c1f-4a7e-8f05-b6a2c9d1e374": {anon, "203.0.113.45", "kubectl/v1.20.2 (linux/amd64) kubernetes/faecb19", "list", "secrets", "kube-system", "", "", "/api/v1/namespaces/kube-system/secrets", "403", "forbid", "DEMO-AKS", "azure", "aks", "2021-02-02T15:01:14.119402Z", "2021-02-02T15:01:14.118730Z"},
		},
		// GKE: auditID is insertId, stageTimestamp is timestamp and
		// requestReceivedTimestamp is receiveTimestamp (as Elastic maps them);
		// the code is the gRPC status mapped to HTTP.
		"gke-logentry.json": {
			"e973134d-b4d5-4e2f-92b8-82bba13fdb92": {anon, "127.0.0.1", "kube-probe/1.19+", "get", "", "", "", "", "/readyz", "200", "allow", "analysis-cluster", "gcp", "gke", "2021-04-29T08:19:20.80581Z", "2021-04-29T08:19:21.606980385Z"},
			// No labels: the decision comes from authorizationInfo.granted.
			"k8s-nonmatch-0001":                    {anon, "192.168.1.1", "Mozilla/5.0", "get", "", "", "", "", "/HNAP1", "403", "forbid", "example-cluster", "gcp", "gke", "2021-04-23T14:47:07.535383Z", "2021-04-23T14:47:31.948229350Z"},
			"94170ac4-6e82-4345-98ad-3c780222d19d": {"xxx@xxx.xxx", "192.168.1.1", "GoogleCloudConsole", "list", "nodes", "", "", "", "/api/v1/nodes", "200", "allow", "analysis-cluster", "gcp", "gke", "2021-04-23T14:47:07.535383Z", "2021-04-23T14:47:31.94822935Z"},
			"3f1c2a9e-7b4d-4c1e-9a55-0d2e8b6f4a11": {anon, "203.0.113.7", "python-requests/2.25.1", "list", "pods", "default", "", "", "/api/v1/namespaces/default/pods", "200", "allow", "analysis-cluster", "gcp", "gke", "2021-04-29T08:21:01.362217Z", "2021-04-29T08:21:02.114503871Z"},
			"b7e0d6c4-2f38-4e5a-8c19-6a7f3d2e9b40": {anon, "203.0.113.7", "kubectl/v1.20.5 (linux/amd64) kubernetes/6b1d87a", "list", "secrets", "", "", "", "/api/v1/secrets", "403", "forbid", "analysis-cluster", "gcp", "gke", "2021-04-29T08:21:03.907441Z", "2021-04-29T08:21:04.583019127Z"},
			"5a2d9e71-0c84-4b6f-b3e2-91f7c0a4d258": {"dev.user@example.com", "198.51.100.20", "kubectl/v1.20.5 (darwin/amd64) kubernetes/6b1d87a", "create", "configmaps", "default", "app-config", "", "/api/v1/namespaces/default/configmaps/app-config", "200", "allow", "analysis-cluster", "gcp", "gke", "2021-04-29T08:25:40.996083Z", "2021-04-29T08:25:41.730566512Z"},
		},
	}
	for file, byID := range want {
		g := readCloud(t, ingest.Options{}, filepath.Join(cloudData, "cloud", file))
		if len(g.bad) != 0 {
			t.Errorf("%s: bad records %v", file, g.bad)
		}
		if len(g.events) != len(byID) {
			t.Errorf("%s: %d events, want %d", file, len(g.events), len(byID))
		}
		for _, e := range g.events {
			w, ok := byID[e.AuditID]
			if !ok {
				t.Errorf("%s: unexpected event %q", file, e.AuditID)
				continue
			}
			if f := fieldsOf(e); f != w {
				t.Errorf("%s %s:\n got %+v\nwant %+v", file, e.AuditID, f, w)
			}
			var doc map[string]any
			if err := json.Unmarshal(e.AppendECS(nil), &doc); err != nil {
				t.Fatal(err)
			}
			for path, v := range map[string]string{"cloud.provider": w.provider, "orchestrator.cluster.name": w.cluster, "kanon.reader": w.reader, "user.name": w.user} {
				var wantV any = v
				if v == "" {
					wantV = nil
				}
				if gv := get(doc, path); gv != wantV {
					t.Errorf("%s %s: document %s = %v, want %q", file, e.AuditID, path, gv, v)
				}
			}
		}
	}
}

// TestAKSSkipsOtherCategories: the kube-controller-manager record is
// skipped and counted as skipped, not as bad.
func TestAKSSkipsOtherCategories(t *testing.T) {
	g := readCloud(t, ingest.Options{Strict: true}, filepath.Join(cloudData, "cloud", "aks-records.json"))
	if len(g.skipped) != 1 || !errors.Is(g.skipped[0], ingest.ErrSkipped) || !strings.Contains(g.skipped[0].Error(), `records[3]: skipped record: AKS category "kube-controller-manager"`) {
		t.Fatalf("skipped %v", g.skipped)
	}
	if g.stats.Skipped != 1 || g.stats.Bad != 0 || g.stats.Events != 3 {
		t.Fatalf("stats %+v", g.stats)
	}
	// A storage-account line of another category is skipped as a whole.
	var rec struct {
		Records []json.RawMessage `json:"records"`
	}
	b, err := os.ReadFile(filepath.Join(cloudData, "cloud", "aks-records.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	for _, r := range rec.Records {
		if err := json.Compact(&lines, r); err != nil {
			t.Fatal(err)
		}
		lines.WriteByte('\n')
	}
	g = readCloudString(t, ingest.Options{}, lines.String())
	if len(g.events) != 3 || g.stats.Skipped != 1 || len(g.bad) != 0 || g.skipped[0].Origin.Line != 4 {
		t.Fatalf("JSON lines: %d events, skipped %v, bad %v", len(g.events), g.skipped, g.bad)
	}
}

// TestEKSEnvelopesAgree: the Lambda envelope (base64 of gzip), a gzip file
// of the payload and the decoded payload give the same documents.
func TestEKSEnvelopesAgree(t *testing.T) {
	docs := func(g got) []string {
		var out []string
		for _, e := range g.events {
			out = append(out, string(e.AppendECS(nil)))
		}
		return out
	}
	plain := readCloud(t, ingest.Options{}, filepath.Join(cloudData, "cloud", "eks-cloudwatch-subscription.json"))
	lambda := readCloud(t, ingest.Options{}, filepath.Join(cloudData, "cloud", "eks-cloudwatch-subscription.awslogs-event.json"))
	payload, err := os.ReadFile(filepath.Join(cloudData, "cloud", "eks-cloudwatch-subscription.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(payload)
	zw.Close()
	p := filepath.Join(t.TempDir(), "payload.json.gz")
	if err := os.WriteFile(p, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	gzipped := readCloud(t, ingest.Options{}, p)
	if len(plain.events) != 3 || !reflect.DeepEqual(docs(plain), docs(lambda)) || !reflect.DeepEqual(docs(plain), docs(gzipped)) {
		t.Fatalf("plain:\n%s\nlambda:\n%s\ngzip:\n%s", docs(plain), docs(lambda), docs(gzipped))
	}
	// An uncompressed payload in awslogs.data is read too.
	compact := new(bytes.Buffer)
	json.Compact(compact, payload)
	raw := readCloudString(t, ingest.Options{}, `{"awslogs":{"data":"`+base64.StdEncoding.EncodeToString(compact.Bytes())+`"}}`)
	if !reflect.DeepEqual(docs(plain), docs(raw)) {
		t.Fatalf("uncompressed awslogs.data: %v %v", docs(raw), raw.bad)
	}
}

// TestEKSPlainLines: message lines of an EKS log group read as audit
// events, detected (reader k8s) or with --format eks (reader eks, cloud
// provider aws); a line CloudWatch cut is a truncated record either way.
func TestEKSPlainLines(t *testing.T) {
	var lines []string
	var sub struct {
		LogEvents []struct {
			ID, Message string
		} `json:"logEvents"`
	}
	b, err := os.ReadFile(filepath.Join(cloudData, "cloud", "eks-cloudwatch-subscription.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sub); err != nil {
		t.Fatal(err)
	}
	for _, le := range sub.LogEvents {
		lines = append(lines, le.Message)
	}
	cut := lines[0][:200] + eks.TruncatedMarker
	input := lines[0] + "\n" + cut + "\n" + lines[1] + "\n" + lines[2] + "\n"
	for _, format := range []string{"", "eks"} {
		g := readCloudString(t, ingest.Options{Format: format}, input)
		if len(g.events) != 3 || len(g.bad) != 1 {
			t.Fatalf("format %q: %d events, bad %v", format, len(g.events), g.bad)
		}
		if !errors.Is(g.bad[0], ingest.ErrTruncated) || g.bad[0].Origin.Line != 2 {
			t.Fatalf("format %q: bad %v", format, g.bad[0])
		}
		wantReader, wantProvider := "k8s", ""
		if format == "eks" {
			wantReader, wantProvider = "eks", "aws"
			if !strings.Contains(g.bad[0].Error(), "auditID 0b6c5e2a-4f91-4d3e-a7c8-5e1d9b2f6a03") {
				t.Errorf("truncated line does not name the auditID: %v", g.bad[0])
			}
		}
		for _, e := range g.events {
			if e.Reader != wantReader || e.CloudProvider != wantProvider {
				t.Errorf("format %q: reader %q provider %q", format, e.Reader, e.CloudProvider)
			}
		}
	}
}

// TestEKSTruncatedAndSkipped: a log event cut at 256 KB is a bad record
// naming the log event id and auditID; a control message and log events of
// other streams are skipped.
func TestEKSTruncatedAndSkipped(t *testing.T) {
	msg := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"cut-1","stage":"ResponseComplete","requestObject":{"data":"xxxxxxxx` + eks.TruncatedMarker
	good := `{"kind":"Event","auditID":"ok-1","stage":"ResponseComplete","verb":"get"}`
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	payload := `{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/prod/cluster","logStream":"kube-apiserver-audit-abc","logEvents":[` +
		`{"id":"111","timestamp":1,"message":` + q(msg) + `},{"id":"222","timestamp":2,"message":` + q(good) + `}]}` + "\n" +
		`{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}` + "\n" +
		`{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/prod/cluster","logStream":"authenticator-abc","logEvents":[{"id":"333","timestamp":3,"message":"time=\"2025\" level=info msg=\"access granted\""}]}` + "\n"
	g := readCloudString(t, ingest.Options{}, payload)
	if len(g.events) != 1 || g.events[0].AuditID != "ok-1" || g.events[0].ClusterName != "prod" {
		t.Fatalf("events %v", g.events)
	}
	if len(g.bad) != 1 || !errors.Is(g.bad[0], ingest.ErrTruncated) {
		t.Fatalf("bad %v", g.bad)
	}
	for _, s := range []string{"logEvents[0]", "id 111", "auditID cut-1"} {
		if !strings.Contains(g.bad[0].Error(), s) {
			t.Errorf("truncated report %q does not say %q", g.bad[0], s)
		}
	}
	if len(g.skipped) != 2 || !strings.Contains(g.skipped[0].Error(), "control message") || !strings.Contains(g.skipped[1].Error(), `"authenticator-abc" is not an audit stream`) {
		t.Fatalf("skipped %v", g.skipped)
	}
}

// TestMalformedEnvelopes: every malformed envelope is a bad record with a
// clear reason, and the good records around it are read.
func TestMalformedEnvelopes(t *testing.T) {
	good := `{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"g","stage":"ResponseComplete","verb":"get"}`
	gz := func(s string) string {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	sub := func(events string) string {
		return `{"messageType":"DATA_MESSAGE","logGroup":"/aws/eks/c/cluster","logStream":"kube-apiserver-audit-1","logEvents":` + events + `}`
	}
	aksRec := func(log string) string {
		return `{"category":"kube-audit","resourceId":"/x/MANAGEDCLUSTERS/C","properties":{"log":` + log + `}}`
	}
	gke := func(proto string) string {
		return `{"insertId":"i","resource":{"labels":{"cluster_name":"c"}},"protoPayload":` + proto + `}`
	}
	cases := []struct{ name, rec, reason string }{
		{"bad base64", `{"awslogs":{"data":"%%%not base64"}}`, "awslogs.data: wrong shape: cannot decode base64"},
		{"bad gzip", `{"awslogs":{"data":"` + base64.StdEncoding.EncodeToString([]byte("\x1f\x8b\x08\x00garbage")) + `"}}`, "awslogs.data: wrong shape: cannot decompress gzip"},
		{"payload not JSON", `{"awslogs":{"data":"` + gz("not json") + `"}}`, "awslogs.data: offset 0: invalid literal"},
		{"awslogs without data", `{"awslogs":{}}`, "awslogs without data"},
		{"logEvents not an array", sub(`{"id":"1"}`), "logEvents: expected an array"},
		{"events not an array", `{"events":"x","nextForwardToken":"f"}`, "events: expected an array"},
		{"records not an array", `{"records":{"category":"kube-audit"}}`, "records: expected an array"},
		{"properties.log not JSON", aksRec(`"I0202 15:03:28.853066 1 event.go:291] text"`), `properties.log: invalid JSON: not a JSON audit event ("I0202`},
		{"properties.log missing", `{"category":"kube-audit","properties":{"stream":"stdout"}}`, "without properties.log"},
		{"properties.log a number", aksRec(`5`), "properties.log: wrong shape: expected a JSON string or object"},
		{"AKS record without category", `{"category":null,"properties":{"log":"{}"}}`, "AKS record without category"},
		{"protoPayload not an object", gke(`"x"`), "protoPayload: expected an object"},
		{"protoPayload without methodName", gke(`{"serviceName":"k8s.io","authenticationInfo":{"principalEmail":"a"}}`), "protoPayload.methodName missing"},
		{"protoPayload without fields", gke(`{}`), `LogEntry of service ""`},
		{"callerIp not a string", gke(`{"serviceName":"k8s.io","methodName":"io.k8s.get","requestMetadata":{"callerIp":5}}`), "protoPayload.requestMetadata.callerIp: expected a string"},
		{"status.code not an integer", gke(`{"serviceName":"k8s.io","methodName":"io.k8s.get","status":{"code":"7"}}`), "protoPayload.status.code: expected an integer"},
		{"LogEntry without protoPayload", `{"insertId":"i","protoPayload":null}`, "LogEntry without protoPayload"},
		{"Panther event of EKS with a bad field", `{"p_log_type":"Amazon.EKS.Audit","sourceIPs":"1.2.3.4"}`, "Amazon.EKS.Audit: wrong shape: kubernetes.audit.sourceIPs: expected an array"},
		{"Panther time", `{"p_log_type":"Amazon.EKS.Audit","p_event_time":"soon"}`, `p_event_time: cannot parse time "soon"`},
	}
	for _, c := range cases {
		input := good + "\n" + c.rec + "\n" + strings.Replace(good, `"g"`, `"h"`, 1) + "\n"
		g := readCloudString(t, ingest.Options{}, input)
		if len(g.events) != 2 || g.events[0].AuditID != "g" || g.events[1].AuditID != "h" {
			t.Errorf("%s: events around the bad record not read: %d events, bad %v, skipped %v", c.name, len(g.events), g.bad, g.skipped)
			continue
		}
		var reasons []string
		for _, b := range append(g.bad, g.skipped...) {
			reasons = append(reasons, b.Error())
		}
		if len(reasons) != 1 || !strings.Contains(reasons[0], c.reason) || !strings.Contains(reasons[0], ":2: ") {
			t.Errorf("%s: reported %q, want one report at line 2 containing %q", c.name, reasons, c.reason)
		}
	}
	// Bad parts of batches: the other log events and records are read.
	batch := sub(`[{"id":"1","message":`+q(good)+`},{"id":"2","message":"{\"auditID\":"},{"id":"3"},{"id":"4","message":`+q(strings.Replace(good, `"g"`, `"h"`, 1))+`}]`) + "\n" +
		`{"records":[` + aksRec(q(good)) + `,` + aksRec(`"[1]"`) + `,5,` + aksRec(q(strings.Replace(good, `"g"`, `"h"`, 1))) + `]}` + "\n"
	g := readCloudString(t, ingest.Options{}, batch)
	var ids []string
	for _, e := range g.events {
		ids = append(ids, e.AuditID+"@"+e.Reader)
	}
	if strings.Join(ids, " ") != "g@eks h@eks g@aks h@aks" {
		t.Fatalf("batch events %v (bad %v)", ids, g.bad)
	}
	wantBad := []string{"logEvents[1] (id 2): ", "logEvents[2] (id 3): wrong shape: log event without message", "records[1]: properties.log: wrong shape: not a JSON audit event object", "records[2]: wrong shape: expected an object"}
	if len(g.bad) != len(wantBad) {
		t.Fatalf("batch bad %v", g.bad)
	}
	for i, w := range wantBad {
		if !strings.Contains(g.bad[i].Error(), w) {
			t.Errorf("batch bad[%d] = %q, want %q", i, g.bad[i], w)
		}
	}
}

// TestDedupDropsRepeatedDeliveries: the same payload delivered twice gives
// its events once with a Dedup set; without one, twice.
func TestDedupDropsRepeatedDeliveries(t *testing.T) {
	p := filepath.Join(cloudData, "cloud", "eks-cloudwatch-subscription.json")
	lambda := filepath.Join(cloudData, "cloud", "eks-cloudwatch-subscription.awslogs-event.json")
	g := readCloud(t, ingest.Options{}, p, lambda)
	if len(g.events) != 6 {
		t.Fatalf("without dedup: %d events", len(g.events))
	}
	set, err := ingest.NewDedup(ingest.DefaultDedupCapacity)
	if err != nil {
		t.Fatal(err)
	}
	g = readCloud(t, ingest.Options{Dedup: set.Duplicate}, p, lambda)
	if len(g.events) != 3 || set.Dropped() != 3 || g.stats.Events != 3 {
		t.Fatalf("with dedup: %d events, %d dropped, stats %+v", len(g.events), set.Dropped(), g.stats)
	}
}
