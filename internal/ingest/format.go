package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"unsafe"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Errors categorising bad records; test with errors.Is.
var (
	ErrSyntax    = jsonx.ErrSyntax       // not valid JSON
	ErrDuplicate = jsonx.ErrDuplicateKey // an object has a key twice
	ErrShape     = errors.New("wrong shape")
	ErrTooLarge  = errors.New("record over the size limit")
	ErrUnknown   = errors.New("unknown record format")
	ErrTruncated = errors.New("truncated record")
	ErrSkipped   = errors.New("skipped record")
	// ErrNoTime is an event with no time of its own (no stageTimestamp,
	// requestReceivedTimestamp or its format's time): rules judge events
	// in event time, so it cannot be judged.
	ErrNoTime     = errors.New("event without a time")
	ErrBadOptions = errors.New("bad reader options")
)

// Keys summarises the top-level keys of a JSON object, for detection.
type Keys uint32

// Top-level keys that formats are recognised by.
const (
	KeyKind Keys = 1 << iota
	KeyAPIVersion
	KeyAuditID
	KeyStage
	KeyRequestURI
	KeyItems
	KeyRecords
	KeyLogEvents
	KeyMessageType
	KeyAwslogs
	KeyEvents
	KeyProtoPayload
	KeyPLogType
	KeyKubernetes
	KeyTimestampECS
	KeyProperties
	KeyCategory
	KeyMessage
	KeyDottedAudit // a key starting "kubernetes.audit."
	KeyVerb
	KeyUser
)

var keyNames = map[string]Keys{
	"kind": KeyKind, "apiVersion": KeyAPIVersion, "auditID": KeyAuditID, "stage": KeyStage,
	"requestURI": KeyRequestURI, "items": KeyItems, "records": KeyRecords, "logEvents": KeyLogEvents,
	"messageType": KeyMessageType, "awslogs": KeyAwslogs, "events": KeyEvents,
	"protoPayload": KeyProtoPayload, "p_log_type": KeyPLogType, "kubernetes": KeyKubernetes,
	"@timestamp": KeyTimestampECS, "properties": KeyProperties, "category": KeyCategory,
	"message": KeyMessage, "verb": KeyVerb, "user": KeyUser,
}

// Has reports whether all of k's keys are present.
func (k Keys) Has(want Keys) bool { return k&want == want }

// Any reports whether any of want's keys is present.
func (k Keys) Any(want Keys) bool { return k&want != 0 }

// Sniff returns the top-level keys of the object rec, and the value of its
// "kind" key when that is a plain string.
func Sniff(rec []byte) (Keys, string, error) {
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return 0, "", err
	}
	var k Keys
	kind := ""
	for it.Next() {
		if bit, ok := keyNames[string(it.Key)]; ok {
			k |= bit
			if bit == KeyKind && jsonx.TypeAt(rec, it.Value) == jsonx.String {
				s, end, err := jsonx.ReadString(rec, it.Value, &it.Scratch)
				if err != nil {
					return 0, "", err
				}
				kind = string(s)
				it.Consumed(end)
			}
		} else if len(it.Key) > 17 && string(it.Key[:17]) == "kubernetes.audit." {
			k |= KeyDottedAudit
		}
	}
	if it.Err != nil {
		return 0, "", it.Err
	}
	return k, kind, nil
}

// FirstKind returns the value of the "kind" key of the object rec when
// that key comes first and holds a string, as in what kube-apiserver
// writes and sends ({"kind":"EventList",...}); ok is false otherwise. It
// reads only that member, not the whole record: detection and decoding
// of an EventList take it to avoid a pass over its items. The value
// aliases rec unless it has escapes.
func FirstKind(rec []byte) (kind []byte, ok bool) {
	i := jsonx.SkipWS(rec, 0)
	if i >= len(rec) || rec[i] != '{' {
		return nil, false
	}
	i = jsonx.SkipWS(rec, i+1)
	var scratch []byte
	key, n, err := jsonx.ReadString(rec, i, &scratch)
	if err != nil || string(key) != "kind" {
		return nil, false
	}
	i = jsonx.SkipWS(rec, n)
	if i >= len(rec) || rec[i] != ':' {
		return nil, false
	}
	i = jsonx.SkipWS(rec, i+1)
	if jsonx.TypeAt(rec, i) != jsonx.String {
		return nil, false
	}
	v, _, err := jsonx.ReadString(rec, i, &scratch)
	if err != nil {
		return nil, false
	}
	return v, true
}

