package event

import (
	"path"
	"strings"
)

// Type is the mapping type of a field in Elastic's kubernetes.audit_logs
// data stream; query languages use it to pick their matching semantics.
type Type uint8

// Mapping types.
const (
	TypeUnknown         Type = iota // not in the schema: read lazily from the raw record
	TypeKeyword                     // exact, case-sensitive
	TypeConstantKeyword             // one value for the whole data stream
	TypeText                        // analyzed full text
	TypeLong                        // integer
	TypeDate                        // date
	TypeBoolean                     // boolean
	TypeIP                          // IP address
	TypeObject                      // an object: no values of its own
)

func (t Type) String() string {
	return [...]string{"unknown", "keyword", "constant_keyword", "text", "long", "date", "boolean", "ip", "object"}[t]
}

// FieldID names a typed field of Event. Fields outside the schema have
// FieldLazy.
type FieldID uint8

// Typed fields. Aliases (ECS copies such as user.name) share the ID of the
// field they copy only when they are equal in every document; otherwise
// they have their own ID.
const (
	FieldLazy FieldID = iota
	FieldTimestamp
	FieldDataset            // event.dataset, data_stream.dataset
	FieldDataStreamType     // data_stream.type
	FieldDataStreamNS       // data_stream.namespace
	FieldEventKind          // event.kind
	FieldEventOutcome       // event.outcome
	FieldCloudProvider      // cloud.provider
	FieldClusterName        // orchestrator.cluster.name
	FieldReader             // kanon.reader
	FieldKind               // kubernetes.audit.kind
	FieldAPIVersion         // kubernetes.audit.apiVersion
	FieldLevel              // kubernetes.audit.level
	FieldAuditID            // kubernetes.audit.auditID
	FieldStage              // kubernetes.audit.stage
	FieldRequestURI         // kubernetes.audit.requestURI
	FieldVerb               // kubernetes.audit.verb, event.action
	FieldUsername           // kubernetes.audit.user.username, user.name
	FieldUID                // kubernetes.audit.user.uid, user.id
	FieldGroups             // kubernetes.audit.user.groups
	FieldImpUsername        // kubernetes.audit.impersonatedUser.username
	FieldImpUID             // kubernetes.audit.impersonatedUser.uid
	FieldImpGroups          // kubernetes.audit.impersonatedUser.groups
	FieldSourceIPs          // kubernetes.audit.sourceIPs (text)
	FieldSourceIP           // source.ip, client.ip (ip)
	FieldUserAgent          // kubernetes.audit.userAgent, user_agent.original
	FieldObjResource        // kubernetes.audit.objectRef.*
	FieldObjNamespace       //
	FieldObjName            //
	FieldObjUID             //
	FieldObjAPIGroup        //
	FieldObjAPIVersion      //
	FieldObjResourceVersion //
	FieldObjSubresource     //
	FieldRespCode           // kubernetes.audit.responseStatus.*
	FieldRespStatus         //
	FieldRespMessage        //
	FieldRespReason         //
	FieldRequestReceived    // kubernetes.audit.requestReceivedTimestamp
	FieldStageTimestamp     // kubernetes.audit.stageTimestamp
	FieldAnnotation         // kubernetes.audit.annotations.<key>
	FieldAnnotationGlob     // kubernetes.audit.annotations.<pattern> (from Expand)
	FieldObject             // an object path of the schema
	numFieldIDs
)

// Field is a reference to a field of the canonical document, resolved once
// when a rule is compiled. Copying a Field is cheap.
type Field struct {
	Name string // ECS name, e.g. "kubernetes.audit.user.username"
	Type Type

	id   FieldID
	key  string   // annotation key (ECS form) or glob pattern
	path []string // lazy path, or object path for FieldObject
}

// ID returns the typed field the reference resolves to (FieldLazy when none).
func (f Field) ID() FieldID { return f.id }

// Known reports whether the field is in kanon's schema (typed, an object of
// the schema, or an annotation).
func (f Field) Known() bool { return f.id != FieldLazy }

type schemaEntry struct {
	name string
	id   FieldID
	typ  Type
}

