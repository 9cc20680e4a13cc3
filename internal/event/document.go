package event

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"time"
)

// Clone returns a deep copy of e that owns all of its memory.
func (e *Event) Clone() *Event {
	c := &Event{
		Kind: strings.Clone(e.Kind), APIVersion: strings.Clone(e.APIVersion), Level: strings.Clone(e.Level),
		AuditID: strings.Clone(e.AuditID), Stage: strings.Clone(e.Stage), RequestURI: strings.Clone(e.RequestURI),
		Verb: strings.Clone(e.Verb), UserAgent: strings.Clone(e.UserAgent),
		User:             cloneUser(e.User),
		ImpersonatedUser: cloneUser(e.ImpersonatedUser),
		SourceIPs:        cloneStrings(e.SourceIPs),
		ObjectRef: ObjectRef{
			Resource: strings.Clone(e.ObjectRef.Resource), Namespace: strings.Clone(e.ObjectRef.Namespace),
			Name: strings.Clone(e.ObjectRef.Name), UID: strings.Clone(e.ObjectRef.UID),
			APIGroup: strings.Clone(e.ObjectRef.APIGroup), APIVersion: strings.Clone(e.ObjectRef.APIVersion),
			ResourceVersion: strings.Clone(e.ObjectRef.ResourceVersion), Subresource: strings.Clone(e.ObjectRef.Subresource),
		},
		ResponseStatus: ResponseStatus{
			Code: e.ResponseStatus.Code, HasCode: e.ResponseStatus.HasCode,
			Status: strings.Clone(e.ResponseStatus.Status), Message: strings.Clone(e.ResponseStatus.Message),
			Reason: strings.Clone(e.ResponseStatus.Reason),
		},
		RequestReceivedTimestamp: Timestamp{Raw: strings.Clone(e.RequestReceivedTimestamp.Raw), T: e.RequestReceivedTimestamp.T},
		StageTimestamp:           Timestamp{Raw: strings.Clone(e.StageTimestamp.Raw), T: e.StageTimestamp.T},
		CloudProvider:            strings.Clone(e.CloudProvider),
		ClusterName:              strings.Clone(e.ClusterName),
		Reader:                   strings.Clone(e.Reader),
		Namespace:                strings.Clone(e.Namespace),
		Timestamp:                e.Timestamp,
		Record:                   bytes.Clone(e.Record),
		Format:                   strings.Clone(e.Format),
		Origin:                   Origin{Name: strings.Clone(e.Origin.Name), Line: e.Origin.Line},
		Ambiguous:                cloneStrings(e.Ambiguous),
	}
	if e.Alt != nil {
		c.Alt = e.Alt.Clone()
	}
	if len(e.Annotations) > 0 {
		c.Annotations = make([]Annotation, len(e.Annotations))
		for i, a := range e.Annotations {
			c.Annotations[i] = Annotation{Key: strings.Clone(a.Key), Value: strings.Clone(a.Value)}
		}
	}
	if len(e.Raws) > 0 {
		c.Raws = make([]Raw, len(e.Raws))
		for i, r := range e.Raws {
			c.Raws[i] = Raw{Prefix: strings.Clone(r.Prefix), Key: strings.Clone(r.Key), JSON: bytes.Clone(r.JSON), DropKey: strings.Clone(r.DropKey)}
		}
	}
	return c
}

func cloneUser(u UserInfo) UserInfo {
	return UserInfo{Username: strings.Clone(u.Username), UID: strings.Clone(u.UID), Groups: cloneStrings(u.Groups)}
}

func cloneStrings(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.Clone(s)
	}
	return out
}

// doc is a JSON object under construction.
type doc map[string]any

func (d doc) obj(path ...string) doc {
	cur := d
	for _, p := range path {
		next, ok := cur[p].(doc)
		if !ok {
			next = doc{}
			cur[p] = next
		}
		cur = next
	}
	return cur
}

func (d doc) setStr(key, v string) {
	if v != "" {
		d[key] = v
	}
}

func (d doc) setStrs(key string, vs []string) {
	var out []any
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	if len(out) > 0 {
		d[key] = out
	}
}

