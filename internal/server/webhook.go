package server

import (
	"bytes"
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
			b.Records, b.Validated = recs, true
			return b
		}
	}
	b.Records = []ingest.Record{{Origin: event.Origin{Name: origin}, Data: body}}
	return b
}

// eventListPrefix starts the EventLists kube-apiserver sends.
var eventListPrefix = []byte(`{"kind":"EventList"`)

// splitEventList returns the items of an EventList body as records, or
// false when the body is not a well-formed EventList (it is then read the
// general way, which reports what is wrong).
func splitEventList(body []byte, origin string) ([]ingest.Record, bool) {
	i := jsonx.SkipWS(body, 0)
	if !bytes.HasPrefix(body[i:], eventListPrefix) {
		return nil, false
	}
	var it jsonx.ObjectIter
	if it.Begin(body, i) != nil {
		return nil, false
	}
	var recs []ingest.Record
	found := false
	for it.Next() {
		if string(it.Key) != "items" {
			continue
		}
		if found || jsonx.TypeAt(body, it.Value) != jsonx.Array {
			return nil, false
		}
		found = true
		end, err := jsonx.ArrayEach(body, it.Value, func(at int) (int, error) {
			end, err := jsonx.Skip(body, at)
			if err == nil {
				recs = append(recs, ingest.Record{Origin: event.Origin{Name: origin, Line: int64(len(recs) + 1)}, Data: body[at:end]})
			}
			return end, err
		})
		if err != nil {
			return nil, false
		}
		it.Consumed(end)
	}
	if it.Err != nil || !found || jsonx.SkipWS(body, it.End) != len(body) {
		return nil, false
	}
	return recs, true
}
