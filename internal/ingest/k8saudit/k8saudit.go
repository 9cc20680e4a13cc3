package k8saudit

import (
	"errors"
	"fmt"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Name is the format's name.
const Name = "k8s"

// Format reads audit.k8s.io Events and EventLists.
type Format struct{}

// New returns the format.
func New() Format { return Format{} }

// Name implements ingest.Format.
func (Format) Name() string { return Name }

// Detect implements ingest.Format: an Event or EventList by kind, or an
// object with the keys every audit event has.
func (Format) Detect(keys ingest.Keys, kind string) bool {
	switch kind {
	case "Event", "EventList":
		return keys.Has(ingest.KeyKind) && !keys.Any(ingest.KeyPLogType)
	}
	if keys.Any(ingest.KeyPLogType | ingest.KeyProtoPayload | ingest.KeyKubernetes | ingest.KeyDottedAudit) {
		return false
	}
	if keys.Has(ingest.KeyItems) && kind == "" {
		return true
	}
	return keys.Has(ingest.KeyAuditID|ingest.KeyStage) || keys.Has(ingest.KeyRequestURI|ingest.KeyVerb)
}

// Decode implements ingest.Format.
func (Format) Decode(d *ingest.Decoder, rec []byte) error {
	i := jsonx.SkipWS(rec, 0)
	if jsonx.TypeAt(rec, i) != jsonx.Object {
		return fmt.Errorf("%w: expected a JSON object", ingest.ErrShape)
	}
	// An EventList carries its events in items.
	if isList(rec) {
		return decodeList(d, rec)
	}
	e := &d.Event
	e.Reset()
	if _, err := DecodeEvent(d, rec, i, e); err != nil {
		return err
	}
	e.Record = rec
	e.Format = Name
	return d.Emit(e)
}

// isList reports whether rec is an EventList: by kind, or an object
// without kind that has items. When "kind" is the first member (what
// kube-apiserver writes) it is read alone; otherwise the top-level keys are
// sniffed, a pass over the whole record.
func isList(rec []byte) bool {
	if kind, ok := ingest.FirstKind(rec); ok {
		return string(kind) == "EventList"
	}
	keys, kind, err := ingest.Sniff(rec)
	return err == nil && (kind == "EventList" || kind == "" && keys.Has(ingest.KeyItems))
}

// decodeList decodes the items of the EventList rec (EachItem finds and
// validates them; a bad item is reported and the others are decoded).
func decodeList(d *ingest.Decoder, rec []byte) error {
	validated := d.Validated
	defer func() { d.Validated = validated }()
	// EachItem validated every item it hands on: decoding skips what it
	// does not read without checking it again.
	d.Validated = true
	return EachItem(rec, func(i int, item []byte, err error) error {
		if errors.Is(err, jsonx.ErrDuplicateKey) {
			// A repeated key: the item is read both ways, each reading
			// checked as EachItem checks items.
			err = d.Readings(item, func(r []byte) error {
				if err := CheckItem(r); err != nil {
					return err
				}
				return decodeItem(d, r)
			})
			if err != nil && d.EmitErr() == nil {
				d.Bad(&ItemError{Index: i, Err: err})
				return nil
			}
			return err
		}
		if err != nil {
			d.Bad(err)
			return nil
		}
		if err := decodeItem(d, item); err != nil {
			if d.EmitErr() != nil {
				return err
			}
			d.Bad(&ItemError{Index: i, Err: err})
		}
		return nil
	})
}

// decodeItem decodes an item of an EventList and emits its event.
func decodeItem(d *ingest.Decoder, item []byte) error {
	e := &d.Event
	e.Reset()
	if _, err := DecodeEvent(d, item, 0, e); err != nil {
		return err
	}
	e.Record = item
	e.Format = Name
	return d.Emit(e)
}

// fieldErr names the field of a shape error.
func fieldErr(name, want string) error {
	return fmt.Errorf("%w: kubernetes.audit.%s: expected %s", ingest.ErrShape, name, want)
}

// str reads a string value (null gives ""), aliasing rec where it can.
func str(d *ingest.Decoder, rec []byte, at int, name string) (string, int, error) {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.String:
		s, end, err := jsonx.ReadString(rec, at, &d.Scratch)
		return ingest.BytesToString(s), end, err
	case jsonx.Null:
		return "", at + 4, nil
	}
	return "", at, fieldErr(name, "a string")
}

