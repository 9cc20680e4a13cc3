package loadgen

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// Enumeration bursts: an anonymous client (one source IP, one user
// agent) asks one cluster for many distinct API paths within a minute,
// the pattern of Elastic's rule "Kubernetes Potential Endpoint Permission
// Enumeration Attempt by Anonymous User Detected".

// Burst sizes: at least minBurst requests, so that any choice of targets
// holds more than five distinct URIs and more than three distinct
// resources (see burstTargets), and fewer than 50, under the rule's cap
// on documents.
const (
	minBurst    = 10
	maxBurst    = 24
	burstLength = time.Minute
)

// burstTarget is one request of an enumeration: a resource request
// (resource set) or a non-resource URL (path set).
type burstTarget struct {
	verb string
	t    target
	path string
}

// burstTargets are what enumeration tools try. Of 29, three are
// non-resource URLs and three resources appear twice, so any ten of them
// name at least four distinct resources.
var burstTargets = []burstTarget{
	{verb: "list", t: target{version: "v1", resource: "pods"}},
	{verb: "list", t: target{version: "v1", resource: "pods", namespace: "default"}},
	{verb: "list", t: target{version: "v1", resource: "secrets"}},
	{verb: "list", t: target{version: "v1", resource: "secrets", namespace: "kube-system"}},
	{verb: "list", t: target{version: "v1", resource: "configmaps"}},
	{verb: "get", t: target{version: "v1", resource: "configmaps", namespace: "kube-public", name: "cluster-info"}},
	{verb: "list", t: target{version: "v1", resource: "namespaces"}},
	{verb: "list", t: target{version: "v1", resource: "nodes"}},
	{verb: "list", t: target{version: "v1", resource: "serviceaccounts"}},
	{verb: "list", t: target{version: "v1", resource: "services"}},
	{verb: "list", t: target{version: "v1", resource: "endpoints"}},
	{verb: "list", t: target{version: "v1", resource: "persistentvolumes"}},
	{verb: "list", t: target{version: "v1", resource: "events"}},
	{verb: "list", t: target{group: "apps", version: "v1", resource: "deployments"}},
	{verb: "list", t: target{group: "apps", version: "v1", resource: "daemonsets"}},
	{verb: "list", t: target{group: "apps", version: "v1", resource: "statefulsets"}},
	{verb: "list", t: target{group: "apps", version: "v1", resource: "replicasets"}},
	{verb: "list", t: target{group: "batch", version: "v1", resource: "jobs"}},
	{verb: "list", t: target{group: "batch", version: "v1", resource: "cronjobs"}},
	{verb: "list", t: target{group: "networking.k8s.io", version: "v1", resource: "ingresses"}},
	{verb: "list", t: target{group: "networking.k8s.io", version: "v1", resource: "networkpolicies"}},
	{verb: "list", t: target{group: "rbac.authorization.k8s.io", version: "v1", resource: "roles"}},
	{verb: "list", t: target{group: "rbac.authorization.k8s.io", version: "v1", resource: "rolebindings"}},
	{verb: "list", t: target{group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterroles"}},
	{verb: "list", t: target{group: "rbac.authorization.k8s.io", version: "v1", resource: "clusterrolebindings"}},
	{verb: "list", t: target{group: "apiextensions.k8s.io", version: "v1", resource: "customresourcedefinitions"}},
	{verb: "get", path: "/version"},
	{verb: "get", path: "/openapi/v2"},
	{verb: "get", path: "/.well-known/openid-configuration"},
}

// enumerationTools are the user agents of bursts; each burst appends a
// version of its own, so most bursts bring a user agent never seen.
var enumerationTools = []string{
	"kube-hunter/", "kubeletctl/", "peirates/", "python-requests/2.", "Go-http-client/", "kubiscan/", "curl/8.",
}

// burstEvent is one planned request of a burst.
type burstEvent struct {
	at     time.Time // arrival, before jitter
	target int       // index into burstTargets
	b      *burst
}

// burst is the client of one enumeration.
type burst struct {
	c         *cluster
	ip, agent string
}

// burstPlan draws the bursts of a log from a random source of its own,
// so that the rest of the traffic is the same with and without bursts.
type burstPlan struct {
	r     *rand.Rand
	every float64 // mean time between burst starts, in seconds
	next  time.Time
	queue []burstEvent // planned, in arrival order
}

func newBurstPlan(seed uint64, perHour float64, start time.Time) *burstPlan {
	p := &burstPlan{r: rand.New(rand.NewPCG(seed^0x6275727374, seed+0x5851f42d4c957f2d)), every: 3600 / perHour}
	p.next = start.Add(p.gap())
	return p
}

func (p *burstPlan) gap() time.Duration {
	return time.Duration(p.r.ExpFloat64() * p.every * float64(time.Second))
}

// peek returns the arrival time of the next burst request, planning the
// bursts that start before the earliest planned request.
func (p *burstPlan) peek(clusters []*cluster) time.Time {
	for len(p.queue) == 0 || !p.next.After(p.queue[0].at) {
		p.plan(clusters)
	}
	return p.queue[0].at
}

// plan adds the requests of the burst starting at p.next and draws the
// start of the one after it.
func (p *burstPlan) plan(clusters []*cluster) {
	b := &burst{c: clusters[p.r.IntN(len(clusters))], ip: publicIP(p.r)}
	b.agent = enumerationTools[p.r.IntN(len(enumerationTools))] + strconv.Itoa(p.r.IntN(40)) + "." + strconv.Itoa(p.r.IntN(10))
	n := minBurst + p.r.IntN(maxBurst-minBurst+1)
	order := p.r.Perm(len(burstTargets))[:n]
	for _, i := range order {
		at := p.next.Add(time.Duration(p.r.Int64N(int64(burstLength))))
		p.queue = append(p.queue, burstEvent{at: at, target: i, b: b})
	}
	slices.SortStableFunc(p.queue, func(a, b burstEvent) int { return a.at.Compare(b.at) })
	p.next = p.next.Add(p.gap())
}

// pop builds the event of the next planned request.
func (p *burstPlan) pop() (*auditv1.Event, *call) {
	be := p.queue[0]
	p.queue = p.queue[1:]
	e := &auditv1.Event{
		TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "audit.k8s.io/v1"},
		// Logged with the request: an audit policy that records anonymous
		// requests at level Request (reads have no request body).
		Level:   auditv1.LevelRequest,
		AuditID: types.UID(newUUID(p.r)),
		Stage:   auditv1.StageResponseComplete,
	}
	x := &call{r: p.r, c: be.b.c, e: e, now: be.at.Add(time.Duration(p.r.IntN(2000)) * time.Microsecond)}
	x.asAnonymous(be.b.ip, be.b.agent)
	x.lat(300*time.Microsecond, 4*time.Millisecond)
	x.enumerate(burstTargets[be.target])
	return e, x
}

// enumerate answers one request of a burst as the cluster's anonymous
// setup does: 401 where anonymous authentication is limited to health
// endpoints; elsewhere 403 but for the public info endpoints (200) and
// kube-public/cluster-info (200, 403 or 404 with the cluster's binding).
func (x *call) enumerate(bt burstTarget) {
	if bt.path != "" {
		x.nonResource(bt.verb, bt.path)
	} else {
		x.request(bt.verb, bt.t, "")
	}
	if x.c.anonymousRestricted && bt.path != "/version" {
		x.e.Stage = auditv1.StageResponseStarted
		x.fail(401, metav1.StatusReasonUnauthorized, "Unauthorized", nil)
		return
	}
	switch {
	case bt.path == "/version":
		x.allow(publicInfoReason)
		x.code(200)
	case bt.path == "/.well-known/openid-configuration":
		x.allow(rbacReason("ClusterRoleBinding", "service-account-issuer-discovery", "ClusterRole", "system:service-account-issuer-discovery", "Group", "system:unauthenticated"))
		x.code(200)
	case bt.path != "":
		x.forbid("")
		x.fail(403, metav1.StatusReasonForbidden, "forbidden: User \"system:anonymous\" cannot get path \""+bt.path+"\"", &metav1.StatusDetails{})
	case bt.t.name == "cluster-info":
		switch x.c.clusterInfo {
		case clusterInfoServed:
			x.allow(clusterInfoReason)
			x.code(200)
		case clusterInfoMissing:
			x.allow(clusterInfoReason)
			x.notFound(bt.t)
		default:
			x.forbidden(bt.verb, bt.t)
		}
	default:
		x.forbidden(bt.verb, bt.t)
	}
}
