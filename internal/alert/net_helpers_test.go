package alert

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// netReceiver is a receiver of a test's own (or a real server the test
// started) that can go down and come back on the same address.
type netReceiver interface {
	stop()
	start()
	// keys returns the delivery keys of the alerts the receiver took, in
	// order, repeats included.
	keys() []string
}

// httpReceiver is a restartable HTTP server on 127.0.0.1 around a
// handler of the test's own.
type httpReceiver struct {
	t    *testing.T
	addr string
	h    http.Handler

	mu  sync.Mutex
	srv *httptest.Server
}

func newHTTPReceiver(t *testing.T, h http.Handler) *httpReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &httpReceiver{t: t, addr: l.Addr().String(), h: h}
	r.serve(l)
	t.Cleanup(r.stop)
	return r
}

func (r *httpReceiver) serve(l net.Listener) {
	srv := httptest.NewUnstartedServer(r.h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

func (r *httpReceiver) url() string { return "http://" + r.addr }

func (r *httpReceiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

func (r *httpReceiver) start() {
	r.t.Helper()
	r.serve(listenAgain(r.t, r.addr))
}

// listenAgain listens on addr, waiting for the port to be free again.
func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	var err error
	for range 200 {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("cannot listen on %s again: %v", addr, err)
	return nil
}

// groupAlert is a dedup group's delivery: alert number i of rule
// "k8s-group" with the given count.
func groupAlert(i int, count int64) *Alert {
	a := testAlert(i)
	a.ID = ID("group", fmt.Sprint(i))
	a.Rule.ID = "k8s-group"
	a.Group = &Group{Key: "alice", Count: count,
		FirstSeen: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 3, 1, 12, 0, int(count), 0, time.UTC)}
	return a
}

// downUpAlerts are the alerts of the down-then-up tests: single alerts
// and a dedup group delivered with count 1, then updated to count 4.
func downUpAlerts() []*Alert {
	var as []*Alert
	for i := range 30 {
		as = append(as, testAlert(i))
		if i == 10 {
			as = append(as, groupAlert(1, 1))
		}
		if i == 25 {
			as = append(as, groupAlert(1, 4))
		}
	}
	return as
}

func keysOf(as []*Alert) []string {
	var ks []string
	for _, a := range as {
		ks = append(ks, a.DeliveryKey())
	}
	return ks
}

// fastOutput sets the timings of a test output: quick retries, short
// timeouts.
func fastOutput(c OutputConfig) OutputConfig {
	c.MinBackoff, c.MaxBackoff = Duration(5*time.Millisecond), Duration(100*time.Millisecond)
	if c.Timeout == 0 {
		c.Timeout = Duration(2 * time.Second)
	}
	return c
}

func openOutputs(t *testing.T, cfg OutputConfig, root string) *Outputs {
	t.Helper()
	o, err := NewOutputs([]OutputConfig{cfg}, Options{SpoolRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitStats polls the output's stats until ok holds.
func waitStats(t *testing.T, o *Outputs, what string, within time.Duration, ok func(OutputStats) bool) OutputStats {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := o.Stats()[0]
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; stats %+v", what, within, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitKeys polls the receiver until it took n distinct keys and returns
// what it took.
func waitKeys(t *testing.T, r netReceiver, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ks := r.keys()
		if distinctCount(ks) >= n {
			return ks
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver took %d distinct of %d alerts within %s: %v", distinctCount(ks), n, within, ks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func distinctCount(ks []string) int {
	seen := map[string]bool{}
	for _, k := range ks {
		seen[k] = true
	}
	return len(seen)
}

// checkDownThenUp writes alerts while the receiver is down, restarts
// kanon's output meanwhile (the spool carries them over), writes them all
// again with more, and brings the receiver up: the receiver takes every
// alert exactly once, in order, and the stats say what happened.
func checkDownThenUp(t *testing.T, cfg OutputConfig, r netReceiver) {
	t.Helper()
	cfg = fastOutput(cfg)
	root := t.TempDir()
	all := downUpAlerts()
	half := len(all) / 2
	ctx := context.Background()
	r.stop()

	o1 := openOutputs(t, cfg, root)
	for _, a := range all[:half] {
		if err := o1.Write(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	waitStats(t, o1, "retries while the receiver is down", 20*time.Second, func(st OutputStats) bool { return st.Retried > 0 })
	if err := o1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := o1.Stats()[0]; st.Delivered != 0 || st.SpoolDepth != half || st.QueueDepth != 0 {
		t.Fatalf("receiver down, after Flush: %+v; want %d spooled, none delivered", st, half)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = o1.Shutdown(sctx) // the receiver is down: the rest stays in the spool
	cancel()

	o2 := openOutputs(t, cfg, root)
	defer o2.Close()
	for _, a := range all {
		if err := o2.Write(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	waitStats(t, o2, "retries after the restart", 20*time.Second, func(st OutputStats) bool { return st.Retried > 0 })
	r.start()
	got := waitKeys(t, r, len(all), 30*time.Second)
	time.Sleep(50 * time.Millisecond) // a repeat would arrive now
	got = r.keys()
	if want := keysOf(all); !slices.Equal(got, want) {
		t.Fatalf("receiver took\n%v\nwant each alert once, in order:\n%v", got, want)
	}
	st := waitStats(t, o2, "delivered", 10*time.Second, func(st OutputStats) bool { return st.Delivered == uint64(len(all)) })
	if st.Failed != 0 || st.Dropped != 0 || st.Duplicates != uint64(half) || st.Spooled == 0 || st.Retried == 0 {
		t.Errorf("stats after recovery: %+v; want %d duplicates (written again after the restart), none failed or dropped", st, half)
	}
	st = waitStats(t, o2, "spool drained", 10*time.Second, func(st OutputStats) bool { return st.SpoolDepth == 0 && st.QueueDepth == 0 })
	if st.Type != cfg.Type {
		t.Errorf("stats type %q, want %q", st.Type, cfg.Type)
	}
}
