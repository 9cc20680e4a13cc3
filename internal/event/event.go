package event

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/jsonx"
)

// UserInfo is the user or impersonated user of an audit event.
type UserInfo struct {
	Username string
	UID      string
	Groups   []string
}

// IsZero reports whether no part of u is set.
func (u *UserInfo) IsZero() bool { return u.Username == "" && u.UID == "" && len(u.Groups) == 0 }

// ObjectRef is the object a request is targeted at.
type ObjectRef struct {
	Resource, Namespace, Name, UID, APIGroup, APIVersion, ResourceVersion, Subresource string
}

// ResponseStatus is the response status of a request.
type ResponseStatus struct {
	Code    int64
	HasCode bool
	Status  string
	Message string
	Reason  string
}

// Timestamp is a date field: its text as written and its parsed time.
type Timestamp struct {
	Raw string
	T   time.Time
}

// IsZero reports whether the timestamp is missing.
func (t Timestamp) IsZero() bool { return t.Raw == "" && t.T.IsZero() }

// Annotation is one audit annotation. Key is in ECS form: every "." of the
// original key replaced by "_".
type Annotation struct {
	Key, Value string
}

// Raw is a part of the source record that is not typed: its ECS path
// (Prefix, plus "." and Key when Key is set) and its JSON text. Readers
// keep these only when the FieldSet asks for lazy fields.
type Raw struct {
	Prefix string
	Key    string
	JSON   []byte
	// DropKey is an object key of JSON that the canonical document leaves out
	// (Elastic's pipeline removes requestObject.metadata).
	DropKey string
}

// Name is the ECS path of r.
func (r *Raw) Name() string {
	if r.Key == "" {
		return r.Prefix
	}
	if r.Prefix == "" {
		return r.Key
	}
	return r.Prefix + "." + r.Key
}

// Origin is where a record came from.
type Origin struct {
	Name string // file name, "-" for standard input, or an input name
	Line int64  // 1-based line (or record number) in Name; 0 if unknown
}

