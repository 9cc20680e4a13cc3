package gke

import (
	"fmt"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// Name is the format's name (for --format and kanon.reader).
const Name = "gke"

// Provider is the cloud.provider of GKE events.
const Provider = "gcp"

// ServiceName is the AuditLog serviceName of Kubernetes audit entries.
const ServiceName = "k8s.io"

// Format reads GKE Cloud Audit Logs entries. It has no state and is safe
// for concurrent use.
type Format struct{}

// New returns the format.
func New() Format { return Format{} }

// Name implements ingest.Format.
func (Format) Name() string { return Name }

// Detect implements ingest.Format: a LogEntry with a protoPayload.
func (Format) Detect(keys ingest.Keys, kind string) bool {
	return keys.Has(ingest.KeyProtoPayload) && !keys.Any(ingest.KeyPLogType|ingest.KeyKubernetes|ingest.KeyDottedAudit)
}

// Decode implements ingest.Format.
func (Format) Decode(d *ingest.Decoder, rec []byte) error {
	i := jsonx.SkipWS(rec, 0)
	rec = rec[i:]
	if jsonx.TypeAt(rec, 0) != jsonx.Object {
		return fmt.Errorf("%w: expected a JSON object", ingest.ErrShape)
	}
	e := &d.Event
	e.Reset()
	if err := DecodeEntry(d, rec, e); err != nil {
		return err
	}
	return d.Emit(e)
}

// grpcToHTTP maps google.rpc.Code to the HTTP status (see the package doc).
var grpcToHTTP = [...]int64{200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401}

// HTTPStatus returns the HTTP status of a google.rpc.Code.
func HTTPStatus(code int64) int64 {
	if code >= 0 && code < int64(len(grpcToHTTP)) {
		return grpcToHTTP[code]
	}
	return 500
}

// entry collects what DecodeEntry reads before filling the event.
type entry struct {
	proto                      int // offset of protoPayload
	service, method, resName   string
	email, subject, authority  string
	ip, ipUpper, ua            string
	granted, denied            int // authorizationInfo entries
	hasStatus                  bool
	code                       int64
	message                    string
	cluster, project           string
	rawProject                 []byte
	hasDecisionLabel           bool
	rawLog, rawOp, rawResource []byte
	rawProto                   []byte
}

// DecodeEntry decodes the LogEntry object rec into e (which the caller has
// reset) without emitting it. Other formats (panther) use it for the
// entries inside their envelopes. Keys starting "p_" are kept as raw
// panther.* parts when d.Fields asks for lazy fields.
func DecodeEntry(d *ingest.Decoder, rec []byte, e *event.Event) error {
	var x entry
	x.proto = -1
	var it jsonx.ObjectIter
	if err := it.Begin(rec, 0); err != nil {
		return err
	}
	lazy := d.Fields.Lazy
	for it.Next() {
		at := it.Value
		var err error
		end := -1
		key := it.Key
		switch string(key) {
		case "insertId":
			e.AuditID, end, err = str(d, rec, at, "insertId")
		case "timestamp":
			e.StageTimestamp, end, err = timestamp(d, rec, at, "timestamp")
		case "receiveTimestamp":
			e.RequestReceivedTimestamp, end, err = timestamp(d, rec, at, "receiveTimestamp")
		case "labels":
			end, err = labels(d, rec, at, e, &x)
		case "logName":
			end, err = jsonx.Skip(rec, at)
			x.rawLog = rec[at:end]
		case "operation":
			end, err = jsonx.Skip(rec, at)
			x.rawOp = rec[at:end]
		case "resource":
			end, err = resource(d, rec, at, &x)
			if err == nil {
				x.rawResource = rec[at:end]
			}
		case "protoPayload":
			switch jsonx.TypeAt(rec, at) {
			case jsonx.Object:
				x.proto = at
				end, err = protoPayload(d, rec, at, &x)
				if err == nil {
					x.rawProto = rec[at:end]
				}
			case jsonx.Null:
			default:
				err = fmt.Errorf("%w: protoPayload: expected an object", ingest.ErrShape)
			}
		default:
			if lazy && len(key) > 2 && key[0] == 'p' && key[1] == '_' {
				end, err = jsonx.Skip(rec, at)
				if err == nil {
					e.Raws = append(e.Raws, event.Raw{Prefix: "panther", Key: string(key), JSON: rec[at:end]})
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
	if j := jsonx.SkipWS(rec, it.End); j < len(rec) {
		return fmt.Errorf("%w: offset %d: data after the JSON value", ingest.ErrSyntax, j)
	}
	if x.proto < 0 {
		return fmt.Errorf("%w: LogEntry without protoPayload", ingest.ErrShape)
	}
	if x.service != ServiceName && (x.service != "" || !strings.HasPrefix(x.method, "io.k8s.")) {
		return fmt.Errorf("%w: LogEntry of service %q, not %s", ingest.ErrSkipped, x.service, ServiceName)
	}
	if x.method == "" {
		return fmt.Errorf("%w: protoPayload.methodName missing", ingest.ErrShape)
	}
	fill(d, e, &x)
	e.Record = rec
	e.Format = Name
	e.Reader = Name
	if d.Reader != "" {
		e.Reader = d.Reader
	}
	e.CloudProvider = Provider
	if x.cluster != "" {
		e.ClusterName = x.cluster
	}
	if lazy {
		if x.rawLog != nil {
			e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "logName", JSON: x.rawLog})
		}
		if x.rawOp != nil {
			e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "operation", JSON: x.rawOp})
		}
		if x.rawResource != nil {
			e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "resource", JSON: x.rawResource})
		}
		e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "protoPayload", JSON: x.rawProto, DropKey: "status"})
		if x.rawProject != nil {
			e.Raws = append(e.Raws, event.Raw{Prefix: "orchestrator.cluster", Key: "id", JSON: x.rawProject})
		}
	}
	return nil
}

