package ingest

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
)

// Materialize re-reads the record of e with every field, so that an alert
// can carry the whole canonical document although the scan read only the
// fields its rules need. It returns a copy that owns its memory; the
// context set by envelopes (cloud, cluster, reader, origin) is kept from e.
// When the record cannot be read again (it should always can), it returns
// a clone of e.
func (r *Registry) Materialize(e *event.Event) *event.Event {
	if len(e.Record) == 0 || e.Format == "" {
		return e.Clone()
	}
	f, ok := r.Lookup(e.Format)
	if !ok {
		return e.Clone()
	}
	d := &Decoder{reg: r, Fields: event.AllFields(), forced: f, MaxBytes: DefaultMaxRecordBytes}
	var out *event.Event
	d.emit = func(x *event.Event) error {
		if out == nil {
			out = x.Clone()
		}
		return nil
	}
	d.bad = func(BadRecord) {}
	d.Origin = e.Origin
	if err := d.Dispatch(e.Record); err != nil || out == nil {
		return e.Clone()
	}
	if e.CloudProvider != "" {
		out.CloudProvider = strings.Clone(e.CloudProvider)
	}
	if e.ClusterName != "" {
		out.ClusterName = strings.Clone(e.ClusterName)
	}
	if e.Reader != "" {
		out.Reader = strings.Clone(e.Reader)
	}
	if e.Namespace != "" {
		out.Namespace = strings.Clone(e.Namespace)
	}
	out.Origin = event.Origin{Name: strings.Clone(e.Origin.Name), Line: e.Origin.Line}
	if out.Time().IsZero() {
		out.Timestamp = e.Timestamp // a time given by the reader of the event
	}
	for _, f := range e.Ambiguous {
		out.Ambiguous = append(out.Ambiguous, strings.Clone(f))
	}
	return out
}