// Format decodes the records of one input format.
type Format interface {
	// Name is the format's name for --format and kanon.reader.
	Name() string
	// Detect reports whether an object record with these top-level keys
	// (and "kind" value) is of this format. Formats are asked in priority order.
	Detect(keys Keys, kind string) bool
	// Decode decodes one record into events. It returns an error (a bad
	// record) when the record as a whole cannot be read; a bad part of a
	// batch record is reported with d.Bad and the rest is decoded.
	Decode(d *Decoder, rec []byte) error
}

// Decoder carries what a Format needs while decoding one record. Formats
// that wrap other formats (envelopes) call Dispatch on the inner records.
type Decoder struct {
	// Fields is the set of fields to materialise.
	Fields event.FieldSet
	// Origin of the current record; formats may set Line for sub-records.
	Origin event.Origin
	// Event is scratch space for formats; reused for every event.
	Event event.Event
	// Scratch is byte scratch space for unescaped strings, reset per record.
	Scratch []byte
	// KeyScratch is scratch space for the unescaped object keys of one
	// event (and of the objects skipped inside it), reused per event.
	KeyScratch []byte
	// Validated is set while decoding a record that was validated in full
	// already (jsonx.Skip): formats may then skip what they do not read
	// without checking it again.
	Validated bool
	// Context set by envelopes for the events decoded inside them.
	CloudProvider, ClusterName, Reader string

	reg      *Registry
	emit     func(*event.Event) error
	bad      func(BadRecord)
	forced   Format
	emitted  int64
	emitErr  error
	depth    int
	dedup    Deduper
	MaxBytes int

	repeated int64           // records read both ways (Readings)
	collect  *[]*event.Event // the events of a reading, while Readings decodes it
	bads     *[]BadRecord    // the bad parts of a reading, likewise
	warn     func(BadRecord)
}

// Deduper drops events already seen (repeated deliveries of the same
// record). It returns true when the event is a duplicate.
type Deduper func(e *event.Event) bool

// BadRecord is a record that could not be read.
type BadRecord struct {
	Origin event.Origin
	Err    error
}

func (b BadRecord) Error() string { return b.Origin.String() + ": " + b.Err.Error() }

// Unwrap returns the reason.
func (b BadRecord) Unwrap() error { return b.Err }

// Emit hands a decoded event to the consumer, stamping the context set by
// envelopes. The event must not be used by the format after Emit returns.
func (d *Decoder) Emit(e *event.Event) error {
	if d.emitErr != nil {
		return d.emitErr
	}

	if e.CloudProvider == "" {
		e.CloudProvider = d.CloudProvider
	}
	if e.ClusterName == "" {
		e.ClusterName = d.ClusterName
	}
	if e.Reader == "" {
		// The envelope's reader if there is one (an EKS message read as an
		// audit event is an "eks" event), else the format that decoded it.
		e.Reader = d.Reader
		if e.Reader == "" {
			e.Reader = e.Format
		}
	}
	if e.Origin.Name == "" {
		e.Origin = d.Origin
	}
	if d.collect != nil {
		*d.collect = append(*d.collect, e.Clone())
		return nil
	}
	if d.dedup != nil && d.dedup(e) {
		return nil
	}
	d.emitted++
	if err := d.emit(e); err != nil {
		d.emitErr = err
		return err
	}
	return nil
}

// EmitErr is the consumer's error, once Emit has returned one: decoding
// must stop and return it.
func (d *Decoder) EmitErr() error { return d.emitErr }

// Bad reports a bad part of a record and lets decoding go on. An error
// wrapping ErrSkipped reports a part skipped on purpose instead: the
// Reader counts it in Stats.Skipped, not as bad.
func (d *Decoder) Bad(err error) {
	if d.bads != nil {
		*d.bads = append(*d.bads, BadRecord{Origin: d.Origin, Err: err})
		return
	}
	d.bad(BadRecord{Origin: d.Origin, Err: err})
}

// Dispatch decodes a top-level record with the forced format, or with the
// format that detects it. A JSON array is read element by element (a bad
// element is reported and the others are read).
func (d *Decoder) Dispatch(rec []byte) error { return d.dispatch(rec, d.forced) }

// DispatchInner decodes a record found inside an envelope (an EKS message,
// an AKS properties.log): it is always detected, never forced.
func (d *Decoder) DispatchInner(rec []byte) error { return d.dispatch(rec, nil) }

