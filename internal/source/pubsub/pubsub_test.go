package pubsub

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/kanon-dev/kanon/internal/source/sourcetest"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// These tests run the source against pstest, the Pub/Sub library's own
// in-process fake server (the gRPC API: topics, subscriptions, streaming
// pull, acks and nacks), reached over a loopback gRPC connection.

const project = "kanon-test"

// fake is a pstest server with a topic and a subscription of it.
type fake struct {
	srv   *pstest.Server
	conn  *grpc.ClientConn
	topic string
}

func newFake(t *testing.T) *fake {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx := context.Background()
	cl, err := gps.NewClient(ctx, project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{srv: srv, conn: conn, topic: "projects/" + project + "/topics/gke-audit"}
	if _, err := cl.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: f.topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: "projects/" + project + "/subscriptions/kanon",
		Topic: f.topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fake) source(t *testing.T) *Source {
	t.Helper()
	c, err := ParseURL("pubsub://" + project + "/kanon?max_outstanding=1")
	if err != nil {
		t.Fatal(err)
	}
	// A connection of its own: closing the client closes it.
	conn, err := grpc.NewClient(f.srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	return &Source{Config: c, Options: []option.ClientOption{option.WithGRPCConn(conn)}, Logger: slog.New(slog.DiscardHandler)}
}

func gkeEntries(t *testing.T) [][]byte {
	t.Helper()
	b, err := os.ReadFile("../../../../shared/anchors/cloud-samples/gke-logentry.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, r := range raw {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// waitAcked waits until every message published was acknowledged.
func (f *fake) waitAcked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		all := true
		for _, m := range f.srv.Messages() {
			all = all && m.Acks > 0
		}
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, m := range f.srv.Messages() {
		t.Logf("message %s: %d deliveries, %d acks", m.ID, m.Deliveries, m.Acks)
	}
	t.Fatal("not every message was acknowledged")
}

// The GKE sample published one entry per message, out of order, with an
// entry published twice and a message that is not an entry among them, is
// pulled and raises the alerts a scan of the same entries raises; every
// message is acknowledged once, the bad one too, counted as bad. A commit
// that fails leaves its message unacknowledged: Pub/Sub delivers it again
// and it raises its alerts once. A restart on the same store reads
// nothing again.
func TestPullMatchesScan(t *testing.T) {
	f := newFake(t)
	entries := gkeEntries(t)
	var published [][]byte
	for _, i := range []int{3, 0, 5, 1} {
		published = append(published, entries[i])
	}
	published = append(published, entries[0]) // the sink published it twice
	for _, p := range published {
		f.srv.Publish(f.topic, p, map[string]string{"logging.googleapis.com/timestamp": "2021-04-29T08:19:21Z"})
	}
	bad := f.srv.Publish(f.topic, []byte(`{"insertId":"cut`), nil)
	store := &sourcetest.FailingStore{Store: mem.New()}
	l := sourcetest.StartLive(t, store, f.source(t))
	f.waitAcked(t)
	if st := l.D.Stats(); st.Events != 4 || st.Duplicates != 1 || st.Bad != 1 {
		t.Fatalf("events %d, duplicates %d, bad %d: want 4, 1 and 1", st.Events, st.Duplicates, st.Bad)
	}
	if m := f.srv.Message(bad); m.Acks != 1 {
		t.Fatalf("the bad message: %d acks", m.Acks)
	}

	// The store fails: the next message is not acknowledged, and is
	// delivered again once the store is back.
	store.Fail.Store(true)
	late := []int{4, 2}
	id := f.srv.Publish(f.topic, entries[late[0]], nil)
	deadline := time.Now().Add(20 * time.Second)
	for f.srv.Message(id).Deliveries < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if m := f.srv.Message(id); m.Acks != 0 || m.Deliveries < 2 {
		t.Fatalf("a message whose commit failed: %d acks, %d deliveries", m.Acks, m.Deliveries)
	}
	store.Fail.Store(false)
	f.srv.Publish(f.topic, entries[late[1]], nil)
	f.waitAcked(t)
	for _, i := range late {
		published = append(published, entries[i])
	}
	l.Stop(t, false)

	// A restart on the same store: nothing is read again.
	l2 := sourcetest.StartLive(t, store, f.source(t))
	time.Sleep(300 * time.Millisecond)
	l2.Stop(t, true)
	if st := l2.D.Stats(); st.Records != 0 {
		t.Fatalf("%d records read again after a restart", st.Records)
	}
	got := append(sourcetest.Distinct(l.Col.Alerts), sourcetest.Distinct(l2.Col.Alerts)...)
	slices.Sort(got)
	got = slices.Compact(got)
	want := sourcetest.ScanIDs(t, bytes.Join(published, []byte("\n")))
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("pulled alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
}

func TestParseURL(t *testing.T) {
	f := func(raw, wantErr string) {
		t.Helper()
		_, err := ParseURL(raw)
		if (wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: error %v, want %q", raw, err, wantErr)
		}
	}
	f("pubsub://p/s", "")
	f("pubsub://p/s?max_outstanding=10&cluster=gke-1&endpoint=europe-west1-pubsub.googleapis.com:443", "")
	f("pubsub://p/", "want pubsub://")
	f("pubsub:///s", "want pubsub://")
	f("pubsub://p/s/x", "want pubsub://")
	f("pubsub://p/s?max_outstanding=0", "max_outstanding")
	f("pubsub://p/s?nope=1", "unknown parameter")
	f("cloudwatch://p/s", "not a pubsub")
	c, _ := ParseURL("pubsub://p/s")
	if c.Name() != "projects/p/subscriptions/s" || c.MaxOutstanding != DefaultMaxOutstanding {
		t.Fatalf("%+v", c)
	}
}
