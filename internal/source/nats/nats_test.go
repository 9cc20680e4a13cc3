package nats

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/natstest"
	webhook "github.com/kanon-dev/kanon/internal/server"
	"github.com/kanon-dev/kanon/internal/source/sourcetest"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// These tests run the source against a real nats-server with JetStream
// (natstest), on a port and store directory of their own.

// server is a nats-server with the stream AUDIT capturing audit.>.
type server struct {
	t   *testing.T
	srv *natstest.NATSServer
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{t: t, srv: natstest.StartNATS(t)}
	s.js(func(ctx context.Context, js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
	})
	return s
}

func (s *server) js(f func(context.Context, jetstream.JetStream)) {
	s.t.Helper()
	s.srv.JetStream(s.t, f)
}

func (s *server) publish(msgs ...[]byte) {
	s.t.Helper()
	s.js(func(ctx context.Context, js jetstream.JetStream) {
		for _, m := range msgs {
			if _, err := js.Publish(ctx, "audit.prod", m); err != nil {
				s.t.Fatal(err)
			}
		}
	})
}

// settled waits until the consumer kanon has every message acknowledged.
func (s *server) settled() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var info *jetstream.ConsumerInfo
	for time.Now().Before(deadline) {
		s.js(func(ctx context.Context, js jetstream.JetStream) {
			c, err := js.Consumer(ctx, "AUDIT", DefaultConsumer)
			if err == nil {
				info, err = c.Info(ctx)
			}
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				s.t.Fatal(err)
			}
		})
		if info != nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("messages not all acknowledged: %+v", info)
}

func (s *server) source(t *testing.T, query string) *Source {
	t.Helper()
	c, err := ParseURL(s.srv.URL() + "/AUDIT?max_wait=200ms" + query)
	if err != nil {
		t.Fatal(err)
	}
	return &Source{Config: c, Logger: slog.New(slog.DiscardHandler)}
}

// logMessages is the example log as messages of n lines each.
func logMessages(t *testing.T, n int) ([][]byte, []byte) {
	t.Helper()
	data, err := os.ReadFile("../../../examples/logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(bytes.TrimSpace(data), []byte("\n"))
	var msgs [][]byte
	for len(lines) > 0 {
		k := min(n, len(lines))
		msgs = append(msgs, bytes.Join(lines[:k], nil))
		lines = lines[k:]
	}
	return msgs, data
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The example log, published in messages of several lines (one of them
// gzipped) with a message that is not JSON among them, is fetched through
// a consumer the source creates and raises the alerts kanon scan of the
// log raises; every message is acknowledged, the bad one too. While the
// store fails no message is acknowledged: JetStream delivers them again,
// and once the store is back they raise their alerts once. A restart on
// the same store reads nothing again.
func TestFetchMatchesScan(t *testing.T) {
	s := newServer(t)
	msgs, data := logMessages(t, 9)
	msgs[3] = gzipped(t, msgs[3])
	head, tail := msgs[:len(msgs)-4], msgs[len(msgs)-4:]
	s.publish(head...)
	s.publish([]byte("{\"auditID\": cut\n"))
	store := &sourcetest.FailingStore{Store: mem.New()}
	l := sourcetest.StartLive(t, store, s.source(t, "&batch=5&ack_wait=2s"))
	s.settled()
	if st := l.D.Stats(); st.Bad != 1 || st.Events == 0 {
		t.Fatalf("events %d, bad %d: want some and 1", st.Events, st.Bad)
	}
	if err := l.D.Readiness(); err != nil {
		t.Fatalf("not ready: %v", err)
	}

	store.Fail.Store(true)
	s.publish(tail[:2]...)
	deadline := time.Now().Add(20 * time.Second)
	var info *jetstream.ConsumerInfo
	for (info == nil || info.NumRedelivered == 0) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		s.js(func(ctx context.Context, js jetstream.JetStream) {
			c, _ := js.Consumer(ctx, "AUDIT", DefaultConsumer)
			info, _ = c.Info(ctx)
		})
	}
	if info.NumRedelivered == 0 || info.NumAckPending == 0 {
		t.Fatalf("while the store fails: %+v; want messages pending and delivered again", info)
	}
	store.Fail.Store(false)
	s.publish(tail[2:]...)
	s.settled()
	l.Stop(t, false)

	l2 := sourcetest.StartLive(t, store, s.source(t, ""))
	time.Sleep(300 * time.Millisecond)
	l2.Stop(t, true)
	if st := l2.D.Stats(); st.Records != 0 {
		t.Fatalf("%d records read again after a restart", st.Records)
	}
	got := append(sourcetest.Distinct(l.Col.Alerts), sourcetest.Distinct(l2.Col.Alerts)...)
	slices.Sort(got)
	got = slices.Compact(got)
	want := sourcetest.ScanIDs(t, data)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("fetched alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
	for _, a := range l.Col.Alerts {
		if n := len(slices.DeleteFunc(slices.Clone(l.Col.Alerts), func(b *alert.Alert) bool { return b.DeliveryKey() != a.DeliveryKey() })); n != 1 {
			t.Fatalf("alert %s delivered %d times", a.DeliveryKey(), n)
		}
	}
}

// A message whose acknowledgement was lost comes again after the ack
// wait; the ledger knows its batch durable, so it is acknowledged without
// being evaluated again.
func TestLostAckNotEvaluatedAgain(t *testing.T) {
	s := newServer(t)
	msgs, _ := logMessages(t, 50)
	src := s.source(t, "&ack_wait=1s")
	src.loseAcks.Store(true)
	l := sourcetest.StartLive(t, mem.New(), src)
	s.publish(msgs[0])
	var recs int64
	deadline := time.Now().Add(20 * time.Second)
	for recs == 0 && time.Now().Before(deadline) {
		recs = l.D.Stats().Records
		time.Sleep(20 * time.Millisecond)
	}
	if recs != 50 {
		t.Fatalf("%d records, want 50", recs)
	}
	src.loseAcks.Store(false)
	s.settled() // acknowledged on its redelivery
	if st := l.D.Stats(); st.Records != 50 {
		t.Fatalf("%d records after the redelivery: evaluated again", st.Records)
	}
	l.Stop(t, true)
}

// kanon serve's /readyz is 200 while the source's server is up, 503 with
// the reason while it is down, and 200 again once it is back.
func TestReadinessFollowsTheServer(t *testing.T) {
	s := newServer(t)
	src := s.source(t, "")
	l := sourcetest.StartLive(t, mem.New(), src)
	defer l.Stop(t, true)
	srv, err := webhook.New(webhook.Config{Driver: l.D, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	waitReady := func(want int) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := ready()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("readiness %d %q, want %d", code, body, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady(http.StatusOK)
	s.srv.Stop()
	if body := waitReady(http.StatusServiceUnavailable); !strings.Contains(body, "source nats:AUDIT/kanon") || !strings.Contains(body, "NATS connection") {
		t.Fatalf("readiness says %q: want the source and its connection", body)
	}
	s.srv.Start()
	waitReady(http.StatusOK)
}
