package server

import (
	"bytes"
	"errors"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
	"github.com/kanon-dev/kanon/internal/run"
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
