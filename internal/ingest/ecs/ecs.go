// Package ecs reads ECS documents of Elastic's kubernetes.audit_logs data
// stream (NDJSON, e.g. exported from Elasticsearch), as they are: the audit
// fields under kubernetes.audit (nested or with dotted keys), @timestamp,
// cloud.provider, orchestrator.cluster.name and data_stream.namespace.
// Every other field stays readable by its path in the document.
package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Name is the format's name.
const Name = "ecs"

// Format reads ECS documents.
type Format struct{}

// New returns the format.
func New() Format { return Format{} }

// Name implements ingest.Format.
func (Format) Name() string { return Name }

// Detect implements ingest.Format: a document with a kubernetes object or
// dotted kubernetes.audit.* keys.
func (Format) Detect(keys ingest.Keys, kind string) bool {
	return keys.Any(ingest.KeyKubernetes|ingest.KeyDottedAudit) && !keys.Any(ingest.KeyPLogType)
}

// Decode implements ingest.Format.
func (Format) Decode(d *ingest.Decoder, rec []byte) error {
	keys, _, err := ingest.Sniff(rec)
	if err != nil {
		return err
	}
	doc := rec
	if keys.Has(ingest.KeyDottedAudit) {
		// Dotted keys: rebuild the nested document (a slow path; exports
		// from Elasticsearch are nested).
		if doc, err = nest(rec); err != nil {
			return err
		}
	}
	e := &d.Event
	e.Reset()
	var it jsonx.ObjectIter
	if err := it.Begin(doc, 0); err != nil {
		return err
	}
	sawAudit := false
	for it.Next() {
		var end = -1
		var err error
		switch string(it.Key) {
		case "kubernetes":
			end, err = decodeKubernetes(d, doc, it.Value, e, &sawAudit)
		case "@timestamp":
			if jsonx.TypeAt(doc, it.Value) == jsonx.String {
				var s []byte
				s, end, err = jsonx.ReadString(doc, it.Value, &d.Scratch)
				if err == nil {
					t, ok := event.ParseTime(string(s))
					if !ok {
						return fmt.Errorf("%w: @timestamp: cannot parse time %q", ingest.ErrShape, s)
					}
					e.Timestamp = t
				}
			}
		case "cloud":
			e.CloudProvider, end, err = subString(d, doc, it.Value, "provider")
		case "orchestrator":
			end, err = jsonx.Skip(doc, it.Value)
			if err == nil {
				_ = jsonx.Walk(doc[it.Value:end], 0, []string{"cluster", "name"}, func(at int) {
					if s, _, err := jsonx.ReadString(doc[it.Value:end], at, &d.Scratch); err == nil {
						e.ClusterName = ingest.BytesToString(s)
					}
				})
			}
		case "data_stream":
			e.Namespace, end, err = subString(d, doc, it.Value, "namespace")
		case "kanon":
			e.Reader, end, err = subString(d, doc, it.Value, "reader")
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
	if !sawAudit {
		return fmt.Errorf("%w: ECS document without kubernetes.audit", ingest.ErrShape)
	}
	e.Raws = append(e.Raws[:0], event.Raw{JSON: doc})
	e.Record = rec
	e.Format = Name
	if e.Reader == "" {
		e.Reader = Name
	}
	return d.Emit(e)
}

func subString(d *ingest.Decoder, doc []byte, at int, key string) (string, int, error) {
	end, err := jsonx.Skip(doc, at)
	if err != nil {
		return "", end, err
	}
	out := ""
	_ = jsonx.Walk(doc[at:end], 0, []string{key}, func(j int) {
		if s, _, err := jsonx.ReadString(doc[at:end], j, &d.Scratch); err == nil {
			out = ingest.BytesToString(s)
		}
	})
	return out, end, nil
}

func decodeKubernetes(d *ingest.Decoder, doc []byte, at int, e *event.Event, saw *bool) (int, error) {
	if jsonx.TypeAt(doc, at) != jsonx.Object {
		return jsonx.Skip(doc, at)
	}
	var it jsonx.ObjectIter
	if err := it.Begin(doc, at); err != nil {
		return at, err
	}
	for it.Next() {
		if string(it.Key) != "audit" || jsonx.TypeAt(doc, it.Value) != jsonx.Object {
			continue
		}
		*saw = true
		lazy := d.Fields.Lazy
		d.Fields.Lazy = false // the whole document is kept instead
		end, err := k8saudit.DecodeEvent(d, doc, it.Value, e)
		d.Fields.Lazy = lazy
		if err != nil {
			return it.Value, err
		}
		it.Consumed(end)
	}
	return it.End, it.Err
}

// nest turns dotted keys into nested objects ({"a.b":1} -> {"a":{"b":1}}).
// A document may mix both forms ({"a.b":1,"a":{"c":2}}): objects that meet
// are merged, at any depth; a key given twice (a scalar and an object, or
// two values) is a shape error naming it. Keys are taken in sorted order,
// so the result and the errors do not depend on map order.
func nest(rec []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.UseNumber()
	var flat map[string]any
	if err := dec.Decode(&flat); err != nil {
		return nil, fmt.Errorf("%w: %v", ingest.ErrSyntax, err)
	}
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := map[string]any{}
	for _, k := range keys {
		parts := strings.Split(k, ".")
		v := flat[k]
		for i := len(parts) - 1; i > 0; i-- {
			v = map[string]any{parts[i]: v}
		}
		if err := mergeInto(out, parts[0], v, k); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// mergeInto sets dst[key] to v, merging objects that are already there
// (recursively, in sorted key order); orig names the document key for
// errors.
func mergeInto(dst map[string]any, key string, v any, orig string) error {
	old, taken := dst[key]
	if !taken {
		dst[key] = v
		return nil
	}
	om, ok1 := old.(map[string]any)
	vm, ok2 := v.(map[string]any)
	if !ok1 || !ok2 {
		return fmt.Errorf("%w: %s conflicts with another key", ingest.ErrShape, orig)
	}
	keys := make([]string, 0, len(vm))
	for k := range vm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := mergeInto(om, k, vm[k], orig); err != nil {
			return err
		}
	}
	return nil
}
