package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanon-dev/kanon/internal/run"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults of Config.
const (
	// DefaultMaxBodyBytes is above kube-apiserver's largest batch
	// (--audit-webhook-truncate-max-batch-size, 10 MiB by default).
	DefaultMaxBodyBytes = 32 << 20
	DefaultMaxInFlight  = 32
	DefaultWaitTimeout  = 30 * time.Second
	DefaultRetryAfter   = time.Second
	// DefaultBodyTimeout bounds the reading of one request body.
	DefaultBodyTimeout = 30 * time.Second
)

// AuditPath is the path of the webhook; /audit/<cluster> names the cluster.
const AuditPath = "/audit"

// Config configures a Server.
type Config struct {
	// Driver evaluates the batches. Required. The server's metrics go to
	// its registry, which /metrics serves.
	Driver *run.Driver
	// Cluster is the cluster name of batches posted to /audit (a batch
	// posted to /audit/<cluster> names its own).
	Cluster string
	// Tokens are the bearer tokens accepted (compared in constant time),
	// when TokenSet is nil.
	Tokens []string
	// TokenSet, if set, holds the bearer tokens accepted, reloadable.
	TokenSet *TokenSet
	// AllowUnauthenticated accepts requests without a verified client
	// certificate or token: only for plain HTTP on loopback, in tests.
	AllowUnauthenticated bool
	// MaxBodyBytes limits a request body (0: DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// MaxInFlight limits the webhook requests served at once; more get
	// 429 (0: DefaultMaxInFlight).
	MaxInFlight int
	// MaxInFlightPerClient limits the requests of one client served at
	// once, so that one slow or noisy client cannot take every slot; more
	// get 429 (0: half of MaxInFlight, at least 1). A client is the
	// subject of its verified certificate, its bearer token, or, without
	// either, its IP address.
	MaxInFlightPerClient int
	// BodyTimeout bounds the time to read one request body, from the end
	// of its headers; a body not read by then gets 408 and frees its slot
	// (0: DefaultBodyTimeout).
	BodyTimeout time.Duration
	// WaitTimeout bounds how long a request waits for its batch to be
	// evaluated and committed before it gets 503 (0: DefaultWaitTimeout).
	WaitTimeout time.Duration
	// RetryAfter is the Retry-After of 429 and 503 answers
	// (0: DefaultRetryAfter).
	RetryAfter time.Duration
	// Logger receives the server's log (nil: slog.Default()).
	Logger *slog.Logger
	// Firehose, if set, serves the Kinesis Data Firehose HTTP endpoint
	// destination at /firehose (firehose.go).
	Firehose *FirehoseConfig
	// PubSub, if set, serves the Pub/Sub push endpoint at /pubsub
	// (pubsub.go).
	PubSub *PubSubConfig
	// Health are the sources beside the webhook whose input can be out
	// of reach (a broker): /readyz fails while one is not healthy.
	Health []run.Health
}

// Server is the audit webhook of kube-apiserver: it authenticates each
// request, bounds its size and the number served at once, hands the body to
// the driver and answers once the batch is evaluated and committed. It
// also serves /healthz, /readyz and /metrics.
type Server struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	tokens   *TokenSet
	slots    *slots
	draining atomic.Bool
	bufs     sync.Pool
	mux      *http.ServeMux
	fh       *firehose
	ps       *pubsubPush

	mu   sync.Mutex
	srvs []*http.Server
	errs chan error
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Driver == nil {
		return nil, errors.New("server: no driver")
	}
	if cfg.Cluster != "" && !validCluster(cfg.Cluster) {
		return nil, fmt.Errorf("server: invalid cluster name %q: want 1 to 63 letters, digits, '.', '_' or '-'", cfg.Cluster)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxInFlightPerClient <= 0 {
		cfg.MaxInFlightPerClient = max(1, cfg.MaxInFlight/2)
	}
	cfg.MaxInFlightPerClient = min(cfg.MaxInFlightPerClient, cfg.MaxInFlight)
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = DefaultWaitTimeout
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, m: newMetrics(cfg.Driver.Metrics()), slots: newSlots(cfg.MaxInFlight, cfg.MaxInFlightPerClient), errs: make(chan error, 8)}
	s.tokens = cfg.TokenSet
	if s.tokens == nil {
		ts, err := NewTokenSet(cfg.Tokens)
		if err != nil {
			return nil, err
		}
		s.tokens = ts
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.mux = http.NewServeMux()
	s.mux.HandleFunc(AuditPath, s.audit)
	s.mux.HandleFunc(AuditPath+"/{cluster}", s.audit)
	if err := s.cloudEndpoints(); err != nil {
		return nil, err
	}
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("/readyz", s.readyz)
	reg := cfg.Driver.Metrics()
	s.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// validCluster reports whether c is a usable cluster name.
func validCluster(c string) bool {
	if len(c) == 0 || len(c) > 63 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	why := ""
	switch {
	case s.draining.Load():
		why = "shutting down"
	default:
		if err := s.cfg.Driver.Health(); err != nil {
			why = err.Error()
			break
		}
		for _, h := range s.cfg.Health {
			if err := h.Healthy(); err != nil {
				why = err.Error()
				break
			}
		}
	}
	if why != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: "+why)
		return
	}
	fmt.Fprintln(w, "ok")
}

