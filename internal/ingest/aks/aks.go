package aks

import (
	"fmt"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Name is the format's name (for --format and kanon.reader).
const Name = "aks"

// Provider is the cloud.provider of AKS events.
const Provider = "azure"

// Format reads AKS diagnostic settings records. It has no state and is
// safe for concurrent use.
type Format struct{}

// New returns the format.
func New() Format { return Format{} }

// Name implements ingest.Format.
func (Format) Name() string { return Name }

// Detect implements ingest.Format: an Event Hubs envelope (records) or one
// record (category and properties).
func (Format) Detect(keys ingest.Keys, kind string) bool {
	if keys.Any(ingest.KeyPLogType | ingest.KeyProtoPayload | ingest.KeyKubernetes | ingest.KeyDottedAudit | ingest.KeyLogEvents) {
		return false
	}
	return keys.Has(ingest.KeyRecords) || keys.Has(ingest.KeyCategory|ingest.KeyProperties)
}

// IsAuditCategory reports whether a diagnostic settings category holds
// Kubernetes audit events.
func IsAuditCategory(c string) bool { return c == "kube-audit" || c == "kube-audit-admin" }

// ClusterFromResourceID returns the cluster name of an AKS resource id (the
// segment after MANAGEDCLUSTERS, any case, as written), or "".
func ClusterFromResourceID(id string) string {
	id = strings.TrimRight(id, "/")
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return ""
	}
	parent := id[:i]
	j := strings.LastIndexByte(parent, '/')
	if !strings.EqualFold(parent[j+1:], "managedClusters") {
		return ""
	}
	return id[i+1:]
}

// Decode implements ingest.Format.
func (Format) Decode(d *ingest.Decoder, rec []byte) error {
	i := jsonx.SkipWS(rec, 0)
	rec = rec[i:]
	if jsonx.TypeAt(rec, 0) != jsonx.Object {
		return fmt.Errorf("%w: expected a JSON object", ingest.ErrShape)
	}
	keys, _, err := ingest.Sniff(rec)
	if err != nil {
		return err
	}
	if keys.Has(ingest.KeyRecords) && !keys.Has(ingest.KeyCategory) {
		return decodeEnvelope(d, rec)
	}
	bad, emitErr := decodeRecord(d, rec)
	if emitErr != nil {
		return emitErr
	}
	return bad
}

func decodeEnvelope(d *ingest.Decoder, rec []byte) error {
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	at := -1
	for it.Next() {
		if string(it.Key) == "records" {
			at = it.Value
		}
	}
	if it.Err != nil {
		return it.Err
	}
	if err := trailing(rec, it.End); err != nil {
		return err
	}
	switch jsonx.TypeAt(rec, at) {
	case jsonx.Array:
	case jsonx.Null:
		return nil
	default:
		return fmt.Errorf("%w: records: expected an array", ingest.ErrShape)
	}
	n := -1
	var emitErr error
	_, err := jsonx.ArrayEach(rec, at, func(j int) (int, error) {
		n++
		// The record's syntax only: a repeated key in it is the record's
		// to resolve (ingest's readings), and costs no other record.
		end, err := jsonx.SkipSyntax(rec, j)
		if err != nil {
			return end, err
		}
		mark := len(d.Scratch)
		err = d.Element(rec[j:end], func(r []byte) error {
			bad, e := decodeRecord(d, r)
			if e != nil {
				emitErr = e
				return e
			}
			return bad
		})
		d.Scratch = d.Scratch[:mark]
		if emitErr != nil {
			return end, emitErr
		}
		if err != nil {
			d.Bad(fmt.Errorf("records[%d]: %w", n, err))
		}
		return end, nil
	})
	if emitErr != nil {
		return emitErr
	}
	return err
}

// metaKeys maps record fields to their aks_metadata names, in output order.
var metaKeys = [...]struct{ from, to string }{
	{"category", "category"},
	{"ccpNamespace", "ccp_namespace"},
	{"Cloud", "cloud"},
	{"containerID", "container_id"},
	{"Environment", "environment"},
	{"operationName", "operation_name"},
	{"pod", "pod"},
	{"resourceId", "resource_id"},
	{"serviceBuild", "service_build"},
	{"stream", "stream"},
	{"time", "time"},
	{"UnderlayClass", "underlay_class"},
	{"UnderlayName", "underlay_name"},
}

func metaIndex(key []byte) int {
	for i, m := range metaKeys {
		if string(key) == m.from {
			return i
		}
	}
	return -1
}

// record is what one AKS record holds besides the audit event.
type record struct {
	raw      [len(metaKeys)][]byte // JSON values of metaKeys, as written
	category string
	cluster  string
	logAt    int
	panther  []event.Raw
}

// decodeRecord decodes and emits one record. It returns the reason the
// record is bad (or skipped), or the consumer's error.
func decodeRecord(d *ingest.Decoder, rec []byte) (bad, emitErr error) {
	e := &d.Event
	e.Reset()
	if err := DecodeRecord(d, rec, e); err != nil {
		return err, nil
	}
	if err := d.Emit(e); err != nil {
		return nil, err
	}
	return nil, nil
}

