package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/server/servertest"
	"github.com/kanon-dev/kanon/internal/source/sourcetest"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// exampleLines returns the lines of the bundled example log.
func exampleLines(t testing.TB) [][]byte {
	t.Helper()
	b, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			out = append(out, bytes.Clone(sc.Bytes()))
		}
	}
	return out
}

// eventList wraps audit events into an EventList body.
func eventList(items [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(it)
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

// scanIDs scans the lines as kanon scan does (the driver's Files source
// under the batch policy) and returns the sorted alert ids.
func scanIDs(t testing.TB, lines [][]byte) []string {
	t.Helper()
	var col alert.Collector
	d, err := run.New(run.Config{Rules: builtinRules(t), Registry: formats.Registry(), Sink: &col, Policy: run.TestPolicy(), Dedup: run.DefaultDedup})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Run(ctx, &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(bytes.Join(lines, []byte("\n")))}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return ids(col.Alerts)
}

func ids(as []*alert.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	sort.Strings(out)
	return out
}

// testServer is a driver and a TLS webhook on 127.0.0.1.
type testServer struct {
	pki  *servertest.PKI
	url  string
	d    *run.Driver
	s    *Server
	col  *alert.Collector
	sink alert.Sink
}

type serverOpt func(*run.Config, *Config)

func startServer(t *testing.T, opts ...serverOpt) *testServer {
	t.Helper()
	ts := &testServer{pki: servertest.WritePKI(t, t.TempDir()), col: &alert.Collector{}}
	quiet := slog.New(slog.DiscardHandler)
	pol := run.LivePolicy(run.DefaultLiveLateness)
	pol.IdleCheck = time.Hour
	dc := run.Config{Rules: builtinRules(t), Store: mem.New(), Sink: ts.col, Registry: formats.Registry(), Policy: pol,
		Dedup: run.DefaultDedup, Logger: quiet}
	sc := Config{Tokens: []string{"s3cret-token"}, Cluster: "default-cluster", Logger: quiet}
	for _, o := range opts {
		o(&dc, &sc)
	}
	d, err := run.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	sc.Driver = d
	s, err := New(sc)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := LoadCertificate(TLSFiles{CertFile: ts.pki.ServerCert, KeyFile: ts.pki.ServerKey, ClientCAFile: ts.pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cert.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen("127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	ts.url, ts.d, ts.s = "https://"+addr.String(), d, s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		d.Close(ctx)
	})
	return ts
}

func (ts *testServer) client(cert string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: ts.pki.ClientTLS(cert)}}
}

type response struct {
	code       int
	body       string
	retryAfter string
}

func post(t *testing.T, c *http.Client, url string, body []byte, hdr ...string) (response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(b), resp.Header.Get("Retry-After")}, nil
}

