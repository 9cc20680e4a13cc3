package alert

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeElastic implements the _bulk API as Elasticsearch documents it:
// POST /_bulk with Content-Type application/x-ndjson, a body of action
// and source lines ending in a newline, the create action refused with
// 409 version_conflict_engine_exception when the _id exists, a data
// stream (logs-*-*) taking only create and documents with @timestamp, and
// an answer {"took", "errors", "items": [{"create": {"_index", "_id",
// "status", "error"}}]} in the order of the actions.
type fakeElastic struct {
	t    *testing.T
	auth string // the Authorization the server wants, if set

	mu       sync.Mutex
	docs     map[string]map[string]map[string]any // index → _id → source
	accepted []string                             // _id of every 201 and 409, in order
	actions  map[string]int                       // actions seen per _id
	requests int
	query    string
	// status, if set, answers an item instead of the store (0: store).
	status func(id string, attempt int) (int, string)
}

func newFakeElastic(t *testing.T) *fakeElastic {
	return &fakeElastic{t: t, docs: map[string]map[string]map[string]any{}, actions: map[string]int{}}
}

func (f *fakeElastic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	bad := func(code int, typ, reason string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"error":{"type":%q,"reason":%q},"status":%d}`, typ, reason, code)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/_bulk" {
		bad(404, "not_found", r.Method+" "+r.URL.Path)
		return
	}
	if f.auth != "" && r.Header.Get("Authorization") != f.auth {
		bad(401, "security_exception", "missing authentication credentials")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" && ct != "application/json" {
		bad(406, "media_type_header_exception", "Content-Type "+ct)
		return
	}
	if len(body) == 0 || body[len(body)-1] != '\n' {
		bad(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
		return
	}
	type item struct {
		Index  string         `json:"_index"`
		ID     string         `json:"_id"`
		Status int            `json:"status"`
		Error  map[string]any `json:"error,omitempty"`
	}
	var items []map[string]item
	errorsSeen := false
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 16<<20)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	f.query = r.URL.RawQuery
	for sc.Scan() {
		var action map[string]struct {
			Index string `json:"_index"`
			ID    string `json:"_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || len(action) != 1 {
			bad(400, "illegal_argument_exception", "Malformed action/metadata line")
			return
		}
		if !sc.Scan() {
			bad(400, "illegal_argument_exception", "The bulk request must be terminated by a newline")
			return
		}
		var src map[string]any
		srcErr := json.Unmarshal(sc.Bytes(), &src)
		for op, meta := range action {
			it := item{Index: meta.Index, ID: meta.ID}
			f.actions[meta.ID]++
			fail := func(st int, typ, reason string) {
				it.Status, it.Error = st, map[string]any{"type": typ, "reason": reason}
				errorsSeen = true
			}
			stream := strings.HasPrefix(meta.Index, "logs-")
			var injected int
			var injectedType string
			if f.status != nil {
				injected, injectedType = f.status(meta.ID, f.actions[meta.ID])
			}
			switch {
			case injected != 0:
				fail(injected, injectedType, "injected by the test")
			case op != "create" && op != "index":
				fail(400, "illegal_argument_exception", "unsupported action "+op)
			case srcErr != nil:
				fail(400, "document_parsing_exception", srcErr.Error())
			case stream && op != "create":
				fail(400, "illegal_argument_exception", "only write ops with an op_type of create are allowed in data streams")
			case stream && src["@timestamp"] == nil:
				fail(400, "document_parsing_exception", "data stream timestamp field [@timestamp] is missing")
			default:
				idx := f.docs[meta.Index]
				if idx == nil {
					idx = map[string]map[string]any{}
					f.docs[meta.Index] = idx
				}
				if _, ok := idx[meta.ID]; ok && op == "create" {
					fail(409, "version_conflict_engine_exception", "["+meta.ID+"]: version conflict, document already exists")
				} else {
					idx[meta.ID] = src
					it.Status = 201
				}
			}
			if it.Status == 201 || it.Status == 409 {
				f.accepted = append(f.accepted, meta.ID)
			}
			items = append(items, map[string]item{op: it})
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": errorsSeen, "items": items})
}

// elasticReceiver is the fake on a restartable server.
type elasticReceiver struct {
	*httpReceiver
	f *fakeElastic
}

func (r elasticReceiver) keys() []string {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return append([]string(nil), r.f.accepted...)
}

func newElasticReceiver(t *testing.T) elasticReceiver {
	f := newFakeElastic(t)
	return elasticReceiver{newHTTPReceiver(t, f), f}
}

func TestElasticDownThenUp(t *testing.T) {
	r := newElasticReceiver(t)
	checkDownThenUp(t, OutputConfig{Type: TypeElasticsearch, URL: r.url(), BatchSize: 7}, r)
	if n := len(r.f.docs[DefaultElasticIndex]); n != len(downUpAlerts()) {
		t.Errorf("index %s holds %d documents, want %d", DefaultElasticIndex, n, len(downUpAlerts()))
	}
}

