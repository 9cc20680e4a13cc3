package eks

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Name is the format's name (for --format and kanon.reader).
const Name = "eks"

// Provider is the cloud.provider of EKS events.
const Provider = "aws"

// AuditStreamPrefix starts the names of the log streams that hold audit
// events in an EKS cluster's log group.
const AuditStreamPrefix = "kube-apiserver-audit"

// TruncatedMarker ends a CloudWatch Logs entry cut at 256 KB.
const TruncatedMarker = "[Truncated...]"

// Format reads EKS audit logs from CloudWatch Logs. It has no state and is
// safe for concurrent use; the buffers it needs are the Decoder's.
type Format struct{}

// New returns the format.
func New() Format { return Format{} }

// Name implements ingest.Format.
func (Format) Name() string { return Name }

// Detect implements ingest.Format: a subscription payload (logEvents or
// messageType), a Lambda envelope (awslogs), or the output of
// filter-log-events / get-log-events (events, in an object that is not an
// audit event).
func (Format) Detect(keys ingest.Keys, kind string) bool {
	if keys.Any(ingest.KeyPLogType | ingest.KeyProtoPayload | ingest.KeyKubernetes | ingest.KeyDottedAudit | ingest.KeyRecords) {
		return false
	}
	if keys.Any(ingest.KeyLogEvents | ingest.KeyMessageType | ingest.KeyAwslogs) {
		return true
	}
	return keys.Has(ingest.KeyEvents) && kind == "" && !keys.Any(ingest.KeyAuditID|ingest.KeyStage|ingest.KeyKind)
}

// Decode implements ingest.Format. A record that is none of the envelopes
// is read as one plain message (an audit event).
func (Format) Decode(d *ingest.Decoder, rec []byte) error {
	i := jsonx.SkipWS(rec, 0)
	rec = rec[i:]
	if isTruncated(rec) {
		return truncatedErr(rec, "")
	}
	if jsonx.TypeAt(rec, 0) != jsonx.Object {
		return fmt.Errorf("%w: expected a JSON object", ingest.ErrShape)
	}
	keys, _, err := ingest.Sniff(rec)
	if err != nil {
		return err
	}
	switch {
	case keys.Has(ingest.KeyAwslogs):
		return decodeLambda(d, rec)
	case keys.Any(ingest.KeyLogEvents | ingest.KeyMessageType):
		return decodeSubscription(d, rec)
	case keys.Has(ingest.KeyEvents) && !keys.Any(ingest.KeyAuditID|ingest.KeyStage|ingest.KeyKind):
		return decodeLogEventsOutput(d, rec)
	}
	var m meta
	return decodeMessage(d, rec, &m)
}

// meta is what an envelope says about the log events in it. Raw fields
// hold JSON values as written in the envelope (quotes included).
type meta struct {
	cluster   string
	stream    string // unescaped stream name, for the audit-stream check
	rawGroup  []byte
	rawStream []byte
	rawOwner  []byte
	rawID     []byte
}

// ClusterFromLogGroup returns the cluster name of an EKS log group
// ("/aws/eks/<cluster>/cluster"), or "" for any other group.
func ClusterFromLogGroup(group string) string {
	rest, ok := strings.CutPrefix(group, "/aws/eks/")
	if !ok {
		return ""
	}
	name, ok := strings.CutSuffix(rest, "/cluster")
	if !ok || name == "" || strings.Contains(name, "/") {
		return ""
	}
	return name
}

// readerName is the kanon.reader of events: the enclosing envelope's
// reader when there is one.
func readerName(d *ingest.Decoder) string {
	if d.Reader != "" {
		return d.Reader
	}
	return Name
}

