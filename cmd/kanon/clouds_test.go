package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/kanon-dev/kanon/internal/source/cloudwatch/cloudwatchtest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// scanNormal runs kanon scan on the records (one JSON value per line) and
// returns its alerts as normalAlerts reads them.
func scanNormal(t *testing.T, bin string, records [][]byte) map[string]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "records.jsonl")
	if err := os.WriteFile(path, append(bytes.Join(records, []byte("\n")), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "scan", "-o", "jsonl", "-q", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("kanon scan: %v\n%s", err, stderr.String())
	}
	return normalAlerts(t, out)
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// firehoseBody is a Firehose request holding each data as a record.
func firehoseBody(t *testing.T, datas ...[]byte) []byte {
	t.Helper()
	type rec struct {
		Data string `json:"data"`
	}
	var recs []rec
	for _, d := range datas {
		recs = append(recs, rec{base64.StdEncoding.EncodeToString(d)})
	}
	b, err := json.Marshal(map[string]any{"requestId": "", "timestamp": time.Now().UnixMilli(), "records": recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func alertLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// kanon serve's Firehose endpoint, over HTTPS with a real client: the
// replay log and the EKS sample as CloudWatch Logs subscription payloads,
// gzip in base64 records, three per request — a control message, a bad
// record in the middle of a request, a request delivered twice under its
// id, a wrong access key (403), an oversized body (413) — raise the
// alerts kanon scan raises on the same payloads. After a restart on the
// same state, a request delivered again is acknowledged and raises
// nothing.
func TestServeFirehoseParity(t *testing.T) {
	bin := kanonBinary(t)
	sample, err := os.ReadFile("../../../shared/anchors/cloud-samples/eks-cloudwatch-subscription.json")
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{compactJSON(t, sample)}
	lines := replayLines(t)
	for i, seq := 0, 1; i < len(lines); i, seq = i+20, seq+1 {
		payloads = append(payloads, cloudWatchPayload(t, seq, stringsOf(lines[i:min(i+20, len(lines))])))
	}
	scanned := scanNormal(t, bin, payloads)
	if len(scanned) < 10 {
		t.Fatalf("the scan raised %d alerts", len(scanned))
	}

	t.Setenv("KANON_TEST_FIREHOSE_KEY", "fh-key-of-the-delivery-stream")
	e := newServeEnv(t)
	args := append(e.tlsArgs(), "--firehose-access-key", "env:KANON_TEST_FIREHOSE_KEY", "--firehose-max-body-bytes", "4MiB")
	p := startServe(t, bin, true, args...)
	url := "https://" + p.waitAddr(t) + "/firehose"
	c := e.client("")
	post := func(reqID, key string, body []byte) (int, map[string]any) {
		t.Helper()
		code, resp, err := postBody(c, url, body, "X-Amz-Firehose-Request-Id", reqID, "X-Amz-Firehose-Access-Key", key,
			"X-Amz-Firehose-Protocol-Version", "1.0")
		if err != nil {
			t.Fatal(err)
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(resp), &a); err != nil || a["requestId"] != reqID || a["timestamp"] == nil {
			t.Fatalf("request %s: answer %d %q is not Firehose's shape", reqID, code, resp)
		}
		return code, a
	}
	var bodies [][]byte
	for i := 0; i < len(payloads); i += 3 {
		var datas [][]byte
		if i == 0 {
			datas = append(datas, gzipBytes(t, []byte(`{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1747213950000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}`)))
		}
		for j, pl := range payloads[i:min(i+3, len(payloads))] {
			datas = append(datas, gzipBytes(t, pl))
			if i == 3 && j == 0 {
				datas = append(datas, []byte("{not gzip, not JSON"))
			}
		}
		bodies = append(bodies, firehoseBody(t, datas...))
	}
	for i, b := range bodies {
		id := fmt.Sprintf("fh-req-%d", i)
		if code, a := post(id, "fh-key-of-the-delivery-stream", b); code != 200 {
			t.Fatalf("request %d: %d %v", i, code, a)
		}
		if i == 1 {
			if code, _ := post(id, "fh-key-of-the-delivery-stream", b); code != 200 {
				t.Fatalf("request %d again: %d", i, code)
			}
		}
	}
	if code, _ := post("fh-wrong", "guessed-key", bodies[0]); code != 403 {
		t.Fatalf("wrong access key: %d", code)
	}
	if code, _ := post("fh-huge", "fh-key-of-the-delivery-stream", firehoseBody(t, bytes.Repeat([]byte{'x'}, 4<<20))); code != 413 {
		t.Fatalf("oversized body: %d", code)
	}
	p.stop(t)
	got, err := os.ReadFile(e.alerts)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffAlerts(scanned, normalAlerts(t, got)); d != "" {
		t.Fatalf("the Firehose endpoint's alerts differ from the scan's:\n%s", d)
	}
	if !strings.Contains(p.log(), "bad records in a Firehose request") {
		t.Fatalf("the bad record was not reported:\n%s", p.log())
	}

	// Restart on the same state: the answer to fh-req-2 was lost, and
	// Firehose delivers it again.
	n := alertLines(t, e.alerts)
	p = startServe(t, bin, true, args...)
	url = "https://" + p.waitAddr(t) + "/firehose"
	if code, _ := post("fh-req-2", "fh-key-of-the-delivery-stream", bodies[2]); code != 200 {
		t.Fatalf("redelivery after a restart: %d", code)
	}
	p.stop(t)
	if m := alertLines(t, e.alerts); m != n {
		t.Fatalf("a redelivery after a restart raised %d alerts", m-n)
	}
}

func stringsOf(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// kanon serve's Pub/Sub push endpoint, over HTTPS with a real client and
// tokens signed by a key whose JWKS a local server serves: the GKE
// sample's entries pushed one per message, out of order, a bad message in
// the middle (acknowledged, counted as bad), one pushed twice (acknowledged, not evaluated), wrong
// tokens (401, 403), raise the alerts kanon scan raises on the entries.
func TestServePubSubParity(t *testing.T) {
	bin := kanonBinary(t)
	b, err := os.ReadFile("../../../shared/anchors/cloud-samples/gke-logentry.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for _, i := range []int{4, 1, 0, 5, 3, 2} { // out of order
		entries = append(entries, compactJSON(t, raw[i]))
	}
	scanned := scanNormal(t, bin, entries)
	if len(scanned) < 2 {
		t.Fatalf("the scan raised %d alerts", len(scanned))
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(set) }))
	defer jwks.Close()
	const aud = "https://kanon.example.com/pubsub"
	sign := func(aud string, exp time.Time) string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(sig).Claims(map[string]any{"iss": "https://accounts.google.com", "aud": aud, "exp": exp.Unix(),
			"iat": time.Now().Add(-time.Minute).Unix(), "email": "push@p.iam.gserviceaccount.com", "email_verified": true}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	e := newServeEnv(t)
	p := startServe(t, bin, true, append(e.tlsArgs(), "--pubsub-audience", aud, "--pubsub-jwks-url", jwks.URL,
		"--pubsub-service-account", "push@p.iam.gserviceaccount.com")...)
	url := "https://" + p.waitAddr(t) + "/pubsub"
	c := e.client("")
	push := func(id string, data []byte, tok string) int {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"message": map[string]any{"data": base64.StdEncoding.EncodeToString(data),
			"messageId": id, "publishTime": "2021-04-29T08:19:22Z"}, "subscription": "projects/p/subscriptions/gke-audit"})
		var hdr []string
		if tok != "" {
			hdr = []string{"Authorization", "Bearer " + tok}
		}
		code, _, err := postBody(c, url, body, hdr...)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	good := sign(aud, time.Now().Add(time.Hour))
	for i, en := range entries {
		if code := push(fmt.Sprint(7000+i), en, good); code != 200 {
			t.Fatalf("entry %d: %d", i, code)
		}
		if i == 2 {
			if code := push("bad-1", []byte(`{"insertId":`), good); code != 200 {
				t.Fatalf("bad message: %d", code)
			}
			if code := push(fmt.Sprint(7000+i), en, good); code != 200 {
				t.Fatalf("redelivery: %d", code)
			}
		}
	}
	for _, c := range []struct {
		tok  string
		want int
	}{{"", 401}, {sign(aud, time.Now().Add(-time.Hour)), 401}, {sign("https://elsewhere.example.com", time.Now().Add(time.Hour)), 403}} {
		if code := push("x-1", entries[0], c.tok); code != c.want {
			t.Fatalf("token %q: %d, want %d", c.tok, code, c.want)
		}
	}
	p.stop(t)
	got, err := os.ReadFile(e.alerts)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffAlerts(scanned, normalAlerts(t, got)); d != "" {
		t.Fatalf("the push endpoint's alerts differ from the scan's:\n%s", d)
	}
}

// evaluatedOf sums kanon_events_evaluated_total of one input over its
// clusters.
func evaluatedOf(t *testing.T, base, input string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`kanon_events_evaluated_total\{cluster="[^"]*",input="` + regexp.QuoteMeta(input) + `"\} (\d+)`)
	n := 0
	for _, m := range re.FindAllSubmatch(b, -1) {
		k, _ := strconv.Atoi(string(m[1]))
		n += k
	}
	return n
}

// waitInput waits until n events of input were evaluated, and checks
// that no more come.
func waitInput(t *testing.T, p *serveProc, base, input string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := evaluatedOf(t, base, input); got >= n {
			time.Sleep(300 * time.Millisecond)
			if got := evaluatedOf(t, base, input); got != n {
				t.Fatalf("%d events of %s evaluated, want %d", got, input, n)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%d events of %s evaluated, want %d\n%s", evaluatedOf(t, base, input), input, n, p.log())
}

// kanon serve --source cloudwatch://, against a local endpoint speaking
// CloudWatch Logs' JSON 1.1 protocol that throttles every third call: the
// replay log in two audit streams of an EKS log group raises the alerts
// kanon scan raises on the same events (as the subscription payloads of
// the streams). Started again on the same state, it reads nothing again.
func TestServeCloudWatchParity(t *testing.T) {
	bin := kanonBinary(t)
	cloudwatchtest.Credentials(t)
	const group = "/aws/eks/replay-eks/cluster"
	f := cloudwatchtest.New(t, group, 25)
	f.ThrottleEvery(3)
	lines := replayLines(t)
	half := len(lines) / 2
	var scanRecs [][]byte
	for i, part := range [][][]byte{lines[:half], lines[half:]} {
		stream := fmt.Sprintf("kube-apiserver-audit-%04d", i)
		var evs []cloudwatchtest.Event
		for j, l := range part {
			evs = append(evs, cloudwatchtest.Event{Timestamp: 1714986000000 + int64(j/4), Message: string(l)})
		}
		f.Add(stream, evs...)
		type logEvent struct {
			Timestamp int64  `json:"timestamp"`
			Message   string `json:"message"`
		}
		p := map[string]any{"messageType": "DATA_MESSAGE", "logGroup": group, "logStream": stream}
		var les []logEvent
		for _, e := range evs {
			les = append(les, logEvent{e.Timestamp, e.Message})
		}
		p["logEvents"] = les
		b, _ := json.Marshal(p)
		scanRecs = append(scanRecs, b)
	}
	scanned := scanNormal(t, bin, scanRecs)
	if len(scanned) < 10 {
		t.Fatalf("the scan raised %d alerts", len(scanned))
	}
	e := newServeEnv(t)
	src := "cloudwatch://eu-west-1/aws/eks/replay-eks/cluster?poll=50ms&since=87600h&endpoint=" + f.URL
	args := []string{"--listen", "", "--insecure-listen", "127.0.0.1:0", "--source", src, "--state-dir", e.state, "--output", "file:" + e.alerts}
	p := startServe(t, bin, true, args...)
	base := "http://" + p.waitAddr(t)
	waitInput(t, p, base, "cloudwatch", len(lines))
	p.stop(t)
	if f.Throttled() == 0 {
		t.Fatal("no call was throttled")
	}
	got, err := os.ReadFile(e.alerts)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffAlerts(scanned, normalAlerts(t, got)); d != "" {
		t.Fatalf("the polled alerts differ from the scan's:\n%s", d)
	}
	n := alertLines(t, e.alerts)
	p = startServe(t, bin, true, args...)
	base = "http://" + p.waitAddr(t)
	p.waitLog(t, `"source":"`+src)
	time.Sleep(500 * time.Millisecond) // a few polls
	if k := evaluatedOf(t, base, "cloudwatch"); k != 0 {
		t.Fatalf("%d events read again after a restart", k)
	}
	p.stop(t)
	if m := alertLines(t, e.alerts); m != n {
		t.Fatalf("%d alerts raised again after a restart", m-n)
	}
}

// kanon serve --source pubsub://, against the Pub/Sub library's in-process
// fake server (pstest, reached through PUBSUB_EMULATOR_HOST, as an
// emulator is): the GKE sample published one entry per message raises the
// alerts kanon scan raises on the same entries; every message is
// acknowledged.
func TestServePubSubPullParity(t *testing.T) {
	bin := kanonBinary(t)
	srv := pstest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := gps.NewClient(ctx, "kanon-test", option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := "projects/kanon-test/topics/gke-audit"
	if _, err := cl.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: "projects/kanon-test/subscriptions/kanon", Topic: topic}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("../../../shared/anchors/cloud-samples/gke-logentry.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for _, i := range []int{2, 5, 0, 4, 1, 3} {
		entries = append(entries, compactJSON(t, raw[i]))
		srv.Publish(topic, entries[len(entries)-1], nil)
	}
	scanned := scanNormal(t, bin, entries)
	if len(scanned) < 2 {
		t.Fatalf("the scan raised %d alerts", len(scanned))
	}
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	e := newServeEnv(t)
	p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--source", "pubsub://kanon-test/kanon?max_outstanding=1",
		"--state-dir", e.state, "--output", "file:"+e.alerts)
	base := "http://" + p.waitAddr(t)
	waitInput(t, p, base, "pubsub", len(entries))
	p.stop(t)
	for _, m := range srv.Messages() {
		if m.Acks != 1 {
			t.Fatalf("message %s: %d acks", m.ID, m.Acks)
		}
	}
	got, err := os.ReadFile(e.alerts)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffAlerts(scanned, normalAlerts(t, got)); d != "" {
		t.Fatalf("the pulled alerts differ from the scan's:\n%s", d)
	}
}

// serve --check takes the cloud deliveries' keys and refuses what cannot
// work: unknown or malformed source URLs, a forced format that cannot read
// a delivery, token checks without an audience.
func TestServeCheckCloudSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kanon.yaml")
	if err := os.WriteFile(cfg, []byte(`listen: ""
insecure_listen: 127.0.0.1:8080
no_state: true
sources:
  - cloudwatch://eu-west-1/aws/eks/prod/cluster?poll=2s
  - pubsub://my-project/kanon-pull?max_outstanding=10
firehose:
  access_keys: ["env:KANON_FIREHOSE_KEY"]
pubsub_push:
  audience: https://kanon.example.com/pubsub
  service_accounts: [push@my-project.iam.gserviceaccount.com]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, "", "serve", "--check", "--config", cfg); code != 0 {
		t.Fatalf("a good configuration: exit %d\n%s", code, errOut)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--source", "cloudwatch://eu-west-1/"}, "no log group"},
		{[]string{"--source", "pubsub://p/s?bogus=1"}, "unknown parameter"},
		{[]string{"--source", "s3://bucket/key"}, "unknown scheme"},
		{[]string{"--format", "k8s"}, "use auto or eks"},
		{[]string{"--pubsub-audience", "", "--pubsub-jwks-file", "x.json"}, "audience is required"},
	} {
		_, errOut, code := runCLI(t, "", append([]string{"serve", "--check", "--config", cfg}, c.args...)...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Fatalf("%v: exit %d, want 1 and %q:\n%s", c.args, code, c.want, errOut)
		}
	}
}
