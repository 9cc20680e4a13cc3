package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source"
	"github.com/kanon-dev/kanon/internal/state"
)

// batch turns a webhook body into a batch for the driver: the items of an
// EventList, each a record of its own (origin webhook:CLUSTER, line = item
// number), found and validated in the request's goroutine; any other body
// is one record, read the general way.
func (s *Server) batch(cluster string, body []byte, received time.Time) *run.Batch {
	origin := "webhook:" + cluster
	b := &run.Batch{Input: "webhook", Cluster: cluster, Bytes: int64(len(body)), Received: received}
	if f := s.cfg.Driver.Format(); f == "" || f == "auto" || f == k8saudit.Name {
		if recs, ok := splitEventList(body, origin); ok {
			b.Records = recs
			return b
		}
	}
	b.Records = []ingest.Record{{Origin: event.Origin{Name: origin}, Data: body}}
	return b
}

// eventListPrefix starts the EventLists kube-apiserver sends.
var eventListPrefix = []byte(`{"kind":"EventList"`)

// splitEventList returns the items of an EventList body as records, each
// validated (k8saudit.EachItem): a bad item is a record carrying its
// error, in its place, and costs nothing else; an item whose only problem
// is a repeated key is a record to read both ways. It returns false when the
// body is not an EventList as kube-apiserver sends it (it is then read the
// general way).
func splitEventList(body []byte, origin string) ([]ingest.Record, bool) {
	if !bytes.HasPrefix(body[jsonx.SkipWS(body, 0):], eventListPrefix) {
		return nil, false
	}
	var recs []ingest.Record
	err := k8saudit.EachItem(body, func(i int, item []byte, err error) error {
		rec := ingest.Record{Origin: event.Origin{Name: origin, Line: int64(i + 1)}, Data: item, Err: err, Validated: err == nil}
		switch {
		case errors.Is(err, jsonx.ErrDuplicateKey):
			// A repeated key: read the item both ways, as a record of its
			// own (ingest's readings), not as a bad item.
			rec.Err = nil
		case err != nil:
			rec.Data = nil
		}
		recs = append(recs, rec)
		return nil
	})
	if err != nil {
		rec := ingest.Record{Origin: event.Origin{Name: origin}, Err: err}
		if ie := (*k8saudit.ItemError)(nil); errors.As(err, &ie) {
			rec.Origin.Line = int64(ie.Index + 1)
		}
		recs = append(recs, rec)
	}
	return recs, true
}

// A batch that kube-apiserver sends again after its answer was lost is
// evaluated again by the replica it reaches, which need not be the one
// that took it first: a replica's memory of recent events (ingest.Dedup)
// does not see it, and the batch's events would count twice in ES|QL
// windows. So replicas write the digest of every body they took to the
// delivery ledger in the batch's commit, and answer a body whose digest
// is there at once without evaluating it again (one lookup per batch).
// kube-apiserver sends a batch again as it sent it, byte for byte.

// replicaLedger opens the ledger of webhook bodies when the driver is a
// replica.
func (s *Server) replicaLedger() error {
	if s.cfg.Driver.Replica() == "" {
		return nil
	}
	l, err := source.NewLedger(s.cfg.Driver.Store(), "webhook", source.WebhookRetention)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.batches = l
	return nil
}

// claimBody claims a body in the ledger of webhook bodies; without one
// (not a replica) it returns a claim that records nothing.
func (s *Server) claimBody(ctx context.Context, cluster string, body []byte, received time.Time) (*bodyClaim, bool, error) {
	if s.batches == nil {
		return &bodyClaim{}, false, nil
	}
	sum := sha256.Sum256(body)
	c, dup, err := s.batches.Claim(ctx, cluster+"/"+hex.EncodeToString(sum[:]), received)
	if err != nil || dup {
		return nil, dup, err
	}
	return &bodyClaim{c: c}, false, nil
}

// bodyClaim is a claim of the ledger of webhook bodies, or none.
type bodyClaim struct{ c *source.Claim }

// Record is the batch's Commit.
func (b *bodyClaim) Record(tx state.Tx) error {
	if b.c == nil {
		return nil
	}
	return b.c.Record(tx, 1)
}

// Finish ends the claim.
func (b *bodyClaim) Finish(durable bool) {
	if b.c != nil {
		b.c.Finish(durable)
	}
}
