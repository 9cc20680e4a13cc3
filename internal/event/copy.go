package event

import "unsafe"

// CopyTo makes dst a copy of e that stays valid after e's reader moves on
// (readers reuse the event, its slices and their scratch space for the
// next record): slices get storage of dst's own (dst's capacity is reused,
// so a dst kept for a batch of events allocates nothing once warm), and
// strings and raw parts that do not lie inside stable — the record's bytes,
// which the caller keeps alive — are copied into arena. Strings inside
// stable are shared, not copied. A string in arena stays valid as long as
// the events copied with it: arena may grow (a new backing array), never
// moves what it holds.
func (e *Event) CopyTo(dst *Event, stable []byte, arena *[]byte) {
	c := copier{stable: stable, arena: arena}
	groups, imp, ips, ann, raws, amb := dst.User.Groups[:0], dst.ImpersonatedUser.Groups[:0], dst.SourceIPs[:0], dst.Annotations[:0], dst.Raws[:0], dst.Ambiguous[:0]
	alt := dst.Alt
	*dst = *e
	s := c.str
	dst.Kind, dst.APIVersion, dst.Level, dst.AuditID = s(e.Kind), s(e.APIVersion), s(e.Level), s(e.AuditID)
	dst.Stage, dst.RequestURI, dst.Verb, dst.UserAgent = s(e.Stage), s(e.RequestURI), s(e.Verb), s(e.UserAgent)
	dst.User = UserInfo{Username: s(e.User.Username), UID: s(e.User.UID), Groups: c.strs(groups, e.User.Groups)}
	dst.ImpersonatedUser = UserInfo{Username: s(e.ImpersonatedUser.Username), UID: s(e.ImpersonatedUser.UID), Groups: c.strs(imp, e.ImpersonatedUser.Groups)}
	dst.SourceIPs = c.strs(ips, e.SourceIPs)
	o := &e.ObjectRef
	dst.ObjectRef = ObjectRef{Resource: s(o.Resource), Namespace: s(o.Namespace), Name: s(o.Name), UID: s(o.UID),
		APIGroup: s(o.APIGroup), APIVersion: s(o.APIVersion), ResourceVersion: s(o.ResourceVersion), Subresource: s(o.Subresource)}
	dst.ResponseStatus.Status, dst.ResponseStatus.Message, dst.ResponseStatus.Reason = s(e.ResponseStatus.Status), s(e.ResponseStatus.Message), s(e.ResponseStatus.Reason)
	dst.RequestReceivedTimestamp.Raw, dst.StageTimestamp.Raw = s(e.RequestReceivedTimestamp.Raw), s(e.StageTimestamp.Raw)
	for _, a := range e.Annotations {
		ann = append(ann, Annotation{Key: s(a.Key), Value: s(a.Value)})
	}
	dst.Annotations = ann
	dst.CloudProvider, dst.ClusterName, dst.Reader, dst.Namespace = s(e.CloudProvider), s(e.ClusterName), s(e.Reader), s(e.Namespace)
	for _, r := range e.Raws {
		raws = append(raws, Raw{Prefix: s(r.Prefix), Key: s(r.Key), JSON: c.bytes(r.JSON), DropKey: s(r.DropKey)})
	}
	dst.Raws = raws
	dst.Record = c.bytes(e.Record)
	dst.Format = s(e.Format)
	dst.Origin.Name = s(e.Origin.Name)
	dst.Ambiguous = c.strs(amb, e.Ambiguous)
	dst.Alt = nil
	if e.Alt != nil {
		if alt == nil {
			alt = &Event{}
		}
		e.Alt.CopyTo(alt, stable, arena)
		dst.Alt = alt
	}
}

type copier struct {
	stable []byte
	arena  *[]byte
}

// inside reports whether p[:n] lies inside stable.
func (c *copier) inside(p unsafe.Pointer, n int) bool {
	if len(c.stable) == 0 || n == 0 {
		return n == 0
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(c.stable)))
	at := uintptr(p)
	return at >= lo && at+uintptr(n) <= lo+uintptr(len(c.stable))
}

func (c *copier) str(s string) string {
	if c.inside(unsafe.Pointer(unsafe.StringData(s)), len(s)) {
		return s
	}
	a := *c.arena
	if cap(a)-len(a) < len(s) {
		// A new backing array: what the old one holds stays where it is.
		a = make([]byte, 0, max(2*cap(a), len(s), 4096))
	}
	n := len(a)
	a = append(a, s...)
	*c.arena = a
	return unsafe.String(unsafe.SliceData(a[n:]), len(s))
}

func (c *copier) bytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	if c.inside(unsafe.Pointer(unsafe.SliceData(b)), len(b)) {
		return b
	}
	s := c.str(unsafe.String(unsafe.SliceData(b), len(b)))
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func (c *copier) strs(dst, src []string) []string {
	for _, x := range src {
		dst = append(dst, c.str(x))
	}
	return dst
}
