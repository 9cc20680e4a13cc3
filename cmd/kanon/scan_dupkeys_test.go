package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A repeated key is neither a way to hide an event nor to forge one:
//   - an anonymous, allowed PATCH whose body (requestObject, which no
//     rule reads) repeats a label raises the alert it raises without the
//     repetition, and no warning;
//   - a username given twice, anonymous and not, alerts whichever order
//     the two come in (kube-apiserver's parser keeps the last, others the
//     first), and the alert and a warning say which fields were read two
//     ways.
func TestScanRepeatedKeys(t *testing.T) {
	ev := func(id, user, body string) string {
		return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"` + id + `","stage":"ResponseComplete",` +
			`"requestURI":"/api/v1/namespaces/default/configmaps/c","verb":"patch","user":` + user + `,"sourceIPs":["198.51.100.7"],"userAgent":"curl/8.5",` +
			`"objectRef":{"resource":"configmaps","namespace":"default","name":"c","apiVersion":"v1"},"responseStatus":{"code":200},` +
			`"requestObject":` + body + `,"requestReceivedTimestamp":"2025-05-14T10:00:00.000000Z","stageTimestamp":"2025-05-14T10:00:00.010000Z",` +
			`"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed"}}`
	}
	anon := `{"username":"system:anonymous","groups":["system:unauthenticated"]}`
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.log")
	lines := []string{
		ev("body-dup", anon, `{"metadata":{"labels":{"x":"1","x":"2"}}}`),
		ev("user-first", `{"username":"system:anonymous","username":"alice"}`, `{}`),
		ev("user-last", `{"username":"alice","username":"system:anonymous"}`, `{}`),
		ev("not-anonymous", `{"username":"alice","username":"bob"}`, `{}`),
	}
	os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o600)
	out, errOut, code := runCLI(t, "", "scan", "--no-state", "-o", "json", "--rule", "elastic-k8s-anonymous-request-authorized", log)
	if code != 2 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	got := map[string]map[string]any{}
	for _, a := range alertsOf(t, out) {
		ev := a["event"].(map[string]any)["kubernetes"].(map[string]any)["audit"].(map[string]any)
		got[ev["auditID"].(string)] = a["fields"].(map[string]any)
	}
	if len(got) != 3 || got["body-dup"] == nil || got["user-first"] == nil || got["user-last"] == nil {
		t.Fatalf("alerts for %v, want body-dup, user-first, user-last\n%s", keys(got), errOut)
	}
	if _, ok := got["body-dup"]["ambiguous_fields"]; ok {
		t.Fatalf("a repetition no rule reads is flagged: %v", got["body-dup"])
	}
	for _, id := range []string{"user-first", "user-last"} {
		amb, _ := got[id]["ambiguous_fields"].([]any)
		if len(amb) == 0 || !strings.Contains(strings.Join(toStrings(amb), " "), "kubernetes.audit.user.username") {
			t.Fatalf("%s: ambiguous_fields %v", id, got[id]["ambiguous_fields"])
		}
	}
	if strings.Count(errOut, "kanon: warning:") != 3 || !strings.Contains(errOut, "read two ways") || strings.Contains(errOut, "bad record") {
		t.Fatalf("warnings:\n%s", errOut)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func toStrings(xs []any) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.(string))
	}
	return out
}
