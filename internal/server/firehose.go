package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source"
	"github.com/kanon-dev/kanon/internal/state"
)

// FirehosePath is the path of the Kinesis Data Firehose HTTP endpoint
// destination; /firehose/<cluster> names the cluster of events whose
// delivery does not name theirs.
const FirehosePath = "/firehose"

// DefaultFirehoseMaxBodyBytes is above the largest request Firehose sends:
// a buffer of 64 MiB (the largest HTTP endpoint buffering hint), base64
// encoded, in its JSON envelope.
const DefaultFirehoseMaxBodyBytes = 96 << 20

// Headers of Firehose's requests.
const (
	firehoseKeyHeader       = "X-Amz-Firehose-Access-Key"
	firehoseRequestIDHeader = "X-Amz-Firehose-Request-Id"
)

// FirehoseConfig configures the Kinesis Data Firehose endpoint.
type FirehoseConfig struct {
	// AccessKeys are the access keys accepted in the
	// X-Amz-Firehose-Access-Key header (the destination's "access key"),
	// compared in constant time. At least one is required.
	AccessKeys []string
	// MaxBodyBytes limits a request body, after gzip content encoding is
	// undone (0: DefaultFirehoseMaxBodyBytes).
	MaxBodyBytes int64
	// MaxRecordBytes limits one record once its gzip is undone
	// (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
}

// firehose is the endpoint's state in a Server.
type firehose struct {
	cfg    FirehoseConfig
	keys   [][sha256.Size]byte
	ledger *source.Ledger
}

func newFirehose(cfg FirehoseConfig, st state.Store) (*firehose, error) {
	if len(cfg.AccessKeys) == 0 {
		return nil, errors.New("server: the Firehose endpoint needs an access key")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultFirehoseMaxBodyBytes
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = ingest.DefaultMaxRecordBytes
	}
	f := &firehose{cfg: cfg}
	for _, k := range cfg.AccessKeys {
		if k == "" {
			return nil, errors.New("server: empty Firehose access key")
		}
		f.keys = append(f.keys, sha256.Sum256([]byte(k)))
	}
	l, err := source.NewLedger(st, "firehose", source.FirehoseRetention)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	f.ledger = l
	return f, nil
}

// firehoseBody is the request body Firehose sends: its records, each a
// base64 string.
type firehoseBody struct {
	RequestID string `json:"requestId"`
	Timestamp int64  `json:"timestamp"`
	Records   []struct {
		Data string `json:"data"`
	} `json:"records"`
}

