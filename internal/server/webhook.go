package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source"
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

// bodyID names a webhook body by its content and the cluster it was posted
// for: kube-apiserver sends a batch again, byte for byte, when its answer
// was lost or the server was down, and the events of two batches that are
// not the same retry never are the same bytes (each event has its own
// auditID and timestamps).
func bodyID(cluster string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(cluster))
	h.Write([]byte{0})
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// claimBody starts the evaluation of a webhook body in the server's
// ledger: dup true says the body's batch is durable already (a retry), to
// be acknowledged without evaluating it again — the events' in-memory
// redelivery dedup does not span restarts, and a second evaluation would
// count its events again in an ES|QL window. Without a store there is no
// ledger, and no claim.
func (s *Server) claimBody(ctx context.Context, cluster string, body []byte, received time.Time) (*source.Claim, bool, error) {
	if s.ledger == nil {
		return nil, false, nil
	}
	return s.ledger.Claim(ctx, bodyID(cluster, body), received)
}
