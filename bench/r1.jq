# Elastic's rule "Kubernetes Anonymous Request Authorized" (R1) over raw
# Kubernetes audit events, one per line, for bench/scan-vs-jq.sh:
#
#   event.dataset : "kubernetes.audit_logs"
#     and kubernetes.audit.annotations.authorization_k8s_io/decision:"allow"
#     and (kubernetes.audit.user.username:("system:anonymous" or "system:unauthenticated")
#          or not kubernetes.audit.user.username:*)
#     and not kubernetes.audit.objectRef.resource:("healthz" or "livez" or "readyz")
#
# event.dataset is what kanon sets on every audit event, so it holds for
# every line here. A missing username or resource is null.
select(
  .annotations["authorization.k8s.io/decision"] == "allow"
  and (.user.username as $u | $u == null or $u == "system:anonymous" or $u == "system:unauthenticated")
  and (.objectRef.resource as $r | $r != "healthz" and $r != "livez" and $r != "readyz")
)
