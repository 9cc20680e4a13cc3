package lint

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
)

// rawPrefixes are the parts of the audit event that readers keep raw (any
// key may appear under them): request and response bodies, annotations,
// extra user info, status details.
var rawPrefixes = []string{
	"kubernetes.audit.requestObject.",
	"kubernetes.audit.responseObject.",
	"kubernetes.audit.annotations.",
	"kubernetes.audit.user.extra.",
	"kubernetes.audit.impersonatedUser.extra.",
	"kubernetes.audit.responseStatus.details.",
	"kubernetes.audit.responseStatus.metadata.",
}

// rawObjects are raw parts named as a whole.
var rawObjects = map[string]bool{
	"kubernetes.audit.requestObject": true, "kubernetes.audit.responseObject": true,
	"kubernetes.audit.user.extra": true, "kubernetes.audit.impersonatedUser.extra": true,
	"kubernetes.audit.responseStatus.details": true, "kubernetes.audit.responseStatus.metadata": true,
}

// Produced reports whether some reader produces the field: a field of the
// canonical document (event.Schema, annotations, object paths), a lazily
// read field with an Elastic mapping, or a path under a raw part of the
// audit event.
func Produced(name string) bool {
	f := event.Lookup(name)
	if f.Known() || f.Type != event.TypeUnknown || rawObjects[name] {
		return true
	}
	for _, p := range rawPrefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// suggest returns a schema field equal to name but for case, or whose last
// segment is name's last segment under the same parent object.
func suggest(name string) string {
	for _, f := range event.Schema() {
		if strings.EqualFold(f.Name, name) {
			return f.Name
		}
	}
	return ""
}

// Value domains of audit event fields.
var (
	levels = []string{"None", "Metadata", "Request", "RequestResponse"}
	stages = []string{"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"}
	// resourceVerbs are the verbs of resource requests (the apiserver's
	// RequestInfo); nonResourceVerbs the lower-cased HTTP methods of
	// non-resource requests.
	resourceVerbs    = []string{"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy"}
	nonResourceVerbs = []string{"get", "post", "put", "patch", "delete", "head", "options"}
	// rbacOnlyVerbs appear in RBAC rules and authorization checks but never
	// as the verb of an audited request.
	rbacOnlyVerbs = []string{"escalate", "bind", "impersonate", "use", "approve", "sign", "*"}
	decisions     = []string{"allow", "forbid"}
	outcomes      = []string{"success", "failure", "unknown"}
	// nonResourcePaths are the first segments of non-resource request paths
	// that rules mistake for resources.
	nonResourcePaths = []string{"healthz", "livez", "readyz", "version", "metrics", "openapi", "openid", ".well-known", "api", "apis", "logs", "debug"}
)

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

func verbs() []string {
	out := append([]string(nil), resourceVerbs...)
	for _, v := range nonResourceVerbs {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
