package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/source/kafka/kafkatest"
	"github.com/kanon-dev/kanon/internal/state/redis/redistest"
)

// The proof at scale: 100,000 kanon-loadgen events with anonymous
// enumeration bursts, on Kafka and on NATS JetStream, evaluated by kanon
// serve replicas on one Redis, one of them killed with SIGKILL mid-stream
// and a fourth joining later, raise what kanon scan raises on the same
// events.

// loadOptions are the proof's generator options: 100,000 events at 20 a
// second of event time (83 minutes: 17 runs of Elastic's rules, and
// Panther's rule's 60-minute groups closing and opening again), 12
// enumeration bursts an hour, and anonymous, a fraction of the events.
//
// At 0.5 % anonymous (underCap) no run of Elastic's rules reaches
// max_signals (100 alerts per 5-minute run): about 36 anonymous requests
// a run, three quarters of them authorized (health checks, /version), so
// Elastic's rule "Kubernetes Anonymous Request Authorized" raises about 25
// a run. At 3 % (overCap) every run of that rule is full, and kanon scan
// drops hits. Replicas share the runs' counts (engine/counts.go), but
// which hits a full run raises follows the order they are decided in: in
// the stream's order (NATS with one message in flight) it is scan's; over
// Kafka partitions that interleave it need not be, so the Kafka proof
// stays under the cap.
func loadOptions(anonymous float64) loadgen.Options {
	opts := loadgen.DefaultOptions(100_000, 13)
	opts.Rate, opts.AnonymousRatio, opts.Bursts = 20, anonymous, 12
	return opts
}

const (
	underCap = 0.005
	overCap  = 0.03
)

// loadEvents are the proof's events and, apart, an event four days after
// them that closes every run and group (see replicaEvents).
func loadEvents(t *testing.T, anonymous float64) (lines [][]byte, closing []byte) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := loadgen.Generate(&buf, loadOptions(anonymous)); err != nil {
		t.Fatal(err)
	}
	lines = bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	var last struct {
		StageTimestamp time.Time `json:"stageTimestamp"`
	}
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		t.Fatal(err)
	}
	// The first event is a control plane's lease renewal: no rule's.
	return lines, closingEvent(t, lines[0], "load-closing", last.StageTimestamp.Add(96*time.Hour))
}

// loadScan is kanon scan of the proof's events, which must raise alerts
// of every bundled rule (new terms, enumeration alerts of the bursts and
// Panther's groups among them), and drop hits at max_signals if and only
// if capped.
func loadScan(t *testing.T, bin string, lines [][]byte, closing []byte, capped bool) raised {
	t.Helper()
	began := time.Now()
	want := scanRaised(t, bin, append(slices.Clip(lines), closing))
	t.Logf("kanon scan of %d events: %v; alerts and groups per rule %v; %d hits dropped at max_signals", len(lines)+1, time.Since(began).Round(time.Millisecond), want.rules, want.dropped)
	if (want.dropped != 0) != capped {
		t.Fatalf("kanon scan dropped %d hits at max_signals: want %s (see loadOptions)", want.dropped, map[bool]string{true: "some", false: "none"}[capped])
	}
	for _, rule := range []string{enumerationRule, "elastic-k8s-anonymous-request-authorized", "elastic-k8s-anonymous-request-authorized-unusual-user-agent", "Kubernetes.API.AnonymousAccess"} {
		if want.rules[rule] < 5 {
			t.Fatalf("kanon scan raised %d alerts of %s: the proof needs several of each rule (%v)", want.rules[rule], rule, want.rules)
		}
	}
	return want
}