func mustPost(t *testing.T, c *http.Client, url string, body []byte, hdr ...string) response {
	t.Helper()
	r, err := post(t, c, url, body, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Only a client certificate of the configured CA or a configured bearer
// token is let in.
func TestWebhookAuthentication(t *testing.T) {
	ts := startServer(t)
	body := eventList(exampleLines(t)[:3])
	cases := []struct {
		name, cert string
		hdr        []string
		want       int
	}{
		{"client certificate", "client", nil, 200},
		{"bearer token", "", []string{"Authorization", "Bearer s3cret-token"}, 200},
		{"bearer, any case (RFC 7235)", "", []string{"Authorization", "bearer s3cret-token"}, 200},
		{"BEARER", "", []string{"Authorization", "BEARER s3cret-token"}, 200},
		{"no credentials", "", nil, 401},
		{"wrong token", "", []string{"Authorization", "Bearer guess"}, 403},
		{"basic auth", "", []string{"Authorization", "Basic a2Fub246cHc="}, 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustPost(t, ts.client(c.cert), ts.url+"/audit", body, c.hdr...)
			if r.code != c.want {
				t.Fatalf("status %d (%s), want %d", r.code, r.body, c.want)
			}
		})
	}
	// A certificate of another CA is not let in (Go's client does not
	// even offer it: it is not signed by a CA the server asks for).
	if r, err := post(t, ts.client("rogue"), ts.url+"/audit", body); err == nil && r.code != 401 {
		t.Fatalf("a certificate of another CA got %d", r.code)
	}
	// Plain HTTP to the TLS port is refused too.
	if r, err := post(t, http.DefaultClient, "http"+strings.TrimPrefix(ts.url, "https")+"/audit", body); err == nil && r.code == 200 {
		t.Fatal("plain HTTP was accepted")
	}
}

// The example log posted in batches over mutual TLS raises the alerts that
// a scan of it raises, with the same ids; the cluster of the path is
// stamped on the events.
func TestWebhookAlertsMatchScan(t *testing.T) {
	ts := startServer(t)
	lines := exampleLines(t)
	c := ts.client("client")
	for i := 0; i < len(lines); i += 37 {
		r := mustPost(t, c, ts.url+"/audit/prod-eu", eventList(lines[i:min(i+37, len(lines))]))
		if r.code != 200 {
			t.Fatalf("batch %d: status %d: %s", i, r.code, r.body)
		}
		var ack ackBody
		if err := json.Unmarshal([]byte(r.body), &ack); err != nil || ack.Events != min(37, len(lines)-i) || ack.Bad != 0 {
			t.Fatalf("batch %d: answer %s", i, r.body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := ids(ts.col.Alerts), scanIDs(t, lines)
	if len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("webhook alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for _, a := range ts.col.Alerts {
		if a.Event == nil {
			continue
		}
		orch, _ := a.Event["orchestrator"].(map[string]any)
		cl, _ := orch["cluster"].(map[string]any)
		if cl["name"] != "prod-eu" {
			t.Fatalf("alert %s: cluster %v, want prod-eu", a.ID, a.Event["orchestrator"])
		}
	}
}

// Malformed bodies get 400 with the reason; a bad record inside a good
// batch is counted and the rest evaluated; limits give 405, 413, 415, 404.
func TestWebhookBadRequests(t *testing.T) {
	ts := startServer(t, func(_ *run.Config, c *Config) { c.MaxBodyBytes = 64 << 10 })
	c := ts.client("client")
	lines := exampleLines(t)
	check := func(name string, r response, code int, contains string) {
		t.Helper()
		if r.code != code || !strings.Contains(r.body, contains) {
			t.Errorf("%s: status %d body %q; want %d containing %q", name, r.code, r.body, code, contains)
		}
	}
	check("not JSON", mustPost(t, c, ts.url+"/audit", []byte(`{"kind":"EventList","items":[`)), 400, "malformed body")
	check("empty", mustPost(t, c, ts.url+"/audit", nil), 400, "empty body")
	check("unknown shape", mustPost(t, c, ts.url+"/audit", []byte(`{"hello":"world"}`)), 400, "no reader recognises")
	check("one bad item", mustPost(t, c, ts.url+"/audit", eventList([][]byte{lines[0], []byte(`{"kind":"Event","stageTimestamp":42}`), lines[1]})), 200, `"events":2,"bad":1`)
	check("too large", mustPost(t, c, ts.url+"/audit", eventList(lines)), 413, "over the limit")
	check("content type", mustPost(t, c, ts.url+"/audit", eventList(lines[:1]), "Content-Type", "application/vnd.kubernetes.protobuf"), 415, "application/json")
	check("bad cluster", mustPost(t, c, ts.url+"/audit/bad%20name", eventList(lines[:1])), 404, "invalid cluster name")
	resp, err := c.Get(ts.url + "/audit")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}

// blockingSink holds the engine until released.
type blockingSink struct {
	alert.Collector
	gate chan struct{}
	once sync.Once
	in   chan struct{}
}

func (b *blockingSink) Write(ctx context.Context, a *alert.Alert) error {
	b.once.Do(func() { close(b.in) })
	<-b.gate
	return b.Collector.Write(ctx, a)
}

// When the engine cannot keep up, requests get 429 with Retry-After
// instead of queueing without bound.
func TestWebhookBackpressure(t *testing.T) {
	bs := &blockingSink{gate: make(chan struct{}), in: make(chan struct{})}
	ts := startServer(t, func(p *run.Config, c *Config) {
		p.Sink = bs
		p.QueueSize = 1
		c.MaxInFlight, c.MaxInFlightPerClient = 2, 2
	})
	c := ts.client("client")
	lines := exampleLines(t)
	// The first batch raises an alert and blocks the engine.
	first := make(chan response, 1)
	go func() { first <- mustPost(t, c, ts.url+"/audit", eventList(lines)) }()
	<-bs.in
	// The second waits in the queue; the third finds no room.
	second := make(chan response, 1)
	go func() { second <- mustPost(t, c, ts.url+"/audit", eventList(lines[:1])) }()
	deadline := time.Now().Add(5 * time.Second)
	for ts.d.Queued() < 1 || ts.s.slots.inUse() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second batch did not reach the queue")
		}
		time.Sleep(time.Millisecond)
	}
	var r response
	for time.Now().Before(deadline) {
		r = mustPost(t, c, ts.url+"/audit", eventList(lines[:1]))
		if r.code == 429 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.code != 429 || r.retryAfter == "" {
		t.Fatalf("overloaded: status %d, Retry-After %q; want 429 with Retry-After", r.code, r.retryAfter)
	}
	close(bs.gate)
	if r := <-first; r.code != 200 {
		t.Fatalf("first batch: %d %s", r.code, r.body)
	}
	if r := <-second; r.code != 200 {
		t.Fatalf("second batch: %d %s", r.code, r.body)
	}
}

// /healthz, /readyz and /metrics; after Shutdown, /readyz fails.
func TestHealthAndMetrics(t *testing.T) {
	ts := startServer(t)
	c := ts.client("")
	if r := mustPost(t, ts.client("client"), ts.url+"/audit/prod", eventList(exampleLines(t))); r.code != 200 {
		t.Fatal(r.body)
	}
	get := func(path string) (int, string) {
		resp, err := c.Get(ts.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	code, m := get("/metrics")
	if code != 200 {
		t.Fatalf("metrics %d", code)
	}
	n := len(exampleLines(t))
	for _, want := range []string{
		fmt.Sprintf(`kanon_events_received_total{cluster="prod",input="webhook"} %d`, n),
		fmt.Sprintf(`kanon_events_evaluated_total{cluster="prod",input="webhook"} %d`, n),
		`kanon_alerts_total{cluster="prod",rule="elastic-k8s-anonymous-request-authorized",severity="medium"}`,
		`kanon_webhook_requests_total{code="200"} 1`,
		`kanon_webhook_batch_events_count 1`,
		`kanon_evaluation_seconds_count`,
		`kanon_alert_latency_seconds_count`,
		`kanon_state_entries`,
		`kanon_rules_loaded 4`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.s.draining.Store(true)
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("readyz while draining: %d", code)
	}
	if r := mustPost(t, ts.client("client"), ts.url+"/audit", eventList(exampleLines(t)[:1])); r.code != 503 || r.retryAfter == "" {
		t.Fatalf("post while draining: %d %q", r.code, r.retryAfter)
	}
	ts.s.Shutdown(ctx)
}

// Every good item of a batch is evaluated whatever its neighbours hold: a
// bad items[0], an item that is not an audit event anywhere — each costs
// itself only, is named in the answer by its index, and the batch is
// answered 200 once the good items are durable; an item that repeats a
// key is read both ways, not dropped.
func TestWebhookBadItemsCostOnlyThemselves(t *testing.T) {
	ts := startServer(t)
	c := ts.client("client")
	all := exampleLines(t)
	// Each case has events of its own: the redelivery dedup would drop
	// events posted twice.
	lines := func(k int) [][]byte { return all[k*10 : k*10+10] }
	dup := []byte(strings.Replace(string(lines(0)[4]), `"user":{`, `"user":{"username":"x","username":"y",`, 1))
	cases := []struct {
		name  string
		items [][]byte
		bad   int
		names []string
	}{
		// A repeated key is no bad item: the item is read both ways.
		{"duplicate key in items[4]", replaceItem(lines(0), 4, dup), 0, nil},
		{"bad items[0]", replaceItem(lines(1), 0, []byte(`{"kind":"Event","stageTimestamp":42,"auditID":"q","stage":"ResponseComplete"}`)), 1, []string{":1: "}},
		{"not an event, first and later", replaceItem(replaceItem(lines(2), 0, []byte(`{"foo":1}`)), 5, []byte(`{"foo":1}`)), 2, []string{"items[0]", "items[5]"}},
		{"a number", replaceItem(lines(3), 7, []byte(`7`)), 1, []string{"items[7]"}},
	}
	for _, cs := range cases {
		r := mustPost(t, c, ts.url+"/audit", eventList(cs.items))
		var ack ackBody
		if err := json.Unmarshal([]byte(r.body), &ack); r.code != 200 || err != nil {
			t.Fatalf("%s: status %d %s", cs.name, r.code, r.body)
		}
		if ack.Events != len(cs.items)-cs.bad || ack.Bad != cs.bad {
			t.Fatalf("%s: %d events, %d bad; want %d and %d: %s", cs.name, ack.Events, ack.Bad, len(cs.items)-cs.bad, cs.bad, r.body)
		}
		for _, n := range cs.names {
			if !strings.Contains(r.body, n) {
				t.Errorf("%s: the answer does not name %q: %s", cs.name, n, r.body)
			}
		}
	}
}

func replaceItem(items [][]byte, i int, with []byte) [][]byte {
	out := append([][]byte{}, items...)
	out[i] = with
	return out
}

// failingStore fails every Update while failing is set: a full disk.
type failingStore struct {
	state.Store
	failing atomic.Bool
}

func (f *failingStore) Update(ctx context.Context, now time.Time, fn func(state.Tx) error) error {
	if f.failing.Load() {
		return errors.New("no space left on device")
	}
	return f.Store.Update(ctx, now, fn)
}

// /readyz fails while the state store cannot be written, and batches get
// 503 (kube-apiserver keeps and resends them) instead of 500 for each.
func TestReadyzFollowsTheStore(t *testing.T) {
	fs := &failingStore{Store: mem.New()}
	ts := startServer(t, func(dc *run.Config, _ *Config) { dc.Store = fs; dc.Policy.IdleCheck = 10 * time.Millisecond })
	c := ts.client("client")
	fs.failing.Store(true)
	if r := mustPost(t, c, ts.url+"/audit", eventList(exampleLines(t)[:20])); r.code != 500 {
		t.Fatalf("the first batch on a failing store: %d %s", r.code, r.body)
	}
	readyz := func() (int, string) {
		resp, err := c.Get(ts.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != 503 || !strings.Contains(body, "state store cannot be written") {
		t.Fatalf("readyz on a failing store: %d %s", code, body)
	}
	if r := mustPost(t, c, ts.url+"/audit", eventList(exampleLines(t)[20:30])); r.code != 503 || r.retryAfter == "" {
		t.Fatalf("a batch while the store fails: %d %s", r.code, r.body)
	}
	fs.failing.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for code, _ := readyz(); code != 200; code, _ = readyz() {
		if time.Now().After(deadline) {
			t.Fatal("readyz still fails after the store recovered")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An item that gives its username twice — anonymous, then not — raises the
// anonymous alert through the webhook, and the alert says which fields the
// two readings of the item disagree on.
func TestWebhookRepeatedUsername(t *testing.T) {
	ts := startServer(t)
	item := []byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"twice","stage":"ResponseComplete","requestURI":"/api/v1/secrets","verb":"list",` +
		`"user":{"username":"system:anonymous","username":"alice"},"sourceIPs":["198.51.100.9"],"userAgent":"curl/8",` +
		`"objectRef":{"resource":"secrets","apiVersion":"v1"},"responseStatus":{"code":200},"stageTimestamp":"2025-05-14T10:00:00Z",` +
		`"annotations":{"authorization.k8s.io/decision":"allow"}}`)
	r := mustPost(t, ts.client("client"), ts.url+"/audit", eventList([][]byte{item}))
	if r.code != 200 || !strings.Contains(r.body, `"events":1,"bad":0`) {
		t.Fatalf("status %d %s", r.code, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range ts.col.Alerts {
		if a.Rule.ID != "elastic-k8s-anonymous-request-authorized" {
			continue
		}
		amb, ok := a.Fields.Get("ambiguous_fields")
		if list, _ := amb.([]string); !ok || !slices.Contains(list, "kubernetes.audit.user.username") {
			t.Fatalf("alert without the ambiguity: %v", a.Fields)
		}
		found = true
	}
	if !found {
		t.Fatalf("no anonymous alert for the repeated username: %d alerts", len(ts.col.Alerts))
	}
}

// A webhook body sent again after its batch was durable — kube-apiserver
// retrying a batch whose answer it lost, before or after a restart — is
// acknowledged without evaluating it again: the events' redelivery dedup
// lives in memory, and a second evaluation after a restart would count the
// events again in an ES|QL window. Another body is evaluated as ever.
func TestWebhookRedeliveryAcrossRestarts(t *testing.T) {
	st := mem.New()
	onStore := func(dc *run.Config, _ *Config) { dc.Store = st }
	lines := exampleLines(t)
	body := eventList(lines)
	first := startServer(t, onStore)
	c := first.client("client")
	if r := mustPost(t, c, first.url+"/audit", body); r.code != 200 || strings.Contains(r.body, "repeated") {
		t.Fatalf("first delivery: %d %s", r.code, r.body)
	}
	if len(first.col.Alerts) == 0 {
		t.Fatal("no alerts")
	}
	records := first.d.Stats().Records
	if r := mustPost(t, c, first.url+"/audit", body); r.code != 200 || !strings.Contains(r.body, `"repeated":true`) {
		t.Fatalf("the same body again, same process: %d %s", r.code, r.body)
	}
	if got := first.d.Stats().Records; got != records {
		t.Fatalf("the repeated body was evaluated: %d records, then %d", records, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first.s.Shutdown(ctx)
	if err := first.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, onStore)
	c = second.client("client")
	if r := mustPost(t, c, second.url+"/audit", body); r.code != 200 || !strings.Contains(r.body, `"repeated":true`) {
		t.Fatalf("the same body after a restart: %d %s", r.code, r.body)
	}
	if s := second.d.Stats(); s.Records != 0 || len(second.col.Alerts) != 0 {
		t.Fatalf("the redelivery was evaluated: %d records, %d alerts", s.Records, len(second.col.Alerts))
	}
	// The same body for another cluster, and another body, are new.
	if r := mustPost(t, c, second.url+"/audit/other", body); r.code != 200 || strings.Contains(r.body, "repeated") {
		t.Fatalf("another cluster: %d %s", r.code, r.body)
	}
	if r := mustPost(t, c, second.url+"/audit", eventList(lines[1:])); r.code != 200 || strings.Contains(r.body, "repeated") {
		t.Fatalf("another body: %d %s", r.code, r.body)
	}
	if got := second.d.Stats().Records; got != int64(2*len(lines)-1) {
		t.Fatalf("records evaluated after the restart: %d, want %d", got, 2*len(lines)-1)
	}
	mr := mustPost(t, c, second.url+"/metrics", nil)
	if !strings.Contains(mr.body, `kanon_deliveries_repeated_total{endpoint="webhook"} 1`) {
		t.Fatalf("repeated deliveries not counted:\n%s", mr.body)
	}
}

func builtinRules(t testing.TB) []*rule.Compiled { return sourcetest.BuiltinRules(t) }
