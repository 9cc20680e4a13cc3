package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"

	authnv1 "k8s.io/api/authentication/v1"
)

// flavor is the managed-Kubernetes style of a cluster: it decides node
// names, human users and what anonymous requests get back.
type flavor int

const (
	flavorEKS flavor = iota
	flavorGKE
	flavorAKS
	flavorKubeadm
	numFlavors
)

// release is a Kubernetes version with the git commit its binaries report
// in their user agents.
type release struct{ version, commit string }

var releases = []release{
	{"v1.28.9", "587f5fe"},
	{"v1.29.4", "55cd3b7"},
	{"v1.29.4", "1f2e3d4"},
	{"v1.30.1", "6911225"},
}

// cluster is one simulated cluster: its control plane, kubelets, workloads
// and the humans who use kubectl on it.
type cluster struct {
	name    string
	flavor  flavor
	release release
	// controlPlaneIP is the source of kube-controller-manager and
	// kube-scheduler requests.
	controlPlaneIP string
	// apiserverLease names kube-apiserver's identity lease.
	apiserverLease string
	nodes          []node
	apps           []app
	users          []human
	// anonymousRestricted clusters only allow anonymous health checks:
	// every other anonymous request gets 401.
	anonymousRestricted bool
	// clusterInfo says what anonymous reads of kube-public/cluster-info get.
	clusterInfo clusterInfoSetup
	// rv is the cluster's etcd revision, the source of resourceVersions.
	rv uint64
}

// clusterInfoSetup is whether a cluster has kubeadm's anonymous RoleBinding
// for kube-public/cluster-info, and the ConfigMap itself.
type clusterInfoSetup int

const (
	clusterInfoForbidden clusterInfoSetup = iota // no binding: 403
	clusterInfoServed                            // binding and ConfigMap: 200
	clusterInfoMissing                           // binding left without the ConfigMap: 404
)

type node struct {
	name, ip, uid string
}

// app is a Deployment with a few running pods.
type app struct {
	namespace, name, image, serviceAccount string
	rsHash                                 string
	pods                                   []pod
}

type pod struct {
	name, uid, ip string
	node          int // index into cluster.nodes
}

// human is a kubectl user.
type human struct {
	username, uid string
	groups        []string
	extra         map[string]authnv1.ExtraValue
	// binding is the RBAC reason for allowed requests.
	reason    string
	userAgent string
	sourceIP  string
	// proxyIP, when set, is the second source IP (X-Forwarded-For order).
	proxyIP string
}

// workloads are the Deployments every simulated cluster runs.
var workloads = []struct{ namespace, name, image string }{
	{"payments", "checkout-api", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/checkout-api:2.14.3"},
	{"payments", "ledger-worker", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/payments/ledger-worker:1.8.0"},
	{"storefront", "web", "ghcr.io/example/storefront-web:v5.2.1"},
	{"storefront", "search", "ghcr.io/example/search:v1.3.9"},
	{"monitoring", "prometheus-server", "quay.io/prometheus/prometheus:v2.51.1"},
	{"monitoring", "grafana", "docker.io/grafana/grafana:10.4.2"},
	{"ingress-nginx", "ingress-nginx-controller", "registry.k8s.io/ingress-nginx/controller:v1.10.0"},
	{"cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.14.4"},
	{"argocd", "argocd-repo-server", "quay.io/argoproj/argocd:v2.10.7"},
	{"default", "nginx-debug", "nginx:1.25"},
	{"kube-system", "coredns", "registry.k8s.io/coredns/coredns:v1.11.1"},
	{"data", "kafka-connect", "confluentinc/cp-kafka-connect:7.6.1"},
}

const nameAlphabet = "bcdfghjklmnpqrstvwxz2456789" // Kubernetes' generated-name alphabet

func randString(r *rand.Rand, n int, alphabet string) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// newUUID returns a random version 4 UUID.
func newUUID(r *rand.Rand) string {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (8 * i))
		b[8+i] = byte(lo >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 0, 36)
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out = append(out, '-')
		}
		out = append(out, hexd[c>>4], hexd[c&15])
	}
	return string(out)
}