// A bulk answer with errors per item: only the 429 and 5xx items are
// sent again; a 409 (the document exists) counts as delivered, a 400 is
// given up.
func TestElasticBulkItemErrors(t *testing.T) {
	r := newElasticReceiver(t)
	var as []*Alert
	for i := range 10 {
		as = append(as, testAlert(i))
	}
	r.f.docs[DefaultElasticIndex] = map[string]map[string]any{as[7].ID: {"@timestamp": "earlier"}}
	r.f.status = func(id string, attempt int) (int, string) {
		switch {
		case id == as[3].ID && attempt == 1:
			return 429, "es_rejected_execution_exception"
		case id == as[4].ID && attempt <= 2:
			return 503, "unavailable_shards_exception"
		case id == as[5].ID:
			return 400, "document_parsing_exception"
		}
		return 0, ""
	}
	t.Setenv("KANON_TEST_ES_KEY", "a2lkOnNlY3JldA==")
	r.f.auth = "ApiKey a2lkOnNlY3JldA=="
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeElasticsearch, URL: r.url(), Token: "env:KANON_TEST_ES_KEY"}), t.TempDir())
	defer o.Close()
	ctx := context.Background()
	for _, a := range as {
		if err := o.Write(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	st := waitStats(t, o, "all settled", 10*time.Second, func(st OutputStats) bool { return st.Delivered+st.Failed == 10 })
	if st.Delivered != 9 || st.Failed != 1 || st.Duplicates != 1 || st.Retried != 3 {
		t.Errorf("stats %+v; want 9 delivered (one a 409), 1 failed (the 400), 3 retried (429 once, 503 twice)", st)
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	for i, a := range as {
		want := 1
		switch i {
		case 3:
			want = 2
		case 4:
			want = 3
		}
		if got := r.f.actions[a.ID]; got != want {
			t.Errorf("alert %d sent %d times, want %d (only failed items are sent again)", i, got, want)
		}
	}
	if !strings.Contains(r.f.query, "filter_path=") {
		t.Errorf("bulk query %q has no filter_path", r.f.query)
	}
	if _, ok := r.f.docs[DefaultElasticIndex][as[5].ID]; ok {
		t.Error("the refused document is indexed")
	}
}

// The documents are ECS alerts that Kibana's alert views read.
func TestElasticDocumentShape(t *testing.T) {
	r := newElasticReceiver(t)
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeElasticsearch, URL: r.url() + "/", Index: "logs-kanon.alerts-prod"}), t.TempDir())
	a := slackEventAlert()
	a.Rule.Threat = []Threat{{Framework: "MITRE ATT&CK", Tactic: Ref{ID: "TA0002", Name: "Execution", Reference: "https://attack.mitre.org/tactics/TA0002/"},
		Technique: []Technique{{Ref: Ref{ID: "T1609", Name: "Container Administration Command"}}}}}
	a.Rule.Source = "elastic:63c057cc-339a-11ed-a261-0242ac120002"
	a.Rule.Tags = []string{"Kubernetes"}
	a.Event = map[string]any{
		"@timestamp":  "2026-03-01T12:04:04.9Z",
		"event":       map[string]any{"kind": "event", "action": "create", "outcome": "success", "dataset": "kubernetes.audit_logs"},
		"data_stream": map[string]any{"dataset": "kubernetes.audit_logs", "type": "logs", "namespace": "default"},
		"source":      map[string]any{"ip": []any{"10.0.0.7"}},
		"user":        map[string]any{"name": "alice@example.com"},
		"kubernetes":  map[string]any{"audit": map[string]any{"verb": "create", "objectRef": map[string]any{"resource": "pods"}}},
	}
	g := groupAlert(2, 3)
	for _, x := range []*Alert{a, g} {
		if err := o.Write(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	waitKeys(t, r, 2, 10*time.Second)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Event["event"].(map[string]any)["kind"] != "event" {
		t.Fatal("the alert's event was changed")
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	doc := r.f.docs["logs-kanon.alerts-prod"][a.ID]
	if doc == nil {
		t.Fatalf("no document %s in logs-kanon.alerts-prod: %v", a.ID, r.f.docs)
	}
	get := func(d map[string]any, path string) any {
		var v any = d
		for _, p := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		}
		return v
	}
	want := map[string]any{
		"@timestamp":                       "2026-03-01T12:04:05Z",
		"message":                          a.Title,
		"event.kind":                       "alert",
		"event.module":                     "kanon",
		"event.id":                         a.ID,
		"event.action":                     "create",
		"event.outcome":                    "success",
		"event.dataset":                    "kanon.alerts",
		"event.severity":                   float64(73),
		"event.risk_score":                 float64(73),
		"data_stream.type":                 "logs",
		"data_stream.dataset":              "kanon.alerts",
		"data_stream.namespace":            "prod",
		"rule.id":                          "k8s-pod-exec",
		"rule.name":                        "Exec into a pod",
		"rule.category":                    "query",
		"rule.ruleset":                     "elastic",
		"rule.uuid":                        "63c057cc-339a-11ed-a261-0242ac120002",
		"threat.framework":                 "MITRE ATT&CK",
		"threat.tactic.id":                 []any{"TA0002"},
		"threat.tactic.name":               []any{"Execution"},
		"threat.technique.id":              []any{"T1609"},
		"tags":                             []any{"Kubernetes"},
		"kibana.alert.uuid":                a.ID,
		"kibana.alert.status":              "active",
		"kibana.alert.workflow_status":     "open",
		"kibana.alert.severity":            "critical",
		"kibana.alert.risk_score":          float64(73),
		"kibana.alert.reason":              a.Title,
		"kibana.alert.original_time":       "2026-03-01T12:04:04.9Z",
		"kibana.alert.original_event.kind": "event",
		"kibana.alert.rule.rule_id":        "k8s-pod-exec",
		"kibana.alert.rule.name":           "Exec into a pod",
		"kibana.alert.rule.severity":       "critical",
		"source.ip":                        []any{"10.0.0.7"},
		"user.name":                        "alice@example.com",
		"kubernetes.audit.verb":            "create",
		"orchestrator.cluster.name":        "prod-eu",
		"kanon.alert.id":                   a.ID,
		"kanon.alert.delivery_key":         a.ID,
		"kanon.alert.origin":               "audit.log:42",
		"kanon.alert.fields.username":      "alice@example.com",
	}
	for path, w := range want {
		if got := get(doc, path); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
	gd := r.f.docs["logs-kanon.alerts-prod"][g.DeliveryKey()]
	if gd == nil {
		t.Fatalf("no document %s", g.DeliveryKey())
	}
	for path, w := range map[string]any{
		"kibana.alert.suppression.docs_count": float64(2),
		"kanon.alert.group.count":             float64(3),
		"kanon.alert.delivery_key":            g.DeliveryKey(),
		"event.start":                         "2026-03-01T12:00:00Z",
		"event.end":                           "2026-03-01T12:00:03Z",
	} {
		if got := get(gd, path); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("group document: %s = %#v, want %#v", path, got, w)
		}
	}
}

// OpenSearch takes the same bulk API into its default index (not a data
// stream: no data_stream fields).
func TestOpenSearchIndex(t *testing.T) {
	r := newElasticReceiver(t)
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeOpenSearch, URL: r.url() + "/_bulk"}), t.TempDir())
	a := testAlert(1)
	a.Event["data_stream"] = map[string]any{"dataset": "kubernetes.audit_logs"}
	if err := o.Write(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitKeys(t, r, 1, 10*time.Second)
	o.Close()
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	doc := r.f.docs[DefaultOpenSearchIndex][a.ID]
	if doc == nil {
		t.Fatalf("no document in %s: %v", DefaultOpenSearchIndex, r.f.docs)
	}
	if _, ok := doc["data_stream"]; ok {
		t.Errorf("data_stream in a document of a plain index: %v", doc["data_stream"])
	}
	if ev := doc["event"].(map[string]any); ev["dataset"] != "kanon.alerts" || ev["kind"] != "alert" {
		t.Errorf("event %v", ev)
	}
}

