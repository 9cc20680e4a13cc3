// Package loadgen generates realistic Kubernetes audit logs for kanon's
// benchmarks and load tests.
//
// The events are the upstream k8s.io/apiserver/pkg/apis/audit/v1 types
// marshalled with encoding/json, which is what kube-apiserver's log backend
// does through the audit codec: the field order is the struct order,
// timestamps are RFC 3339 with microseconds, map keys are sorted, and <, >
// and & in strings and bodies are escaped as \u003c, \u003e and \u0026. A
// test encodes every generated event again with the apiserver's own audit
// codec and requires the same bytes. This package is the only one in kanon
// that imports the Kubernetes modules.
//
// # Traffic
//
// A log is drawn from a simulated fleet of clusters (EKS, GKE, AKS and
// kubeadm styles: node names, human identities, anonymous-auth setup), each
// running a fixed set of workloads. Authenticated events come from weighted
// personas:
//   - kube-controller-manager and kube-scheduler renewing their leader
//     election leases in kube-system;
//   - kubelets (system:node:<name>) renewing node leases, patching node and
//     pod status, reading pods, watching the secrets and configmaps their
//     pods mount, requesting service account tokens and creating events;
//   - kube-controller-manager's controllers under their own service
//     accounts (the ReplicaSet controller's pod creations carry Pod Security
//     and, on EKS, admission webhook annotations), and kube-proxy;
//   - operators' service accounts with pod-bound tokens (cert-manager,
//     Argo CD, ingress-nginx, Prometheus, ...) listing, watching and getting
//     configmaps, secrets and services, several with kubernetes/$Format
//     user agents;
//   - kube-apiserver's loopback client;
//   - humans with kubectl: discovery, get, list, create, delete, apply,
//     exec, and the occasional RBAC denial.
//
// Anonymous events (Options.AnonymousRatio, 2 % by default) are load
// balancer health checks and probes of /healthz, /livez, /readyz and
// /version, and internet scanners asking for secrets, /apis, /.well-known
// paths and kube-public/cluster-info; they get 200, 401, 403 or 404
// depending on the path and the cluster.
//
// # Enumeration bursts
//
// Options.Bursts (zero by default) adds anonymous enumeration bursts, a
// Poisson process of that many per hour of event time: one internet
// address and one tool's user agent (kube-hunter, peirates, curl, ...,
// each burst with a version of its own, so most bring a user agent never
// seen before) ask one cluster for 10 to 24 distinct API paths within a
// minute: lists of pods, secrets, nodes, RBAC objects, CRDs and more,
// kube-public/cluster-info, /version, /openapi/v2 and
// /.well-known/openid-configuration. They are logged at level Request,
// with no body (reads have none), and answered as the cluster's
// anonymous setup dictates: 401 where anonymous authentication is
// limited to health endpoints (only /version answers), elsewhere 403
// with the forbid decision, but 200 for /version and the issuer
// discovery, and 200, 403 or 404 for cluster-info. These are the
// requests Elastic's rule "Kubernetes Potential Endpoint Permission
// Enumeration Attempt by Anonymous User Detected" counts (more than five
// URIs and three resources, fewer than 50 documents, a failure): it
// never fires on the rest of the traffic, whose anonymous events are at
// level Metadata. Burst requests count in Options.Events and are merged
// with the traffic by time; they are drawn from a random source of their
// own, so the events between them are the bytes of the same log without
// bursts, and Bursts=0 gives the log of earlier versions.
//
// Most events are at level Metadata and stage ResponseComplete; watches
// also log ResponseStarted, and a few requests log RequestReceived.
// Options.BodyRatio of the events (10 % by default) are at level Request
// or RequestResponse and carry requestObject and/or responseObject: Leases,
// Pods with status and managedFields, ConfigMaps whose data holds quotes,
// backslashes, markup and non-ASCII text, kubelet status patches, core
// Events, DeleteOptions. With the default options the mean line is about
// 1.4 KB.
//
// # Time
//
// Arrivals are a Poisson process at Options.Rate events per second of
// event time, from Options.Start. Each stageTimestamp gets up to 2 ms of
// jitter, so neighbouring events may be slightly out of order as in a real
// log; requestReceivedTimestamp is stageTimestamp minus the request's
// latency (up to the timeout of a watch).
//
// # Determinism
//
// The output depends only on the Options: the same seed gives the same
// bytes, and a shorter log is a prefix of a longer one. No clock or global
// random source is read.
//
// # Speed
//
// Marshalling through encoding/json dominates; BenchmarkGenerate reports
// the rate: 35,000 to 60,000 events (50 to 85 MB) per second on one core of
// the project machine, depending on load. Load tests
// that need more should generate their input before starting the clock.
//
// The command cmd/kanon-loadgen writes such logs to files.
package loadgen
