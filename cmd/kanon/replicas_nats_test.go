package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanon-dev/kanon/internal/natstest"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// natsStream is a JetStream stream AUDIT (subjects audit.>) on a real
// nats-server of the test's own.
type natsStream struct {
	t   *testing.T
	srv *natstest.NATSServer
}

func newNATSStream(t *testing.T) *natsStream {
	t.Helper()
	s := &natsStream{t: t, srv: natstest.StartNATS(t)}
	s.js(func(ctx context.Context, js jetstream.JetStream) {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}}); err != nil {
			t.Fatal(err)
		}
	})
	return s
}

func (s *natsStream) js(f func(context.Context, jetstream.JetStream)) {
	s.t.Helper()
	s.srv.JetStream(s.t, f)
}

func (s *natsStream) publish(msgs [][]byte) {
	s.t.Helper()
	s.js(func(ctx context.Context, js jetstream.JetStream) {
		for _, m := range msgs {
			if _, err := js.Publish(ctx, "audit.lab", m); err != nil {
				s.t.Fatal(err)
			}
		}
	})
}

// settled waits until the consumer has every message acknowledged.
func (s *natsStream) settled(consumer string, procs ...*serveProc) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var info *jetstream.ConsumerInfo
	for time.Now().Before(deadline) {
		s.js(func(ctx context.Context, js jetstream.JetStream) {
			if c, err := js.Consumer(ctx, "AUDIT", consumer); err == nil {
				info, _ = c.Info(ctx)
			}
		})
		if info != nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	var logs []string
	for _, p := range procs {
		logs = append(logs, p.log())
	}
	s.t.Fatalf("messages not all acknowledged: %+v\n%s", info, strings.Join(logs, "\n"))
}

// Three kanon serve replicas on one NATS stream and one Redis: one is
// killed with SIGKILL mid-stream, a fourth joins; together they raise
// what kanon scan raises on the same events — the same ids, the same
// group counts, the same ES|QL counts — each decided once: a delivery is
// in one replica's alerts file only, but for those the killed replica
// wrote before it could record them delivered, which another replica
// delivers again (at least once). The consumer has max_ack_pending=1, so
// that the replicas evaluate the stream in its order, as scan reads it
// (source/nats: "Order"); the messages of the killed replica are
// delivered again after ack_wait.
func TestServeNATSReplicas(t *testing.T) {
	bin := kanonBinary(t)
	rs := redistest.Start(t)
	ns := newNATSStream(t)
	store := "redis://" + rs.Addr + "/0?prefix=nats-replicas"
	source := ns.srv.URL() + "/AUDIT?consumer=kanon&ack_wait=3s&max_wait=200ms&max_ack_pending=1"
	lines := replicaEvents(t)
	want := scanRaised(t, bin, lines)
	var msgs [][]byte // ten lines a message, the closing event alone
	for i := 0; i < len(lines)-1; i += 10 {
		msgs = append(msgs, bytesJoinLines(lines[i:min(i+10, len(lines)-1)]))
	}
	closing := bytesJoinLines(lines[len(lines)-1:])

	dir := t.TempDir()
	files := map[string]string{}
	start := func(name string) *serveProc {
		files[name] = filepath.Join(dir, name+".ndjson")
		p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, name),
			"--store", store, "--replica", name, "--lateness", replicaLateness, "--source", source, "--output", "file:"+files[name])
		p.waitAddr(t)
		return p
	}
	third := len(msgs) / 3
	ns.publish(msgs[:third])
	procs := []*serveProc{start("r1"), start("r2"), start("r3")}
	ns.publish(msgs[third : 2*third])
	// r1 is killed once it has delivered alerts, in the middle of the
	// stream: it may hold a message evaluated and not acknowledged.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(files["r1"]); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r1 delivered nothing:\n%s", procs[0].log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	procs[0].cmd.Process.Signal(syscall.SIGKILL)
	<-procs[0].done
	procs = append(procs[1:], start("r4"))
	ns.publish(msgs[2*third:])
	// Everything acknowledged (the killed replica's messages delivered
	// again) before the closing event: a replica that had moved past it
	// would take the messages delivered again as late.
	ns.settled("kanon", procs...)
	ns.publish([][]byte{closing})
	ns.settled("kanon", procs...)
	waitOutboxEmpty(t, store)
	for _, p := range procs {
		p.stop(t)
	}

	got, where := replicaAlerts(t, files["r1"], files["r2"], files["r3"], files["r4"])
	for _, d := range sameRaised(t, got, want) {
		t.Errorf("group differs from scan's: %s", d)
	}
	again := decidedOnce(t, where, files["r1"])
	var served []string
	for _, name := range []string{"r1", "r2", "r3", "r4"} {
		n := 0
		for _, fs := range where {
			n += len(slices.DeleteFunc(slices.Clone(fs), func(f string) bool { return f != files[name] }))
		}
		served = append(served, fmt.Sprintf("%s %d", name, n))
	}
	t.Logf("%d alerts and %d groups as scan; deliveries per replica: %s; %d delivered again after the kill", len(got.alerts), len(got.groups), strings.Join(served, ", "), again)
}