// fill sets the typed fields from what the entry said.
func fill(d *ingest.Decoder, e *event.Event, x *entry) {
	switch {
	case x.email != "":
		e.User.Username = x.email
	case x.subject != "":
		e.User.Username = x.subject
	default:
		e.User.Username = x.authority
	}
	ip := x.ip
	if ip == "" {
		ip = x.ipUpper
	}
	if ip != "" {
		e.SourceIPs = append(e.SourceIPs, ip)
	}
	e.UserAgent = x.ua
	if x.hasStatus {
		e.ResponseStatus.Code, e.ResponseStatus.HasCode = HTTPStatus(x.code), true
		e.ResponseStatus.Message = x.message
	}
	if !x.hasDecisionLabel && x.granted+x.denied > 0 {
		v := "allow"
		if x.denied > 0 {
			v = "forbid"
		}
		e.Annotations = append(e.Annotations, event.Annotation{Key: "authorization_k8s_io/decision", Value: v})
	}
	var m method
	m.parse(x.method)
	e.Verb = m.verb
	var r request
	if m.resource != "" && r.parse(x.resName) {
		o := &e.ObjectRef
		o.APIGroup, o.APIVersion, o.Namespace, o.Resource, o.Name, o.Subresource = r.group, r.version, r.namespace, r.resource, r.name, r.subresource
		if o.Subresource == "" {
			o.Subresource = m.subresource
		}
		n := len(d.Scratch)
		d.Scratch = appendPrefix(d.Scratch, r.group, r.version)
		d.Scratch = append(d.Scratch, '/')
		d.Scratch = append(d.Scratch, r.path...)
		e.RequestURI = ingest.BytesToString(d.Scratch[n:len(d.Scratch):len(d.Scratch)])
		return
	}
	if m.resource != "" {
		o := &e.ObjectRef
		o.APIGroup, o.APIVersion, o.Resource, o.Subresource = m.group, m.version, m.resource, m.subresource
		n := len(d.Scratch)
		d.Scratch = appendPrefix(d.Scratch, m.group, m.version)
		d.Scratch = append(d.Scratch, '/')
		d.Scratch = append(d.Scratch, m.resource...)
		e.RequestURI = ingest.BytesToString(d.Scratch[n:len(d.Scratch):len(d.Scratch)])
		return
	}
	if m.nonResource && x.resName != "" {
		if x.resName[0] == '/' {
			e.RequestURI = x.resName
			return
		}
		n := len(d.Scratch)
		d.Scratch = append(d.Scratch, '/')
		d.Scratch = append(d.Scratch, x.resName...)
		e.RequestURI = ingest.BytesToString(d.Scratch[n:len(d.Scratch):len(d.Scratch)])
	}
}

func appendPrefix(b []byte, group, version string) []byte {
	if group == "" {
		b = append(b, "/api/"...)
	} else {
		b = append(b, "/apis/"...)
		b = append(b, group...)
		b = append(b, '/')
	}
	return append(b, version...)
}

// method is a parsed methodName.
type method struct {
	group, version, resource, subresource, verb string
	nonResource                                 bool
}

// parse reads io.k8s.<group>.<version>.<resource>[.<sub>].<verb> or
// io.k8s.<verb>. A methodName of another shape gives only its verb (the
// last part).
func (m *method) parse(s string) {
	i := strings.LastIndexByte(s, '.')
	m.verb = s[i+1:]
	rest, ok := strings.CutPrefix(s, "io.k8s.")
	if !ok || i < len("io.k8s.") {
		m.nonResource = ok
		return
	}
	rest = rest[:len(rest)-len(m.verb)-1] // without ".<verb>"
	// Find the version: the first part after the group that looks like one.
	start := 0
	for {
		j := strings.IndexByte(rest[start:], '.')
		if j < 0 {
			return
		}
		part := rest[start : start+j]
		if start > 0 && isVersion(part) {
			m.group = rest[:start-1]
			m.version = part
			tail := rest[start+j+1:]
			m.resource, m.subresource, _ = strings.Cut(tail, ".")
			if m.group == "core" {
				m.group = ""
			}
			return
		}
		start += j + 1
	}
}

