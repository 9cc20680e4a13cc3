package panther

import (
	"fmt"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/aks"
	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/ingest/gke"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Name is the format's name (for --format).
const Name = "panther"

// Panther log types read by this format.
const (
	LogTypeEKS = "Amazon.EKS.Audit"
	LogTypeAKS = "Azure.MonitorActivity"
	LogTypeGKE = "GCP.AuditLog"
)

// Readers (kanon.reader) of the events of each log type.
const (
	ReaderEKS = "panther/" + eks.Name
	ReaderAKS = "panther/" + aks.Name
	ReaderGKE = "panther/" + gke.Name
)

// Format reads Panther-normalised events. It has no state and is safe for
// concurrent use.
type Format struct{}

// New returns the format.
func New() Format { return Format{} }

// Name implements ingest.Format.
func (Format) Name() string { return Name }

// Detect implements ingest.Format: an object with p_log_type.
func (Format) Detect(keys ingest.Keys, kind string) bool { return keys.Has(ingest.KeyPLogType) }

// Decode implements ingest.Format.
func (Format) Decode(d *ingest.Decoder, rec []byte) error {
	i := jsonx.SkipWS(rec, 0)
	rec = rec[i:]
	if jsonx.TypeAt(rec, 0) != jsonx.Object {
		return fmt.Errorf("%w: expected a JSON object", ingest.ErrShape)
	}
	var logType, label, when string
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	for it.Next() {
		var dst *string
		switch string(it.Key) {
		case "p_log_type":
			dst = &logType
		case "p_source_label":
			dst = &label
		case "p_event_time":
			dst = &when
		default:
			continue
		}
		switch jsonx.TypeAt(rec, it.Value) {
		case jsonx.String:
			s, end, err := jsonx.ReadString(rec, it.Value, &d.Scratch)
			if err != nil {
				return err
			}
			*dst = ingest.BytesToString(s)
			it.Consumed(end)
		case jsonx.Null:
		default:
			return fmt.Errorf("%w: %s: expected a string", ingest.ErrShape, it.Key)
		}
	}
	if it.Err != nil {
		return it.Err
	}
	if j := jsonx.SkipWS(rec, it.End); j < len(rec) {
		return fmt.Errorf("%w: offset %d: data after the JSON value", ingest.ErrSyntax, j)
	}
	var ts event.Timestamp
	if when != "" {
		t, ok := event.ParseTime(when)
		if !ok {
			return fmt.Errorf("%w: p_event_time: cannot parse time %q", ingest.ErrShape, when)
		}
		ts = event.Timestamp{Raw: when, T: t}
	}

	saveReader, saveCluster, saveProvider := d.Reader, d.ClusterName, d.CloudProvider
	defer func() { d.Reader, d.ClusterName, d.CloudProvider = saveReader, saveCluster, saveProvider }()
	e := &d.Event
	e.Reset()
	var err error
	switch logType {
	case LogTypeEKS:
		d.Reader = ReaderEKS
		err = decodeEKS(d, rec, e)
	case LogTypeAKS:
		d.Reader = ReaderAKS
		err = aks.DecodeRecord(d, rec, e)
	case LogTypeGKE:
		d.Reader = ReaderGKE
		err = gke.DecodeEntry(d, rec, e)
	case "":
		return fmt.Errorf("%w: p_log_type: expected a log type", ingest.ErrShape)
	default:
		return fmt.Errorf("%w: Panther log type %q is not a Kubernetes audit log", ingest.ErrSkipped, logType)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", logType, err)
	}
	e.Record = rec
	e.Format = Name
	if e.ClusterName == "" {
		e.ClusterName = label
	}
	if e.StageTimestamp.IsZero() && e.RequestReceivedTimestamp.IsZero() {
		e.Timestamp = ts.T
	}
	return d.Emit(e)
}

// decodeEKS decodes an Amazon.EKS.Audit event: the audit event itself,
// with p_* keys that the audit decoder keeps as untyped parts; they are
// moved under panther.*.
func decodeEKS(d *ingest.Decoder, rec []byte, e *event.Event) error {
	if _, err := k8saudit.DecodeEvent(d, rec, 0, e); err != nil {
		return err
	}
	for k := range e.Raws {
		r := &e.Raws[k]
		if r.Prefix == "kubernetes.audit" && strings.HasPrefix(r.Key, "p_") {
			r.Prefix = "panther"
		}
	}
	e.Reader = ReaderEKS
	e.CloudProvider = eks.Provider
	return nil
}