func (d *Decoder) dispatch(rec []byte, forced Format) error {
	emitted := d.emitted
	err := d.dispatchOnce(rec, forced)
	if err != nil && errors.Is(err, ErrDuplicate) && d.emitErr == nil && d.emitted == emitted && d.collect == nil {
		// A repeated key, and nothing of the record read yet: read it
		// both ways.
		return d.Readings(rec, func(r []byte) error { return d.dispatchOnce(r, forced) })
	}
	return err
}

func (d *Decoder) dispatchOnce(rec []byte, forced Format) error {
	if d.depth > 8 {
		return fmt.Errorf("%w: envelopes nested too deeply", ErrShape)
	}
	d.depth++
	defer func() { d.depth-- }()
	i := jsonx.SkipWS(rec, 0)
	if i >= len(rec) {
		return fmt.Errorf("%w: empty record", ErrSyntax)
	}
	if rec[i] == '[' {
		n := 0
		_, err := jsonx.ArrayEach(rec, i, func(at int) (int, error) {
			// The element's syntax only: a repeated key inside it is the
			// element's to resolve, not the array's.
			end, err := jsonx.SkipSyntax(rec, at)
			if err != nil {
				return end, err
			}
			n++
			if err := d.dispatch(rec[at:end], forced); err != nil {
				if d.emitErr != nil {
					return end, err
				}
				d.Bad(fmt.Errorf("array element %d: %w", n, err))
			}
			return end, nil
		})
		return err
	}
	f := forced
	if f == nil {
		var err error
		if f, err = d.reg.detect(rec[i:]); err != nil {
			return err
		}
	}
	return f.Decode(d, rec[i:])
}

// Registry holds the known formats in detection order.
type Registry struct {
	formats []Format
	fast    Format // tried first for records starting {"kind":"Event"
	list    Format // taken for objects whose first member is "kind":"EventList"
}

// NewRegistry returns a registry of the given formats, asked in order.
func NewRegistry(formats ...Format) *Registry {
	r := &Registry{formats: formats}
	for _, f := range formats {
		if f.Detect(KeyKind|KeyAPIVersion|KeyAuditID, "Event") {
			r.fast = f
			break
		}
	}
	for _, f := range formats {
		if f.Detect(KeyKind|KeyAPIVersion|KeyItems, "EventList") {
			r.list = f
			break
		}
	}
	return r
}

// Lookup returns the format named name.
func (r *Registry) Lookup(name string) (Format, bool) {
	for _, f := range r.formats {
		if f.Name() == name {
			return f, true
		}
	}
	return nil, false
}

// Names lists the formats' names, sorted.
func (r *Registry) Names() []string {
	var out []string
	for _, f := range r.formats {
		out = append(out, f.Name())
	}
	sort.Strings(out)
	return out
}

var fastPrefix = []byte(`{"kind":"Event"`)

// truncatedMarker ends a CloudWatch Logs entry that was cut at 256 KB.
var truncatedMarker = []byte("[Truncated...]")

func (r *Registry) detect(rec []byte) (Format, error) {
	if r.fast != nil && len(rec) >= len(fastPrefix) && string(rec[:len(fastPrefix)]) == string(fastPrefix) && rec[len(rec)-1] == '}' {
		return r.fast, nil
	}
	i := jsonx.SkipWS(rec, 0)
	if i >= len(rec) || rec[i] != '{' {
		if i < len(rec) {
			// Not an object: a plain message line of another format may
			// still be valid JSON (a string); say what it is.
			if _, err := jsonx.Skip(rec, i); err != nil {
				return nil, err
			}
		}
		return nil, fmt.Errorf("%w: expected a JSON object or array", ErrShape)
	}
	// An EventList (kind first, as kube-apiserver writes it) is known by
	// its first member: sniffing its keys would read all its items once
	// more before the format decodes them. The format checks the rest.
	if r.list != nil {
		if kind, ok := FirstKind(rec[i:]); ok && string(kind) == "EventList" {
			return r.list, nil
		}
	}
	keys, kind, err := Sniff(rec[i:])
	if err != nil {
		if bytes.HasSuffix(bytes.TrimRight(rec, " \t\r\n"), truncatedMarker) {
			return nil, fmt.Errorf("%w: the line ends with CloudWatch's %s marker (entries over 256 KB are cut): %v", ErrTruncated, truncatedMarker, err)
		}
		return nil, err
	}
	for _, f := range r.formats {
		if f.Detect(keys, kind) {
			return f, nil
		}
	}
	return nil, fmt.Errorf("%w: no reader recognises an object with these keys", ErrUnknown)
}

// BytesToString returns a string aliasing b (no copy). The string is valid
// as long as b is not modified.
func BytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
