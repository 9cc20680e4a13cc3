// Package gke reads the Kubernetes audit logs of Google GKE: Cloud Audit
// Logs LogEntry objects whose protoPayload is an AuditLog with serviceName
// "k8s.io". It reads single entries, JSON lines, and the JSON array that
// `gcloud logging read --format=json` prints (the ingest framer streams a
// top-level array element by element).
//
// # Mapping
//
// The canonical event is filled as Elastic's kubernetes integration does
// for GKE entries, plus the typed fields Elastic leaves out:
//
//	kubernetes.audit.auditID                   insertId
//	kubernetes.audit.stageTimestamp            timestamp (so @timestamp)
//	kubernetes.audit.requestReceivedTimestamp  receiveTimestamp
//	kubernetes.audit.annotations.*             labels, "." in keys replaced by "_"
//	kubernetes.audit.logName, .operation,      kept as they are (raw parts,
//	  .resource, .protoPayload                 protoPayload without status)
//	orchestrator.cluster.name                  resource.labels.cluster_name
//	orchestrator.cluster.id                    resource.labels.project_id
//	kubernetes.audit.user.username             protoPayload.authenticationInfo.principalEmail,
//	                                           else .principalSubject, else .authoritySelector
//	kubernetes.audit.sourceIPs                 protoPayload.requestMetadata.callerIp (or callerIP)
//	kubernetes.audit.userAgent                 protoPayload.requestMetadata.callerSuppliedUserAgent
//	kubernetes.audit.verb                      the last part of methodName
//	kubernetes.audit.objectRef.*               resourceName, else methodName (see below)
//	kubernetes.audit.requestURI                a request path rebuilt from them
//	kubernetes.audit.responseStatus.code       protoPayload.status.code, mapped to HTTP
//	kubernetes.audit.responseStatus.message    protoPayload.status.message
//	cloud.provider                             "gcp"
//	kanon.reader                               "gke" (or "panther/gke" inside a Panther event)
//
// methodName is io.k8s.<group>.<version>.<resource>[.<subresource>].<verb>
// (io.k8s.core.v1.pods.get, io.k8s.apps.v1.deployments.create,
// io.k8s.core.v1.pods.exec.create) or io.k8s.<verb> for a non-resource
// request (io.k8s.get on readyz). resourceName is
// <group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]
// (core/v1/namespaces/default/pods/test-pod) or a bare path for
// non-resource requests (readyz, HNAP1). The API group "core" is the core
// group (""). objectRef comes from resourceName, read the way the API
// server reads a request path (/namespaces/<ns> alone is the namespace
// object, and status and finalize are its subresources); without a
// resourceName it comes from methodName, where some groups are written
// differently (rbac.authorization.k8s.io is "authorization.rbac") and are
// kept as written. requestURI is /api/<version>/... for the core group,
// /apis/<group>/<version>/... for the others, and /<resourceName> for
// non-resource requests; Panther's data model uses "/apis/" + resourceName
// for every request, which kanon does not copy (it is not a path the API
// server serves).
//
// The decision annotation (authorization_k8s_io/decision) is the label
// authorization.k8s.io/decision; without it, it is "allow" when every
// authorizationInfo entry is granted and "forbid" when one is not (a
// missing granted is false, as in proto3 JSON).
//
// # Response codes
//
// protoPayload.status is a google.rpc.Status; an empty status ({}) is code
// 0, OK. Its code is mapped to the HTTP status the API server answered,
// with the standard gRPC-to-HTTP mapping (google.rpc.Code):
//
//	0 OK 200, 1 CANCELLED 499, 2 UNKNOWN 500, 3 INVALID_ARGUMENT 400,
//	4 DEADLINE_EXCEEDED 504, 5 NOT_FOUND 404, 6 ALREADY_EXISTS 409,
//	7 PERMISSION_DENIED 403, 8 RESOURCE_EXHAUSTED 429,
//	9 FAILED_PRECONDITION 400, 10 ABORTED 409, 11 OUT_OF_RANGE 400,
//	12 UNIMPLEMENTED 501, 13 INTERNAL 500, 14 UNAVAILABLE 503,
//	15 DATA_LOSS 500, 16 UNAUTHENTICATED 401; any other code 500.
//
// An entry without status has no response code.
//
// Deviation from Elastic: Elastic's pipeline copies the gRPC code as it is
// (responseStatus.code 0 for success); kanon maps it to HTTP, so that rules
// written for audit events (responseStatus.code: 403) work on GKE. The other
// deviations are additions: Elastic leaves user.name, source.ip,
// user_agent.original, event.action, verb, objectRef and requestURI out of
// GKE documents, kanon fills them. Elastic sets no stage, kind or level for
// GKE entries, and neither does kanon.
//
// # Not events
//
// An entry of another service (serviceName not k8s.io) is skipped (an
// error wrapping ingest.ErrSkipped). An entry without protoPayload, with a
// protoPayload that is not an object or without methodName, or with a field
// of the wrong type, is a bad record naming the field.
package gke
