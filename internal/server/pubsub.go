package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source"
	"github.com/kanon-dev/kanon/internal/state"
)

// PubSubPath is the path of the Pub/Sub push endpoint; /pubsub/<cluster>
// names the cluster of events whose entry does not name theirs.
const PubSubPath = "/pubsub"

// PubSubConfig configures the Pub/Sub push endpoint.
type PubSubConfig struct {
	// OIDC verifies the token of each push (the subscription's
	// authentication with a service account). Required unless
	// AllowUnsigned.
	OIDC *OIDCVerifier
	// AllowUnsigned takes pushes without a token (a push subscription
	// without authentication, behind a proxy that checks it). A push that
	// carries a token still has it verified when OIDC is set.
	AllowUnsigned bool
}

// pubsubPush is the endpoint's state in a Server.
type pubsubPush struct {
	cfg    PubSubConfig
	ledger *source.Ledger
}

// cloudEndpoints adds the configured cloud delivery endpoints to the mux.
func (s *Server) cloudEndpoints() error {
	st := s.cfg.Driver.Store()
	if st != nil {
		l, err := source.NewLedger(st, "webhook", source.WebhookRetention)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.ledger = l
	}
	if c := s.cfg.Firehose; c != nil {
		f, err := newFirehose(*c, st)
		if err != nil {
			return err
		}
		s.fh = f
		s.mux.HandleFunc(FirehosePath, s.serveFirehose)
		s.mux.HandleFunc(FirehosePath+"/{cluster}", s.serveFirehose)
	}
	if c := s.cfg.PubSub; c != nil {
		if c.OIDC == nil && !c.AllowUnsigned {
			return errors.New("server: the Pub/Sub push endpoint needs an OIDC verifier, or unsigned pushes allowed")
		}
		l, err := source.NewLedger(st, "pubsub", source.PubSubRetention)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.ps = &pubsubPush{cfg: *c, ledger: l}
		s.mux.HandleFunc(PubSubPath, s.servePubSub)
		s.mux.HandleFunc(PubSubPath+"/{cluster}", s.servePubSub)
	}
	return nil
}

