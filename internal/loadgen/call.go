package loadgen

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// call is one request being turned into an audit event: the event, the
// cluster it hits, its event time and the latency the persona chose.
type call struct {
	r       *rand.Rand
	c       *cluster
	e       *auditv1.Event
	now     time.Time     // stageTimestamp
	latency time.Duration // stageTimestamp - requestReceivedTimestamp
}

// Annotation keys written by the apiserver.
const (
	annDecision  = "authorization.k8s.io/decision"
	annReason    = "authorization.k8s.io/reason"
	annPSAPolicy = "pod-security.kubernetes.io/enforce-policy"
	annMutation  = "mutation.webhook.admission.k8s.io/round_0_index_0"
	annPatch     = "patch.webhook.admission.k8s.io/round_0_index_0"
)

func (x *call) user(name, uid string, groups ...string) {
	x.e.User = authnv1.UserInfo{Username: name, UID: uid, Groups: groups}
}

// serviceAccount authenticates x as namespace/name. A pod-bound token adds
// the credential and binding extras Kubernetes 1.29+ records.
func (x *call) serviceAccount(namespace, name string, p *pod) {
	x.e.User = authnv1.UserInfo{
		Username: "system:serviceaccount:" + namespace + ":" + name,
		UID:      uuidFor(namespace + "/" + name),
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	if p == nil {
		return
	}
	n := x.c.nodes[p.node]
	x.e.User.Extra = map[string]authnv1.ExtraValue{
		"authentication.kubernetes.io/credential-id": {"JTI=" + uuidFor(p.uid+"/token")},
		"authentication.kubernetes.io/node-name":     {n.name},
		"authentication.kubernetes.io/node-uid":      {n.uid},
		"authentication.kubernetes.io/pod-name":      {p.name},
		"authentication.kubernetes.io/pod-uid":       {p.uid},
	}
}

// uuidFor derives a stable UUID from a name, so that a service account has
// the same UID in every event without a table.
func uuidFor(name string) string {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return newUUID(rand.New(rand.NewPCG(h, h>>7|1)))
}

// target names the object or collection a resource request addresses.
type target struct {
	group, version, resource, namespace, name, subresource string
}

func (t target) path() string {
	var b strings.Builder
	if t.group == "" {
		b.WriteString("/api/")
	} else {
		b.WriteString("/apis/")
		b.WriteString(t.group)
		b.WriteByte('/')
	}
	b.WriteString(t.version)
	if t.namespace != "" {
		b.WriteString("/namespaces/")
		b.WriteString(t.namespace)
	}
	b.WriteByte('/')
	b.WriteString(t.resource)
	if t.name != "" {
		b.WriteByte('/')
		b.WriteString(t.name)
	}
	if t.subresource != "" {
		b.WriteByte('/')
		b.WriteString(t.subresource)
	}
	return b.String()
}

// request sets verb, requestURI and objectRef of a resource request. query
// is appended to the URI after '?' when not empty.
func (x *call) request(verb string, t target, query string) {
	uri := t.path()
	if query != "" {
		uri += "?" + query
	}
	x.e.Verb = verb
	x.e.RequestURI = uri
	x.e.ObjectRef = &auditv1.ObjectReference{
		Resource: t.resource, Namespace: t.namespace, Name: t.name,
		APIGroup: t.group, APIVersion: t.version, Subresource: t.subresource,
	}
}

// nonResource sets a request to a non-resource URL such as /healthz.
func (x *call) nonResource(verb, uri string) {
	x.e.Verb = verb
	x.e.RequestURI = uri
}

// stored fills objectRef.uid and resourceVersion, which the apiserver
// copies from the request object of updates.
func (x *call) stored(uid, rv string) {
	x.e.ObjectRef.UID = types.UID(uid)
	x.e.ObjectRef.ResourceVersion = rv
}

// watch makes x a watch of the collection t: the event is either the
// ResponseStarted stage (the watch just opened) or the ResponseComplete
// stage after the timeout the client chose.
func (x *call) watch(t target, selector string) {
	timeout := time.Duration(300+x.r.IntN(300)) * time.Second
	q := "allowWatchBookmarks=true"
	if selector != "" {
		q += "&" + selector
	}
	q += "&resourceVersion=" + strconv.FormatUint(x.c.rv-uint64(x.r.IntN(20000)), 10) +
		"&timeout=" + timeout.String() + "&timeoutSeconds=" + strconv.Itoa(int(timeout/time.Second)) + "&watch=true"
	x.request("watch", t, q)
	x.code(200)
	if x.r.IntN(5) < 3 {
		x.e.Stage = auditv1.StageResponseStarted
		x.lat(200*time.Microsecond, 3*time.Millisecond)
	} else {
		x.latency = timeout + time.Duration(x.r.IntN(1000))*time.Microsecond
	}
}

// list makes x a paginated list of the collection t.
func (x *call) list(t target, selector string) {
	q := "limit=500&resourceVersion=0"
	if selector != "" {
		q = selector + "&" + q
	}
	x.request("list", t, q)
	x.code(200)
	x.lat(2*time.Millisecond, 80*time.Millisecond)
}

func (x *call) allow(reason string) {
	x.e.Annotations = map[string]string{annDecision: "allow", annReason: reason}
}

func (x *call) forbid(reason string) {
	x.e.Annotations = map[string]string{annDecision: "forbid", annReason: reason}
}

func (x *call) code(code int32) {
	x.e.ResponseStatus = &metav1.Status{Code: code}
}

// fail sets a failure status as the apiserver records it, message included.
func (x *call) fail(code int32, reason metav1.StatusReason, message string, details *metav1.StatusDetails) {
	x.e.ResponseStatus = &metav1.Status{
		Status: metav1.StatusFailure, Message: message, Reason: reason, Details: details, Code: code,
	}
}

// forbidden is the 403 of an RBAC denial on a resource.
func (x *call) forbidden(verb string, t target) {
	var where string
	if t.namespace != "" {
		where = " in the namespace " + strconv.Quote(t.namespace)
	}
	what := t.resource
	if t.name != "" {
		what += " " + strconv.Quote(t.name)
	}
	msg := what + " is forbidden: User " + strconv.Quote(x.e.User.Username) + " cannot " + verb +
		" resource " + strconv.Quote(t.resource) + " in API group " + strconv.Quote(t.group) + where
	x.forbid("")
	x.fail(403, metav1.StatusReasonForbidden, msg, &metav1.StatusDetails{Name: t.name, Group: t.group, Kind: t.resource})
}

func (x *call) notFound(t target) {
	x.fail(404, metav1.StatusReasonNotFound, t.resource+" "+strconv.Quote(t.name)+" not found",
		&metav1.StatusDetails{Name: t.name, Group: t.group, Kind: t.resource})
}

// conflict is the 409 of an update with a stale resourceVersion.
func (x *call) conflict(t target) {
	qualified := t.resource
	if t.group != "" {
		qualified += "." + t.group
	}
	x.fail(409, metav1.StatusReasonConflict, "Operation cannot be fulfilled on "+qualified+" "+strconv.Quote(t.name)+
		": the object has been modified; please apply your changes to the latest version and try again",
		&metav1.StatusDetails{Name: t.name, Group: t.group, Kind: t.resource})
}

// lat draws the request latency uniformly from [lo, hi).
func (x *call) lat(lo, hi time.Duration) {
	x.latency = lo + time.Duration(x.r.Int64N(int64(hi-lo)))
}

func (x *call) sourceIPs(ips ...string) { x.e.SourceIPs = ips }

func (x *call) chance(percent int) bool { return x.r.IntN(100) < percent }