// firehoseAnswer is the response body Firehose expects: the request's id
// and a timestamp in milliseconds, with the reason of a failure.
type firehoseAnswer struct {
	RequestID    string `json:"requestId"`
	Timestamp    int64  `json:"timestamp"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

func (s *Server) firehoseReply(w http.ResponseWriter, code int, reqID, why string) {
	s.m.response(code)
	w.Header().Set("Content-Type", "application/json")
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(s.cfg.RetryAfter.Round(time.Second)/time.Second))))
	}
	w.WriteHeader(code)
	b, _ := json.Marshal(firehoseAnswer{RequestID: reqID, Timestamp: time.Now().UnixMilli(), ErrorMessage: why})
	w.Write(append(b, '\n'))
}

// firehoseAuth checks the access key; the status is the refusal's.
func (f *firehose) auth(r *http.Request) (int, string) {
	k := r.Header.Get(firehoseKeyHeader)
	if k == "" {
		return http.StatusUnauthorized, "access key required (" + firehoseKeyHeader + ")"
	}
	sum := sha256.Sum256([]byte(k))
	match := 0
	for _, want := range f.keys {
		match |= subtle.ConstantTimeCompare(sum[:], want[:])
	}
	if match != 1 {
		return http.StatusForbidden, "access key not accepted"
	}
	return 0, ""
}

// serveFirehose takes one Firehose request: the records of a delivery
// stream whose source is a CloudWatch Logs subscription (each record a
// gzip-compressed subscription payload, or the payload itself when the
// stream decompresses), answered 200 only once they are durable. A
// request whose id is in the ledger is answered 200 at once.
func (s *Server) serveFirehose(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	defer func() { s.m.reqTime.Observe(time.Since(received).Seconds()) }()
	f := s.fh
	reqID := r.Header.Get(firehoseRequestIDHeader)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.firehoseReply(w, http.StatusMethodNotAllowed, reqID, "the Firehose endpoint takes POST")
		return
	}
	if code, why := f.auth(r); code != 0 {
		s.log.Warn("Firehose request refused", "remote", r.RemoteAddr, "request_id", reqID, "status", code, "reason", why)
		s.firehoseReply(w, code, reqID, why)
		return
	}
	cluster, ok := s.pathCluster(r)
	if !ok {
		s.firehoseReply(w, http.StatusNotFound, reqID, "invalid cluster name in the path")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.firehoseReply(w, http.StatusUnsupportedMediaType, reqID, fmt.Sprintf("content type %q: the endpoint takes application/json", ct))
			return
		}
	}
	client := remoteClient(r)
	if code, why := s.admit(w, client); code != 0 {
		s.firehoseReply(w, code, reqID, why)
		return
	}
	defer s.leave(client)
	body, code, why := s.readCloudBody(w, r, f.cfg.MaxBodyBytes)
	if code != 0 {
		s.firehoseReply(w, code, reqID, why)
		return
	}
	var req firehoseBody
	if err := json.Unmarshal(body, &req); err != nil {
		s.firehoseReply(w, http.StatusBadRequest, reqID, "malformed body: "+err.Error())
		return
	}
	if reqID == "" {
		reqID = req.RequestID
	}
	if reqID == "" {
		s.firehoseReply(w, http.StatusBadRequest, reqID, "no request id: neither "+firehoseRequestIDHeader+" nor requestId")
		return
	}
	if len(req.Records) == 0 {
		s.firehoseReply(w, http.StatusOK, reqID, "")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WaitTimeout)
	defer cancel()
	claim, dup, err := f.ledger.Claim(ctx, reqID, received)
	if err != nil {
		s.firehoseReply(w, http.StatusServiceUnavailable, reqID, "cannot check for a redelivery: "+err.Error())
		return
	}
	if dup {
		s.log.Debug("Firehose request delivered again: acknowledged", "request_id", reqID)
		s.m.repeated.WithLabelValues("firehose").Inc()
		s.firehoseReply(w, http.StatusOK, reqID, "")
		return
	}
	durable := false
	defer func() { claim.Finish(durable) }()
	origin := "firehose:" + reqID
	b := &run.Batch{Input: "firehose", Cluster: cluster, Bytes: int64(len(body)), Received: received,
		Commit: func(tx state.Tx) error { return claim.Record(tx, len(req.Records)) }}
	for i, rec := range req.Records {
		b.Records = f.appendRecords(b.Records, event.Origin{Name: origin, Line: int64(i + 1)}, rec.Data)
	}
	res, code, why := s.submitWait(ctx, b)
	if code != 0 {
		if code >= 500 {
			s.log.Error("Firehose batch not taken", "request_id", reqID, "err", why)
		}
		s.firehoseReply(w, code, reqID, why)
		return
	}
	durable = true
	s.m.batchSize.Observe(float64(res.Events))
	if res.Bad > 0 {
		s.log.Warn("bad records in a Firehose request", "request_id", reqID, "cluster", cluster, "events", res.Events, "bad", res.Bad, "errors", res.Errors)
	}
	s.firehoseReply(w, http.StatusOK, reqID, "")
}

// gzipMagic starts a gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// appendRecords appends the records of one Firehose record: its base64
// data decoded and, when it is gzip, decompressed — one record per gzip
// member. A record that cannot be decoded is a record carrying its error:
// it costs only itself.
func (f *firehose) appendRecords(out []ingest.Record, origin event.Origin, data string) []ingest.Record {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return append(out, ingest.Record{Origin: origin, Err: fmt.Errorf("%w: record data is not base64: %v", ingest.ErrShape, err)})
	}
	if !bytes.HasPrefix(raw, gzipMagic) {
		if len(raw) > f.cfg.MaxRecordBytes {
			return append(out, ingest.Record{Origin: origin, Err: fmt.Errorf("%w (%d bytes)", ingest.ErrTooLarge, f.cfg.MaxRecordBytes)})
		}
		return append(out, ingest.Record{Origin: origin, Data: raw})
	}
	br := bufio.NewReader(bytes.NewReader(raw))
	zr, err := gzip.NewReader(br)
	if err != nil {
		return append(out, ingest.Record{Origin: origin, Err: fmt.Errorf("%w: record data is not gzip: %v", ingest.ErrShape, err)})
	}
	for member := 0; ; member++ {
		zr.Multistream(false)
		var buf bytes.Buffer
		n, err := buf.ReadFrom(io.LimitReader(zr, int64(f.cfg.MaxRecordBytes)+1))
		switch {
		case err != nil:
			return append(out, ingest.Record{Origin: origin, Err: fmt.Errorf("%w: cannot decompress record data: %v", ingest.ErrShape, err)})
		case n > int64(f.cfg.MaxRecordBytes):
			return append(out, ingest.Record{Origin: origin, Err: fmt.Errorf("%w (%d bytes decompressed)", ingest.ErrTooLarge, f.cfg.MaxRecordBytes)})
		}
		if member == 0 || len(bytes.TrimSpace(buf.Bytes())) > 0 {
			out = append(out, ingest.Record{Origin: origin, Data: buf.Bytes()})
		}
		if err := zr.Reset(br); err == io.EOF {
			return out
		} else if err != nil {
			return append(out, ingest.Record{Origin: origin, Err: fmt.Errorf("%w: record data after its gzip stream: %v", ingest.ErrShape, err)})
		}
	}
}

// pathCluster returns the cluster named by the request's path, or the
// configured one; ok is false for a name that is not a cluster name.
func (s *Server) pathCluster(r *http.Request) (string, bool) {
	c := r.PathValue("cluster")
	if c == "" {
		return s.cfg.Cluster, true
	}
	return c, validCluster(c)
}

// readCloudBody reads the request body, within limit bytes and
// Config.BodyTimeout (readBody), and undoes a gzip content encoding, up
// to limit bytes decompressed. The status is the refusal's.
func (s *Server) readCloudBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, int, string) {
	ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	if ce != "" && ce != "identity" && ce != "gzip" {
		return nil, http.StatusUnsupportedMediaType, fmt.Sprintf("content encoding %q is not supported", ce)
	}
	var raw bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= limit {
		raw.Grow(int(n) + 1)
	}
	if err := s.readBody(w, r, &raw, limit); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes", limit)
		case errors.Is(err, errBodyTimeout):
			w.Header().Set("Connection", "close")
			return nil, http.StatusRequestTimeout, fmt.Sprintf("the body was not received within %s", s.cfg.BodyTimeout)
		}
		return nil, http.StatusBadRequest, "cannot read the body: " + err.Error()
	}
	body := raw.Bytes()
	if ce == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, http.StatusBadRequest, "cannot read the gzip body: " + err.Error()
		}
		defer zr.Close()
		var out bytes.Buffer
		n, err := out.ReadFrom(io.LimitReader(zr, limit+1))
		switch {
		case n > limit:
			return nil, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over the limit of %d bytes decompressed", limit)
		case err != nil:
			return nil, http.StatusBadRequest, "cannot read the gzip body: " + err.Error()
		}
		body = out.Bytes()
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, http.StatusBadRequest, "empty body"
	}
	return body, 0, ""
}

// submitWait hands b to the driver and waits until it is durable. The
// status is not 0 when the batch was not taken, or taken and not made
// durable, or when no event of it could be read (400); the reason goes
// with it.
func (s *Server) submitWait(ctx context.Context, b *run.Batch) (run.Result, int, string) {
	done := make(chan run.Result, 1)
	b.Done = func(r run.Result) { done <- r }
	var res run.Result
	err := s.cfg.Driver.TrySubmit(b)
	if err == nil {
		select {
		case res = <-done:
		case <-ctx.Done():
			err = ctx.Err() // the batch is still evaluated and committed
		}
	}
	switch {
	case errors.Is(err, run.ErrBusy):
		return res, http.StatusTooManyRequests, "the engine is busy: retry later"
	case errors.Is(err, run.ErrClosed):
		return res, http.StatusServiceUnavailable, "shutting down"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return res, http.StatusServiceUnavailable, "the batch was not committed in time: " + err.Error()
	case err != nil:
		return res, http.StatusServiceUnavailable, "cannot take the batch: " + err.Error()
	case res.Err != nil:
		return res, http.StatusInternalServerError, "cannot evaluate the batch: " + res.Err.Error()
	case res.Events == 0 && res.Duplicates == 0 && res.Bad > 0:
		return res, http.StatusBadRequest, "malformed records: " + strings.Join(res.Errors, "; ")
	}
	return res, 0, ""
}