func privateIP(r *rand.Rand, prefix string) string {
	return prefix + strconv.Itoa(r.IntN(256)) + "." + strconv.Itoa(1+r.IntN(254))
}

// publicIP returns an address outside the private ranges, as internet
// scanners and remote kubectl users have.
func publicIP(r *rand.Rand) string {
	for {
		a := 1 + r.IntN(223)
		if a == 10 || a == 127 || a == 100 || a == 169 || a == 172 || a == 192 {
			continue
		}
		return fmt.Sprintf("%d.%d.%d.%d", a, r.IntN(256), r.IntN(256), 1+r.IntN(254))
	}
}

func newCluster(r *rand.Rand, index, nodes int) *cluster {
	c := &cluster{
		flavor:  flavor(index % int(numFlavors)),
		release: releases[r.IntN(len(releases))],
		rv:      uint64(1_000_000 + r.IntN(90_000_000)),
	}
	env := []string{"prod", "staging", "dev", "ops"}[index%4]
	c.name = fmt.Sprintf("%s-%s-%d", env, []string{"eu-west-1", "us-central1", "westeurope", "dc1"}[c.flavor], index)
	c.anonymousRestricted = c.flavor == flavorGKE
	switch c.flavor {
	case flavorKubeadm:
		c.clusterInfo = clusterInfoServed
	case flavorAKS:
		c.clusterInfo = clusterInfoMissing
	}
	c.controlPlaneIP = privateIP(r, "10.0.")
	c.apiserverLease = "apiserver-" + randString(r, 26, "abcdefghijklmnopqrstuvwxyz234567")
	for i := range nodes {
		ip := privateIP(r, "10.0.")
		var name string
		switch c.flavor {
		case flavorEKS:
			name = "ip-" + replaceDots(ip) + ".eu-west-1.compute.internal"
			if i%2 == 0 {
				name = "ip-" + replaceDots(ip) + ".ec2.internal"
			}
		case flavorGKE:
			name = fmt.Sprintf("gke-%s-default-pool-%s-%s", c.name[:min(len(c.name), 12)], randString(r, 8, "0123456789abcdef"), randString(r, 4, "abcdefghijklmnopqrstuvwxyz0123456789"))
		case flavorAKS:
			name = fmt.Sprintf("aks-nodepool1-%08d-vmss%06d", 10000000+r.IntN(89999999), i)
		default:
			name = fmt.Sprintf("%s-worker-%02d", c.name, i+1)
		}
		c.nodes = append(c.nodes, node{name: name, ip: ip, uid: newUUID(r)})
	}
	for _, w := range workloads {
		a := app{
			namespace: w.namespace, name: w.name, image: w.image,
			serviceAccount: w.name,
			rsHash:         randString(r, 10, nameAlphabet),
		}
		for range 1 + r.IntN(4) {
			a.pods = append(a.pods, pod{
				name: a.name + "-" + a.rsHash + "-" + randString(r, 5, nameAlphabet),
				uid:  newUUID(r),
				ip:   privateIP(r, "10.244."),
				node: r.IntN(nodes),
			})
		}
		c.apps = append(c.apps, a)
	}
	c.users = newHumans(r, c)
	return c
}

func replaceDots(ip string) string {
	b := []byte(ip)
	for i, ch := range b {
		if ch == '.' {
			b[i] = '-'
		}
	}
	return string(b)
}

var kubectlPlatforms = []string{"darwin/arm64", "darwin/arm64", "linux/amd64", "windows/amd64", "darwin/amd64"}