// decodeSubscription reads a CloudWatch Logs subscription payload.
func decodeSubscription(d *ingest.Decoder, rec []byte) error {
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	var m meta
	events := -1
	msgType := ""
	for it.Next() {
		var err error
		end := -1
		switch string(it.Key) {
		case "messageType":
			var s []byte
			s, end, err = str(d, rec, it.Value, "messageType")
			msgType = ingest.BytesToString(s)
		case "logGroup":
			var s []byte
			s, end, err = str(d, rec, it.Value, "logGroup")
			if err == nil {
				m.rawGroup = rec[it.Value:end]
				m.cluster = ClusterFromLogGroup(ingest.BytesToString(s))
			}
		case "logStream":
			var s []byte
			s, end, err = str(d, rec, it.Value, "logStream")
			if err == nil {
				m.rawStream = rec[it.Value:end]
				m.stream = ingest.BytesToString(s)
			}
		case "owner":
			_, end, err = str(d, rec, it.Value, "owner")
			if err == nil {
				m.rawOwner = rec[it.Value:end]
			}
		case "logEvents":
			switch jsonx.TypeAt(rec, it.Value) {
			case jsonx.Array:
				events = it.Value
			case jsonx.Null:
			default:
				return fmt.Errorf("%w: logEvents: expected an array", ingest.ErrShape)
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
	switch msgType {
	case "CONTROL_MESSAGE":
		return fmt.Errorf("%w: CloudWatch Logs control message", ingest.ErrSkipped)
	case "DATA_MESSAGE", "":
	default:
		return fmt.Errorf("%w: messageType: unknown value %q", ingest.ErrShape, msgType)
	}
	if events < 0 {
		return fmt.Errorf("%w: CloudWatch Logs payload without logEvents", ingest.ErrShape)
	}
	return eachLogEvent(d, rec, events, "logEvents", &m, logEventKeys{id: "id", message: "message"})
}

// decodeLogEventsOutput reads the output of filter-log-events or
// get-log-events. The log group is not in it, so the cluster is unknown.
func decodeLogEventsOutput(d *ingest.Decoder, rec []byte) error {
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	events := -1
	for it.Next() {
		if string(it.Key) != "events" {
			continue
		}
		switch jsonx.TypeAt(rec, it.Value) {
		case jsonx.Array:
			events = it.Value
		case jsonx.Null:
		default:
			return fmt.Errorf("%w: events: expected an array", ingest.ErrShape)
		}
	}
	if it.Err != nil {
		return it.Err
	}
	if err := trailing(rec, it.End); err != nil {
		return err
	}
	if events < 0 {
		return nil // an empty page
	}
	var m meta
	return eachLogEvent(d, rec, events, "events", &m, logEventKeys{id: "eventId", message: "message", stream: "logStreamName"})
}

// logEventKeys names the keys of one log event in an envelope.
type logEventKeys struct{ id, message, stream string }

// eachLogEvent decodes the log events of the array at rec[at]. Bad log
// events are reported and skipped; only the consumer's error stops it.
func eachLogEvent(d *ingest.Decoder, rec []byte, at int, what string, m *meta, k logEventKeys) error {
	n := -1
	var emitErr error
	_, err := jsonx.ArrayEach(rec, at, func(j int) (int, error) {
		n++
		// The log event's syntax only: a repeated key in it is its own to
		// resolve (ingest's readings), and costs no other log event.
		end, err := jsonx.SkipSyntax(rec, j)
		if err != nil {
			return end, err
		}
		mark := len(d.Scratch)
		em := *m
		bad := d.Element(rec[j:end], func(r []byte) error {
			em = *m
			bad, e := decodeLogEvent(d, r, &em, k)
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
		if bad != nil {
			where := fmt.Sprintf("%s[%d]", what, n)
			if len(em.rawID) > 0 {
				where += " (id " + strings.Trim(string(em.rawID), `"`) + ")"
			}
			d.Bad(fmt.Errorf("%s: %w", where, bad))
		}
		return end, nil
	})
	if emitErr != nil {
		return emitErr
	}
	return err
}

// decodeLogEvent decodes one log event object. It returns the reason the
// log event is bad (or skipped), or the consumer's error.
func decodeLogEvent(d *ingest.Decoder, ev []byte, m *meta, k logEventKeys) (bad, emitErr error) {
	if jsonx.TypeAt(ev, 0) != jsonx.Object {
		return fmt.Errorf("%w: expected an object", ingest.ErrShape), nil
	}
	var it jsonx.ObjectIter
	if err := it.Begin(ev, 0); err != nil {
		return err, nil
	}
	msgAt := -1
	for it.Next() {
		var err error
		end := -1
		switch key := string(it.Key); key {
		case k.id:
			switch jsonx.TypeAt(ev, it.Value) {
			case jsonx.String, jsonx.Number:
				end, err = jsonx.Skip(ev, it.Value)
				if err == nil {
					m.rawID = ev[it.Value:end]
				}
			}
		case k.message:
			msgAt = it.Value
		case k.stream:
			if k.stream == "" {
				continue
			}
			var s []byte
			s, end, err = str(d, ev, it.Value, key)
			if err == nil {
				m.rawStream = ev[it.Value:end]
				m.stream = ingest.BytesToString(s)
			}
		}
		if err != nil {
			return err, nil
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	if it.Err != nil {
		return it.Err, nil
	}
	if msgAt < 0 {
		return fmt.Errorf("%w: log event without %s", ingest.ErrShape, k.message), nil
	}
	if m.stream != "" && !strings.HasPrefix(m.stream, AuditStreamPrefix) {
		return fmt.Errorf("%w: log stream %q is not an audit stream (%s-*)", ingest.ErrSkipped, m.stream, AuditStreamPrefix), nil
	}
	if jsonx.TypeAt(ev, msgAt) != jsonx.String {
		return fmt.Errorf("%w: %s: expected a string", ingest.ErrShape, k.message), nil
	}
	msg, _, err := jsonx.ReadString(ev, msgAt, &d.Scratch)
	if err != nil {
		return err, nil
	}
	if isTruncated(msg) {
		return truncatedErr(msg, string(bytes.Trim(m.rawID, `"`))), nil
	}
	i := jsonx.SkipWS(msg, 0)
	if jsonx.TypeAt(msg, i) != jsonx.Object {
		return fmt.Errorf("%w: %s: not a JSON audit event", ingest.ErrShape, k.message), nil
	}
	err = decodeMessage(d, msg[i:], m)
	if err != nil && errors.Is(err, errEmit) {
		return nil, errors.Unwrap(err)
	}
	return err, nil
}

// errEmit marks the consumer's error as it comes back from decodeMessage.
var errEmit = errors.New("consumer failed")

type emitError struct{ err error }

func (e emitError) Error() string        { return e.err.Error() }
func (e emitError) Is(target error) bool { return target == errEmit }
func (e emitError) Unwrap() error        { return e.err }

// decodeMessage decodes one audit event (a CloudWatch message) and emits
// it with the envelope's context.
func decodeMessage(d *ingest.Decoder, msg []byte, m *meta) error {
	e := &d.Event
	e.Reset()
	end, err := k8saudit.DecodeEvent(d, msg, 0, e)
	if err != nil {
		return err
	}
	if j := jsonx.SkipWS(msg, end); j < len(msg) {
		return fmt.Errorf("%w: offset %d: data after the audit event", ingest.ErrSyntax, j)
	}
	e.Record = msg
	e.Format = k8saudit.Name
	e.Reader = readerName(d)
	e.CloudProvider = Provider
	e.ClusterName = m.cluster
	if d.Fields.Lazy {
		appendRaws(d, e, m)
	}
	if err := d.Emit(e); err != nil {
		return emitError{err}
	}
	return nil
}

// appendRaws keeps the envelope's fields as untyped parts of e. The JSON
// is built in d.Scratch and valid for the current record.
func appendRaws(d *ingest.Decoder, e *event.Event, m *meta) {
	if len(m.rawGroup)+len(m.rawStream)+len(m.rawOwner) > 0 {
		start := len(d.Scratch)
		b := append(d.Scratch, '{')
		b = appendMember(b, "log_group", m.rawGroup)
		b = appendMember(b, "log_stream", m.rawStream)
		b = appendMember(b, "owner", m.rawOwner)
		b = append(b, '}')
		d.Scratch = b
		e.Raws = append(e.Raws, event.Raw{Prefix: "aws.cloudwatch", JSON: b[start:len(b):len(b)]})
	}
	if len(m.rawID) > 0 {
		e.Raws = append(e.Raws, event.Raw{Prefix: "event", Key: "id", JSON: m.rawID})
	}
}

func appendMember(b []byte, key string, raw []byte) []byte {
	if len(raw) == 0 {
		return b
	}
	if b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return append(b, raw...)
}

// str reads a string value (null gives nil).
func str(d *ingest.Decoder, rec []byte, at int, name string) ([]byte, int, error) {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.String:
		return jsonx.ReadString(rec, at, &d.Scratch)
	case jsonx.Null:
		return nil, at + 4, nil
	}
	return nil, at, fmt.Errorf("%w: %s: expected a string", ingest.ErrShape, name)
}

// isTruncated reports whether a message ends with CloudWatch's marker.
func isTruncated(msg []byte) bool {
	return bytes.HasSuffix(bytes.TrimRight(msg, " \t\r\n"), []byte(TruncatedMarker))
}

// truncatedErr reports a cut message, naming the log event id and the
// auditID when they can be found.
func truncatedErr(msg []byte, id string) error {
	var b strings.Builder
	b.WriteString("CloudWatch cut the entry at 256 KB (it ends with " + TruncatedMarker + ")")
	if id != "" {
		b.WriteString("; log event id " + id)
	}
	if a := findAuditID(msg); a != "" {
		b.WriteString("; auditID " + a)
	}
	return fmt.Errorf("%w: %s", ingest.ErrTruncated, b.String())
}

// findAuditID finds the auditID of a cut audit event by a plain search
// (the event is not valid JSON, so it cannot be parsed).
func findAuditID(msg []byte) string {
	const key = `"auditID":"`
	i := bytes.Index(msg, []byte(key))
	if i < 0 {
		return ""
	}
	rest := msg[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 64 {
		return ""
	}
	return string(rest[:j])
}

// decodeLambda reads {"awslogs":{"data":base64(gzip(payload))}}.
func decodeLambda(d *ingest.Decoder, rec []byte) error {
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	dataAt := -1
	var inner jsonx.ObjectIter
	for it.Next() {
		if string(it.Key) != "awslogs" {
			continue
		}
		if jsonx.TypeAt(rec, it.Value) != jsonx.Object {
			return fmt.Errorf("%w: awslogs: expected an object", ingest.ErrShape)
		}
		if err := inner.Begin(rec, it.Value); err != nil {
			return err
		}
		for inner.Next() {
			if string(inner.Key) == "data" {
				dataAt = inner.Value
			}
		}
		if inner.Err != nil {
			return inner.Err
		}
		it.Consumed(inner.End)
	}
	if it.Err != nil {
		return it.Err
	}
	if err := trailing(rec, it.End); err != nil {
		return err
	}
	if dataAt < 0 {
		return fmt.Errorf("%w: awslogs without data", ingest.ErrShape)
	}
	if jsonx.TypeAt(rec, dataAt) != jsonx.String {
		return fmt.Errorf("%w: awslogs.data: expected a string", ingest.ErrShape)
	}
	data, _, err := jsonx.ReadString(rec, dataAt, &d.Scratch)
	if err != nil {
		return err
	}
	payload, err := unpack(d, data)
	if err != nil {
		return fmt.Errorf("awslogs.data: %w", err)
	}
	i := jsonx.SkipWS(payload, 0)
	if jsonx.TypeAt(payload, i) != jsonx.Object {
		if _, err := jsonx.Skip(payload, i); err != nil {
			return fmt.Errorf("awslogs.data: %w", err)
		}
		return fmt.Errorf("%w: awslogs.data: the payload is not a JSON object", ingest.ErrShape)
	}
	if err := decodeSubscription(d, payload[i:]); err != nil {
		if errors.Is(err, errEmit) {
			return err
		}
		return fmt.Errorf("awslogs.data: %w", err)
	}
	return nil
}

var gzipPool sync.Pool // *gzip.Reader

// unpack decodes base64 and then gzip (a payload that is not compressed is
// taken as it is) into d.Scratch, up to d.MaxBytes.
func unpack(d *ingest.Decoder, data []byte) ([]byte, error) {
	limit := d.MaxBytes
	if limit <= 0 {
		limit = ingest.DefaultMaxRecordBytes
	}
	start := len(d.Scratch)
	need := base64.StdEncoding.DecodedLen(len(data))
	if need > limit {
		return nil, fmt.Errorf("%w: the base64 data is over %d bytes", ingest.ErrTooLarge, limit)
	}
	d.Scratch = grow(d.Scratch, need)
	raw := d.Scratch[start : start+need]
	n, err := base64.StdEncoding.Decode(raw, data)
	if err != nil {
		d.Scratch = d.Scratch[:start]
		return nil, fmt.Errorf("%w: cannot decode base64: %v", ingest.ErrShape, err)
	}
	raw = raw[:n]
	d.Scratch = d.Scratch[:start+n]
	if n < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return raw, nil
	}
	zr, _ := gzipPool.Get().(*gzip.Reader)
	if zr == nil {
		zr = new(gzip.Reader)
	}
	defer gzipPool.Put(zr)
	if err := zr.Reset(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("%w: cannot decompress gzip: %v", ingest.ErrShape, err)
	}
	out := len(d.Scratch)
	b := d.Scratch
	for {
		if len(b) == cap(b) {
			b = grow(b, 32<<10)[:len(b)]
		}
		k, err := zr.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if len(b)-out > limit {
			d.Scratch = b[:start]
			return nil, fmt.Errorf("%w: the decompressed payload is over %d bytes", ingest.ErrTooLarge, limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.Scratch = b[:start]
			return nil, fmt.Errorf("%w: cannot decompress gzip: %v", ingest.ErrShape, err)
		}
	}
	d.Scratch = b
	return b[out:len(b):len(b)], nil
}

// grow returns b with room for n more bytes, its length extended by n.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// trailing reports data after the JSON value that ends at rec[end].
func trailing(rec []byte, end int) error {
	if j := jsonx.SkipWS(rec, end); j < len(rec) {
		return fmt.Errorf("%w: offset %d: data after the JSON value", ingest.ErrSyntax, j)
	}
	return nil
}
