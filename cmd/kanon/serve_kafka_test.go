package main

import (
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/source/kafka/kafkatest"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// deliveredOnce reads the alert files of replicas (deliveries): the
// distinct alert ids, failing the test if a delivery was written twice,
// in one file or across files. A replica killed before it wrote a file
// has none.
func deliveredOnce(t *testing.T, files ...string) []string {
	t.Helper()
	seen := map[string]string{}
	var ids []string
	for _, f := range files {
		if _, err := os.Stat(f); os.IsNotExist(err) {
			continue
		}
		for _, k := range deliveries(t, f) {
			if at, ok := seen[k]; ok {
				t.Fatalf("delivery %s written twice (%s, %s)", k, at, f)
			}
			seen[k] = f
			id, _, _ := strings.Cut(k, "#")
			ids = append(ids, id)
		}
	}
	return distinct(ids)
}

// byClient is the partition of an audit event of three partitions, by
// its user agent: each client's events stay in order, as when producers
// key records by cluster or client. (Across partitions, which of a dedup
// group's alerts arrives first — the one whose id the group takes —
// depends on how the partitions interleave.)
func byClient(v []byte) int32 {
	var e struct {
		UserAgent string `json:"userAgent"`
	}
	json.Unmarshal(v, &e)
	return int32(crc32.ChecksumIEEE([]byte(e.UserAgent)) % 3)
}

// Two kanon serve replicas on one Redis store share a Kafka consumer
// group of a topic of three partitions (kfake, in the test's process).
// One is killed with SIGKILL mid-stream; the other takes its partitions
// once its session expires and reads again what it had not committed.
// Together they write the alerts kanon scan raises on the same events —
// the same ids, each delivery once — and the group ends committed to the
// end of every partition.
func TestServeKafkaReplicasKill(t *testing.T) {
	bin := kanonBinary(t)
	rs := redistest.Start(t)
	kc := kafkatest.Start(t, "audit", 3, nil)
	lines, _ := handoverEvents()
	last := lines[len(lines)-1] // a day later: closes every run and group
	events := lines[:len(lines)-1]
	dir := t.TempDir()
	src := "kafka://" + kc.Addr() + "/audit?group=kanon&max_records=10&session_timeout=6s"
	start := func(name string) (*serveProc, string, string) {
		alerts := filepath.Join(dir, "alerts-"+name+".ndjson")
		p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--source", src,
			"--store", "redis://"+rs.Addr+"/0", "--replica", name, "--state-dir", filepath.Join(dir, name),
			"--lateness", "3h", "--output", "file:"+alerts)
		return p, "http://" + p.waitAddr(t), alerts
	}
	a, baseA, alertsA := start("a")
	b, baseB, alertsB := start("b")
	for _, base := range []string{baseA, baseB} {
		waitReady(t, base)
	}
	kc.WaitMembers(t, "kanon", 2, 30*time.Second)
	half := len(events) / 2
	kc.ProduceBy(t, byClient, events[:half]...)
	deadline := time.Now().Add(30 * time.Second)
	for evaluatedOf(t, baseA, "kafka") <= 0 || evaluatedOf(t, baseB, "kafka") <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the replicas evaluated %d and %d events\n%s\n%s", evaluatedOf(t, baseA, "kafka"), evaluatedOf(t, baseB, "kafka"), a.log(), b.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	kc.ProduceBy(t, byClient, events[half:]...)
	kc.WaitCommitted(t, "kanon", 60*time.Second)
	kc.Produce(t, last, last, last) // one to each partition
	kc.WaitCommitted(t, "kanon", 30*time.Second)
	b.stop(t)

	want := scanAlertIDs(t, bin, lines)
	got := deliveredOnce(t, alertsA, alertsB)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("the replicas' alerts (%d) differ from the scan's (%d): only the replicas' %v, only the scan's %v", len(got), len(want), minus(got, want), minus(want, got))
	}
}

// waitReady waits until base's /readyz answers 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := getBody(base + "/readyz")
		if err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz: %d %s %v", base, code, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kanon serve's /readyz fails while the Kafka brokers cannot be reached,
