package main

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
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