func newHumans(r *rand.Rand, c *cluster) []human {
	people := []string{"alice", "bob", "chloé.dubois", "deploy-bot", "erik"}
	var hs []human
	for i, p := range people {
		kv := releases[(i+1)%len(releases)]
		h := human{
			userAgent: fmt.Sprintf("kubectl/%s (%s) kubernetes/%s", kv.version, kubectlPlatforms[i%len(kubectlPlatforms)], kv.commit),
			sourceIP:  publicIP(r),
		}
		switch c.flavor {
		case flavorEKS:
			role := "PlatformAdmin"
			if i%2 == 1 {
				role = "Developer"
			}
			principal := "AROA" + randString(r, 17, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
			h.username = "arn:aws:sts::123456789012:assumed-role/" + role + "/" + p
			h.uid = "aws-iam-authenticator:123456789012:" + principal
			h.groups = []string{"eks-" + lower(role), "system:authenticated"}
			h.extra = map[string]authnv1.ExtraValue{
				"accessKeyId":  {"ASIA" + randString(r, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")},
				"arn":          {h.username},
				"canonicalArn": {"arn:aws:iam::123456789012:role/" + role},
				"principalId":  {principal},
				"sessionName":  {p},
			}
			clusterRole := "cluster-admin"
			if i%2 == 1 {
				clusterRole = "edit"
			}
			h.reason = rbacReason("ClusterRoleBinding", "eks-"+lower(role), "ClusterRole", clusterRole, "Group", "eks-"+lower(role))
		case flavorGKE:
			h.username = p + "@example.com"
			h.groups = []string{"system:authenticated"}
			h.extra = map[string]authnv1.ExtraValue{"iam.gke.io/user-assertion": {randString(r, 180, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}, "user-assertion.cloud.google.com": {randString(r, 160, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}}
			h.reason = rbacReason("ClusterRoleBinding", "platform-team-"+p, "ClusterRole", "cluster-admin", "User", h.username)
		case flavorAKS:
			h.username = p + "@contoso.onmicrosoft.com"
			h.uid = newUUID(r)
			h.groups = []string{newUUID(r), "system:authenticated"}
			h.reason = rbacReason("ClusterRoleBinding", "aks-cluster-admin-binding-aad", "ClusterRole", "cluster-admin", "Group", h.groups[0])
		default:
			h.username = "oidc:" + p + "@example.org"
			h.groups = []string{"oidc:platform-team", "system:authenticated"}
			h.reason = rbacReason("ClusterRoleBinding", "platform-team", "ClusterRole", "cluster-admin", "Group", "oidc:platform-team")
		}
		if i == 3 { // a CI bot behind a proxy: two source IPs
			h.userAgent = fmt.Sprintf("kubectl/%s (linux/amd64) kubernetes/%s", kv.version, kv.commit)
			h.proxyIP = privateIP(r, "10.1.")
		}
		hs = append(hs, h)
	}
	return hs
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// rbacReason formats the authorization.k8s.io/reason annotation of the
// RBAC authorizer: `RBAC: allowed by ClusterRoleBinding "x" of ClusterRole
// "y" to User "z"`. Service-account subjects are written "name/namespace".
func rbacReason(bindingKind, binding, roleKind, role, subjectKind, subject string) string {
	return "RBAC: allowed by " + bindingKind + " " + strconv.Quote(binding) + " of " + roleKind + " " + strconv.Quote(role) + " to " + subjectKind + " " + strconv.Quote(subject)
}

// nextRV advances the cluster's revision and returns it as a string.
func (c *cluster) nextRV(r *rand.Rand) string {
	c.rv += 1 + uint64(r.IntN(40))
	return strconv.FormatUint(c.rv, 10)
}

// userAgent formats a Kubernetes component's user agent.
func (c *cluster) userAgent(component, platform, suffix string) string {
	ua := component + "/" + c.release.version + " (" + platform + ") kubernetes/" + c.release.commit
	if suffix != "" {
		ua += "/" + suffix
	}
	return ua
}
