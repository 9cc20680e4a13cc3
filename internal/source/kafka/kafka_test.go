package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/source/kafka/kafkatest"
	"github.com/kanon-dev/kanon/internal/source/sourcetest"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// These tests run the source against kfake, franz-go's in-process
// implementation of the Kafka protocol (kafkatest).

func exampleLines(t *testing.T) [][]byte {
	t.Helper()
	b, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(b), []byte("\n"))
}

func newSource(t *testing.T, raw string) *Source {
	t.Helper()
	c, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Source{Config: c, PingEvery: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
}

// values are the example log as a topic's values: most one event each,
// some several lines at once, one an EventList, one not JSON.
func values(t *testing.T) [][]byte {
	t.Helper()
	lines := exampleLines(t)
	var out [][]byte
	for i := 0; i < len(lines); {
		switch {
		case i%17 == 5 && i+3 <= len(lines):
			out = append(out, bytes.Join(lines[i:i+3], []byte("\n")))
			i += 3
		case i%29 == 11 && i+4 <= len(lines):
			out = append(out, []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`+string(bytes.Join(lines[i:i+4], []byte(",")))+`]}`))
			i += 4
		default:
			out = append(out, lines[i])
			i++
		}
	}
	return append(out, []byte(`{"kind":"Event","auditID":"cut`))
}

// The example log produced to three partitions — one event a record,
// several lines in a record, an EventList in a record, a record that is
// not JSON — raises the alerts kanon scan raises on the same values, and
// the group commits every partition to its end; the bad record costs only
// itself. A second consumer of the group after the first one stopped
// reads nothing again.
func TestConsumeMatchesScan(t *testing.T) {
	kc := kafkatest.Start(t, "audit", 3, nil)
	vals := values(t)
	kc.Produce(t, vals...)
	src := newSource(t, "kafka://"+kc.Addr()+"/audit?group=kanon&cluster=lab&max_records=7")
	l := sourcetest.StartLive(t, mem.New(), src)
	kc.WaitCommitted(t, "kanon", 30*time.Second)
	if err := src.Healthy(); err != nil {
		t.Errorf("healthy while consuming: %v", err)
	}
	l.Stop(t, true)
	want := sourcetest.ScanIDs(t, bytes.Join(vals, []byte("\n")))
	got := sourcetest.Distinct(l.Col.Alerts)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("consumed alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
	if st := l.D.Stats(); st.Bad != 1 || st.Duplicates != 0 {
		t.Errorf("bad %d, duplicates %d: want 1 and 0", st.Bad, st.Duplicates)
	}
	for _, a := range l.Col.Alerts {
		if a.Event == nil {
			continue
		}
		orch, _ := a.Event["orchestrator"].(map[string]any)
		if cl, _ := orch["cluster"].(map[string]any); cl["name"] != "lab" {
			t.Fatalf("alert %s: cluster %v, want lab", a.ID, a.Event["orchestrator"])
		}
	}
	l2 := sourcetest.StartLive(t, mem.New(), newSource(t, "kafka://"+kc.Addr()+"/audit?group=kanon"))
	time.Sleep(500 * time.Millisecond)
	l2.Stop(t, true)
	if st := l2.D.Stats(); st.Records != 0 {
		t.Fatalf("%d records read again by the group", st.Records)
	}
}

// A batch whose commit fails is not committed, and its records are read
// again: once the store takes writes again, every partition is committed
// to its end and the alerts are the scan's.
func TestFailedBatchReadAgain(t *testing.T) {
	kc := kafkatest.Start(t, "audit", 3, nil)
	vals := values(t)
	half := len(vals) / 2
	kc.Produce(t, vals[:half]...)
	store := &sourcetest.FailingStore{Store: mem.New()}
	l := sourcetest.StartLive(t, store, newSource(t, "kafka://"+kc.Addr()+"/audit?group=kanon&max_records=5"))
	kc.WaitCommitted(t, "kanon", 30*time.Second)
	before := kc.Committed("kanon")

	store.Fail.Store(true)
	kc.Produce(t, vals[half:]...)
	deadline := time.Now().Add(20 * time.Second)
	for store.Failed.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if store.Failed.Load() < 3 {
		t.Fatal("no commit failed")
	}
	if got := kc.Committed("kanon"); !maps(got, before) {
		t.Fatalf("offsets committed while the store failed: %v, before %v", got, before)
	}
	store.Fail.Store(false)
	kc.WaitCommitted(t, "kanon", 30*time.Second)
	l.Stop(t, true)
	st := l.D.Stats()
	if st.Duplicates == 0 {
		t.Errorf("no event read again (stats %+v)", st)
	}
	want := sourcetest.ScanIDs(t, bytes.Join(vals, []byte("\n")))
	if got := sourcetest.Distinct(l.Col.Alerts); len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("consumed alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
}

func maps(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A broker that does not answer makes the source unhealthy.
func TestUnreachableUnhealthy(t *testing.T) {
	kc := kafkatest.Start(t, "audit", 1, nil)
	addr := kc.Addr()
	kc.Close()
	src := newSource(t, "kafka://"+addr+"/audit?group=kanon")
	l := sourcetest.StartLive(t, mem.New(), src)
	time.Sleep(300 * time.Millisecond)
	err := src.Healthy()
	if err == nil || !strings.Contains(err.Error(), "kafka:audit") {
		t.Errorf("healthy without a broker: %v", err)
	}
	l.Stop(t, true)
}

// aksEnvelopes are the AKS sample as Event Hubs delivers it: the envelope
// as it is (pretty-printed, over many lines) and each record in an
// envelope of its own.
func aksEnvelopes(t *testing.T) (whole []byte, each [][]byte) {
	t.Helper()
	b, err := os.ReadFile("../../../../shared/anchors/cloud-samples/aks-records.json")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	for _, r := range env.Records {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r); err != nil {
			t.Fatal(err)
		}
		each = append(each, []byte(`{"records":[`+buf.String()+`]}`))
	}
	return bytes.TrimSpace(b), each
}

// Event Hubs through its Kafka endpoint: TLS with the namespace's
// certificate (here one signed by the test's CA), SASL PLAIN with the
// user $ConnectionString and the connection string as password. The AKS
// envelopes raise the alerts a scan of the sample file raises; a wrong
// connection string ends the source with a clear error.
func TestEventHubs(t *testing.T) {
	const conn = "Endpoint=sb://kanon-test.servicebus.windows.net/;SharedAccessKeyName=kanon-listen;SharedAccessKey=c2VjcmV0;EntityPath=aks-audit"
	kc := kafkatest.StartTLS(t, "aks-audit", 2,
		[]kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", EventHubsUser, conn)},
		kgo.SASL(plain.Auth{User: EventHubsUser, Pass: conn}.AsMechanism()))
	whole, each := aksEnvelopes(t)
	kc.Produce(t, append([][]byte{whole}, each...)...)
	dir := t.TempDir()
	connFile := filepath.Join(dir, "connection")
	os.WriteFile(connFile, []byte(conn+"\n"), 0o600)
	raw := "eventhubs://kanon-test/aks-audit?group=kanon&connection_string_file=" + connFile + "&broker=" + kc.Addr() + "&ca_file=" + kc.CAFile
	l := sourcetest.StartLive(t, mem.New(), newSource(t, raw))
	kc.WaitCommitted(t, "kanon", 30*time.Second)
	l.Stop(t, true)
	want := sourcetest.ScanIDs(t, whole)
	if got := sourcetest.Distinct(l.Col.Alerts); len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("Event Hubs alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
	if st := l.D.Stats(); st.Duplicates == 0 {
		t.Errorf("each record was sent twice (whole and alone): no duplicate dropped (stats %+v)", st)
	}

	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte(strings.Replace(conn, "c2VjcmV0", "d3Jvbmc=", 1)), 0o600)
	raw = strings.Replace(raw, connFile, wrong, 1)
	l = sourcetest.StartLive(t, mem.New(), newSource(t, raw))
	select {
	case err := <-l.Done():
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "eventhubs") && !strings.Contains(err.Error(), "kafka:aks-audit") {
			t.Fatalf("with a wrong connection string: %v", err)
		}
		t.Logf("refused: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("a wrong connection string was not refused")
	}
	l.D.Close(context.Background())
}

// A second consumer joins the group while the first one consumes: the
// partitions are shared, the revoked ones committed before they move,
// and together the two raise the scan's alerts.
func TestRebalanceShares(t *testing.T) {
	kc := kafkatest.Start(t, "audit", 3, nil)
	vals := values(t)
	half := len(vals) / 2
	kc.Produce(t, vals[:half]...)
	raw := "kafka://" + kc.Addr() + "/audit?group=kanon&max_records=3&session_timeout=6s"
	store := mem.New()
	a := sourcetest.StartReplica(t, store, "a", newSource(t, raw))
	deadline := time.Now().Add(20 * time.Second)
	for a.D.Stats().Records == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b := sourcetest.StartReplica(t, store, "b", newSource(t, raw))
	kc.WaitMembers(t, "kanon", 2, 30*time.Second)
	kc.Produce(t, vals[half:]...)
	kc.WaitCommitted(t, "kanon", 60*time.Second)
	a.Stop(t, false)
	b.Stop(t, true)
	if a.D.Stats().Records == 0 || b.D.Stats().Records == 0 {
		t.Fatalf("records read: %d and %d", a.D.Stats().Records, b.D.Stats().Records)
	}
	got := append(sourcetest.Distinct(a.Col.Alerts), sourcetest.Distinct(b.Col.Alerts)...)
	slices.Sort(got)
	got = slices.Compact(got)
	want := sourcetest.ScanIDs(t, bytes.Join(vals, []byte("\n")))
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
}
