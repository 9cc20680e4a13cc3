package ingest

import (
	"errors"
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
	out := e
	rd := r.NewRedecoder(event.AllFields())
	if x, ok := rd.Redecode(e); ok {
		out = x
	}
	out = out.Clone()
	for i, f := range out.Ambiguous {
		out.Ambiguous[i] = strings.Clone(f)
	}
	return out
}

// errFirstEvent stops a redecoder's dispatch at the record's first event.
var errFirstEvent = errors.New("first event read")

// Redecoder reads events again from their records with a field set of its
// own: a prefilter reads few fields of every event, and the events that
// pass it are read again with the fields the rules read. A Redecoder is
// not safe for concurrent use.
type Redecoder struct {
	d   Decoder
	out *event.Event
}

// NewRedecoder returns a redecoder reading fields.
func (r *Registry) NewRedecoder(fields event.FieldSet) *Redecoder {
	rd := &Redecoder{d: Decoder{reg: r, Fields: fields, MaxBytes: DefaultMaxRecordBytes}}
	rd.d.emit = func(x *event.Event) error {
		rd.out = x
		return errFirstEvent // the record's first event is the one
	}
	rd.d.bad = func(BadRecord) {}
	rd.d.warn = func(BadRecord) {}
	return rd
}

// Redecode reads e's record again with the redecoder's fields (its format
// forced) and returns the event, with the context e was given by its
// envelope and its reader (cloud, cluster, reader, namespace, origin, a
// time given by the driver); ok is false when the record cannot be read
// again. The event is valid until the next call.
func (rd *Redecoder) Redecode(e *event.Event) (*event.Event, bool) {
	if len(e.Record) == 0 || e.Format == "" {
		return nil, false
	}
	f, ok := rd.d.reg.Lookup(e.Format)
	if !ok {
		return nil, false
	}
	d := &rd.d
	d.forced, d.Origin = f, e.Origin
	d.Scratch, d.emitErr = d.Scratch[:0], nil
	d.CloudProvider, d.ClusterName, d.Reader = "", "", ""
	rd.out = nil
	if err := d.Dispatch(e.Record); err != nil && err != errFirstEvent || rd.out == nil {
		return nil, false
	}
	out := rd.out
	if e.CloudProvider != "" {
		out.CloudProvider = e.CloudProvider
	}
	if e.ClusterName != "" {
		out.ClusterName = e.ClusterName
	}
	if e.Reader != "" {
		out.Reader = e.Reader
	}
	if e.Namespace != "" {
		out.Namespace = e.Namespace
	}
	out.Origin = e.Origin
	if out.Time().IsZero() {
		out.Timestamp = e.Timestamp // a time given by the reader of the event
	}
	out.Ambiguous = append(out.Ambiguous[:0], e.Ambiguous...)
	return out, true
}
