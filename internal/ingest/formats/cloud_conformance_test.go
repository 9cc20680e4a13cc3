package formats_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
)

func ecsDoc(t *testing.T, e *event.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.AppendECS(nil), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func expectedDocs(t *testing.T, name string) []map[string]any {
	t.Helper()
	var exp struct {
		Expected []map[string]any `json:"expected"`
	}
	b, err := os.ReadFile(filepath.Join(anchors(t), "elastic-integration-audit", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp.Expected
}

func readOne(t *testing.T, file string) map[string]any {
	t.Helper()
	g := readCloud(t, ingest.Options{}, filepath.Join(cloudData, "cloud", file))
	if len(g.events) != 1 || len(g.bad) != 0 {
		t.Fatalf("%s: %d events, bad %v", file, len(g.events), g.bad)
	}
	return ecsDoc(t, g.events[0])
}

func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(normalise(got), normalise(want)) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("%s differs\n got: %s\nwant: %s", what, gj, wj)
	}
}

// TestElasticConformanceGKE compares the document of the GKE line of
// Elastic's test-audit.log with Elastic's expected document: every
// kubernetes.audit field Elastic writes, orchestrator.cluster.* and
// event.outcome. Deviations (documented in package gke): responseStatus.code
// is the HTTP status (200), not the gRPC code (0); and kanon adds the typed
// fields Elastic leaves out for GKE (user.name, source.ip,
// user_agent.original, event.action, verb, requestURI ...).
func TestElasticConformanceGKE(t *testing.T) {
	want := expectedDocs(t, "test-audit.log-expected.json")[3]
	got := readOne(t, "elastic-gke-test-audit-line4.json")
	wa := get(want, "kubernetes.audit").(map[string]any)
	ga := get(got, "kubernetes.audit").(map[string]any)
	for k, v := range wa {
		if k == "responseStatus" {
			sameJSON(t, "elastic's responseStatus (the gRPC code)", v, map[string]any{"code": 0})
			sameJSON(t, "kanon's responseStatus (deviation: HTTP status)", ga[k], map[string]any{"code": 200})
			continue
		}
		sameJSON(t, "kubernetes.audit."+k, ga[k], v)
	}
	for _, f := range []string{"orchestrator.cluster.name", "orchestrator.cluster.id", "event.outcome"} {
		sameJSON(t, f, get(got, f), get(want, f))
	}
	// Additions: Elastic's expected document has none of these.
	additions := map[string]any{
		"user.name":                      "system:gke-master-healthcheck",
		"source.ip":                      []any{"67.43.156.1"},
		"user_agent.original":            "gke-master-healthcheck",
		"event.action":                   "get",
		"kubernetes.audit.verb":          "get",
		"kubernetes.audit.requestURI":    "/readyz",
		"kubernetes.audit.user.username": "system:gke-master-healthcheck",
		"cloud.provider":                 "gcp",
		"kanon.reader":                   "gke",
	}
	for f, v := range additions {
		if get(want, f) != nil {
			t.Errorf("%s is in Elastic's document: not an addition", f)
		}
		sameJSON(t, f, get(got, f), v)
	}
}

// TestElasticConformanceAKS compares the document of Elastic's AKS test
// record (properties.log a JSON string) with Elastic's expected document.
// kanon adds cloud.provider, orchestrator.cluster.name (from resourceId)
// and kanon.reader; @timestamp is the stageTimestamp, where Elastic uses
// the record's time (documented in package aks).
func TestElasticConformanceAKS(t *testing.T) {
	want := expectedDocs(t, "test-kube-audit.log-expected.json")[0]
	got := readOne(t, "elastic-aks-test-kube-audit.json")
	for _, f := range []string{"kubernetes.audit", "user_agent.original", "source.ip", "client.ip", "user.name", "event.action", "event.outcome"} {
		sameJSON(t, f, get(got, f), get(want, f))
	}
	sameJSON(t, "kubernetes.audit.aks_metadata", get(got, "kubernetes.audit.aks_metadata"), get(want, "kubernetes.audit.aks_metadata"))
	for f, v := range map[string]any{"orchestrator.cluster.name": "TEST-CLUSTER", "cloud.provider": "azure", "kanon.reader": "aks", "@timestamp": "2025-10-07T16:19:19.647762Z"} {
		sameJSON(t, f, get(got, f), v)
	}

	// The newest input has properties.log as a JSON object (no expected
	// document upstream): the same mapping applies.
	got = readOne(t, "elastic-aks-log-object.json")
	for f, v := range map[string]any{
		"user.name":                                  "aksService",
		"kubernetes.audit.auditID":                   "abcde12345",
		"kubernetes.audit.requestURI":                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/elastic-agent-cluster-test",
		"kubernetes.audit.aks_metadata.category":     "kube-audit-admin",
		"kubernetes.audit.aks_metadata.container_id": "aaaa1111",
		"kubernetes.audit.aks_metadata.resource_id":  "/SUBSCRIPTIONS/1234567890/RESOURCEGROUPS/TEST-RG/PROVIDERS/MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/TEST-AKS",
		"orchestrator.cluster.name":                  "TEST-AKS",
		"event.outcome":                              "success",
		"source.ip":                                  []any{"67.43.156.1"},
	} {
		sameJSON(t, f, get(got, f), v)
	}
}

// TestPantherTestEvents reads the test events of seed 003 and of
// anonymous_api_access.yml through the registry and checks what the
// Panther rule looks at: username, source IPs, user agent and request URI
// as Panther's data models see them, plus the reader, cluster and time.
// One deviation: for GKE, Panther's data model makes the request URI
// "/apis/" + resourceName; kanon rebuilds the API server's path (see
// package gke), given here with Panther's value beside it.
func TestPantherTestEvents(t *testing.T) {
	type want struct {
		user, ips, ua, uri, pantherURI, reader, cluster, provider, time string
	}
	const anon = "system:anonymous"
	cases := map[string]want{
		"seed003-01.json": {anon, "8.8.8.8", "kubectl/v1.25.4", "/api/v1/namespaces/default/pods/test-pod", "", "panther/eks", "example-cluster-eks-logs", "aws", "2022-11-29T00:09:04.38Z"},
		// The AKS cluster comes from resourceId, which beats p_source_label;
		// the event has no time of its own, so @timestamp is p_event_time.
		"seed003-02.json": {anon, "10.0.0.1", "kubectl/v1.28.0", "/api/v1/namespaces/default/pods/test-pod", "", "panther/aks", "cluster", "azure", "2024-03-20T10:00:00Z"},
		// GKE: username from authoritySelector, source IP from callerIP.
		"seed003-03.json": {anon, "8.8.8.8", "kubectl/v1.27.0", "/api/v1/namespaces/default/pods/test-pod", "/apis/core/v1/namespaces/default/pods/test-pod", "panther/gke", "gcp-gke-cluster", "gcp", ""},
		"seed003-04.json": {"kubernetes-admin", "8.8.8.8", "kubectl/v1.25.4", "/api/v1/namespaces/default/pods/test-pod", "", "panther/eks", "example-cluster-eks-logs", "aws", "2022-11-29T00:09:04.38Z"},
		"seed003-05.json": {anon, "127.0.0.1", "", "", "", "panther/eks", "", "aws", ""},
		"seed003-06.json": {anon, "10.0.1.100", "ELB-HealthChecker/2.0", "/healthz", "", "panther/eks", "", "aws", ""},
		"seed003-07.json": {anon, "10.128.0.1", "kube-probe/1.28", "/healthz", "", "panther/eks", "", "aws", ""},
		// No resourceName: the path is rebuilt from methodName.
		"seed003-08.json": {anon, "35.191.0.1", "GoogleHC/1.0", "/api/v1/componentstatuses", "/apis/", "panther/gke", "", "gcp", ""},

		"anonymous_api_access-01.json": {anon, "8.8.8.8", "kubectl/v1.25.4", "/api/v1/namespaces/default/pods/test-pod", "", "panther/eks", "example-cluster-eks-logs", "aws", "2022-11-29T00:09:04.38Z"},
		"anonymous_api_access-02.json": {"kubernetes-admin", "8.8.8.8", "kubectl/v1.25.4", "/api/v1/namespaces/default/pods/test-pod", "", "panther/eks", "example-cluster-eks-logs", "aws", "2022-11-29T00:09:04.38Z"},
		// Without p_log_type these are plain audit events (reader k8s).
		"anonymous_api_access-03.json": {anon, "44.238.138.237", "python-requests/2.31.0", "/version", "", "k8s", "", "", "2024-11-13T18:34:10.595494Z"},
		"anonymous_api_access-04.json": {anon, "10.128.5.42", "ELB-HealthChecker/2.0", "/healthz", "", "k8s", "", "", ""},
		"anonymous_api_access-05.json": {anon, "172.20.1.15", "ELB-HealthChecker/2.0", "/healthz", "", "k8s", "", "", ""},
		"anonymous_api_access-06.json": {anon, "192.168.10.20", "ELB-HealthChecker/2.0", "/healthz", "", "k8s", "", "", ""},
		"anonymous_api_access-07.json": {anon, "54.10.20.30", "ELB-HealthChecker/2.0", "/healthz", "", "k8s", "", "", ""},
		"anonymous_api_access-08.json": {anon, "8.216.81.10", "Custom-AsyncHttpClient", "/vendor/phpunit/src/Util/PHP/eval-stdin.php", "", "k8s", "", "", "2024-11-13T23:50:32.673504Z"},
	}
	files, err := filepath.Glob(filepath.Join(cloudData, "panther", "*.json"))
	if err != nil || len(files) != len(cases) {
		t.Fatalf("%d test event files (%v), want %d", len(files), err, len(cases))
	}
	for _, f := range files {
		w, ok := cases[filepath.Base(f)]
		if !ok {
			t.Errorf("%s: no expectation", f)
			continue
		}
		g := readCloud(t, ingest.Options{Strict: true}, f)
		if len(g.events) != 1 || len(g.bad)+len(g.skipped) != 0 {
			t.Errorf("%s: %d events, bad %v, skipped %v", f, len(g.events), g.bad, g.skipped)
			continue
		}
		e := g.events[0]
		tm := ""
		if t := e.Time(); !t.IsZero() {
			tm = t.Format(time.RFC3339Nano)
		}
		gotW := want{e.User.Username, strings.Join(e.SourceIPs, ","), e.UserAgent, e.RequestURI, w.pantherURI, e.Reader, e.ClusterName, e.CloudProvider, tm}
		if gotW != w {
			t.Errorf("%s:\n got %+v\nwant %+v", filepath.Base(f), gotW, w)
		}
		if w.pantherURI != "" && (w.pantherURI == w.uri || !strings.HasPrefix(w.pantherURI, "/apis/")) {
			t.Errorf("%s: Panther's URI %q is not the documented /apis/ form", f, w.pantherURI)
		}
		// The p_* fields are kept under panther.*, never under kubernetes.audit.
		doc := ecsDoc(t, e)
		if a, ok := get(doc, "kubernetes.audit").(map[string]any); ok {
			for k := range a {
				if strings.HasPrefix(k, "p_") {
					t.Errorf("%s: kubernetes.audit.%s", f, k)
				}
			}
		}
		if strings.HasPrefix(w.reader, "panther/") && get(doc, "panther.p_log_type") == nil {
			t.Errorf("%s: panther.p_log_type missing from %v", f, doc)
		}
	}
}