// DecodeRecord decodes the diagnostic settings record rec (an object) into
// e, which the caller has reset, without emitting it. Other formats
// (panther) use it for the records inside their envelopes. It returns an
// error wrapping ingest.ErrSkipped for a category that is not an audit
// log. Keys starting "p_" are kept as raw panther.* parts when d.Fields
// asks for lazy fields.
func DecodeRecord(d *ingest.Decoder, rec []byte, e *event.Event) error {
	if jsonx.TypeAt(rec, 0) != jsonx.Object {
		return fmt.Errorf("%w: expected an object", ingest.ErrShape)
	}
	r := record{logAt: -1}
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	sawProps := false
	for it.Next() {
		var err error
		end := -1
		key := it.Key
		switch {
		case string(key) == "properties":
			sawProps = true
			end, err = r.properties(rec, it.Value)
		case len(key) > 2 && key[0] == 'p' && key[1] == '_':
			if d.Fields.Lazy {
				end, err = jsonx.Skip(rec, it.Value)
				if err == nil {
					r.panther = append(r.panther, event.Raw{Prefix: "panther", Key: string(key), JSON: rec[it.Value:end]})
				}
			}
		default:
			k := metaIndex(key)
			if k < 0 {
				continue
			}
			switch jsonx.TypeAt(rec, it.Value) {
			case jsonx.String:
				var s []byte
				s, end, err = jsonx.ReadString(rec, it.Value, &d.Scratch)
				if err != nil {
					break
				}
				r.raw[k] = rec[it.Value:end]
				switch metaKeys[k].from {
				case "category":
					r.category = ingest.BytesToString(s)
				case "resourceId":
					r.cluster = ClusterFromResourceID(ingest.BytesToString(s))
				}
			case jsonx.Null:
			default:
				if metaKeys[k].from == "category" || metaKeys[k].from == "resourceId" {
					err = fmt.Errorf("%w: %s: expected a string", ingest.ErrShape, key)
				}
			}
		}
		if err != nil {
			return err
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	if it.Err != nil {
		return it.Err
	}
	if err := trailing(rec, it.End); err != nil {
		return err
	}
	switch {
	case r.category == "":
		return fmt.Errorf("%w: AKS record without category", ingest.ErrShape)
	case !IsAuditCategory(r.category):
		return fmt.Errorf("%w: AKS category %q is not an audit log", ingest.ErrSkipped, r.category)
	case !sawProps:
		return fmt.Errorf("%w: AKS record without properties", ingest.ErrShape)
	case r.logAt < 0:
		return fmt.Errorf("%w: AKS record without properties.log", ingest.ErrShape)
	}
	if err := decodeLog(d, rec, r.logAt, e); err != nil {
		return fmt.Errorf("properties.log: %w", err)
	}
	e.Record = rec
	e.Format = Name
	e.Reader = Name
	if d.Reader != "" {
		e.Reader = d.Reader
	}
	e.CloudProvider = Provider
	e.ClusterName = r.cluster
	if d.Fields.Lazy {
		r.appendRaws(d, e)
	}
	return nil
}

// properties reads the properties object: the log's offset and the
// metadata fields.
func (r *record) properties(rec []byte, at int) (int, error) {
	if jsonx.TypeAt(rec, at) != jsonx.Object {
		return at, fmt.Errorf("%w: properties: expected an object", ingest.ErrShape)
	}
	var it jsonx.ObjectIter
	if err := it.Begin(rec, at); err != nil {
		return at, err
	}
	for it.Next() {
		if string(it.Key) == "log" {
			r.logAt = it.Value
			continue
		}
		k := metaIndex(it.Key)
		if k < 0 || jsonx.TypeAt(rec, it.Value) != jsonx.String {
			continue
		}
		end, err := jsonx.Skip(rec, it.Value)
		if err != nil {
			return it.Value, err
		}
		r.raw[k] = rec[it.Value:end]
		it.Consumed(end)
	}
	return it.End, it.Err
}

// decodeLog decodes the audit event in properties.log at rec[at]: a JSON
// string holding the event, or the event object itself.
func decodeLog(d *ingest.Decoder, rec []byte, at int, e *event.Event) error {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.Object:
		_, err := k8saudit.DecodeEvent(d, rec, at, e)
		return err
	case jsonx.String:
	default:
		return fmt.Errorf("%w: expected a JSON string or object", ingest.ErrShape)
	}
	log, _, err := jsonx.ReadString(rec, at, &d.Scratch)
	if err != nil {
		return err
	}
	i := jsonx.SkipWS(log, 0)
	if jsonx.TypeAt(log, i) != jsonx.Object {
		if i < len(log) && (log[i] == '[' || log[i] == '"') {
			return fmt.Errorf("%w: not a JSON audit event object", ingest.ErrShape)
		}
		return fmt.Errorf("%w: not a JSON audit event (%s)", ingest.ErrSyntax, excerpt(log))
	}
	end, err := k8saudit.DecodeEvent(d, log, i, e)
	if err != nil {
		return err
	}
	if j := jsonx.SkipWS(log, end); j < len(log) {
		return fmt.Errorf("%w: offset %d: data after the audit event", ingest.ErrSyntax, j)
	}
	return nil
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// appendRaws keeps aks_metadata and the p_* fields. The JSON is built in
// d.Scratch and valid for the current record.
func (r *record) appendRaws(d *ingest.Decoder, e *event.Event) {
	start := len(d.Scratch)
	b := append(d.Scratch, '{')
	for k, raw := range r.raw {
		if len(raw) == 0 {
			continue
		}
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, metaKeys[k].to...)
		b = append(b, '"', ':')
		b = append(b, raw...)
	}
	b = append(b, '}')
	d.Scratch = b
	e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "aks_metadata", JSON: b[start:len(b):len(b)]})
	e.Raws = append(e.Raws, r.panther...)
}

// trailing reports data after the JSON value that ends at rec[end].
func trailing(rec []byte, end int) error {
	if j := jsonx.SkipWS(rec, end); j < len(rec) {
		return fmt.Errorf("%w: offset %d: data after the JSON value", ingest.ErrSyntax, j)
	}
	return nil
}
