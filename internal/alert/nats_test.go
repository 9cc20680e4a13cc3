package alert

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanon-dev/kanon/internal/natstest"
)

// natsReceiver is a real nats-server with a JetStream stream that
// captures the alerts' subject.
type natsReceiver struct {
	t      *testing.T
	srv    *natstest.NATSServer
	stream string
	token  string
}

func newNATSReceiver(t *testing.T, stream string, subjects ...string) *natsReceiver {
	t.Helper()
	r := &natsReceiver{t: t, srv: natstest.StartNATS(t), stream: stream}
	r.withJS(func(ctx context.Context, js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: subjects, Storage: jetstream.FileStorage,
			Duplicates: 2 * time.Minute}); err != nil {
			t.Fatalf("cannot create stream %s: %v", stream, err)
		}
	})
	return r
}

func (r *natsReceiver) withJS(f func(context.Context, jetstream.JetStream)) {
	r.t.Helper()
	nc, err := nats.Connect(r.srv.URL(), nats.Timeout(5*time.Second), nats.Token(r.token))
	if err != nil {
		r.t.Fatalf("cannot connect to nats-server: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f(ctx, js)
}

func (r *natsReceiver) stop()  { r.srv.Stop() }
func (r *natsReceiver) start() { r.srv.Start() }

// msgs returns the messages the stream holds, in order.
func (r *natsReceiver) msgs() []*jetstream.RawStreamMsg {
	var out []*jetstream.RawStreamMsg
	r.withJS(func(ctx context.Context, js jetstream.JetStream) {
		s, err := js.Stream(ctx, r.stream)
		if err != nil {
			r.t.Fatalf("stream %s: %v", r.stream, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			r.t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				r.t.Fatalf("message %d: %v", seq, err)
			}
			out = append(out, m)
		}
	})
	return out
}

func (r *natsReceiver) keys() []string {
	var ks []string
	for _, m := range r.msgs() {
		ks = append(ks, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ks
}

func TestNATSDownThenUp(t *testing.T) {
	r := newNATSReceiver(t, "KANON", "kanon.alerts")
	oc, err := ParseOutputFlag(r.srv.URL() + "/kanon.alerts")
	if err != nil {
		t.Fatal(err)
	}
	if oc.Type != TypeNATS || oc.URL != r.srv.URL() || oc.Subject != "kanon.alerts" {
		t.Fatalf("parsed %+v", oc)
	}
	oc.BatchSize = 8
	checkDownThenUp(t, oc, r)
}

// Messages hold the alert as JSON with the delivery key as Nats-Msg-Id;
// a repeat within the stream's duplicate window is acknowledged as a
// duplicate, counted as delivered, and stored once.
func TestNATSMessagesAndDuplicates(t *testing.T) {
	r := newNATSReceiver(t, "ALERTS", "soc.>")
	cfg := fastOutput(OutputConfig{Type: TypeNATS, URL: r.srv.URL(), Subject: "soc.kanon"})
	a := slackEventAlert()
	g := groupAlert(1, 3)
	for range 2 { // a second kanon (a replica, a lost spool) delivers the same alerts
		o := openOutputs(t, cfg, t.TempDir())
		for _, x := range []*Alert{a, g} {
			if err := o.Write(context.Background(), x); err != nil {
				t.Fatal(err)
			}
		}
		waitStats(t, o, "delivered", 10*time.Second, func(st OutputStats) bool { return st.Delivered == 2 })
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		if st := o.Stats()[0]; st.Failed != 0 {
			t.Errorf("stats %+v", st)
		}
	}
	ms := r.msgs()
	if len(ms) != 2 {
		t.Fatalf("stream holds %d messages, want 2", len(ms))
	}
	for i, x := range []*Alert{a, g} {
		m := ms[i]
		var got Alert
		if err := json.Unmarshal(m.Data, &got); err != nil || got.ID != x.ID {
			t.Errorf("message %d: %q: %v", i, m.Data, err)
		}
		if m.Subject != "soc.kanon" || m.Header.Get(jetstream.MsgIDHeader) != x.DeliveryKey() {
			t.Errorf("message %d: subject %s, Nats-Msg-Id %q, want %q", i, m.Subject, m.Header.Get(jetstream.MsgIDHeader), x.DeliveryKey())
		}
	}
}

// The second delivery of the same alerts is acknowledged as a duplicate.
func TestNATSDuplicateCounted(t *testing.T) {
	r := newNATSReceiver(t, "DUP", "dup.alerts")
	cfg := fastOutput(OutputConfig{Type: TypeNATS, URL: r.srv.URL(), Subject: "dup.alerts"})
	var last OutputStats
	for range 2 {
		o := openOutputs(t, cfg, t.TempDir())
		if err := o.Write(context.Background(), testAlert(1)); err != nil {
			t.Fatal(err)
		}
		last = waitStats(t, o, "delivered", 10*time.Second, func(st OutputStats) bool { return st.Delivered == 1 })
		o.Close()
	}
	if last.Duplicates != 1 {
		t.Errorf("second delivery: %+v; want it counted as a duplicate", last)
	}
}

// A subject that no stream captures is retried (no responders) until a
// stream exists, then delivered.
func TestNATSWaitsForAStream(t *testing.T) {
	r := newNATSReceiver(t, "OTHER", "other.>")
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeNATS, URL: r.srv.URL(), Subject: "late.alerts"}), t.TempDir())
	defer o.Close()
	if err := o.Write(context.Background(), testAlert(1)); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, o, "retried", 10*time.Second, func(st OutputStats) bool { return st.Retried > 0 })
	if st.Delivered != 0 || st.Failed != 0 {
		t.Fatalf("no stream yet: %+v", st)
	}
	r.withJS(func(ctx context.Context, js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.alerts"}}); err != nil {
			t.Fatal(err)
		}
	})
	waitStats(t, o, "delivered", 10*time.Second, func(st OutputStats) bool { return st.Delivered == 1 })
}

// A token read from a file authenticates to a server that wants one.
func TestNATSTokenFromFile(t *testing.T) {
	r := &natsReceiver{t: t, srv: natstest.StartNATS(t, "--auth", "t0ken"), stream: "AUTH", token: "t0ken"}
	r.withJS(func(ctx context.Context, js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUTH", Subjects: []string{"auth.alerts"}}); err != nil {
			t.Fatal(err)
		}
	})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeNATS, URL: r.srv.URL(), Subject: "auth.alerts", Token: "file:" + tokenFile}), t.TempDir())
	defer o.Close()
	if err := o.Write(context.Background(), testAlert(1)); err != nil {
		t.Fatal(err)
	}
	waitStats(t, o, "delivered", 10*time.Second, func(st OutputStats) bool { return st.Delivered == 1 })
	if ks := r.keys(); len(ks) != 1 || ks[0] != testAlert(1).ID {
		t.Errorf("stream holds %v", ks)
	}
}