// authenticate reports whether the request carries a verified client
// certificate or an accepted bearer token, and returns the client it
// comes from: "cert:" and the certificate's subject, "token:" and the
// token's name (its file), or, for a request let in without either,
// "ip:" and the remote address. The status is the refusal's.
func (s *Server) authenticate(r *http.Request) (client string, ok bool, code int, why string) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return "cert:" + r.TLS.VerifiedChains[0][0].Subject.String(), true, 0, ""
	}
	if h := r.Header.Get("Authorization"); h != "" {
		// The scheme is case-insensitive (RFC 7235, section 2.1).
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || s.tokens.Len() == 0 {
			return "", false, http.StatusUnauthorized, "unsupported authorization"
		}
		if name, ok := s.tokens.match(strings.TrimSpace(tok)); ok {
			return "token:" + name, true, 0, ""
		}
		return "", false, http.StatusForbidden, "bearer token not accepted"
	}
	if s.cfg.AllowUnauthenticated {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		return "ip:" + host, true, 0, ""
	}
	return "", false, http.StatusUnauthorized, "authentication required: a client certificate signed by the configured CA, or a bearer token"
}

// reply answers with a status and a JSON body, and counts the status.
func (s *Server) reply(w http.ResponseWriter, code int, body any) {
	s.m.response(code)
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.RetryAfter.Round(time.Second)/time.Second))))
	}
	w.WriteHeader(code)
	b, _ := json.Marshal(body)
	w.Write(append(b, '\n'))
}

type errorBody struct {
	Error string `json:"error"`
}