// schema lists the typed fields in document order. Types follow Elastic's
// integration mapping (packages/kubernetes/data_stream/audit_logs/fields)
// and ECS.
var schema = []schemaEntry{
	{"@timestamp", FieldTimestamp, TypeDate},
	{"client.ip", FieldSourceIP, TypeIP},
	{"cloud.provider", FieldCloudProvider, TypeKeyword},
	{"data_stream.dataset", FieldDataset, TypeConstantKeyword},
	{"data_stream.namespace", FieldDataStreamNS, TypeConstantKeyword},
	{"data_stream.type", FieldDataStreamType, TypeConstantKeyword},
	{"event.action", FieldVerb, TypeKeyword},
	{"event.dataset", FieldDataset, TypeConstantKeyword},
	{"event.kind", FieldEventKind, TypeKeyword},
	{"event.outcome", FieldEventOutcome, TypeKeyword},
	{"kanon.reader", FieldReader, TypeKeyword},
	{"kubernetes.audit.annotations", FieldObject, TypeObject},
	{"kubernetes.audit.apiVersion", FieldAPIVersion, TypeKeyword},
	{"kubernetes.audit.auditID", FieldAuditID, TypeKeyword},
	{"kubernetes.audit.impersonatedUser.groups", FieldImpGroups, TypeText},
	{"kubernetes.audit.impersonatedUser.uid", FieldImpUID, TypeKeyword},
	{"kubernetes.audit.impersonatedUser.username", FieldImpUsername, TypeKeyword},
	{"kubernetes.audit.kind", FieldKind, TypeKeyword},
	{"kubernetes.audit.level", FieldLevel, TypeKeyword},
	{"kubernetes.audit.objectRef.apiGroup", FieldObjAPIGroup, TypeKeyword},
	{"kubernetes.audit.objectRef.apiVersion", FieldObjAPIVersion, TypeKeyword},
	{"kubernetes.audit.objectRef.name", FieldObjName, TypeKeyword},
	{"kubernetes.audit.objectRef.namespace", FieldObjNamespace, TypeKeyword},
	{"kubernetes.audit.objectRef.resource", FieldObjResource, TypeKeyword},
	{"kubernetes.audit.objectRef.resourceVersion", FieldObjResourceVersion, TypeKeyword},
	{"kubernetes.audit.objectRef.subresource", FieldObjSubresource, TypeKeyword},
	{"kubernetes.audit.objectRef.uid", FieldObjUID, TypeKeyword},
	{"kubernetes.audit.requestReceivedTimestamp", FieldRequestReceived, TypeDate},
	{"kubernetes.audit.requestURI", FieldRequestURI, TypeKeyword},
	{"kubernetes.audit.responseStatus.code", FieldRespCode, TypeLong},
	{"kubernetes.audit.responseStatus.message", FieldRespMessage, TypeText},
	{"kubernetes.audit.responseStatus.reason", FieldRespReason, TypeKeyword},
	{"kubernetes.audit.responseStatus.status", FieldRespStatus, TypeKeyword},
	{"kubernetes.audit.sourceIPs", FieldSourceIPs, TypeText},
	{"kubernetes.audit.stage", FieldStage, TypeKeyword},
	{"kubernetes.audit.stageTimestamp", FieldStageTimestamp, TypeDate},
	{"kubernetes.audit.user.groups", FieldGroups, TypeText},
	{"kubernetes.audit.user.uid", FieldUID, TypeKeyword},
	{"kubernetes.audit.user.username", FieldUsername, TypeKeyword},
	{"kubernetes.audit.userAgent", FieldUserAgent, TypeKeyword},
	{"kubernetes.audit.verb", FieldVerb, TypeKeyword},
	{"orchestrator.cluster.name", FieldClusterName, TypeKeyword},
	{"source.ip", FieldSourceIP, TypeIP},
	{"user.id", FieldUID, TypeKeyword},
	{"user.name", FieldUsername, TypeKeyword},
	{"user_agent.original", FieldUserAgent, TypeKeyword},
}

// objectPaths are the object fields of the schema (exists-only).
var objectPaths = []string{
	"client", "cloud", "data_stream", "event", "kanon", "kubernetes", "kubernetes.audit",
	"kubernetes.audit.impersonatedUser", "kubernetes.audit.objectRef",
	"kubernetes.audit.responseStatus", "kubernetes.audit.user", "orchestrator",
	"orchestrator.cluster", "source", "user", "user_agent",
}

var schemaByName = func() map[string]schemaEntry {
	m := make(map[string]schemaEntry, len(schema))
	for _, e := range schema {
		m[e.name] = e
	}
	return m
}()

const annotationsPrefix = "kubernetes.audit.annotations."

// lazyText lists lazily read paths that Elastic maps as text.
var lazyText = map[string]bool{
	"kubernetes.audit.requestObject.spec.volumes.hostPath.path":                 true,
	"kubernetes.audit.requestObject.spec.containers.image":                      true,
	"kubernetes.audit.requestObject.spec.containers.volumeMounts.mountPath":     true,
	"kubernetes.audit.responseObject.spec.containers.volumeMounts.mountPath":    true,
	"kubernetes.audit.responseObject.spec.volumes.hostPath.path":                true,
	"kubernetes.audit.requestObject.spec.containers.securityContext.privileged": false,
}