func (o Origin) String() string {
	if o.Line == 0 {
		return o.Name
	}
	return o.Name + ":" + itoa(o.Line)
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Event is one canonical audit event. The zero value is an empty event;
// Reset empties an event for reuse, keeping its storage.
type Event struct {
	// kubernetes.audit.*
	Kind, APIVersion, Level, AuditID, Stage, RequestURI, Verb, UserAgent string
	User, ImpersonatedUser                                               UserInfo
	SourceIPs                                                            []string
	ObjectRef                                                            ObjectRef
	ResponseStatus                                                       ResponseStatus
	RequestReceivedTimestamp, StageTimestamp                             Timestamp
	Annotations                                                          []Annotation

	// Context added by readers.
	CloudProvider string // cloud.provider: aws, azure, gcp
	ClusterName   string // orchestrator.cluster.name
	Reader        string // kanon.reader: the reader that produced the event
	Namespace     string // data_stream.namespace; "default" when empty

	// Timestamp overrides @timestamp when set (ECS documents carry their own).
	Timestamp time.Time

	// Raws are the untyped parts of the record, for lazy fields and the
	// canonical document. A Raw with empty Prefix and Key is a whole ECS
	// document: lazy paths are looked up in it as they are.
	Raws []Raw

	// Record is the source record's bytes as read (for alerts and re-reads).
	Record []byte
	// Format names the reader format that produced Record.
	Format string
	// Origin is where the record came from.
	Origin Origin

	// Ambiguous names the fields (ECS names) that the two readings of a
	// record with a repeated object key give different values — a first
	// member wins, or the last (ingest's readings) — and Alt is the other
	// reading: rules match an event if either reading matches. Both are
	// empty for every record without repeated keys.
	Ambiguous []string
	Alt       *Event
}

// Reset empties e for reuse, keeping slices' storage.
func (e *Event) Reset() {
	groups, imp, ips, ann, raws := e.User.Groups[:0], e.ImpersonatedUser.Groups[:0], e.SourceIPs[:0], e.Annotations[:0], e.Raws[:0]
	*e = Event{} // Alt and Ambiguous too
	e.User.Groups, e.ImpersonatedUser.Groups, e.SourceIPs, e.Annotations, e.Raws = groups, imp, ips, ann, raws
}

// Time returns @timestamp: Timestamp if set, else stageTimestamp, else
// requestReceivedTimestamp (the zero time when none is known).
func (e *Event) Time() time.Time {
	if !e.Timestamp.IsZero() {
		return e.Timestamp
	}
	if !e.StageTimestamp.T.IsZero() {
		return e.StageTimestamp.T
	}
	return e.RequestReceivedTimestamp.T
}

// Decision returns the authorization decision annotation, or "".
func (e *Event) Decision() string { return e.Annotation("authorization_k8s_io/decision") }

// Annotation returns the value of the annotation with ECS key key, or "".
func (e *Event) Annotation(key string) string {
	for i := range e.Annotations {
		if e.Annotations[i].Key == key {
			return e.Annotations[i].Value
		}
	}
	return ""
}

// Outcome returns event.outcome: "success" for the decision allow,
// "failure" for forbid, "" otherwise.
func (e *Event) Outcome() string {
	switch e.Decision() {
	case "allow":
		return "success"
	case "forbid":
		return "failure"
	}
	return ""
}

func appendStr(dst []Value, s string) []Value {
	if s == "" {
		return dst
	}
	return append(dst, Value{Kind: KindString, S: s})
}

func appendStrs(dst []Value, ss []string) []Value {
	for _, s := range ss {
		dst = appendStr(dst, s)
	}
	return dst
}

// Get appends the values of f in e to dst and returns the extended slice.
// A missing field appends nothing; an array appends one value per element,
// in order; empty strings are never returned (ECS drops them). Keyword and
// text fields give KindString, responseStatus.code KindInt, dates KindTime;
// lazy fields give the JSON kinds found; objects give nothing (see Exists).
func (e *Event) Get(f Field, dst []Value) []Value {
	switch f.id {
	case FieldTimestamp:
		if t := e.Time(); !t.IsZero() {
			dst = append(dst, Value{Kind: KindTime, I: t.UnixNano()})
		}
	case FieldDataset:
		dst = append(dst, Value{Kind: KindString, S: "kubernetes.audit_logs"})
	case FieldDataStreamType:
		dst = append(dst, Value{Kind: KindString, S: "logs"})
	case FieldDataStreamNS:
		ns := e.Namespace
		if ns == "" {
			ns = "default"
		}
		dst = append(dst, Value{Kind: KindString, S: ns})
	case FieldEventKind:
		dst = append(dst, Value{Kind: KindString, S: "event"})
	case FieldEventOutcome:
		dst = appendStr(dst, e.Outcome())
	case FieldCloudProvider:
		dst = appendStr(dst, e.CloudProvider)
	case FieldClusterName:
		dst = appendStr(dst, e.ClusterName)
	case FieldReader:
		dst = appendStr(dst, e.Reader)
	case FieldKind:
		dst = appendStr(dst, e.Kind)
	case FieldAPIVersion:
		dst = appendStr(dst, e.APIVersion)
	case FieldLevel:
		dst = appendStr(dst, e.Level)
	case FieldAuditID:
		dst = appendStr(dst, e.AuditID)
	case FieldStage:
		dst = appendStr(dst, e.Stage)
	case FieldRequestURI:
		dst = appendStr(dst, e.RequestURI)
	case FieldVerb:
		dst = appendStr(dst, e.Verb)
	case FieldUsername:
		dst = appendStr(dst, e.User.Username)
	case FieldUID:
		dst = appendStr(dst, e.User.UID)
	case FieldGroups:
		dst = appendStrs(dst, e.User.Groups)
	case FieldImpUsername:
		dst = appendStr(dst, e.ImpersonatedUser.Username)
	case FieldImpUID:
		dst = appendStr(dst, e.ImpersonatedUser.UID)
	case FieldImpGroups:
		dst = appendStrs(dst, e.ImpersonatedUser.Groups)
	case FieldSourceIPs:
		dst = appendStrs(dst, e.SourceIPs)
	case FieldSourceIP:
		// Elastic converts sourceIPs to type ip with ignore_failure: one
		// value that is not an IP leaves source.ip unset.
		for _, s := range e.SourceIPs {
			if _, err := netip.ParseAddr(s); err != nil && s != "" {
				return dst
			}
		}
		dst = appendStrs(dst, e.SourceIPs)
	case FieldUserAgent:
		dst = appendStr(dst, e.UserAgent)
	case FieldObjResource:
		dst = appendStr(dst, e.ObjectRef.Resource)
	case FieldObjNamespace:
		dst = appendStr(dst, e.ObjectRef.Namespace)
	case FieldObjName:
		dst = appendStr(dst, e.ObjectRef.Name)
	case FieldObjUID:
		dst = appendStr(dst, e.ObjectRef.UID)
	case FieldObjAPIGroup:
		dst = appendStr(dst, e.ObjectRef.APIGroup)
	case FieldObjAPIVersion:
		dst = appendStr(dst, e.ObjectRef.APIVersion)
	case FieldObjResourceVersion:
		dst = appendStr(dst, e.ObjectRef.ResourceVersion)
	case FieldObjSubresource:
		dst = appendStr(dst, e.ObjectRef.Subresource)
	case FieldRespCode:
		if e.ResponseStatus.HasCode {
			dst = append(dst, Value{Kind: KindInt, I: e.ResponseStatus.Code})
		}
	case FieldRespStatus:
		dst = appendStr(dst, e.ResponseStatus.Status)
	case FieldRespMessage:
		dst = appendStr(dst, e.ResponseStatus.Message)
	case FieldRespReason:
		dst = appendStr(dst, e.ResponseStatus.Reason)
	case FieldRequestReceived:
		if t := e.RequestReceivedTimestamp.T; !t.IsZero() {
			dst = append(dst, Value{Kind: KindTime, I: t.UnixNano()})
		}
	case FieldStageTimestamp:
		if t := e.StageTimestamp.T; !t.IsZero() {
			dst = append(dst, Value{Kind: KindTime, I: t.UnixNano()})
		}
	case FieldAnnotation:
		for i := range e.Annotations {
			if e.Annotations[i].Key == f.key {
				dst = appendStr(dst, e.Annotations[i].Value)
			}
		}
	case FieldAnnotationGlob:
		for i := range e.Annotations {
			if matchAnnotationGlob(f.key, e.Annotations[i].Key) {
				dst = appendStr(dst, e.Annotations[i].Value)
			}
		}
	case FieldLazy:
		dst = e.getLazy(f, dst)
	}
	return dst
}

// Exists reports whether f has a value in e; for an object, whether any
// field under it has one.
func (e *Event) Exists(f Field) bool {
	if f.id != FieldObject {
		var buf [4]Value
		if len(e.Get(f, buf[:0])) > 0 {
			return true
		}
		if f.id != FieldLazy {
			return false
		}
		// A lazy path may name an object.
		found := false
		e.walkLazy(f.path, func(b []byte, at int) {
			if !found && !emptyJSON(b, at) {
				found = true
			}
		})
		return found
	}
	prefix := f.Name + "."
	var buf [4]Value
	for _, s := range schema {
		if strings.HasPrefix(s.name, prefix) && len(e.Get(Field{Name: s.name, Type: s.typ, id: s.id}, buf[:0])) > 0 {
			return true
		}
	}
	if strings.HasPrefix(annotationsPrefix, prefix) || f.Name+"." == annotationsPrefix {
		for _, a := range e.Annotations {
			if a.Value != "" {
				return true
			}
		}
	}
	found := false
	e.walkLazy(f.path, func(b []byte, at int) {
		if !found && !emptyJSON(b, at) {
			found = true
		}
	})
	return found
}

// emptyJSON reports whether the value at b[at] is one that ECS drops.
func emptyJSON(b []byte, at int) bool {
	switch jsonx.TypeAt(b, at) {
	case jsonx.Null, jsonx.Invalid:
		return true
	case jsonx.String:
		return at+1 < len(b) && b[at+1] == '"'
	case jsonx.Object, jsonx.Array:
		end, err := jsonx.Skip(b, at)
		if err != nil {
			return true
		}
		return len(strings.TrimSpace(string(b[at+1:end-1]))) == 0
	}
	return false
}

// walkLazy calls fn for every JSON value at the ECS path among e's raw parts.
func (e *Event) walkLazy(path []string, fn func(b []byte, at int)) {
	for i := range e.Raws {
		r := &e.Raws[i]
		rest, ok := cutRawPrefix(r, path)
		if !ok {
			continue
		}
		if r.DropKey != "" && len(rest) > 0 && rest[0] == r.DropKey {
			continue
		}
		b := r.JSON
		_ = jsonx.Walk(b, 0, rest, func(at int) { fn(b, at) })
	}
}

// cutRawPrefix returns the part of path below r's ECS path.
func cutRawPrefix(r *Raw, path []string) ([]string, bool) {
	n, ok := cutDotted(r.Prefix, path)
	if !ok {
		return nil, false
	}
	m, ok := cutDotted(r.Key, path[n:])
	if !ok {
		return nil, false
	}
	return path[n+m:], true
}

func cutDotted(name string, path []string) (int, bool) {
	i := 0
	for name != "" {
		if i >= len(path) {
			return 0, false
		}
		seg := path[i]
		if !strings.HasPrefix(name, seg) {
			return 0, false
		}
		name = name[len(seg):]
		if name != "" {
			if name[0] != '.' {
				return 0, false
			}
			name = name[1:]
		}
		i++
	}
	return i, true
}

func (e *Event) getLazy(f Field, dst []Value) []Value {
	var scratch []byte
	e.walkLazy(f.path, func(b []byte, at int) {
		switch jsonx.TypeAt(b, at) {
		case jsonx.String:
			s, _, err := jsonx.ReadString(b, at, &scratch)
			if err == nil && len(s) > 0 {
				dst = append(dst, Value{Kind: KindString, S: string(s)})
			}
		case jsonx.Number:
			num, _, err := jsonx.ReadNumber(b, at)
			if err != nil {
				return
			}
			if n, ok := jsonx.ParseInt(num); ok {
				dst = append(dst, Value{Kind: KindInt, I: n})
			} else if fl, err := parseFloat(num); err == nil {
				dst = append(dst, Value{Kind: KindFloat, F: fl})
			}
		case jsonx.Bool:
			dst = append(dst, Value{Kind: KindBool, B: b[at] == 't'})
		}
	})
	return dst
}

func parseFloat(num []byte) (float64, error) { return strconv.ParseFloat(string(num), 64) }