// Document returns the canonical ECS document of e as nested maps, with
// empty values removed (as Elastic's pipeline leaves them). An event read
// from an ECS document returns that document as it was read.
func (e *Event) Document() map[string]any {
	for _, r := range e.Raws {
		if r.Prefix == "" && r.Key == "" {
			if v, ok := decodeClean(r.JSON, ""); ok {
				if m, ok := v.(map[string]any); ok {
					return m
				}
			}
		}
	}
	d := doc{}
	if t := e.Time(); !t.IsZero() {
		d["@timestamp"] = t.UTC().Format(time.RFC3339Nano)
	}
	ev := d.obj("event")
	ev["kind"] = "event"
	ev["dataset"] = "kubernetes.audit_logs"
	ev.setStr("action", e.Verb)
	ev.setStr("outcome", e.Outcome())
	ds := d.obj("data_stream")
	ds["dataset"] = "kubernetes.audit_logs"
	ds["type"] = "logs"
	ns := e.Namespace
	if ns == "" {
		ns = "default"
	}
	ds["namespace"] = ns

	a := doc{}
	a.setStr("kind", e.Kind)
	a.setStr("apiVersion", e.APIVersion)
	a.setStr("level", e.Level)
	a.setStr("auditID", e.AuditID)
	a.setStr("stage", e.Stage)
	a.setStr("requestURI", e.RequestURI)
	a.setStr("verb", e.Verb)
	setUser := func(key string, u UserInfo) {
		ud := doc{}
		ud.setStr("username", u.Username)
		ud.setStr("uid", u.UID)
		ud.setStrs("groups", u.Groups)
		if len(ud) > 0 {
			a[key] = ud
		}
	}
	setUser("user", e.User)
	setUser("impersonatedUser", e.ImpersonatedUser)
	a.setStrs("sourceIPs", e.SourceIPs)
	a.setStr("userAgent", e.UserAgent)
	or := doc{}
	or.setStr("resource", e.ObjectRef.Resource)
	or.setStr("namespace", e.ObjectRef.Namespace)
	or.setStr("name", e.ObjectRef.Name)
	or.setStr("uid", e.ObjectRef.UID)
	or.setStr("apiGroup", e.ObjectRef.APIGroup)
	or.setStr("apiVersion", e.ObjectRef.APIVersion)
	or.setStr("resourceVersion", e.ObjectRef.ResourceVersion)
	or.setStr("subresource", e.ObjectRef.Subresource)
	if len(or) > 0 {
		a["objectRef"] = or
	}
	rs := doc{}
	if e.ResponseStatus.HasCode {
		rs["code"] = e.ResponseStatus.Code
	}
	rs.setStr("status", e.ResponseStatus.Status)
	rs.setStr("message", e.ResponseStatus.Message)
	rs.setStr("reason", e.ResponseStatus.Reason)
	if len(rs) > 0 {
		a["responseStatus"] = rs
	}
	a.setStr("requestReceivedTimestamp", tsText(e.RequestReceivedTimestamp))
	a.setStr("stageTimestamp", tsText(e.StageTimestamp))
	if len(e.Annotations) > 0 {
		an := doc{}
		for _, x := range e.Annotations {
			an.setStr(x.Key, x.Value)
		}
		if len(an) > 0 {
			a["annotations"] = an
		}
	}
	if len(a) > 0 {
		d.obj("kubernetes")["audit"] = a
	}
	for _, r := range e.Raws {
		v, ok := decodeClean(r.JSON, r.DropKey)
		if !ok {
			continue
		}
		parts := strings.Split(r.Prefix, ".")
		if r.Prefix == "" {
			parts = nil
		}
		parent := d.obj(parts...)
		if r.Key == "" {
			// Merge an object into the prefix.
			if m, ok := v.(map[string]any); ok {
				for k, x := range m {
					parent[k] = x
				}
			}
			continue
		}
		parent[r.Key] = v
	}

	u := doc{}
	u.setStr("name", e.User.Username)
	u.setStr("id", e.User.UID)
	if len(u) > 0 {
		d["user"] = u
	}
	if e.UserAgent != "" {
		d["user_agent"] = doc{"original": e.UserAgent}
	}
	var ips []Value
	ips = e.Get(Field{id: FieldSourceIP}, ips)
	if len(ips) > 0 {
		list := make([]any, len(ips))
		for i, v := range ips {
			list[i] = v.S
		}
		d["source"] = doc{"ip": list}
		d["client"] = doc{"ip": list}
	}
	// Merged into what raw parts may have put there (cloud.account.id, ...).
	if e.CloudProvider != "" {
		d.obj("cloud")["provider"] = e.CloudProvider
	}
	if e.ClusterName != "" {
		d.obj("orchestrator", "cluster")["name"] = e.ClusterName
	}
	if e.Reader != "" {
		d.obj("kanon")["reader"] = e.Reader
	}
	return toPlain(d).(map[string]any)
}

func tsText(t Timestamp) string {
	if t.Raw != "" {
		return t.Raw
	}
	if !t.T.IsZero() {
		return t.T.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

func toPlain(v any) any {
	switch x := v.(type) {
	case doc:
		m := make(map[string]any, len(x))
		for k, y := range x {
			m[k] = toPlain(y)
		}
		return m
	case map[string]any:
		for k, y := range x {
			x[k] = toPlain(y)
		}
		return x
	case []any:
		for i, y := range x {
			x[i] = toPlain(y)
		}
		return x
	}
	return v
}

// decodeClean decodes JSON and removes what Elastic's pipeline would drop:
// nulls, empty strings, empty objects and arrays, and dropKey at the top.
func decodeClean(b []byte, dropKey string) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if m, ok := v.(map[string]any); ok && dropKey != "" {
		delete(m, dropKey)
	}
	return clean(v)
}

func clean(v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case string:
		return x, x != ""
	case map[string]any:
		for k, y := range x {
			if c, ok := clean(y); ok {
				x[k] = c
			} else {
				delete(x, k)
			}
		}
		return x, len(x) > 0
	case []any:
		out := x[:0]
		for _, y := range x {
			if c, ok := clean(y); ok {
				out = append(out, c)
			}
		}
		return out, len(out) > 0
	}
	return v, true
}

// AppendECS appends the canonical document of e as one line of JSON
// (keys sorted) to dst.
func (e *Event) AppendECS(dst []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e.Document()); err != nil {
		// Document holds only JSON-encodable values.
		panic("BUG: cannot encode ECS document: " + err.Error())
	}
	return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// ValidIP reports whether s is an IP address as Elasticsearch's ip type
// accepts it.
func ValidIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}