// closingEvent is line with a new auditID and both timestamps at at.
func closingEvent(t *testing.T, line []byte, id string, at time.Time) []byte {
	t.Helper()
	var e map[string]any
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	ts := at.UTC().Format(time.RFC3339Nano)
	e["auditID"], e["requestReceivedTimestamp"], e["stageTimestamp"] = id, ts, ts
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decidedOnce fails the test if a delivery is in two alerts files but
// for those the killed replica wrote and another delivered again (at
// least once), and returns how many those are.
func decidedOnce(t *testing.T, where map[string][]string, killed string) int {
	t.Helper()
	again := 0
	for key, fs := range where {
		if len(fs) == 1 {
			continue
		}
		if len(fs) > 2 || !slices.Contains(fs, killed) {
			t.Errorf("delivery %s written by %v: decided twice", key, fs)
		}
		again++
	}
	return again
}

// peakRSS is a process's peak resident set (VmHWM), for the log.
func peakRSS(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// replicaSet starts named kanon serve replicas on one source and store,
// each writing its alerts to a file of its own.
type replicaSet struct {
	t             *testing.T
	bin, dir      string
	source, store string
	input         string // the input label of the source in /metrics
	files         map[string]string
	procs         map[string]*serveProc
	bases         map[string]string
	names         []string
}

func newReplicaSet(t *testing.T, bin, source, store, input string) *replicaSet {
	return &replicaSet{t: t, bin: bin, dir: t.TempDir(), source: source, store: store, input: input,
		files: map[string]string{}, procs: map[string]*serveProc{}, bases: map[string]string{}}
}

func (s *replicaSet) start(name string) {
	s.t.Helper()
	s.files[name] = filepath.Join(s.dir, name+".ndjson")
	p := startServe(s.t, s.bin, true, "--listen", "", "--insecure-listen", "127.0.0.1:0", "--state-dir", filepath.Join(s.dir, name),
		"--store", s.store, "--replica", name, "--lateness", replicaLateness, "--source", s.source, "--output", "file:"+s.files[name],
		"--outbox-lease", "15s") // the killed replica's undelivered alerts wait 15 s, not a minute
	s.bases[name] = "http://" + p.waitAddr(s.t)
	s.procs[name] = p
	s.names = append(s.names, name)
}

// evaluated is the events the live replicas evaluated, by name.
func (s *replicaSet) evaluated() map[string]int {
	n := map[string]int{}
	for name, p := range s.procs {
		if p.cmd.ProcessState == nil {
			n[name] = evaluatedOf(s.t, s.bases[name], s.input)
		}
	}
	return n
}

// waitEvaluated waits until the live replicas evaluated n events in all,
// each of them some.
func (s *replicaSet) waitEvaluated(n int) map[string]int {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ev, sum, all := s.evaluated(), 0, true
		for _, k := range ev {
			sum += k
			all = all && k > 0
		}
		if sum >= n && all {
			return ev
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the replicas evaluated %v, waiting for %d in all", ev, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *replicaSet) kill(name string) {
	s.t.Helper()
	p := s.procs[name]
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	<-p.done
}

func (s *replicaSet) live() []*serveProc {
	var ps []*serveProc
	for _, name := range s.names {
		if p := s.procs[name]; p.cmd.ProcessState == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// finish waits for every decided alert to be delivered, stops the live
// replicas (logging their peak memory) and checks their alerts against
// want, each decided once but for killed's redelivered ones.
func (s *replicaSet) finish(want raised, killed string) {
	s.t.Helper()
	began := time.Now()
	waitOutboxEmpty(s.t, s.store)
	outbox := time.Since(began)
	var rss []string
	for _, name := range s.names {
		if p := s.procs[name]; p.cmd.ProcessState == nil {
			rss = append(rss, name+" "+peakRSS(p.cmd.Process.Pid))
			p.stop(s.t)
		}
	}
	var files []string
	for _, name := range s.names {
		files = append(files, s.files[name])
	}
	got, where := replicaAlerts(s.t, files...)
	for _, d := range sameRaised(s.t, got, want) {
		s.t.Errorf("group differs from scan's: %s", d)
	}
	again := decidedOnce(s.t, where, s.files[killed])
	var served []string
	for _, name := range s.names {
		n := 0
		for _, fs := range where {
			if slices.Contains(fs, s.files[name]) {
				n++
			}
		}
		served = append(served, fmt.Sprintf("%s %d", name, n))
	}
	s.t.Logf("%d alerts (%d enumeration), %d groups as scan; deliveries per replica: %s; %d delivered again after the kill; "+
		"outbox empty after %v (the killed replica's undelivered alerts wait for their lease); peak RSS %s",
		len(got.alerts), len(got.esql), len(got.groups), strings.Join(served, ", "), again, outbox.Round(time.Millisecond), strings.Join(rss, ", "))
}

// 100,000 events on a Kafka topic of three partitions (kfake), keyed by
// client (byClient: each client's events, and so each dedup key's and
// each enumeration's, stay in order), read by three replicas of one
// consumer group; one is killed with SIGKILL once a third is evaluated,
// and a fourth joins at half. Their alerts are kanon scan's.
func TestServeKafkaReplicasLoad(t *testing.T) {
	bin := kanonBinary(t)
	lines, closing := loadEvents(t, underCap)
	want := loadScan(t, bin, lines, closing, false)
	rs := redistest.Start(t)
	kc := kafkatest.Start(t, "audit", 3, nil)
	s := newReplicaSet(t, bin, "kafka://"+kc.Addr()+"/audit?group=kanon&max_records=500&session_timeout=6s",
		"redis://"+rs.Addr+"/0?prefix=kafka-load", "kafka")
	for _, name := range []string{"r1", "r2", "r3"} {
		s.start(name)
	}
	kc.WaitMembers(t, "kanon", 3, 30*time.Second)
	began := time.Now()
	kc.ProduceBy(t, byClient, lines...)
	produced := time.Since(began)
	at := s.waitEvaluated(len(lines) / 3)
	s.kill("r1")
	s.waitEvaluated(len(lines)/2 - at["r1"])
	s.start("r4")
	kc.WaitCommitted(t, "kanon", 3*time.Minute)
	drained := time.Since(began)
	kc.Produce(t, closing, closing, closing) // one to each partition
	kc.WaitCommitted(t, "kanon", time.Minute)
	t.Logf("%d events produced in %v, evaluated and committed by the replicas in %v: %.0f events/s (r1 killed at %v)",
		len(lines), produced.Round(time.Millisecond), drained.Round(time.Millisecond), float64(len(lines))/drained.Seconds(), at)
	s.finish(want, "r1")
}

// 100,000 events on a JetStream stream in messages of 100 events, read
// by three replicas of one consumer with max_ack_pending=1, so that they
// evaluate the stream in its order (source/nats: "Order"); one is killed
// with SIGKILL once a third is evaluated (its message delivered again
// after ack_wait), a fourth joins at half. Their alerts are kanon scan's:
// with every run under max_signals, and with every run of Elastic's query
// rule over it (the replicas raise the hits scan raises, and drop the
// others, from their shared counts).
func TestServeNATSReplicasLoad(t *testing.T) {
	bin := kanonBinary(t)
	for _, c := range []struct {
		name      string
		anonymous float64
	}{{"under max_signals", underCap}, {"over max_signals", overCap}} {
		t.Run(c.name, func(t *testing.T) {
			lines, closing := loadEvents(t, c.anonymous)
			want := loadScan(t, bin, lines, closing, c.anonymous == overCap)
			natsReplicasLoad(t, bin, lines, closing, want)
		})
	}
}

func natsReplicasLoad(t *testing.T, bin string, lines [][]byte, closing []byte, want raised) {
	rs := redistest.Start(t)
	ns := newNATSStream(t)
	var msgs [][]byte
	for i := 0; i < len(lines); i += 100 {
		msgs = append(msgs, bytesJoinLines(lines[i:min(i+100, len(lines))]))
	}
	began := time.Now()
	ns.publish(msgs)
	t.Logf("%d events in %d messages published in %v", len(lines), len(msgs), time.Since(began).Round(time.Millisecond))
	s := newReplicaSet(t, bin, ns.srv.URL()+"/AUDIT?consumer=kanon&ack_wait=3s&max_wait=200ms&max_ack_pending=1&batch=1",
		"redis://"+rs.Addr+"/0?prefix=nats-load", "nats")
	began = time.Now()
	for _, name := range []string{"r1", "r2", "r3"} {
		s.start(name)
	}
	at := s.waitEvaluated(len(lines) / 3)
	s.kill("r1")
	s.waitEvaluated(len(lines)/2 - at["r1"])
	s.start("r4")
	ns.settled("kanon", s.live()...)
	drained := time.Since(began)
	ns.publish([][]byte{bytesJoinLines([][]byte{closing})})
	ns.settled("kanon", s.live()...)
	t.Logf("%d events evaluated and acknowledged by the replicas in %v: %.0f events/s (r1 killed at %v)",
		len(lines), drained.Round(time.Millisecond), float64(len(lines))/drained.Seconds(), at)
	s.finish(want, "r1")
}
