package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/rule"
)

// countSink counts alerts and drops them.
type countSink struct{ n int }

func (s *countSink) Write(context.Context, *alert.Alert) error { s.n++; return nil }
func (s *countSink) Close() error                              { return nil }

// benchLog is a realistic mix of audit records: nine in ten from
// authenticated clients (kubelets, controllers, kubectl; the prefix drops
// them), one in ten an anonymous probe from one of a few sources.
func benchLog(n int) []string {
	users := []string{"system:node:ip-10-0-1-23.ec2.internal", "system:serviceaccount:kube-system:replicaset-controller", "kubernetes-admin", "system:kube-scheduler"}
	out := make([]string, n)
	at := t0
	for i := range out {
		p := probes[i%len(probes)]
		if i%10 == 0 {
			j := i / 10
			out[i] = auditLine(fmt.Sprintf("bench-%d", i), "system:anonymous", fmt.Sprintf("203.0.113.%d", j%3), "kubectl-enum/0.1", probes[j%len(probes)], at)
		} else {
			p.code, p.decision = 200, "allow"
			out[i] = auditLine(fmt.Sprintf("bench-%d", i), users[i%len(users)], "10.0.1.23", "kubelet/v1.30.2 (linux/amd64) kubernetes/9d0e1f", p, at)
		}
		at = at.Add(time.Second)
	}
	return out
}

// BenchmarkSeed004Engine measures seed 004 in the engine per event scanned
// (events already decoded): the per-event prefix, the STATS of the open
// runs, run closing and alerting, with event time advancing a second per event
// so runs close as in a scan. SetBytes counts the audit record bytes.
func BenchmarkSeed004Engine(b *testing.B) {
	r := builtin(b, seed004)
	lines := benchLog(1024)
	var sink countSink
	h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink}, watermark{lateness: 0})
	var events []*event.Event
	var size int64
	for i, l := range lines {
		size += int64(len(l))
		events = h.decode(events, event.Origin{Name: "bench", Line: int64(i + 1)}, []byte(l))
	}
	b.SetBytes(size / int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	at := t0
	for i := 0; i < b.N; i++ {
		e := events[i%len(events)]
		e.Timestamp = at
		at = at.Add(time.Second)
		if err := h.process(e); err != nil {
			b.Fatal(err)
		}
	}
	h.close()
	b.StopTimer()
	if st := h.eng.Stats().Rules[seed004]; st.Late != 0 || st.Errors != 0 {
		b.Fatalf("stats %+v", *st)
	}
	if b.N >= 100_000 && sink.n == 0 {
		b.Fatal("no alert from a log with anonymous probes")
	}
}

// BenchmarkSeed004Scan measures reading records (k8s audit JSON lines,
// only the fields seed 004 reads) and running seed 004 on them, per record.
func BenchmarkSeed004Scan(b *testing.B) {
	r := builtin(b, seed004)
	lines := benchLog(1024)
	records := make([][]byte, len(lines))
	var size int64
	for i, l := range lines {
		records[i] = []byte(l)
		size += int64(len(l))
	}
	var sink countSink
	h := newHarness(b, []*rule.Compiled{r}, engine.Options{Sink: &sink}, watermark{lateness: 0})
	at := t0
	process := func(e *event.Event) error {
		e.Timestamp = at
		return h.process(e)
	}
	b.SetBytes(size / int64(len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at = at.Add(time.Second)
		if err := h.rd.Record(event.Origin{Name: "bench", Line: int64(i + 1)}, records[i%len(records)], process); err != nil {
			b.Fatal(err)
		}
	}
	h.close()
}