// lazyBool lists lazily read paths that Elastic maps as boolean.
var lazyBool = map[string]bool{
	"kubernetes.audit.requestObject.spec.containers.HostNetwork":                               true,
	"kubernetes.audit.requestObject.spec.containers.HostIPC":                                   true,
	"kubernetes.audit.requestObject.spec.containers.HostPID":                                   true,
	"kubernetes.audit.requestObject.spec.containers.securityContext.privileged":                true,
	"kubernetes.audit.responseObject.spec.hostIPC":                                             true,
	"kubernetes.audit.responseObject.spec.hostNetwork":                                         true,
	"kubernetes.audit.responseObject.spec.hostPID":                                             true,
	"kubernetes.audit.responseObject.spec.containers.securityContext.privileged":               true,
	"kubernetes.audit.responseObject.spec.containers.securityContext.allowPrivilegeEscalation": true,
}

// Lookup resolves an ECS field name. It never fails: a name outside the
// schema becomes a lazy lookup into the raw record (Type TypeUnknown, or the
// mapped type for the few request/response body fields Elastic maps).
func Lookup(name string) Field {
	if e, ok := schemaByName[name]; ok {
		return Field{Name: name, Type: e.typ, id: e.id}
	}
	if key, ok := strings.CutPrefix(name, annotationsPrefix); ok && key != "" {
		// Annotations are mapped as text (object_type: text).
		return Field{Name: name, Type: TypeText, id: FieldAnnotation, key: key}
	}
	for _, p := range objectPaths {
		if p == name {
			return Field{Name: name, Type: TypeObject, id: FieldObject, path: strings.Split(name, ".")}
		}
	}
	if name == "kubernetes.audit.annotations" {
		return Field{Name: name, Type: TypeObject, id: FieldObject, path: strings.Split(name, ".")}
	}
	t := TypeUnknown
	if lazyText[name] {
		t = TypeText
	} else if lazyBool[name] {
		t = TypeBoolean
	} else if name == "kubernetes.audit.requestObject.spec.type" || name == "kubernetes.audit.responseObject.spec.restartPolicy" || name == "kubernetes.audit.responseObject.roleRef.kind" {
		t = TypeKeyword
	}
	return Field{Name: name, Type: t, id: FieldLazy, path: strings.Split(name, ".")}
}

// Expand resolves a field-name pattern with "*" wildcards to the schema
// fields it matches, in schema order. A pattern that can reach annotation
// keys also yields one annotation-glob field whose values are those of
// every annotation whose ECS key matches. A pattern without "*" is looked
// up as a name.
func Expand(pattern string) []Field {
	if !strings.Contains(pattern, "*") {
		return []Field{Lookup(pattern)}
	}
	var out []Field
	seen := map[string]bool{}
	for _, e := range schema {
		if ok, _ := path.Match(globToPath(pattern), globToPath(e.name)); ok && !seen[e.name] {
			seen[e.name] = true
			out = append(out, Field{Name: e.name, Type: e.typ, id: e.id})
		}
	}
	// Annotation keys: the pattern reaches them when its prefix is
	// compatible with the annotations prefix.
	if annotationGlobPossible(pattern) {
		out = append(out, Field{Name: pattern, Type: TypeText, id: FieldAnnotationGlob, key: pattern})
	}
	return out
}

// globToPath turns '/' (legal in ECS annotation names) into a byte that
// path.Match treats as ordinary, so "*" can cross '/'; '.' is not special
// to path.Match, so "*" crosses dots as Elasticsearch's wildcards do.
func globToPath(s string) string { return strings.ReplaceAll(s, "/", "\x00") }

func annotationGlobPossible(pattern string) bool {
	star := strings.IndexByte(pattern, '*')
	prefix := pattern[:star]
	return strings.HasPrefix(annotationsPrefix, prefix) || strings.HasPrefix(prefix, annotationsPrefix)
}

// matchAnnotationGlob reports whether the ECS name of annotation key k
// matches pattern.
func matchAnnotationGlob(pattern, key string) bool {
	ok, _ := path.Match(globToPath(pattern), globToPath(annotationsPrefix+key))
	return ok
}

// Schema returns every typed field of the schema, in name order.
func Schema() []Field {
	out := make([]Field, 0, len(schema))
	for _, e := range schema {
		out = append(out, Field{Name: e.name, Type: e.typ, id: e.id})
	}
	return out
}

