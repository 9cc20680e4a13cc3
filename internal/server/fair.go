package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// slots are the webhook's request slots, shared per client: at most total
// requests are served at once, and at most perClient of one client, so
// that a client sending slowly (or a lot) leaves the other slots to the
// other clients. A request that finds no slot gets 429 at once (kube-
// apiserver retries with backoff) rather than waiting: a queue of waiting
// requests would hold their bodies' memory.
type slots struct {
	mu               sync.Mutex
	total, perClient int
	used             int
	by               map[string]int
}

func newSlots(total, perClient int) *slots {
	return &slots{total: total, perClient: perClient, by: map[string]int{}}
}

// acquire takes a slot for client, or returns why it cannot.
func (s *slots) acquire(client string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.used >= s.total:
		return "too many requests in flight"
	case s.by[client] >= s.perClient:
		return fmt.Sprintf("too many requests in flight from this client (%d of the %d slots)", s.perClient, s.total)
	}
	s.used++
	s.by[client]++
	return ""
}

// release gives back a slot of client.
func (s *slots) release(client string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used--
	if s.by[client]--; s.by[client] <= 0 {
		delete(s.by, client)
	}
}

// inUse returns the slots taken.
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// refusedBodyGrace is how long the body of a request refused before it
// was read may take to arrive (net/http reads a small one before it
// answers, so that the connection can serve the next request); a body
// slower than that closes the connection.
const refusedBodyGrace = time.Second

// errBodyTimeout means a body was not read within Config.BodyTimeout.
var errBodyTimeout = errors.New("request body timed out")

// remoteClient is the slot-sharing identity of a request authenticated
// by something that names no client (a Firehose access key, a Pub/Sub
// push token): its IP address.
func remoteClient(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host
}

// admit checks that the server takes requests now and takes one of the
// slots of client (leave gives it back); the status is the refusal's. A
// refused request's body may take refusedBodyGrace to arrive: net/http
// reads what is left of a small body before it answers, and a body sent
// slowly must not hold the answer (or the goroutine) for long.
func (s *Server) admit(w http.ResponseWriter, client string) (int, string) {
	if s.draining.Load() {
		return http.StatusServiceUnavailable, "shutting down"
	}
	if err := s.cfg.Driver.Health(); err != nil {
		return http.StatusServiceUnavailable, "not ready: " + err.Error()
	}
	if why := s.slots.acquire(client); why != "" {
		http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedBodyGrace))
		return http.StatusTooManyRequests, why
	}
	s.m.inflight.Inc()
	return 0, ""
}

// leave gives back a slot admit took for client.
func (s *Server) leave(client string) { s.slots.release(client); s.m.inflight.Dec() }

// readBody reads the request body into buf, within limit bytes and
// Config.BodyTimeout: a read deadline on the connection where the
// protocol supports one (HTTP/1 and HTTP/2 in net/http), and a timer that
// closes the body otherwise.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, limit int64) error {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(s.cfg.BodyTimeout)
	var expired bool
	var mu sync.Mutex
	if err := rc.SetReadDeadline(deadline); err != nil {
		t := time.AfterFunc(s.cfg.BodyTimeout, func() {
			mu.Lock()
			expired = true
			mu.Unlock()
			r.Body.Close()
		})
		defer t.Stop()
	} else {
		defer rc.SetReadDeadline(time.Time{})
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err == nil {
		return nil
	}
	mu.Lock()
	timedOut := expired
	mu.Unlock()
	if timedOut || errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w after %s: %v", errBodyTimeout, s.cfg.BodyTimeout, err)
	}
	return err
}