// Replicas sharing a consumer in parallel (the default max_ack_pending):
// messages are evaluated out of the stream's order, and still the alerts
// of single events, the alerts each dedup key counts and the ES|QL rule's
// alerts (runs fed by several replicas out of order, every event within
// the lateness) are kanon scan's, each decided once. Which alert opens a
// group may differ (source/nats: "Order"): that is logged.
func TestServeNATSReplicasParallel(t *testing.T) {
	bin := kanonBinary(t)
	rs := redistest.Start(t)
	ns := newNATSStream(t)
	store := "redis://" + rs.Addr + "/0?prefix=nats-parallel"
	source := ns.srv.URL() + "/AUDIT?consumer=kanon&max_wait=200ms&batch=4"
	lines := replicaEvents(t)
	want := scanRaised(t, bin, lines)
	var msgs [][]byte
	for i := 0; i < len(lines)-1; i += 10 {
		msgs = append(msgs, bytesJoinLines(lines[i:min(i+10, len(lines)-1)]))
	}
	dir := t.TempDir()
	var procs []*serveProc
	var files []string
	for i := range 3 {
		name := fmt.Sprintf("p%d", i+1)
		files = append(files, filepath.Join(dir, name+".ndjson"))
		p := startServe(t, bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--state-dir", filepath.Join(dir, name),
			"--store", store, "--replica", name, "--lateness", replicaLateness, "--source", source, "--output", "file:"+files[i])
		p.waitAddr(t)
		procs = append(procs, p)
	}
	ns.publish(msgs)
	ns.settled("kanon", procs...)
	ns.publish([][]byte{bytesJoinLines(lines[len(lines)-1:])})
	ns.settled("kanon", procs...)
	waitOutboxEmpty(t, store)
	for _, p := range procs {
		p.stop(t)
	}
	got, where := replicaAlerts(t, files...)
	single := func(r raised) []string {
		return slices.DeleteFunc(slices.Clone(r.alerts), func(id string) bool { return slices.Contains(r.esql, id) })
	}
	if len(want.members) == 0 || len(single(want)) == 0 {
		t.Fatal("kanon scan raised no grouped or single-event alert: the test needs both")
	}
	if g, w := single(got), single(want); !slices.Equal(g, w) {
		t.Errorf("alerts of single events: replicas %v\nscan %v", g, w)
	}
	if !maps.Equal(got.members, want.members) {
		t.Errorf("alerts per dedup key: replicas %v\nscan %v", got.members, want.members)
	}
	for key, fs := range where {
		if len(fs) > 1 {
			t.Errorf("delivery %s written by %v: decided twice", key, fs)
		}
	}
	if len(want.esql) == 0 {
		t.Fatal("kanon scan raised no enumeration alert: the test needs some")
	}
	if !slices.Equal(got.esql, want.esql) || !slices.Equal(got.docs, want.docs) {
		t.Errorf("enumeration alerts: replicas %d %v counting %v\nscan %d %v counting %v", len(got.esql), got.esql, got.docs, len(want.esql), want.esql, want.docs)
	}
	var opened []string
	for k, id := range want.groupIDs {
		if got.groupIDs[k] != id {
			opened = append(opened, k)
		}
	}
	t.Logf("%d single-event alerts, %d dedup keys and %d enumeration alerts as scan; groups opened on another alert than scan's: %v",
		len(single(got)), len(got.members), len(got.esql), opened)
}