// Flush while a batch is being delivered moves that batch, whole and
// first, to the spool with the queue behind it; when the delivery then
// succeeds, the batch leaves the spool and nothing is sent twice.
func TestBatchInFlightSpilledByFlush(t *testing.T) {
	f := newFakeElastic(t)
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	r := newHTTPReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		entered <- struct{}{}
		<-release
		f.ServeHTTP(w, req)
	}))
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeElasticsearch, URL: r.url(), BatchSize: 5, Timeout: Duration(20 * time.Second)}), t.TempDir())
	defer o.Close()
	ctx := context.Background()
	var as []*Alert
	for i := range 12 {
		as = append(as, testAlert(i))
	}
	if err := o.Write(ctx, as[0]); err != nil {
		t.Fatal(err)
	}
	<-entered // a batch of one is in flight
	for _, a := range as[1:] {
		if err := o.Write(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := o.Stats()[0]; st.SpoolDepth != 12 || st.QueueDepth != 0 {
		t.Fatalf("after Flush: %+v; want the batch in flight and the queue in the spool", st)
	}
	close(release)
	er := elasticReceiver{r, f}
	waitKeys(t, er, 12, 10*time.Second)
	st := waitStats(t, o, "spool drained", 10*time.Second, func(st OutputStats) bool { return st.SpoolDepth == 0 && st.Delivered == 12 })
	if got := er.keys(); !slices.Equal(got, keysOf(as)) {
		t.Fatalf("received %v", got)
	}
	if st.Retried != 0 || st.Duplicates != 0 {
		t.Errorf("stats %+v", st)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests != 4 {
		t.Errorf("%d bulk requests, want 4 (1, then 5, 5, 1)", f.requests)
	}
}