// FieldSet is a set of fields that rules read; readers materialise only the
// union of the sets of the loaded rules. The zero value is empty.
type FieldSet struct {
	bits uint64
	// Lazy is set when a rule reads fields outside the schema: readers then
	// keep the raw JSON of the parts they do not type.
	Lazy bool
	// annKeys are the annotation keys (ECS form) read by name; allAnn is
	// set when some rule reads every annotation (a glob, the object, or
	// event.outcome's source is named explicitly).
	annKeys []string
	allAnn  bool
}

// WantsAnnotation reports whether the annotation whose original key is
// key (with dots, as in the audit event) must be decoded.
func (s *FieldSet) WantsAnnotation(key []byte) bool {
	if s.allAnn {
		return true
	}
	for _, k := range s.annKeys {
		if len(k) == len(key) && ecsKeyEqual(k, key) {
			return true
		}
	}
	return false
}

// ecsKeyEqual compares an ECS annotation key with an original one, where
// every "." of the original reads as "_".
func ecsKeyEqual(ecs string, orig []byte) bool {
	for i := 0; i < len(orig); i++ {
		c := orig[i]
		if c == '.' {
			c = '_'
		}
		if ecs[i] != c {
			return false
		}
	}
	return true
}

func (s *FieldSet) addAnnotation(key string) {
	s.bits |= 1 << FieldAnnotation
	for _, k := range s.annKeys {
		if k == key {
			return
		}
	}
	s.annKeys = append(s.annKeys, key)
}

// Add adds f to the set. Object fields add every typed field under them.
func (s *FieldSet) Add(f Field) {
	switch f.id {
	case FieldLazy:
		s.Lazy = true
	case FieldObject:
		prefix := f.Name + "."
		for _, e := range schema {
			if strings.HasPrefix(e.name, prefix) {
				s.bits |= 1 << e.id
			}
		}
		if strings.HasPrefix(annotationsPrefix, prefix) || f.Name == "kubernetes.audit.annotations" {
			s.bits |= 1 << FieldAnnotation
			s.allAnn = true
		}
		s.Lazy = true
	case FieldAnnotationGlob:
		s.bits |= 1 << FieldAnnotation
		s.allAnn = true
	case FieldAnnotation:
		s.addAnnotation(f.key)
	default:
		s.bits |= 1 << f.id
	}
	// Derived fields depend on their sources.
	switch f.id {
	case FieldEventOutcome:
		s.addAnnotation("authorization_k8s_io/decision")
	case FieldTimestamp:
		s.bits |= 1<<FieldStageTimestamp | 1<<FieldRequestReceived
	case FieldSourceIP:
		s.bits |= 1 << FieldSourceIPs
	}
}

// AddID adds a typed field by ID (FieldAnnotation: every annotation).
func (s *FieldSet) AddID(id FieldID) {
	s.bits |= 1 << id
	if id == FieldAnnotation {
		s.allAnn = true
	}
}

// Has reports whether the typed field id is in the set.
func (s FieldSet) Has(id FieldID) bool { return s.bits&(1<<id) != 0 }

// Union adds every field of o to s.
func (s *FieldSet) Union(o FieldSet) {
	s.bits |= o.bits
	s.Lazy = s.Lazy || o.Lazy
	s.allAnn = s.allAnn || o.allAnn
	for _, k := range o.annKeys {
		s.addAnnotation(k)
	}
}

// IsEmpty reports whether the set holds no field.
func (s FieldSet) IsEmpty() bool { return s.bits == 0 && !s.Lazy && !s.allAnn && len(s.annKeys) == 0 }

// IsAll reports whether the set holds every field.
func (s FieldSet) IsAll() bool { return s.bits == AllFields().bits && s.Lazy && s.allAnn }

// AllFields returns the set of every field (for conversion and alerts).
func AllFields() FieldSet { return FieldSet{bits: 1<<numFieldIDs - 1, Lazy: true, allAnn: true} }

// Names lists the typed fields of the set by their kubernetes.audit name
// where they have one (for explain and debugging).
func (s FieldSet) Names() []string {
	var out []string
	seen := map[FieldID]bool{}
	for _, e := range schema {
		if s.Has(e.id) && !seen[e.id] {
			seen[e.id] = true
			out = append(out, e.name)
		}
	}
	if s.allAnn {
		out = append(out, annotationsPrefix+"*")
	} else {
		for _, k := range s.annKeys {
			out = append(out, annotationsPrefix+k)
		}
	}
	if s.Lazy {
		out = append(out, "(raw)")
	}
	return out
}