// and says why.
func TestServeKafkaReadiness(t *testing.T) {
	bin := kanonBinary(t)
	kc := kafkatest.Start(t, "audit", 1, nil)
	addr := kc.Addr()
	kc.Close()
	p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--no-state",
		"--source", "kafka://"+addr+"/audit?group=kanon", "--output", "file:"+filepath.Join(t.TempDir(), "alerts.ndjson"))
	base := "http://" + p.waitAddr(t)
	time.Sleep(200 * time.Millisecond)
	code, body, err := getBody(base + "/readyz")
	if err != nil || code != 503 || !strings.Contains(body, "kafka:audit") {
		t.Fatalf("/readyz without a broker: %d %q %v", code, body, err)
	}
	p.stop(t)
}

// kanon serve's /readyz fails while its Redis store does not answer,
// says so, and passes again once it answers.
func TestServeRedisReadiness(t *testing.T) {
	bin := kanonBinary(t)
	rs := redistest.Start(t)
	p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--store", "redis://"+rs.Addr+"/0?prefix=readiness",
		"--state-dir", t.TempDir(), "--output", "file:"+filepath.Join(t.TempDir(), "alerts.ndjson"))
	base := "http://" + p.waitAddr(t)
	waitReady(t, base)
	rs.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body, err := getBody(base + "/readyz")
		if err == nil && code == 503 && strings.Contains(body, "state store") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with Redis down: %d %q %v", code, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rs.Restart(t) // a Redis again, where the old one was
	waitReady(t, base)
	p.stop(t)
}

func getBody(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// minus is what a holds that b does not.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// kanon serve --source eventhubs://: the AKS sample as Event Hubs
// delivers it (the {"records":[...]} envelope, here on kfake with TLS and
// SASL PLAIN as Event Hubs' Kafka endpoint has them) raises the alerts
// kanon scan raises on the sample file; a wrong connection string stops
// serve with an error that says so.
func TestServeEventHubs(t *testing.T) {
	bin := kanonBinary(t)
	const conn = "Endpoint=sb://kanon-test.servicebus.windows.net/;SharedAccessKeyName=kanon-listen;SharedAccessKey=a2Fub24=;EntityPath=aks-audit"
	kc := kafkatest.StartTLS(t, "aks-audit", 2, []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "$ConnectionString", conn)},
		kgo.SASL(plain.Auth{User: "$ConnectionString", Pass: conn}.AsMechanism()))
	sample, err := os.ReadFile("../../../shared/anchors/cloud-samples/aks-records.json")
	if err != nil {
		t.Fatal(err)
	}
	kc.Produce(t, sample)
	dir := t.TempDir()
	connFile, alerts := filepath.Join(dir, "eventhubs-connection"), filepath.Join(dir, "alerts.ndjson")
	os.WriteFile(connFile, []byte(conn+"\n"), 0o600)
	src := "eventhubs://kanon-test/aks-audit?group=kanon&connection_string_file=" + connFile + "&broker=" + kc.Addr() + "&ca_file=" + kc.CAFile
	p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--no-state", "--source", src, "--output", "file:"+alerts)
	base := "http://" + p.waitAddr(t)
	kc.WaitCommitted(t, "kanon", 30*time.Second)
	waitReady(t, base)
	p.stop(t)
	want := scanAlertIDs(t, bin, [][]byte{sample})
	if got := deliveredOnce(t, alerts); len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("Event Hubs alerts %v, scan alerts %v", got, want)
	}

	os.WriteFile(connFile, []byte(strings.Replace(conn, "a2Fub24=", "d3Jvbmc=", 1)), 0o600)
	p = startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--no-state", "--source", src, "--output", "file:"+alerts)
	select {
	case err := <-p.done:
		if err == nil || !strings.Contains(p.log(), "wrong username or password") {
			t.Fatalf("serve with a wrong connection string: %v\n%s", err, p.log())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("serve with a wrong connection string did not stop\n%s", p.log())
	}
}
