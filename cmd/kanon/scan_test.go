package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// runCLI runs kanon with args and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	io := &streams{in: strings.NewReader(stdin), out: &out, err: &errb}
	cmd := newRootCmd(io)
	cmd.SetArgs(args)
	code := 0
	if err := cmd.Execute(); err != nil {
		code = exitCode(err, &errb)
	}
	return out.String(), errb.String(), code
}

func alertsOf(t *testing.T, out string) []map[string]any {
	t.Helper()
	var as []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var a map[string]any
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("alert line is not JSON: %v: %s", err, line)
		}
		as = append(as, a)
	}
	return as
}

// TestScanSeed000 runs seed 000 over a log covering anonymous allowed,
// unauthenticated allowed, username missing, anonymous forbidden, health
// endpoints and authenticated requests, and checks exactly which alerts
// its query defines.
func TestScanSeed000(t *testing.T) {
	out, errOut, code := runCLI(t, "", "scan", "--no-state", "-o", "json", "--rule", "elastic-k8s-anonymous-request-authorized", "testdata/scan/seed000.log")
	if code != 2 {
		t.Fatalf("exit %d, want 2 (alerts raised); stderr:\n%s", code, errOut)
	}
	var ids []string
	for _, a := range alertsOf(t, out) {
		ev := a["event"].(map[string]any)["kubernetes"].(map[string]any)["audit"].(map[string]any)
		ids = append(ids, ev["auditID"].(string))
		rule := a["rule"].(map[string]any)
		if rule["id"] != "elastic-k8s-anonymous-request-authorized" || rule["severity"] != "medium" || rule["risk_score"].(float64) != 47 {
			t.Fatalf("rule in alert: %v", rule)
		}
		if th := rule["threat"].([]any)[0].(map[string]any); th["tactic"].(map[string]any)["id"] != "TA0001" {
			t.Fatalf("mitre in alert: %v", th)
		}
		if a["origin"] == "" || !strings.HasPrefix(a["origin"].(string), "testdata/scan/seed000.log:") {
			t.Fatalf("origin: %v", a["origin"])
		}
		if _, ok := a["fields"].(map[string]any)["source_ips"]; !ok {
			t.Fatalf("fields: %v", a["fields"])
		}
	}
	sort.Strings(ids)
	// seed000-11 repeats its verb, which the rule does not read: it is
	// read, not dropped.
	want := "seed000-01 seed000-02 seed000-03 seed000-05 seed000-06 seed000-10 seed000-11"
	if got := strings.Join(ids, " "); got != want {
		t.Fatalf("alerts for %s, want %s", got, want)
	}
	for _, w := range []string{"bad records: 1", "testdata/scan/seed000.log:11:", "total alerts: 7"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	// Same input, same ids.
	out2, _, _ := runCLI(t, "", "scan", "--no-state", "-o", "json", "--rule", "elastic-k8s-anonymous-request-authorized", "testdata/scan/seed000.log")
	if out != out2 {
		t.Fatal("a second scan gave different alerts")
	}
	// --strict stops at the first bad record.
	_, errOut, code = runCLI(t, "", "scan", "--no-state", "--strict", "-o", "json", "testdata/scan/seed000.log")
	if code != 1 || !strings.Contains(errOut, "seed000.log:11") {
		t.Fatalf("strict: exit %d\n%s", code, errOut)
	}
}

func TestScanStdinAndTable(t *testing.T) {
	data, err := os.ReadFile("testdata/scan/seed000.log")
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := runCLI(t, string(data), "scan", "--no-state", "-o", "table", "-")
	if code != 2 || !strings.Contains(out, "SEVERITY") || !strings.Contains(out, "Kubernetes Anonymous Request Authorized") {
		t.Fatalf("exit %d, table:\n%s", code, out)
	}
	_, _, code = runCLI(t, "", "scan", "--no-state", "--exit-zero", "-o", "json", "testdata/scan/seed000.log")
	if code != 0 {
		t.Fatalf("--exit-zero: exit %d", code)
	}
}

func TestScanBundledExamples(t *testing.T) {
	out, errOut, code := runCLI(t, "", "scan", "-o", "json")
	if code != 2 || len(alertsOf(t, out)) == 0 || !strings.Contains(errOut, "bundled example logs") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

func TestBadRuleFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	bad := "id: x\nname: X\ntype: query\nquery: kubernetes.audit.verb:(get or\nseverity: low\nrisk_score: 1\n"
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, "", "scan", "--no-state", "--rules", dir, "testdata/scan/seed000.log")
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "bad.yaml")+":4:") || !strings.Contains(errOut, "^") {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
}

func TestConvert(t *testing.T) {
	out, errOut, code := runCLI(t, "", "convert", "-o", "ecs", "testdata/scan/seed000.log")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	docs := alertsOf(t, out)
	if len(docs) != 11 {
		t.Fatalf("%d documents", len(docs))
	}
	d := docs[0]
	if d["event"].(map[string]any)["outcome"] != "success" || d["user"].(map[string]any)["name"] != "system:anonymous" {
		t.Fatalf("document: %v", d)
	}
	if _, ok := d["kubernetes"].(map[string]any)["audit"].(map[string]any)["annotations"].(map[string]any)["authorization_k8s_io/reason"]; ok {
		t.Fatal("empty annotation kept")
	}
}

func TestRulesCommands(t *testing.T) {
	out, _, code := runCLI(t, "", "rules", "test")
	if code != 0 || !strings.Contains(out, " passed, 0 failed") {
		t.Fatalf("rules test: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "", "rules", "list")
	if code != 0 || !strings.Contains(out, "elastic-k8s-anonymous-request-authorized") {
		t.Fatalf("rules list: exit %d\n%s", code, out)
	}
	out, _, code = runCLI(t, "", "rules", "show", "elastic-k8s-anonymous-request-authorized")
	if code != 0 || !strings.Contains(out, "T1078.001") || !strings.Contains(out, "every 5m0s") {
		t.Fatalf("rules show: exit %d\n%s", code, out)
	}
	_, errOut, code := runCLI(t, "", "rules", "show", "nope")
	if code != 1 || !strings.Contains(errOut, "no rule with id nope") {
		t.Fatalf("rules show nope: exit %d\n%s", code, errOut)
	}
}

// TestScanDropsRepeatedDeliveries: the same event delivered twice (as
// CloudWatch or a retrying webhook may) is read once.
func TestScanDropsRepeatedDeliveries(t *testing.T) {
	data, err := os.ReadFile("testdata/scan/seed000.log")
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(data), "\n", 2)[0] + "\n"
	path := filepath.Join(t.TempDir(), "twice.log")
	if err := os.WriteFile(path, []byte(first+first), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, _ := runCLI(t, "", "scan", "--no-state", "-o", "json", "--rule", "elastic-k8s-anonymous-request-authorized", path)
	if n := len(alertsOf(t, out)); n != 1 || !strings.Contains(errOut, "repeated deliveries dropped (same auditID and stage): 1") {
		t.Fatalf("%d alerts\n%s", n, errOut)
	}
	out, errOut, _ = runCLI(t, "", "scan", "--no-state", "--dedup", "0", "-o", "json", "--rule", "elastic-k8s-anonymous-request-authorized", path)
	if strings.Contains(errOut, "repeated deliveries") {
		t.Fatalf("--dedup 0 still dropped:\n%s", errOut)
	}
	_ = out
}