// pushBody is the JSON envelope of a push (the wrapped payload format).
// Pub/Sub writes the message's ids and times in both camel and snake
// case.
type pushBody struct {
	Message struct {
		Data       string            `json:"data"`
		Attributes map[string]string `json:"attributes"`
		MessageID  string            `json:"messageId"`
		MessageID2 string            `json:"message_id"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// servePubSub takes one push: a message whose data is a Cloud Audit Logs
// LogEntry that a log sink published, answered 200 (an acknowledgement)
// only once it is durable; any other answer makes Pub/Sub push it again.
// A message whose id is in the ledger is acknowledged at once. A message
// whose entry cannot be read is acknowledged too (200, with "bad": 1): it
// is counted and logged as a bad record, since pushing it again cannot
// help; a body that is not a push envelope gets 400.
func (s *Server) servePubSub(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	defer func() { s.m.reqTime.Observe(time.Since(received).Seconds()) }()
	p := s.ps
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		s.reply(w, http.StatusMethodNotAllowed, errorBody{"the Pub/Sub push endpoint takes POST"})
		return
	}
	if code, why := p.auth(r); code != 0 {
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kanon"`)
		}
		s.log.Warn("Pub/Sub push refused", "remote", r.RemoteAddr, "status", code, "reason", why)
		s.reply(w, code, errorBody{why})
		return
	}
	cluster, ok := s.pathCluster(r)
	if !ok {
		s.reply(w, http.StatusNotFound, errorBody{"invalid cluster name in the path"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.reply(w, http.StatusUnsupportedMediaType, errorBody{fmt.Sprintf("content type %q: the endpoint takes application/json", ct)})
			return
		}
	}
	client := remoteClient(r)
	if code, why := s.admit(w, client); code != 0 {
		s.reply(w, code, errorBody{why})
		return
	}
	defer s.leave(client)
	body, code, why := s.readCloudBody(w, r, s.cfg.MaxBodyBytes)
	if code != 0 {
		s.reply(w, code, errorBody{why})
		return
	}
	var push pushBody
	if err := json.Unmarshal(body, &push); err != nil {
		s.reply(w, http.StatusBadRequest, errorBody{"malformed push: " + err.Error()})
		return
	}
	msgID := push.Message.MessageID
	if msgID == "" {
		msgID = push.Message.MessageID2
	}
	if msgID == "" {
		s.reply(w, http.StatusBadRequest, errorBody{"malformed push: no message.messageId"})
		return
	}
	data, err := base64.StdEncoding.DecodeString(push.Message.Data)
	if err != nil {
		// Not what Pub/Sub sends: refused, as a malformed envelope is.
		s.log.Warn("malformed Pub/Sub push", "message_id", msgID, "err", err)
		s.reply(w, http.StatusBadRequest, errorBody{"malformed push: message.data is not base64: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WaitTimeout)
	defer cancel()
	key := push.Subscription + "/" + msgID
	claim, dup, err := p.ledger.Claim(ctx, key, received)
	if err != nil {
		s.reply(w, http.StatusServiceUnavailable, errorBody{"cannot check for a redelivery: " + err.Error()})
		return
	}
	if dup {
		s.log.Debug("Pub/Sub message delivered again: acknowledged", "message_id", msgID)
		s.m.repeated.WithLabelValues("pubsub").Inc()
		s.ackPush(w, 0, 0, nil)
		return
	}
	durable := false
	defer func() { claim.Finish(durable) }()
	b := &run.Batch{Input: "pubsub", Cluster: cluster, Bytes: int64(len(body)), Received: received,
		Records: []ingest.Record{{Origin: event.Origin{Name: "pubsub:" + msgID}, Data: data}},
		Commit:  func(tx state.Tx) error { return claim.Record(tx, 1) }}
	res, code, why := s.submitWait(ctx, b)
	switch {
	case code == http.StatusBadRequest:
		// The entry can never be read: pushed again it would fail again
		// until the subscription's retention ends. It is acknowledged,
		// counted as a bad record and logged.
		s.log.Warn("bad Pub/Sub message acknowledged", "message_id", msgID, "err", why)
	case code != 0:
		s.log.Error("Pub/Sub message not taken", "message_id", msgID, "err", why)
		s.reply(w, code, errorBody{why})
		return
	}
	durable = true
	s.ackPush(w, res.Events, res.Bad, res.Errors)
}

// ackPush acknowledges a push (Pub/Sub takes 102, 200, 201, 202 and 204
// as acknowledgements): 200 with the counts, as the webhook answers.
func (s *Server) ackPush(w http.ResponseWriter, events, bad int, errs []string) {
	s.reply(w, http.StatusOK, ackBody{Events: events, Bad: bad, Errors: errs})
}

// auth checks the push's token; the status is the refusal's: 401 for a
// missing or invalid token (bad signature, unknown key, expired), 403 for
// a valid token that is not for this endpoint (issuer, audience, service
// account).
func (p *pubsubPush) auth(r *http.Request) (int, string) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if h == "" {
		if p.cfg.AllowUnsigned {
			return 0, ""
		}
		return http.StatusUnauthorized, "a push must carry an OIDC token (the subscription's push authentication)"
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return http.StatusUnauthorized, "unsupported authorization"
	}
	if p.cfg.OIDC == nil {
		return http.StatusUnauthorized, "pushes with a token are not verified here: no OIDC configuration"
	}
	if err := p.cfg.OIDC.Verify(r.Context(), strings.TrimSpace(tok), time.Now()); err != nil {
		if errors.Is(err, ErrTokenNotForUs) {
			return http.StatusForbidden, err.Error()
		}
		return http.StatusUnauthorized, err.Error()
	}
	return 0, ""
}
