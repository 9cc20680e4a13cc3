package alert

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kanon-dev/kanon/internal/alert/alerttest"
)

// kafkaReceiver is franz-go's in-process Kafka broker (kfake) on a fixed
// loopback port with its data on disk, so that it can stop and start
// again with its topics and records (no Kafka broker can run here).
type kafkaReceiver struct {
	t     *testing.T
	port  int
	dir   string
	topic string
	parts int32
	opts  []kfake.Opt

	mu sync.Mutex
	c  *kfake.Cluster
}

func newKafkaReceiver(t *testing.T, topic string, partitions int32, opts ...kfake.Opt) *kafkaReceiver {
	t.Helper()
	r := &kafkaReceiver{t: t, port: alerttest.FreePort(t), dir: t.TempDir(), topic: topic, parts: partitions, opts: opts}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *kafkaReceiver) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *kafkaReceiver) start() {
	r.t.Helper()
	opts := append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(r.port), kfake.DataDir(r.dir),
		kfake.SeedTopics(r.parts, r.topic)}, r.opts...)
	var c *kfake.Cluster
	var err error
	for range 100 { // the port may not be free again yet
		if c, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("cannot start kfake on port %d: %v", r.port, err)
	}
	r.mu.Lock()
	r.c = c
	r.mu.Unlock()
}

func (r *kafkaReceiver) stop() {
	r.mu.Lock()
	c := r.c
	r.c = nil
	r.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// records reads every record of the topic from the start.
func (r *kafkaReceiver) records(extra ...kgo.Opt) []*kgo.Record {
	r.t.Helper()
	r.mu.Lock()
	up := r.c != nil
	r.mu.Unlock()
	if !up {
		return nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.addr()), kgo.ConsumeTopics(r.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, extra...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			recs = append(recs, rec)
			n++
		})
		if n == 0 {
			return recs
		}
	}
}

func (r *kafkaReceiver) keys() []string {
	var ks []string
	for _, rec := range r.records() {
		for _, h := range rec.Headers {
			if h.Key == KafkaDeliveryKeyHeader {
				ks = append(ks, string(h.Value))
			}
		}
	}
	return ks
}

func TestKafkaDownThenUp(t *testing.T) {
	r := newKafkaReceiver(t, "kanon-alerts", 1)
	oc, err := ParseOutputFlag("kafka:" + r.addr() + "/kanon-alerts")
	if err != nil {
		t.Fatal(err)
	}
	oc.Timeout = Duration(time.Second)
	checkDownThenUp(t, oc, r)
}

// Records are keyed by alert id, with the alert as JSON and the delivery
// key in a header: every delivery of a dedup group lands in one partition,
// in order.
func TestKafkaRecordShape(t *testing.T) {
	r := newKafkaReceiver(t, "alerts", 3)
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeKafka, Brokers: []string{r.addr()}, Topic: "alerts"}), t.TempDir())
	var as []*Alert
	for i := range 12 {
		as = append(as, testAlert(i))
	}
	as = append(as, groupAlert(1, 1), groupAlert(1, 2), groupAlert(1, 7))
	for _, a := range as {
		if err := o.Write(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	waitKeys(t, r, len(as), 20*time.Second)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	recs := r.records()
	if len(recs) != len(as) {
		t.Fatalf("%d records, want %d", len(recs), len(as))
	}
	byKey := map[string]*kgo.Record{}
	groupParts := map[int32]bool{}
	var groupCounts []int64
	for _, rec := range recs {
		var a Alert
		if err := json.Unmarshal(rec.Value, &a); err != nil {
			t.Fatalf("value %q: %v", rec.Value, err)
		}
		if string(rec.Key) != a.ID {
			t.Errorf("record key %q, alert id %q", rec.Key, a.ID)
		}
		if len(rec.Headers) != 1 || rec.Headers[0].Key != KafkaDeliveryKeyHeader || string(rec.Headers[0].Value) != a.DeliveryKey() {
			t.Errorf("headers %v, want %s=%s", rec.Headers, KafkaDeliveryKeyHeader, a.DeliveryKey())
		}
		byKey[a.DeliveryKey()] = rec
		if a.Group != nil {
			groupParts[rec.Partition] = true
			groupCounts = append(groupCounts, a.Group.Count)
		}
	}
	if len(byKey) != len(as) {
		t.Errorf("%d distinct delivery keys, want %d", len(byKey), len(as))
	}
	if len(groupParts) != 1 || len(groupCounts) != 3 || groupCounts[0] != 1 || groupCounts[1] != 2 || groupCounts[2] != 7 {
		t.Errorf("group deliveries in partitions %v with counts %v; want one partition, counts 1, 2, 7 in order", groupParts, groupCounts)
	}
	if st := o.Stats()[0]; st.Delivered != uint64(len(as)) || st.Type != TypeKafka {
		t.Errorf("stats %+v", st)
	}
}

// SASL/SCRAM with the password from the environment; a wrong password is
// retried, never given up.
func TestKafkaSASL(t *testing.T) {
	r := newKafkaReceiver(t, "alerts", 1, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "kanon", "s3cret"))
	t.Setenv("KANON_TEST_KAFKA_PASSWORD", "wrong")
	cfg := fastOutput(OutputConfig{Type: TypeKafka, Brokers: []string{r.addr()}, Topic: "alerts",
		SASL: "scram-sha-512", Username: "kanon", Password: "env:KANON_TEST_KAFKA_PASSWORD", Timeout: Duration(time.Second)})
	o := openOutputs(t, cfg, t.TempDir())
	if err := o.Write(context.Background(), testAlert(1)); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, o, "refused login retried", 20*time.Second, func(st OutputStats) bool { return st.Retried > 0 })
	if st.Delivered != 0 || st.Failed != 0 {
		t.Fatalf("with a wrong password: %+v", st)
	}
	o.Close()
	t.Setenv("KANON_TEST_KAFKA_PASSWORD", "s3cret")
	o = openOutputs(t, cfg, t.TempDir())
	defer o.Close()
	if err := o.Write(context.Background(), testAlert(2)); err != nil {
		t.Fatal(err)
	}
	waitStats(t, o, "delivered", 20*time.Second, func(st OutputStats) bool { return st.Delivered == 1 })
	recs := r.records(kgo.SASL(scram.Auth{User: "kanon", Pass: "s3cret"}.AsSha512Mechanism()))
	if len(recs) != 1 || string(recs[0].Key) != testAlert(2).ID {
		t.Errorf("records %v", recs)
	}
}

// A record the broker refuses as too large is given up (counted in
// Failed), and the alerts after it are delivered.
func TestKafkaRecordTooLarge(t *testing.T) {
	r := newKafkaReceiver(t, "alerts", 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "2000"}))
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeKafka, Brokers: []string{r.addr()}, Topic: "alerts"}), t.TempDir())
	defer o.Close()
	big := testAlert(1)
	noise := make([]byte, 6000)
	rand.Read(noise)
	big.Title = hex.EncodeToString(noise) // snappy does not shrink it below the limit
	for _, a := range []*Alert{big, testAlert(2)} {
		if err := o.Write(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	st := waitStats(t, o, "settled", 20*time.Second, func(st OutputStats) bool { return st.Delivered+st.Failed == 2 })
	if st.Failed != 1 || st.Delivered != 1 {
		t.Errorf("stats %+v; want the large one failed, the other delivered", st)
	}
	if ks := r.keys(); len(ks) != 1 || ks[0] != testAlert(2).ID {
		t.Errorf("records %v", ks)
	}
}