func strs(d *ingest.Decoder, rec []byte, at int, dst []string, name string) ([]string, int, error) {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.Null:
		return dst, at + 4, nil
	case jsonx.Array:
	default:
		return dst, at, fieldErr(name, "an array of strings")
	}
	end, err := jsonx.ArrayEach(rec, at, func(j int) (int, error) {
		s, end, err := str(d, rec, j, name)
		if err != nil {
			return end, err
		}
		dst = append(dst, s)
		return end, nil
	})
	return dst, end, err
}

// DecodeEvent decodes the audit Event object at rec[i] into e, filling the
// fields of d.Fields (and keeping untyped parts as raw JSON when d.Fields
// asks for lazy fields). It returns the offset after the object. Other
// formats use it for the audit events inside their envelopes.
func DecodeEvent(d *ingest.Decoder, rec []byte, i int, e *event.Event) (int, error) {
	fs := d.Fields
	var it jsonx.ObjectIter
	it.Scratch = d.KeyScratch
	it.Trusted = d.Validated
	defer func() { d.KeyScratch = it.Scratch[:0] }()
	if err := it.Begin(rec, i); err != nil {
		return i, err
	}
	for it.Next() {
		at := it.Value
		var err error
		end := -1
		switch ingest.BytesToString(it.Key) {
		case "kind":
			if fs.Has(event.FieldKind) {
				e.Kind, end, err = str(d, rec, at, "kind")
			}
		case "apiVersion":
			if fs.Has(event.FieldAPIVersion) {
				e.APIVersion, end, err = str(d, rec, at, "apiVersion")
			}
		case "level":
			if fs.Has(event.FieldLevel) {
				e.Level, end, err = str(d, rec, at, "level")
			}
		case "auditID":
			// Always read: dedup and alert ids use it.
			e.AuditID, end, err = str(d, rec, at, "auditID")
		case "stage":
			e.Stage, end, err = str(d, rec, at, "stage")
		case "requestURI":
			if fs.Has(event.FieldRequestURI) {
				e.RequestURI, end, err = str(d, rec, at, "requestURI")
			}
		case "verb":
			if fs.Has(event.FieldVerb) {
				e.Verb, end, err = str(d, rec, at, "verb")
			}
		case "userAgent":
			if fs.Has(event.FieldUserAgent) {
				e.UserAgent, end, err = str(d, rec, at, "userAgent")
			}
		case "sourceIPs":
			if fs.Has(event.FieldSourceIPs) || fs.Has(event.FieldSourceIP) {
				e.SourceIPs, end, err = strs(d, rec, at, e.SourceIPs, "sourceIPs")
			}
		case "user":
			if fs.Has(event.FieldUsername) || fs.Has(event.FieldUID) || fs.Has(event.FieldGroups) || fs.Lazy {
				end, err = decodeUser(d, rec, at, &e.User, e, "user", fs.Has(event.FieldGroups))
			}
		case "impersonatedUser":
			if fs.Has(event.FieldImpUsername) || fs.Has(event.FieldImpUID) || fs.Has(event.FieldImpGroups) || fs.Lazy {
				end, err = decodeUser(d, rec, at, &e.ImpersonatedUser, e, "impersonatedUser", fs.Has(event.FieldImpGroups))
			}
		case "objectRef":
			if objectRefNeeded(fs) {
				end, err = decodeObjectRef(d, rec, at, &e.ObjectRef)
			}
		case "responseStatus":
			if fs.Has(event.FieldRespCode) || fs.Has(event.FieldRespStatus) || fs.Has(event.FieldRespMessage) || fs.Has(event.FieldRespReason) || fs.Lazy {
				end, err = decodeStatus(d, rec, at, e)
			}
		case "requestReceivedTimestamp":
			// Parsed below only when needed: @timestamp is stageTimestamp
			// when there is one.
			var s string
			s, end, err = str(d, rec, at, "requestReceivedTimestamp")
			e.RequestReceivedTimestamp.Raw = s
		case "stageTimestamp":
			e.StageTimestamp, end, err = timestamp(d, rec, at, "stageTimestamp")
		case "annotations":
			if fs.Has(event.FieldAnnotation) || fs.Has(event.FieldEventOutcome) {
				end, err = decodeAnnotations(d, rec, at, e)
			}
		default:
			if fs.Lazy {
				end, err = jsonx.Skip(rec, at)
				if err == nil && jsonx.TypeAt(rec, at) != jsonx.Null {
					r := event.Raw{Prefix: "kubernetes.audit", Key: ingest.BytesToString(it.Key), JSON: rec[at:end]}
					if r.Key == "requestObject" || r.Key == "responseObject" {
						r.DropKey = "metadata"
					}
					e.Raws = append(e.Raws, r)
				}
			}
		}
		if err != nil {
			return at, err
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	if it.Err != nil {
		return i, it.Err
	}
	if rr := e.RequestReceivedTimestamp.Raw; rr != "" && (e.StageTimestamp.T.IsZero() || fs.Has(event.FieldRequestReceived)) {
		t, ok := event.ParseTime(rr)
		if !ok {
			return i, fmt.Errorf("%w: kubernetes.audit.requestReceivedTimestamp: cannot parse time %q", ingest.ErrShape, rr)
		}
		e.RequestReceivedTimestamp.T = t
	}
	return it.End, nil
}

// beginObject starts iterating over the object at rec[at]. A null reads as
// a missing field (null is true); any other type is a shape error naming
// the field.
func beginObject(rec []byte, at int, it *jsonx.ObjectIter, name string) (null bool, err error) {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.Null:
		return true, nil
	case jsonx.Object:
		return false, it.Begin(rec, at)
	}
	return false, fieldErr(name, "an object")
}

func objectRefNeeded(fs event.FieldSet) bool {
	for id := event.FieldObjResource; id <= event.FieldObjSubresource; id++ {
		if fs.Has(id) {
			return true
		}
	}
	return fs.Lazy
}

func timestamp(d *ingest.Decoder, rec []byte, at int, name string) (event.Timestamp, int, error) {
	s, end, err := str(d, rec, at, name)
	if err != nil || s == "" {
		return event.Timestamp{}, end, err
	}
	t, ok := event.ParseTime(s)
	if !ok {
		return event.Timestamp{}, at, fmt.Errorf("%w: kubernetes.audit.%s: cannot parse time %q", ingest.ErrShape, name, s)
	}
	return event.Timestamp{Raw: s, T: t}, end, nil
}

// userNames are the field names of user and impersonatedUser for errors
// (constants, so that decoding builds no strings).
var userNames = map[string][3]string{
	"user":             {"user.username", "user.uid", "user.groups"},
	"impersonatedUser": {"impersonatedUser.username", "impersonatedUser.uid", "impersonatedUser.groups"},
}

// userPrefixes are the ECS paths of user and impersonatedUser.
var userPrefixes = map[string]string{"user": "kubernetes.audit.user", "impersonatedUser": "kubernetes.audit.impersonatedUser"}

func decodeUser(d *ingest.Decoder, rec []byte, at int, u *event.UserInfo, e *event.Event, name string, groups bool) (int, error) {
	var it jsonx.ObjectIter
	if null, err := beginObject(rec, at, &it, name); err != nil {
		return at, err
	} else if null {
		return at + len("null"), nil
	}
	for it.Next() {
		var err error
		end := -1
		switch ingest.BytesToString(it.Key) {
		case "username":
			u.Username, end, err = str(d, rec, it.Value, userNames[name][0])
		case "uid":
			u.UID, end, err = str(d, rec, it.Value, userNames[name][1])
		case "groups":
			if groups {
				u.Groups, end, err = strs(d, rec, it.Value, u.Groups, userNames[name][2])
			}
		case "extra":
			if d.Fields.Lazy {
				end, err = jsonx.Skip(rec, it.Value)
				if err == nil {
					e.Raws = append(e.Raws, event.Raw{Prefix: userPrefixes[name], Key: "extra", JSON: rec[it.Value:end]})
				}
			}
		}
		if err != nil {
			return it.Value, err
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	return it.End, it.Err
}

func decodeObjectRef(d *ingest.Decoder, rec []byte, at int, o *event.ObjectRef) (int, error) {
	var it jsonx.ObjectIter
	if null, err := beginObject(rec, at, &it, "objectRef"); err != nil {
		return at, err
	} else if null {
		return at + len("null"), nil
	}
	for it.Next() {
		var p *string
		var name string
		switch ingest.BytesToString(it.Key) {
		case "resource":
			p, name = &o.Resource, "objectRef.resource"
		case "namespace":
			p, name = &o.Namespace, "objectRef.namespace"
		case "name":
			p, name = &o.Name, "objectRef.name"
		case "uid":
			p, name = &o.UID, "objectRef.uid"
		case "apiGroup":
			p, name = &o.APIGroup, "objectRef.apiGroup"
		case "apiVersion":
			p, name = &o.APIVersion, "objectRef.apiVersion"
		case "resourceVersion":
			p, name = &o.ResourceVersion, "objectRef.resourceVersion"
		case "subresource":
			p, name = &o.Subresource, "objectRef.subresource"
		default:
			continue
		}
		s, end, err := str(d, rec, it.Value, name)
		if err != nil {
			return it.Value, err
		}
		*p = s
		it.Consumed(end)
	}
	return it.End, it.Err
}

func decodeStatus(d *ingest.Decoder, rec []byte, at int, e *event.Event) (int, error) {
	rs := &e.ResponseStatus
	var it jsonx.ObjectIter
	if null, err := beginObject(rec, at, &it, "responseStatus"); err != nil {
		return at, err
	} else if null {
		return at + len("null"), nil
	}
	for it.Next() {
		var err error
		end := -1
		switch ingest.BytesToString(it.Key) {
		case "code":
			switch jsonx.TypeAt(rec, it.Value) {
			case jsonx.Number:
				var num []byte
				num, end, err = jsonx.ReadNumber(rec, it.Value)
				if err == nil {
					n, ok := jsonx.ParseInt(num)
					if !ok {
						return it.Value, fieldErr("responseStatus.code", "an integer")
					}
					rs.Code, rs.HasCode = n, true
				}
			case jsonx.Null:
			default:
				return it.Value, fieldErr("responseStatus.code", "an integer")
			}
		case "status":
			rs.Status, end, err = str(d, rec, it.Value, "responseStatus.status")
		case "message":
			rs.Message, end, err = str(d, rec, it.Value, "responseStatus.message")
		case "reason":
			rs.Reason, end, err = str(d, rec, it.Value, "responseStatus.reason")
		}
		if err != nil {
			return it.Value, err
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	return it.End, it.Err
}

func decodeAnnotations(d *ingest.Decoder, rec []byte, at int, e *event.Event) (int, error) {
	var it jsonx.ObjectIter
	if null, err := beginObject(rec, at, &it, "annotations"); err != nil {
		return at, err
	} else if null {
		return at + len("null"), nil
	}
	for it.Next() {
		if !d.Fields.WantsAnnotation(it.Key) {
			continue // skipped (and validated) by Next
		}
		key := AnnotationKey(d, it.Key)
		v, end, err := str(d, rec, it.Value, "annotations")
		if err != nil {
			return it.Value, err
		}
		e.Annotations = append(e.Annotations, event.Annotation{Key: key, Value: v})
		it.Consumed(end)
	}
	return it.End, it.Err
}

// AnnotationKey returns the ECS form of an annotation key (every "."
// replaced by "_"), in d's scratch space when it had to change (or was
// unescaped). The result stays valid for the current record.
func AnnotationKey(d *ingest.Decoder, key []byte) string {
	n := len(d.Scratch)
	d.Scratch = append(d.Scratch, key...)
	k := d.Scratch[n:]
	for j, c := range k {
		if c == '.' {
			k[j] = '_'
		}
	}
	return ingest.BytesToString(k)
}
