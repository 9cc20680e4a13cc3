package loadgen

import (
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// persona is one kind of client traffic. weight is its share of
// Metadata-level events, bodyWeight its share of the events that carry
// bodies (zero: never logged with bodies, like secrets and watches).
// build fills the call; with body set it must attach a requestObject or a
// responseObject and raise the level accordingly.
type persona struct {
	name       string
	weight     int
	bodyWeight int
	build      func(x *call, body bool)
}

// personas is the authenticated traffic mix: mostly control plane and
// kubelets, then operators' service accounts, then humans with kubectl.
var personas = []persona{
	{"kube-controller-manager leader election", 7, 8, leaderElection("kube-controller-manager")},
	{"kube-scheduler leader election", 5, 6, leaderElection("kube-scheduler")},
	{"kubelet node lease", 13, 10, kubeletNodeLease},
	{"kubelet node status", 5, 14, kubeletNodeStatus},
	{"kubelet pod get", 6, 10, kubeletPodGet},
	{"kubelet pod status", 3, 10, kubeletPodStatus},
	{"kubelet watch", 6, 0, kubeletWatch},
	{"kubelet token request", 3, 0, kubeletToken},
	{"kubelet events", 2, 4, kubeletEvent},
	{"controllers", 12, 10, controllers},
	{"kube-proxy", 3, 0, kubeProxy},
	{"operator reads", 17, 10, operatorReads},
	{"operator writes", 3, 6, operatorWrites},
	{"kube-apiserver", 4, 2, apiserverSelf},
	{"kubectl", 6, 10, kubectl},
}

// anonymousPersonas share the anonymous events.
var anonymousPersonas = []persona{
	{"health probe", 70, 0, healthProbe},
	{"scanner", 30, 0, scanner},
}

func (x *call) pickApp() (*app, *pod) {
	a := &x.c.apps[x.r.IntN(len(x.c.apps))]
	return a, &a.pods[x.r.IntN(len(a.pods))]
}

// leaderElection renews the lease of a control-plane component in
// kube-system: a get then an update every two seconds per instance.
func leaderElection(component string) func(x *call, body bool) {
	return func(x *call, body bool) {
		c := x.c
		user := "system:" + component
		x.user(user, "")
		x.e.User.Groups = []string{"system:authenticated"}
		x.e.UserAgent = c.userAgent(component, "linux/amd64", "leader-election")
		x.sourceIPs(c.controlPlaneIP)
		t := target{group: "coordination.k8s.io", version: "v1", resource: "leases", namespace: "kube-system", name: component}
		x.allow(rbacReason("ClusterRoleBinding", user, "ClusterRole", user, "User", user))
		uid := uuidFor(c.name + "/lease/" + component)
		holder := fmt.Sprintf("%s-%d_%s", c.name, 1+x.r.IntN(3), uuidFor(c.name+component))
		if !body && x.chance(45) {
			x.request("get", t, "timeout=5s")
			x.code(200)
			x.lat(300*time.Microsecond, 3*time.Millisecond)
			return
		}
		x.request("update", t, "timeout=5s")
		oldRV := strconv.FormatUint(c.rv, 10)
		x.stored(uid, oldRV)
		x.lat(2*time.Millisecond, 12*time.Millisecond)
		if !body && x.chance(1) {
			x.conflict(t)
			return
		}
		x.code(200)
		if body {
			x.e.Level = auditv1.LevelRequestResponse
			x.e.RequestObject = rawObject(lease(x.r, "kube-system", component, uid, oldRV, holder, component, 15, x.now))
			x.e.ResponseObject = rawObject(lease(x.r, "kube-system", component, uid, c.nextRV(x.r), holder, component, 15, x.now))
		}
	}
}

func (x *call) asKubelet(n *node) {
	x.user("system:node:"+n.name, "", "system:nodes", "system:authenticated")
	x.e.UserAgent = x.c.userAgent("kubelet", "linux/amd64", "")
	x.sourceIPs(n.ip)
	x.allow("") // the Node authorizer gives no reason
}

func kubeletNodeLease(x *call, body bool) {
	n := &x.c.nodes[x.r.IntN(len(x.c.nodes))]
	x.asKubelet(n)
	t := target{group: "coordination.k8s.io", version: "v1", resource: "leases", namespace: "kube-node-lease", name: n.name}
	x.request("update", t, "timeout=10s")
	oldRV := strconv.FormatUint(x.c.rv, 10)
	x.stored(n.uid, oldRV)
	x.code(200)
	x.lat(1500*time.Microsecond, 9*time.Millisecond)
	if body {
		x.e.Level = auditv1.LevelRequestResponse
		x.e.RequestObject = rawObject(lease(x.r, "kube-node-lease", n.name, n.uid, oldRV, n.name, "kubelet", 40, x.now))
		x.e.ResponseObject = rawObject(lease(x.r, "kube-node-lease", n.name, n.uid, x.c.nextRV(x.r), n.name, "kubelet", 40, x.now))
	}
}

func kubeletNodeStatus(x *call, body bool) {
	n := &x.c.nodes[x.r.IntN(len(x.c.nodes))]
	x.asKubelet(n)
	x.request("patch", target{version: "v1", resource: "nodes", name: n.name, subresource: "status"}, "timeout=10s")
	x.code(200)
	x.lat(3*time.Millisecond, 25*time.Millisecond)
	x.c.nextRV(x.r)
	if body {
		x.e.Level = auditv1.LevelRequest
		x.e.RequestObject = rawUnknown(nodeStatusPatch(x.r, x.c, x.now))
	}
}

func kubeletPodGet(x *call, body bool) {
	a, p := x.pickApp()
	x.asKubelet(&x.c.nodes[p.node])
	t := target{version: "v1", resource: "pods", namespace: a.namespace, name: p.name}
	x.request("get", t, "")
	x.lat(400*time.Microsecond, 4*time.Millisecond)
	if !body && x.chance(4) {
		x.notFound(t)
		return
	}
	x.code(200)
	if body {
		x.e.Level = auditv1.LevelRequestResponse
		x.e.ResponseObject = rawObject(podObject(x.r, x.c, a, p, strconv.FormatUint(x.c.rv, 10), x.now, true))
	}
}

func kubeletPodStatus(x *call, body bool) {
	a, p := x.pickApp()
	x.asKubelet(&x.c.nodes[p.node])
	x.request("patch", target{version: "v1", resource: "pods", namespace: a.namespace, name: p.name, subresource: "status"}, "")
	x.code(200)
	x.lat(3*time.Millisecond, 20*time.Millisecond)
	x.c.nextRV(x.r)
	if body {
		x.e.Level = auditv1.LevelRequest
		x.e.RequestObject = rawUnknown(podStatusPatch(x.r, a, p, x.now))
	}
}

// kubeletWatch is the single-object watch a kubelet keeps on each secret
// and configmap its pods mount.
func kubeletWatch(x *call, _ bool) {
	a, p := x.pickApp()
	x.asKubelet(&x.c.nodes[p.node])
	resource, name := "configmaps", "kube-root-ca.crt"
	switch x.r.IntN(3) {
	case 0:
		resource, name = "secrets", a.name+"-tls"
	case 1:
		name = a.name + "-config"
	}
	x.watch(target{version: "v1", resource: resource, namespace: a.namespace}, "fieldSelector=metadata.name%3D"+name)
}

// kubeletToken is the TokenRequest a kubelet makes for a pod's projected
// service account token. Never logged with bodies: the response is a token.
func kubeletToken(x *call, _ bool) {
	a, p := x.pickApp()
	x.asKubelet(&x.c.nodes[p.node])
	t := target{version: "v1", resource: "serviceaccounts", namespace: a.namespace, name: a.serviceAccount, subresource: "token"}
	x.request("create", t, "")
	x.code(201)
	x.lat(2*time.Millisecond, 9*time.Millisecond)
}

func kubeletEvent(x *call, body bool) {
	a, p := x.pickApp()
	x.asKubelet(&x.c.nodes[p.node])
	x.request("create", target{version: "v1", resource: "events", namespace: a.namespace}, "")
	x.code(201)
	x.lat(2*time.Millisecond, 10*time.Millisecond)
	if body {
		x.e.Level = auditv1.LevelRequest
		x.e.RequestObject = rawObject(eventObject(x.r, x.c, a, p, x.now))
	}
}

var controllerNames = []string{"replicaset-controller", "deployment-controller", "endpointslice-controller", "node-lifecycle-controller", "job-controller", "generic-garbage-collector"}

// controllers is kube-controller-manager's controllers, each with its own
// service account credentials.
func controllers(x *call, body bool) {
	c := x.c
	name := controllerNames[x.r.IntN(len(controllerNames))]
	if body {
		name = "replicaset-controller"
	}
	x.serviceAccount("kube-system", name, nil)
	x.e.UserAgent = c.userAgent("kube-controller-manager", "linux/amd64", "system:serviceaccount:kube-system:"+name)
	x.sourceIPs(c.controlPlaneIP)
	x.allow(rbacReason("ClusterRoleBinding", "system:controller:"+name, "ClusterRole", "system:controller:"+name, "ServiceAccount", name+"/kube-system"))
	a, p := x.pickApp()
	switch {
	case name == "replicaset-controller" && (body || x.chance(30)):
		// Scale-up: the ReplicaSet controller creates a pod, admitted by
		// Pod Security and, on EKS, mutated by the pod identity webhook.
		x.request("create", target{version: "v1", resource: "pods", namespace: a.namespace}, "")
		x.code(201)
		x.lat(5*time.Millisecond, 40*time.Millisecond)
		x.e.Annotations[annPSAPolicy] = "restricted:latest"
		if a.namespace == "kube-system" || a.namespace == "monitoring" {
			x.e.Annotations[annPSAPolicy] = "privileged:latest"
		}
		if c.flavor == flavorEKS {
			x.e.Annotations[annMutation] = `{"configuration":"pod-identity-webhook","webhook":"iam-for-pods.amazonaws.com","mutated":false}`
		}
		if body {
			x.e.Level = auditv1.LevelRequestResponse
			x.e.RequestObject = rawObject(podObject(x.r, c, a, p, "", x.now, false))
			x.e.ResponseObject = rawObject(podObject(x.r, c, a, p, c.nextRV(x.r), x.now, true))
			if c.flavor == flavorEKS {
				x.e.Annotations[annPatch] = `{"configuration":"pod-identity-webhook","webhook":"iam-for-pods.amazonaws.com","patch":[],"patchType":"JSONPatch"}`
			}
		}
	case name == "endpointslice-controller":
		t := target{group: "discovery.k8s.io", version: "v1", resource: "endpointslices", namespace: a.namespace, name: a.name + "-" + randString(x.r, 5, nameAlphabet)}
		x.request("update", t, "")
		x.stored(uuidFor(c.name+t.name), strconv.FormatUint(c.rv, 10))
		x.code(200)
		c.nextRV(x.r)
		x.lat(2*time.Millisecond, 15*time.Millisecond)
	case name == "deployment-controller" || name == "replicaset-controller":
		res, obj := "deployments", a.name
		if name == "replicaset-controller" {
			res, obj = "replicasets", a.name+"-"+a.rsHash
		}
		t := target{group: "apps", version: "v1", resource: res, namespace: a.namespace, name: obj, subresource: "status"}
		x.request("update", t, "")
		x.stored(uuidFor(c.name+obj), strconv.FormatUint(c.rv, 10))
		x.lat(2*time.Millisecond, 15*time.Millisecond)
		if x.chance(3) {
			x.conflict(t)
			return
		}
		x.code(200)
		c.nextRV(x.r)
	case name == "generic-garbage-collector":
		x.list(target{group: "apps", version: "v1", resource: "replicasets"}, "")
	default:
		x.watch(target{version: "v1", resource: []string{"pods", "nodes", "endpoints", "services"}[x.r.IntN(4)]}, "")
	}
}

func kubeProxy(x *call, _ bool) {
	n := &x.c.nodes[x.r.IntN(len(x.c.nodes))]
	x.serviceAccount("kube-system", "kube-proxy", nil)
	x.e.UserAgent = x.c.userAgent("kube-proxy", "linux/amd64", "")
	x.sourceIPs(n.ip)
	x.allow(rbacReason("ClusterRoleBinding", "system:node-proxier", "ClusterRole", "system:node-proxier", "ServiceAccount", "kube-proxy/kube-system"))
	if x.chance(50) {
		x.watch(target{group: "discovery.k8s.io", version: "v1", resource: "endpointslices"}, "labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name")
	} else {
		x.watch(target{version: "v1", resource: "services"}, "labelSelector=%21service.kubernetes.io%2Fheadless%2C%21service.kubernetes.io%2Fservice-proxy-name")
	}
}

// operator is a controller running in the cluster under its own service
// account; many are built without version stamping, hence kubernetes/$Format.
type operator struct {
	namespace, account, userAgent, binding string
}

var operators = []operator{
	{"cert-manager", "cert-manager", "cert-manager-controller/v1.14.4 (linux/amd64) cert-manager/f1f2d4a", "cert-manager-controller-certificates"},
	{"argocd", "argocd-application-controller", "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format", "argocd-application-controller"},
	{"ingress-nginx", "ingress-nginx", "nginx-ingress-controller/v1.10.0 (linux/amd64) ingress-nginx/71f78d49f0a496c31d4c19f095469f3f23900f8a", "ingress-nginx"},
	{"monitoring", "prometheus-server", "Prometheus/2.51.1", "prometheus-server"},
	{"kube-system", "aws-load-balancer-controller", "controller/v0.0.0 (linux/amd64) kubernetes/$Format", "aws-load-balancer-controller-rolebinding"},
	{"kube-system", "coredns", "coredns/v0.0.0-master+$Format (linux/amd64) kubernetes/$Format", "system:coredns"},
	{"external-secrets", "external-secrets", "external-secrets/v0.0.0 (linux/amd64) kubernetes/$Format", "external-secrets-controller"},
}

// asOperator authenticates x as a random operator running in one of the
// cluster's pods, and returns the operator.
func (x *call) asOperator() operator {
	op := operators[x.r.IntN(len(operators))]
	// The operator's own pod: any pod of the cluster stands in for it.
	_, p := x.pickApp()
	x.serviceAccount(op.namespace, op.account, p)
	x.e.UserAgent = op.userAgent
	x.sourceIPs(p.ip)
	x.allow(rbacReason("ClusterRoleBinding", op.binding, "ClusterRole", op.binding, "ServiceAccount", op.account+"/"+op.namespace))
	return op
}

func operatorReads(x *call, body bool) {
	x.asOperator()
	a, _ := x.pickApp()
	if body {
		t := target{version: "v1", resource: "configmaps", namespace: a.namespace, name: a.name + "-config"}
		x.request("get", t, "")
		x.code(200)
		x.lat(time.Millisecond, 5*time.Millisecond)
		x.e.Level = auditv1.LevelRequestResponse
		x.e.ResponseObject = rawObject(configMap(x.r, t.namespace, t.name, uuidFor(x.c.name+t.name), strconv.FormatUint(x.c.rv, 10), bodySize(x), x.now, "helm"))
		return
	}
	resources := []string{"configmaps", "secrets", "services", "endpoints", "pods"}
	res := resources[x.r.IntN(len(resources))]
	switch x.r.IntN(10) {
	case 0, 1, 2, 3:
		x.watch(target{version: "v1", resource: res}, "")
	case 4, 5:
		x.list(target{version: "v1", resource: res, namespace: a.namespace}, "")
	default:
		t := target{version: "v1", resource: res, namespace: a.namespace, name: a.name + "-" + []string{"config", "tls", "metrics", "leader"}[x.r.IntN(4)]}
		x.request("get", t, "")
		x.lat(500*time.Microsecond, 4*time.Millisecond)
		if x.chance(8) {
			x.notFound(t)
			return
		}
		x.code(200)
	}
}

// bodySize draws a ConfigMap size: mostly small, with a long tail to ~9 KB.
func bodySize(x *call) int {
	if x.chance(70) {
		return 250 + x.r.IntN(1100)
	}
	return 1000 + x.r.IntN(4500)
}

func operatorWrites(x *call, body bool) {
	op := x.asOperator()
	t := target{version: "v1", resource: "configmaps", namespace: op.namespace, name: op.account + "-state"}
	if !body && x.chance(40) {
		t.resource, t.name = "secrets", op.account+"-token-cache"
	}
	uid := uuidFor(x.c.name + t.name)
	oldRV := strconv.FormatUint(x.c.rv, 10)
	x.request("update", t, "")
	x.stored(uid, oldRV)
	x.code(200)
	x.lat(3*time.Millisecond, 20*time.Millisecond)
	if body {
		size := bodySize(x)
		x.e.Level = auditv1.LevelRequestResponse
		x.e.RequestObject = rawObject(configMap(x.r, t.namespace, t.name, uid, oldRV, size, x.now, op.account))
		x.e.ResponseObject = rawObject(configMap(x.r, t.namespace, t.name, uid, x.c.nextRV(x.r), size, x.now, op.account))
	}
}

// apiserverSelf is kube-apiserver's loopback client renewing its identity
// lease and reading what its controllers need.
func apiserverSelf(x *call, body bool) {
	c := x.c
	x.user("system:apiserver", uuidFor(c.name+"/apiserver"), "system:authenticated", "system:masters")
	x.e.UserAgent = c.userAgent("kube-apiserver", "linux/amd64", "")
	x.sourceIPs("::1")
	x.allow("")
	name := c.apiserverLease
	t := target{group: "coordination.k8s.io", version: "v1", resource: "leases", namespace: "kube-system", name: name}
	uid := uuidFor(c.name + name)
	if !body && x.chance(40) {
		x.list(target{group: "apiregistration.k8s.io", version: "v1", resource: "apiservices"}, "")
		return
	}
	oldRV := strconv.FormatUint(c.rv, 10)
	x.request("update", t, "")
	x.stored(uid, oldRV)
	x.code(200)
	x.lat(2*time.Millisecond, 8*time.Millisecond)
	if body {
		x.e.Level = auditv1.LevelRequestResponse
		x.e.RequestObject = rawObject(lease(x.r, "kube-system", name, uid, oldRV, name+"_"+uuidFor(name), "kube-apiserver", 3600, x.now))
		x.e.ResponseObject = rawObject(lease(x.r, "kube-system", name, uid, c.nextRV(x.r), name+"_"+uuidFor(name), "kube-apiserver", 3600, x.now))
	}
}

// kubectl is a human at a terminal: discovery, gets and lists, and now and
// then a create, a delete, an apply or an exec.
func kubectl(x *call, body bool) {
	c := x.c
	h := &c.users[x.r.IntN(len(c.users))]
	// The user's maps and slices are shared between events, never mutated.
	x.e.User.Username, x.e.User.UID, x.e.User.Groups, x.e.User.Extra = h.username, h.uid, h.groups, h.extra
	x.e.UserAgent = h.userAgent
	if h.proxyIP != "" {
		x.sourceIPs(h.sourceIP, h.proxyIP)
	} else {
		x.sourceIPs(h.sourceIP)
	}
	x.allow(h.reason)
	a, p := x.pickApp()
	pods := target{version: "v1", resource: "pods", namespace: a.namespace}
	podT := pods
	podT.name = p.name
	if body {
		x.e.Level = auditv1.LevelRequestResponse
		switch x.r.IntN(3) {
		case 0:
			x.request("get", podT, "")
			x.code(200)
			x.lat(time.Millisecond, 6*time.Millisecond)
			x.e.ResponseObject = rawObject(podObject(x.r, c, a, p, strconv.FormatUint(c.rv, 10), x.now, true))
		case 1:
			x.request("delete", podT, "")
			x.code(200)
			x.lat(5*time.Millisecond, 30*time.Millisecond)
			x.e.RequestObject = rawObject(deleteOptions())
			x.e.ResponseObject = rawObject(podObject(x.r, c, a, p, c.nextRV(x.r), x.now, true))
		default:
			name := a.name + "-" + []string{"overrides", "feature-flags", "motd"}[x.r.IntN(3)]
			x.request("create", target{version: "v1", resource: "configmaps", namespace: a.namespace}, "fieldManager=kubectl-create&fieldValidation=Strict")
			x.e.ObjectRef.Name = name
			x.code(201)
			x.lat(4*time.Millisecond, 20*time.Millisecond)
			size := bodySize(x)
			x.e.RequestObject = rawObject(configMap(x.r, a.namespace, name, "", "", size, x.now, "kubectl-create"))
			x.e.ResponseObject = rawObject(configMap(x.r, a.namespace, name, newUUID(x.r), c.nextRV(x.r), size, x.now, "kubectl-create"))
		}
		return
	}
	switch x.r.IntN(20) {
	case 0, 1, 2:
		x.e.ObjectRef = nil
		x.nonResource("get", []string{"/api", "/apis", "/openapi/v3"}[x.r.IntN(3)]+"?timeout=32s")
		x.allow(rbacReason("ClusterRoleBinding", "system:discovery", "ClusterRole", "system:discovery", "Group", "system:authenticated"))
		x.code(200)
		x.lat(500*time.Microsecond, 5*time.Millisecond)
	case 3, 4, 5, 6, 7:
		x.request("list", pods, "limit=500")
		x.code(200)
		x.lat(3*time.Millisecond, 60*time.Millisecond)
	case 8, 9, 10, 11:
		x.request("get", podT, "")
		x.code(200)
		x.lat(time.Millisecond, 6*time.Millisecond)
	case 12:
		x.request("delete", podT, "")
		x.code(200)
		x.lat(5*time.Millisecond, 30*time.Millisecond)
	case 13:
		x.request("create", target{version: "v1", resource: "pods", namespace: a.namespace, name: p.name, subresource: "exec"},
			"command=%2Fbin%2Fsh&command=-c&command=cat+%2Fetc%2Fos-release&container=app&stderr=true&stdout=true")
		x.e.Annotations[annPSAPolicy] = "restricted:latest"
		x.code(101)
		x.lat(20*time.Second, 40*time.Second)
	case 14, 15:
		t := target{group: "apps", version: "v1", resource: "deployments", namespace: a.namespace, name: a.name}
		x.request("patch", t, "fieldManager=kubectl-client-side-apply&fieldValidation=Strict")
		x.code(200)
		x.lat(5*time.Millisecond, 25*time.Millisecond)
		c.nextRV(x.r)
	case 16:
		// Developers may not touch kube-system secrets.
		t := target{version: "v1", resource: "secrets", namespace: "kube-system"}
		x.request("list", t, "limit=500")
		x.lat(500*time.Microsecond, 3*time.Millisecond)
		x.forbidden("list", t)
	default:
		x.request("get", target{group: "apps", version: "v1", resource: "deployments", namespace: a.namespace, name: a.name}, "")
		x.code(200)
		x.lat(time.Millisecond, 5*time.Millisecond)
	}
}

// The anonymous traffic: load balancer health checks, probes, and scanners
// from the internet.

func (x *call) asAnonymous(ip, userAgent string) {
	x.user("system:anonymous", "", "system:unauthenticated")
	x.sourceIPs(ip)
	x.e.UserAgent = userAgent
}

const clusterInfoReason = `RBAC: allowed by RoleBinding "kubeadm:bootstrap-signer-clusterinfo/kube-public" of Role "kubeadm:bootstrap-signer-clusterinfo" to User "system:anonymous"`

const publicInfoReason = `RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole "system:public-info-viewer" to Group "system:unauthenticated"`

var probeAgents = []string{"kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0", "kube-probe/1.29+", "Azure-Load-Balancer/1.0"}

func healthProbe(x *call, _ bool) {
	ua := probeAgents[x.r.IntN(len(probeAgents))]
	ip := x.c.nodes[x.r.IntN(len(x.c.nodes))].ip
	switch ua {
	case "GoogleHC/1.0":
		ip = []string{"35.191.", "130.211."}[x.r.IntN(2)] + strconv.Itoa(x.r.IntN(256)) + "." + strconv.Itoa(1+x.r.IntN(254))
	case "ELB-HealthChecker/2.0":
		ip = privateIP(x.r, "10.0.")
	}
	x.asAnonymous(ip, ua)
	x.nonResource("get", []string{"/healthz", "/livez", "/readyz", "/readyz", "/livez", "/version"}[x.r.IntN(6)])
	x.allow(publicInfoReason)
	x.code(200)
	x.lat(150*time.Microsecond, 2*time.Millisecond)
}

var scannerAgents = []string{
	"python-requests/2.31.0",
	"curl/8.5.0",
	"Go-http-client/1.1",
	"Mozilla/5.0 zgrab/0.x",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"",
}

func scanner(x *call, _ bool) {
	c := x.c
	x.asAnonymous(publicIP(x.r), scannerAgents[x.r.IntN(len(scannerAgents))])
	x.lat(200*time.Microsecond, 3*time.Millisecond)
	paths := []string{
		"/api/v1/namespaces/kube-system/secrets",
		"/apis",
		"/api",
		"/.well-known/oauth-authorization-server",
		"/api/v1/pods",
		"/version",
		"/api/v1/namespaces/kube-public/configmaps/cluster-info",
		"/.well-known/openid-configuration",
	}
	path := paths[x.r.IntN(len(paths))]
	if c.anonymousRestricted && path != "/version" {
		// Anonymous authentication is limited to health endpoints: the
		// request is rejected before authorization.
		x.nonResource("get", path)
		x.e.Stage = auditv1.StageResponseStarted
		x.fail(401, metav1.StatusReasonUnauthorized, "Unauthorized", nil)
		return
	}
	switch path {
	case "/api/v1/namespaces/kube-system/secrets":
		t := target{version: "v1", resource: "secrets", namespace: "kube-system"}
		x.request("list", t, "")
		x.forbidden("list", t)
	case "/api/v1/pods":
		t := target{version: "v1", resource: "pods"}
		x.request("list", t, "")
		x.forbidden("list", t)
	case "/api/v1/namespaces/kube-public/configmaps/cluster-info":
		t := target{version: "v1", resource: "configmaps", namespace: "kube-public", name: "cluster-info"}
		x.request("get", t, "")
		switch c.clusterInfo {
		case clusterInfoServed:
			x.allow(clusterInfoReason)
			x.code(200)
		case clusterInfoMissing:
			x.allow(clusterInfoReason)
			x.notFound(t)
		default:
			x.forbidden("get", t)
		}
	case "/version":
		x.nonResource("get", path)
		x.allow(publicInfoReason)
		x.code(200)
	case "/.well-known/openid-configuration":
		x.nonResource("get", path)
		x.allow(rbacReason("ClusterRoleBinding", "service-account-issuer-discovery", "ClusterRole", "system:service-account-issuer-discovery", "Group", "system:unauthenticated"))
		x.code(200)
	default:
		x.nonResource("get", path)
		x.forbid("")
		x.fail(403, metav1.StatusReasonForbidden, "forbidden: User \"system:anonymous\" cannot get path \""+path+"\"", &metav1.StatusDetails{})
	}
}