// isVersion reports whether s is a Kubernetes API version (v1, v1beta1,
// v2alpha3).
func isVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' || s[1] < '1' || s[1] > '9' {
		return false
	}
	i := 2
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == len(s) {
		return true
	}
	rest := s[i:]
	var ok bool
	if rest, ok = strings.CutPrefix(rest, "alpha"); !ok {
		if rest, ok = strings.CutPrefix(rest, "beta"); !ok {
			return false
		}
	}
	if rest == "" {
		return false
	}
	for _, c := range []byte(rest) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// request is a parsed resourceName.
type request struct {
	group, version                               string
	namespace, resource, name, subresource, path string
}

// parse reads <group>/<version>/<path>; it reports false for a name of
// another shape.
func (r *request) parse(s string) bool {
	group, rest, ok := strings.Cut(s, "/")
	if !ok || group == "" {
		return false
	}
	version, path, ok := strings.Cut(rest, "/")
	if !ok || !isVersion(version) || path == "" {
		return false
	}
	if group == "core" {
		group = ""
	}
	r.group, r.version, r.path = group, version, path
	parts := path
	next := func() string {
		p, q, _ := strings.Cut(parts, "/")
		parts = q
		return p
	}
	first := next()
	if first == "namespaces" && parts != "" {
		ns := next()
		r.namespace = ns
		if parts != "" {
			save := parts
			sub := next()
			if sub != "status" && sub != "finalize" {
				parts = save
				r.resource = next()
				r.name = next()
				r.subresource = next()
				return r.resource != ""
			}
			r.resource, r.name, r.subresource = "namespaces", ns, sub
			return true
		}
		r.resource, r.name = "namespaces", ns
		return true
	}
	r.resource = first
	r.name = next()
	r.subresource = next()
	return r.resource != ""
}

