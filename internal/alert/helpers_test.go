package alert

import (
	"context"
	"encoding/json"
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

// testAlert returns alert number i of rule "k8s-test" (severity high).
func testAlert(i int) *Alert {
	return &Alert{
		ID:        ID("test", fmt.Sprint(i)),
		Timestamp: time.Date(2026, 3, 1, 12, 0, i%60, 0, time.UTC),
		Title:     fmt.Sprintf("alert %d", i),
		Rule:      Rule{ID: "k8s-test", Name: "Test rule", Type: "query", Severity: "high", RiskScore: 73},
		Fields: Fields{
			{Name: "username", Value: "alice"},
			{Name: "source_ips", Value: []any{"10.0.0.1"}},
			{Name: "seq", Value: float64(i)},
		},
		Event: map[string]any{"kubernetes": map[string]any{"audit": map[string]any{"verb": "create"}}},
	}
}

func testIDs(from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, testAlert(i).ID)
	}
	return ids
}

// receiver is a real HTTP server on 127.0.0.1 that records the alerts it
// accepts. It can answer 500, answer slowly, be stopped (connections
// refused) and started again on the same port.
type receiver struct {
	t    *testing.T
	addr string
	srv  *httptest.Server
	tls  bool

	mu       sync.Mutex
	mode     string        // "ok", "500", "400", "slow", "hang"
	slow     time.Duration // delay of "slow"
	release  chan struct{} // closed to end "hang"
	accepted []string      // Idempotency-Key of every 2xx, in order, duplicates included
	bodies   map[string][]byte
	header   http.Header // of the last accepted request
	attempts int
}

func newReceiver(t *testing.T) *receiver { return newReceiverTLS(t, false) }

func newReceiverTLS(t *testing.T, tls bool) *receiver {
	t.Helper()
	r := &receiver{t: t, tls: tls, mode: "ok", bodies: map[string][]byte{}, release: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	r.start(l)
	t.Cleanup(func() {
		r.mu.Lock()
		select {
		case <-r.release:
		default:
			close(r.release)
		}
		r.mu.Unlock()
		r.stop()
	})
	return r
}

func (r *receiver) start(l net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(r.handle))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	srv.Listener.Close()
	srv.Listener = l
	if r.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

func (r *receiver) url() string {
	if r.tls {
		return "https://" + r.addr + "/alerts"
	}
	return "http://" + r.addr + "/alerts"
}

// stop closes the listener and every connection: requests are refused.
func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// restart listens on the same address again.
func (r *receiver) restart() {
	r.t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("cannot listen on %s again: %v", r.addr, err)
	}
	r.start(l)
}

func (r *receiver) setMode(m string) {
	r.mu.Lock()
	r.mode = m
	r.mu.Unlock()
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	r.mu.Lock()
	r.attempts++
	mode, slow, release := r.mode, r.slow, r.release
	r.mu.Unlock()
	if err != nil {
		return
	}
	switch mode {
	case "500":
		http.Error(w, "receiver broken", http.StatusInternalServerError)
		return
	case "400":
		http.Error(w, "bad alert", http.StatusBadRequest)
		return
	case "slow":
		select {
		case <-time.After(slow):
		case <-req.Context().Done():
			return // the client gave up: not accepted
		}
	case "hang":
		select {
		case <-release:
		case <-req.Context().Done():
			return
		}
	}
	key := req.Header.Get("Idempotency-Key")
	r.mu.Lock()
	r.accepted = append(r.accepted, key)
	if _, ok := r.bodies[key]; !ok {
		r.bodies[key] = body
	}
	r.header = req.Header.Clone()
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// unique returns the accepted keys in first-seen order and the number of
// duplicate acceptances.
func (r *receiver) unique() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, k := range r.accepted {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, len(r.accepted) - len(out)
}

// waitFor polls until the receiver accepted n distinct alerts.
func (r *receiver) waitFor(n int, within time.Duration) []string {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, _ := r.unique()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver got %d of %d alerts within %s", len(got), n, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkBodies checks that the body of every key is the alert with that id.
func (r *receiver) checkBodies(keys []string) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		var a Alert
		if err := json.Unmarshal(r.bodies[k], &a); err != nil {
			r.t.Fatalf("body of %s: %v", k, err)
		}
		if a.ID != k {
			r.t.Fatalf("body of key %s holds alert %s", k, a.ID)
		}
	}
}

func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%s: got %d ids, want %d; first difference at %d", what, len(got), len(want), n)
	}
}

// writeWithin writes a, failing the test if Write does not return before
// ctx's deadline.
func writeWithin(t *testing.T, s Sink, a *Alert, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Write(ctx, a) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		t.Fatalf("Write of alert %s did not return within %s", a.ID, d)
		return nil
	}
}
