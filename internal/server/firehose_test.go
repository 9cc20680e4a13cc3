package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

const testFirehoseKey = "fh-access-key-0123456789"

// withFirehose serves the Firehose endpoint with the test's access key.
func withFirehose(c *FirehoseConfig) serverOpt {
	return func(_ *run.Config, sc *Config) {
		if c == nil {
			c = &FirehoseConfig{}
		}
		if c.AccessKeys == nil {
			c.AccessKeys = []string{testFirehoseKey}
		}
		sc.Firehose = c
	}
}

// subscriptionPayload is a CloudWatch Logs subscription payload of the
// EKS cluster's audit stream holding the messages, as the subscription
// filter writes it into a Firehose stream.
func subscriptionPayload(t testing.TB, cluster string, seq int, messages [][]byte) []byte {
	t.Helper()
	type logEvent struct {
		ID        string `json:"id"`
		Timestamp int64  `json:"timestamp"`
		Message   string `json:"message"`
	}
	p := struct {
		MessageType         string     `json:"messageType"`
		Owner               string     `json:"owner"`
		LogGroup            string     `json:"logGroup"`
		LogStream           string     `json:"logStream"`
		SubscriptionFilters []string   `json:"subscriptionFilters"`
		LogEvents           []logEvent `json:"logEvents"`
	}{"DATA_MESSAGE", "123456789012", "/aws/eks/" + cluster + "/cluster", "kube-apiserver-audit-4e9f9d6f9d15381d05d77c5df3f7d329", []string{"kanon"}, nil}
	for i, m := range messages {
		p.LogEvents = append(p.LogEvents, logEvent{fmt.Sprintf("3894612100725419091742633402136758473810152381%05d%05d", seq, i), 1747213953420 + int64(i), string(m)})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// controlMessage is what a subscription filter sends first.
const controlMessage = `{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1747213950000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}`

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// firehoseRequest is a Firehose request body holding the records' data.
func firehoseRequest(t testing.TB, reqID string, datas ...[]byte) []byte {
	t.Helper()
	type rec struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []rec  `json:"records"`
	}{reqID, time.Now().UnixMilli(), nil}
	for _, d := range datas {
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString(d)})
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postFirehose posts body as Firehose does, with the request id header
// and the access key.
func postFirehose(t *testing.T, c *http.Client, url, reqID, key string, body []byte, hdr ...string) response {
	t.Helper()
	h := append([]string{"X-Amz-Firehose-Request-Id", reqID, "X-Amz-Firehose-Protocol-Version", "1.0",
		"X-Amz-Firehose-Source-Arn", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/kanon"}, hdr...)
	if key != "" {
		h = append(h, "X-Amz-Firehose-Access-Key", key)
	}
	return mustPost(t, c, url, body, h...)
}

// checkFirehoseAnswer checks the answer's body as Firehose reads it: the
// request id and a timestamp.
func checkFirehoseAnswer(t *testing.T, r response, reqID string, wantCode int) firehoseAnswer {
	t.Helper()
	var a firehoseAnswer
	if err := json.Unmarshal([]byte(r.body), &a); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	if r.code != wantCode || a.RequestID != reqID || a.Timestamp < time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("answer %d %s, want %d with request id %s and a timestamp", r.code, r.body, wantCode, reqID)
	}
	if (wantCode == 200) != (a.ErrorMessage == "") {
		t.Fatalf("answer %d with errorMessage %q", r.code, a.ErrorMessage)
	}
	return a
}

// The example log delivered through a Firehose stream — subscription
// payloads gzip-compressed in base64 records, several per request, the
// requests out of order, a control message first, a bad record in the
// middle of a request, a request delivered twice under its id and its
// records again under another id — raises the alerts a scan of the same
// payloads raises, once each, with the cluster named by the log group.
func TestFirehoseAlertsMatchScan(t *testing.T) {
	ts := startServer(t, withFirehose(nil))
	lines := exampleLines(t)
	var payloads [][]byte
	for i, seq := 0, 0; i < len(lines); i, seq = i+9, seq+1 {
		payloads = append(payloads, subscriptionPayload(t, "prod-eks", seq, lines[i:min(i+9, len(lines))]))
	}
	type req struct {
		id       string
		body     []byte
		payloads [][]byte
	}
	var reqs []req
	for i := 0; i < len(payloads); i += 3 {
		var datas [][]byte
		if i == 0 {
			datas = append(datas, gzipped(t, []byte(controlMessage)))
		}
		for j, p := range payloads[i:min(i+3, len(payloads))] {
			datas = append(datas, gzipped(t, p))
			if i == 6 && j == 0 {
				// A bad record in the middle: gzip of a cut payload.
				datas = append(datas, gzipped(t, p[:len(p)/2]))
			}
		}
		reqs = append(reqs, req{fmt.Sprintf("a1b2c3d4-0000-4000-8000-%012d", i), firehoseRequest(t, "", datas...), payloads[i:min(i+3, len(payloads))]})
	}
	// Out of order: the requests shuffled (within the lateness, as
	// Firehose's parallel deliveries arrive). The scan reads the same
	// payloads in the same order.
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(reqs), func(i, j int) { reqs[i], reqs[j] = reqs[j], reqs[i] })
	var delivered [][]byte
	for _, r := range reqs {
		delivered = append(delivered, r.payloads...)
	}
	want := scanIDs(t, delivered)
	c := ts.client("")
	for _, r := range reqs {
		checkFirehoseAnswer(t, postFirehose(t, c, ts.url+"/firehose", r.id, testFirehoseKey, r.body), r.id, 200)
	}
	before := ts.d.Stats()
	if before.Bad != 1 || before.Skipped != 1 {
		t.Fatalf("bad %d skipped %d, want the cut payload bad and the control message skipped", before.Bad, before.Skipped)
	}
	// A request delivered again under its id is acknowledged without
	// being evaluated; its records under a new id are dropped as
	// repeated events.
	checkFirehoseAnswer(t, postFirehose(t, c, ts.url+"/firehose", reqs[2].id, testFirehoseKey, reqs[2].body), reqs[2].id, 200)
	if st := ts.d.Stats(); st.Records != before.Records {
		t.Fatalf("a request delivered again under its id was read again: %d records, then %d", before.Records, st.Records)
	}
	checkFirehoseAnswer(t, postFirehose(t, c, ts.url+"/firehose", "other-id", testFirehoseKey, reqs[2].body), "other-id", 200)
	if st := ts.d.Stats(); st.Duplicates == 0 || st.Events != before.Events {
		t.Fatalf("records delivered again: %d duplicates, events %d then %d", st.Duplicates, before.Events, st.Events)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := distinctIDs(ts.col.Alerts)
	if len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Firehose alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
	checkCluster(t, ts.col.Alerts, "aws", "prod-eks")
}

// distinctIDs are the sorted ids of the alerts, each once (serve delivers
// a dedup group's first alert and its update under one id).
func distinctIDs(as []*alert.Alert) []string {
	out := ids(as)
	var d []string
	for i, id := range out {
		if i == 0 || id != out[i-1] {
			d = append(d, id)
		}
	}
	return d
}

// checkCluster checks the cloud of every alert's event, and that its
// cluster is one of clusters.
func checkCluster(t *testing.T, as []*alert.Alert, cloud string, clusters ...string) {
	t.Helper()
	for _, a := range as {
		if a.Event == nil {
			continue
		}
		orch, _ := a.Event["orchestrator"].(map[string]any)
		cl, _ := orch["cluster"].(map[string]any)
		cp, _ := a.Event["cloud"].(map[string]any)
		name, _ := cl["name"].(string)
		if !slices.Contains(clusters, name) || cp["provider"] != cloud {
			t.Fatalf("alert %s: cluster %v, cloud %v, want one of %v on %s", a.ID, a.Event["orchestrator"], a.Event["cloud"], clusters, cloud)
		}
	}
}

// Only the configured access key is let in; the answers are Firehose's
// shape whatever the status; limits and bad bodies get their codes.
func TestFirehoseRefusals(t *testing.T) {
	ts := startServer(t, withFirehose(&FirehoseConfig{MaxBodyBytes: 64 << 10}))
	c := ts.client("")
	url := ts.url + "/firehose"
	good := firehoseRequest(t, "", gzipped(t, subscriptionPayload(t, "prod-eks", 0, exampleLines(t)[:3])))
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-nokey", "", good), "r-nokey", 401)
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-badkey", "guess", good), "r-badkey", 403)
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-bearer", "", good, "Authorization", "Bearer s3cret-token"), "r-bearer", 401)
	if ts.d.Stats().Records != 0 {
		t.Fatal("a refused request was read")
	}
	// The body limit holds for the body as sent and as decompressed.
	huge := firehoseRequest(t, "", bytes.Repeat([]byte("x"), 100<<10))
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-huge", testFirehoseKey, huge), "r-huge", 413)
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-bomb", testFirehoseKey, gzipped(t, huge), "Content-Encoding", "gzip"), "r-bomb", 413)
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-json", testFirehoseKey, []byte(`{"records":[{"data":`)), "r-json", 400)
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-allbad", testFirehoseKey, firehoseRequest(t, "", []byte("not json"))), "r-allbad", 400)
	checkFirehoseAnswer(t, postFirehose(t, c, url, "", testFirehoseKey, good), "", 400)
	// The request id of the body stands in for a missing header.
	checkFirehoseAnswer(t, postFirehose(t, c, url, "", testFirehoseKey, firehoseRequest(t, "r-body", gzipped(t, subscriptionPayload(t, "x", 1, exampleLines(t)[:1])))), "r-body", 200)
	// Compressed bodies are taken.
	checkFirehoseAnswer(t, postFirehose(t, c, url, "r-gzip", testFirehoseKey, gzipped(t, good), "Content-Encoding", "gzip"), "r-gzip", 200)
	if st := ts.d.Stats(); st.Events != 3 || st.Duplicates != 1 {
		t.Fatalf("events %d, duplicates %d: want 3 and the first event again", st.Events, st.Duplicates)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Amz-Firehose-Access-Key", testFirehoseKey)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

// A request acknowledged before a restart, delivered again to a new
// server on the same store (its answer was lost), is acknowledged without
// being evaluated: its id was committed with its state.
func TestFirehoseRedeliveryAcrossRestarts(t *testing.T) {
	st := mem.New()
	onStore := func(dc *run.Config, _ *Config) { dc.Store = st }
	body := firehoseRequest(t, "", gzipped(t, subscriptionPayload(t, "prod-eks", 0, exampleLines(t))))
	first := startServer(t, withFirehose(nil), onStore)
	checkFirehoseAnswer(t, postFirehose(t, first.client(""), first.url+"/firehose", "req-1", testFirehoseKey, body), "req-1", 200)
	if len(first.col.Alerts) == 0 {
		t.Fatal("no alerts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first.s.Shutdown(ctx)
	if err := first.d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	pos, err := state.NewPositions(st, "delivery:firehose")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok, err := pos.Get(ctx, "req-1"); err != nil || !ok || p.Line != 1 {
		t.Fatalf("the request's id in the store: %v %v %v", p, ok, err)
	}
	second := startServer(t, withFirehose(nil), onStore)
	checkFirehoseAnswer(t, postFirehose(t, second.client(""), second.url+"/firehose", "req-1", testFirehoseKey, body), "req-1", 200)
	if s := second.d.Stats(); s.Records != 0 || len(second.col.Alerts) != 0 {
		t.Fatalf("the redelivery was evaluated: %d records, %d alerts", s.Records, len(second.col.Alerts))
	}
	// Another request is evaluated as ever.
	checkFirehoseAnswer(t, postFirehose(t, second.client(""), second.url+"/firehose", "req-2", testFirehoseKey, body), "req-2", 200)
	if s := second.d.Stats(); s.Records != 1 {
		t.Fatalf("a new request: %d records", s.Records)
	}
}