// ackBody is the answer to an accepted batch.
type ackBody struct {
	Events int      `json:"events"`
	Bad    int      `json:"bad"`
	Errors []string `json:"errors,omitempty"`
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	defer func() { s.m.reqTime.Observe(time.Since(received).Seconds()) }()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.reply(w, http.StatusMethodNotAllowed, errorBody{"the audit webhook takes POST"})
		return
	}
	client, ok, code, why := s.authenticate(r)
	if !ok {
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kanon"`)
		}
		s.log.Warn("webhook request refused", "remote", r.RemoteAddr, "status", code, "reason", why)
		s.reply(w, code, errorBody{why})
		return
	}
	cluster := s.cfg.Cluster
	if c := r.PathValue("cluster"); c != "" {
		if !validCluster(c) {
			s.reply(w, http.StatusNotFound, errorBody{fmt.Sprintf("invalid cluster name %q in the path: want 1 to 63 letters, digits, '.', '_' or '-'", c)})
			return
		}
		cluster = c
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.reply(w, http.StatusUnsupportedMediaType, errorBody{fmt.Sprintf("content type %q: the webhook takes application/json", ct)})
			return
		}
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		s.reply(w, http.StatusUnsupportedMediaType, errorBody{fmt.Sprintf("content encoding %q is not supported", ce)})
		return
	}
	// Refused when stopping, when the store cannot take the batch (the
	// sender keeps it and sends it again; the driver retries the store
	// meanwhile), or when the client holds its share of the slots.
	if code, why := s.admit(w, client); code != 0 {
		s.reply(w, code, errorBody{why})
		return
	}
	defer s.leave(client)

	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	release := func() {
		if buf.Cap() <= 4*DefaultMaxBodyBytes {
			s.bufs.Put(buf)
		}
	}
	if n := r.ContentLength; n > 0 && n <= s.cfg.MaxBodyBytes {
		buf.Grow(int(n) + 1)
	}
	if err := s.readBody(w, r, buf, s.cfg.MaxBodyBytes); err != nil {
		release()
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.reply(w, http.StatusRequestEntityTooLarge, errorBody{fmt.Sprintf("body over the limit of %d bytes", s.cfg.MaxBodyBytes)})
			return
		}
		if errors.Is(err, errBodyTimeout) {
			s.log.Warn("webhook request body too slow", "remote", r.RemoteAddr, "client", client, "timeout", s.cfg.BodyTimeout)
			w.Header().Set("Connection", "close")
			s.reply(w, http.StatusRequestTimeout, errorBody{fmt.Sprintf("the body was not received within %s", s.cfg.BodyTimeout)})
			return
		}
		s.reply(w, http.StatusBadRequest, errorBody{"cannot read the body: " + err.Error()})
		return
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		release()
		s.reply(w, http.StatusBadRequest, errorBody{"empty body: want an audit.k8s.io/v1 EventList"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WaitTimeout)
	defer cancel()
	// The items of an EventList are found and validated here, in the
	// request's goroutine, leaving only decoding and evaluation to the
	// driver's.
	b := s.batch(cluster, buf.Bytes(), received)
	done := make(chan run.Result, 1)
	b.Release, b.Done = release, func(r run.Result) { done <- r }
	var res run.Result
	err := s.cfg.Driver.TrySubmit(b)
	if err != nil {
		release() // the driver did not take it
	} else {
		select {
		case res = <-done:
		case <-ctx.Done():
			err = ctx.Err() // the batch is still evaluated and committed
		}
	}
	switch {
	case errors.Is(err, run.ErrBusy):
		s.reply(w, http.StatusTooManyRequests, errorBody{"the engine is busy: retry later"})
		return
	case errors.Is(err, run.ErrClosed):
		s.reply(w, http.StatusServiceUnavailable, errorBody{"shutting down"})
		return
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		s.reply(w, http.StatusServiceUnavailable, errorBody{"the batch was not committed in time: " + err.Error()})
		return
	case err != nil:
		s.log.Error("batch refused", "cluster", cluster, "err", err)
		s.reply(w, http.StatusServiceUnavailable, errorBody{"cannot take the batch: " + err.Error()})
		return
	case res.Err != nil:
		s.log.Error("batch failed", "cluster", cluster, "err", res.Err)
		s.reply(w, http.StatusInternalServerError, errorBody{"cannot evaluate the batch: " + res.Err.Error()})
		return
	case res.Events == 0 && res.Bad > 0:
		s.reply(w, http.StatusBadRequest, errorBody{"malformed body: " + strings.Join(res.Errors, "; ")})
		return
	}
	s.m.batchSize.Observe(float64(res.Events))
	if res.Bad > 0 {
		s.log.Warn("bad records in a batch", "remote", r.RemoteAddr, "cluster", cluster, "events", res.Events, "bad", res.Bad, "errors", res.Errors)
	}
	s.reply(w, http.StatusOK, ackBody{Events: res.Events, Bad: res.Bad, Errors: res.Errors})
}

// Listen starts serving on addr (":8443", "127.0.0.1:0") in the
// background, with TLS when tlsCfg is not nil, and returns the address it
// listens on. Errors of the listener after it started are returned by Err.
func (s *Server) Listen(addr string, tlsCfg *tls.Config) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		// An outer bound: each body has BodyTimeout (readBody).
		ReadTimeout:    max(2*time.Minute, s.cfg.BodyTimeout+10*time.Second),
		WriteTimeout:   2 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if tlsCfg != nil {
		hs.TLSConfig = tlsCfg
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.mu.Lock()
	s.srvs = append(s.srvs, hs)
	s.mu.Unlock()
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errs <- fmt.Errorf("listener %s: %w", ln.Addr(), err)
		}
	}()
	return ln.Addr(), nil
}

// Err delivers the error of a listener that stopped on its own.
func (s *Server) Err() <-chan error { return s.errs }

// Shutdown stops taking batches (new ones get 503, /readyz fails), waits
// for the requests in flight to be answered, until ctx ends, and closes
// the listeners. It does not close the driver.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	srvs := s.srvs
	s.mu.Unlock()
	var errs []error
	for _, hs := range srvs {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