// protoPayload reads the AuditLog fields kanon maps.
func protoPayload(d *ingest.Decoder, rec []byte, at int, x *entry) (int, error) {
	var it jsonx.ObjectIter
	if err := it.Begin(rec, at); err != nil {
		return at, err
	}
	for it.Next() {
		v := it.Value
		var err error
		end := -1
		switch string(it.Key) {
		case "serviceName":
			x.service, end, err = str(d, rec, v, "protoPayload.serviceName")
		case "methodName":
			x.method, end, err = str(d, rec, v, "protoPayload.methodName")
		case "resourceName":
			x.resName, end, err = str(d, rec, v, "protoPayload.resourceName")
		case "authenticationInfo":
			end, err = object(d, rec, v, "protoPayload.authenticationInfo", func(k []byte, at int) (int, error) {
				switch string(k) {
				case "principalEmail":
					return strInto(d, rec, at, "protoPayload.authenticationInfo.principalEmail", &x.email)
				case "principalSubject":
					return strInto(d, rec, at, "protoPayload.authenticationInfo.principalSubject", &x.subject)
				case "authoritySelector":
					return strInto(d, rec, at, "protoPayload.authenticationInfo.authoritySelector", &x.authority)
				}
				return -1, nil
			})
		case "requestMetadata":
			end, err = object(d, rec, v, "protoPayload.requestMetadata", func(k []byte, at int) (int, error) {
				switch string(k) {
				case "callerIp":
					return strInto(d, rec, at, "protoPayload.requestMetadata.callerIp", &x.ip)
				case "callerIP":
					return strInto(d, rec, at, "protoPayload.requestMetadata.callerIP", &x.ipUpper)
				case "callerSuppliedUserAgent":
					return strInto(d, rec, at, "protoPayload.requestMetadata.callerSuppliedUserAgent", &x.ua)
				}
				return -1, nil
			})
		case "authorizationInfo":
			end, err = authorizationInfo(d, rec, v, x)
		case "status":
			end, err = status(d, rec, v, x)
		}
		if err != nil {
			return v, err
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	return it.End, it.Err
}

func authorizationInfo(d *ingest.Decoder, rec []byte, at int, x *entry) (int, error) {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.Null:
		return at + 4, nil
	case jsonx.Array:
	default:
		return at, fmt.Errorf("%w: protoPayload.authorizationInfo: expected an array", ingest.ErrShape)
	}
	return jsonx.ArrayEach(rec, at, func(j int) (int, error) {
		granted := false
		end, err := object(d, rec, j, "protoPayload.authorizationInfo[]", func(k []byte, at int) (int, error) {
			if string(k) != "granted" {
				return -1, nil
			}
			switch jsonx.TypeAt(rec, at) {
			case jsonx.Bool:
				granted = rec[at] == 't'
				return jsonx.Skip(rec, at)
			case jsonx.Null:
				return at + 4, nil
			}
			return at, fmt.Errorf("%w: protoPayload.authorizationInfo[].granted: expected a boolean", ingest.ErrShape)
		})
		if err != nil {
			return end, err
		}
		if granted {
			x.granted++
		} else {
			x.denied++
		}
		return end, nil
	})
}

func status(d *ingest.Decoder, rec []byte, at int, x *entry) (int, error) {
	if jsonx.TypeAt(rec, at) == jsonx.Null {
		return at + 4, nil
	}
	x.hasStatus = true
	return object(d, rec, at, "protoPayload.status", func(k []byte, at int) (int, error) {
		switch string(k) {
		case "code":
			switch jsonx.TypeAt(rec, at) {
			case jsonx.Number:
				num, end, err := jsonx.ReadNumber(rec, at)
				if err != nil {
					return end, err
				}
				n, ok := jsonx.ParseInt(num)
				if !ok {
					return at, fmt.Errorf("%w: protoPayload.status.code: expected an integer", ingest.ErrShape)
				}
				x.code = n
				return end, nil
			case jsonx.Null:
				return at + 4, nil
			}
			return at, fmt.Errorf("%w: protoPayload.status.code: expected an integer", ingest.ErrShape)
		case "message":
			return strInto(d, rec, at, "protoPayload.status.message", &x.message)
		}
		return -1, nil
	})
}

// labels turns the entry's labels into annotations.
func labels(d *ingest.Decoder, rec []byte, at int, e *event.Event, x *entry) (int, error) {
	return object(d, rec, at, "labels", func(k []byte, at int) (int, error) {
		if jsonx.TypeAt(rec, at) != jsonx.String {
			return -1, nil
		}
		key := k8saudit.AnnotationKey(d, k)
		v, end, err := str(d, rec, at, "labels")
		if err != nil {
			return end, err
		}
		if key == "authorization_k8s_io/decision" {
			x.hasDecisionLabel = true
		}
		e.Annotations = append(e.Annotations, event.Annotation{Key: key, Value: v})
		return end, nil
	})
}

// resource reads resource.labels (cluster_name, project_id).
func resource(d *ingest.Decoder, rec []byte, at int, x *entry) (int, error) {
	return object(d, rec, at, "resource", func(k []byte, at int) (int, error) {
		if string(k) != "labels" {
			return -1, nil
		}
		return object(d, rec, at, "resource.labels", func(k []byte, at int) (int, error) {
			switch string(k) {
			case "cluster_name":
				return strInto(d, rec, at, "resource.labels.cluster_name", &x.cluster)
			case "project_id":
				end, err := strInto(d, rec, at, "resource.labels.project_id", &x.project)
				if err == nil && jsonx.TypeAt(rec, at) == jsonx.String {
					x.rawProject = rec[at:end]
				}
				return end, err
			}
			return -1, nil
		})
	})
}

// object calls fn for each member of the object at rec[at] (null is an
// empty object). fn returns the offset after the value, or -1 to skip it.
func object(d *ingest.Decoder, rec []byte, at int, name string, fn func(key []byte, at int) (int, error)) (int, error) {
	switch jsonx.TypeAt(rec, at) {
	case jsonx.Null:
		return at + 4, nil
	case jsonx.Object:
	default:
		return at, fmt.Errorf("%w: %s: expected an object", ingest.ErrShape, name)
	}
	var it jsonx.ObjectIter
	if err := it.Begin(rec, at); err != nil {
		return at, err
	}
	for it.Next() {
		end, err := fn(it.Key, it.Value)
		if err != nil {
			return it.Value, err
		}
		if end >= 0 {
			it.Consumed(end)
		}
	}
	return it.End, it.Err
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
	return "", at, fmt.Errorf("%w: %s: expected a string", ingest.ErrShape, name)
}

func strInto(d *ingest.Decoder, rec []byte, at int, name string, dst *string) (int, error) {
	s, end, err := str(d, rec, at, name)
	*dst = s
	return end, err
}

func timestamp(d *ingest.Decoder, rec []byte, at int, name string) (event.Timestamp, int, error) {
	s, end, err := str(d, rec, at, name)
	if err != nil || s == "" {
		return event.Timestamp{}, end, err
	}
	t, ok := event.ParseTime(s)
	if !ok {
		return event.Timestamp{}, at, fmt.Errorf("%w: %s: cannot parse time %q", ingest.ErrShape, name, s)
	}
	return event.Timestamp{Raw: s, T: t}, end, nil
}
