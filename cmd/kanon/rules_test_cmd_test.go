package main

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

const failingRule = `id: my-failing
name: Fails
description: x
language: kuery
query: 'kubernetes.audit.verb:get'
severity: low
risk_score: 21
tests:
  - name: wrongly expects no alert
    expect: no_alert
    events:
      - {"kind":"Event","auditID":"x","stage":"ResponseComplete","verb":"get","stageTimestamp":"2025-01-01T00:00:00Z"}
  - name: passes
    expect: alert
    events:
      - {"kind":"Event","auditID":"y","stage":"ResponseComplete","verb":"get","stageTimestamp":"2025-01-01T00:00:00Z"}
`

// TestRulesTestExitAndJUnit: a failed test exits 1, as promtool test
// rules and opa test do, and --junit writes the results as JUnit XML.
func TestRulesTestExitAndJUnit(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "failing.yaml"), []byte(failingRule), 0o600); err != nil {
		t.Fatal(err)
	}
	junit := filepath.Join(t.TempDir(), "junit.xml")
	out, errOut, code := runCLI(t, "", "rules", "test", "--junit", junit, dir)
	if code != 1 || !strings.Contains(out, "1 passed, 1 failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Failure *struct{} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Tests != 2 || doc.Failures != 1 || len(doc.Suites) != 1 || doc.Suites[0].Name != "my-failing" ||
		doc.Suites[0].Cases[0].Failure == nil || doc.Suites[0].Cases[1].Failure != nil {
		t.Errorf("junit: %+v\n%s", doc, b)
	}
	// The built-in pack passes: exit 0, and the JUnit file says so.
	if out, _, code := runCLI(t, "", "rules", "test", "--junit", junit); code != 0 || !strings.Contains(out, " 0 failed") {
		t.Errorf("built-in pack: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(junit); !strings.Contains(string(b), `failures="0"`) {
		t.Errorf("junit of the built-in pack:\n%s", b)
	}
}

// TestUserRuleWarningsAtLoad: a user rule reading a field outside the
// schema warns when scan loads it (as rules lint does), on stderr, and
// the scan runs; the built-in pack does not warn; rules lint prints its
// warnings once; every bad rule file is reported, not only the first.
func TestUserRuleWarningsAtLoad(t *testing.T) {
	dir := t.TempDir()
	rule := strings.Replace(failingRule, "kubernetes.audit.verb:get", `kubernetes.audit.verbb:get and kubernetes.audit.user.username:\"system:anonymous\"`, 1)
	rule = strings.Replace(rule, "query: '", "query: \"", 1)
	rule = strings.Replace(rule, ":\\\"system:anonymous\\\"'", ":\\\"system:anonymous\\\"\"", 1)
	if err := os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join("..", "..", "examples", "logs", "audit.log")
	out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--rules", dir, log)
	if code != 2 || len(alertsOf(t, out)) == 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	want := "kanon: warning: " + filepath.Join(dir, "typo.yaml") + ":5:"
	if !strings.Contains(errOut, want) || !strings.Contains(errOut, "kubernetes.audit.verbb") || !strings.Contains(errOut, "[unknown-field, rule my-failing]") {
		t.Errorf("no warning %q in\n%s", want, errOut)
	}
	if _, errOut, _ := runCLI(t, "", "scan", "-o", "jsonl", log); strings.Contains(errOut, "warning:") {
		t.Errorf("the built-in pack warns:\n%s", errOut)
	}
	out, errOut, code = runCLI(t, "", "rules", "lint", dir)
	if code != 0 || strings.Count(out+errOut, "kubernetes.audit.verbb:get") != 1 {
		t.Errorf("rules lint: exit %d\n%s%s", code, out, errOut)
	}

	bad := t.TempDir()
	for name, text := range map[string]string{"a.yaml": "id: a\nname: A\nbogus: 1\n", "b.yaml": "id: b\nname: [\n", "c.yaml": "id: c\nname: C\nseverity: low\nrisk_score: 1\nquery: 'kubernetes.audit.verb:(get or'\n"} {
		if err := os.WriteFile(filepath.Join(bad, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code = runCLI(t, "", "scan", "--rules", bad, "--rules", dir, log)
	if code != 1 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, f := range []string{"a.yaml:3:1", "b.yaml:2:", "c.yaml:5:"} {
		if !strings.Contains(errOut, filepath.Join(bad, f)) {
			t.Errorf("bad rule file %s is not reported:\n%s", f, errOut)
		}
	}
}

// complete runs cobra's completion request and returns the candidates
// (without descriptions).
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	out, errOut, code := runCLI(t, "", append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, code, errOut)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, ":") {
			break
		}
		id, _, _ := strings.Cut(l, "\t")
		got = append(got, id)
	}
	return got
}

// TestCompletion: rule ids (built-in and --rules) for --rule and for the ID
// of rules show and explain, and the values of -o and --format.
func TestCompletion(t *testing.T) {
	builtin := []string{"Kubernetes.API.AnonymousAccess", "elastic-k8s-anonymous-endpoint-permission-enumeration",
		"elastic-k8s-anonymous-request-authorized", "elastic-k8s-anonymous-request-authorized-unusual-user-agent"}
	if got := complete(t, "scan", "--rule", ""); !slices.Equal(got, builtin) {
		t.Errorf("scan --rule: %v", got)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(failingRule), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := complete(t, "scan", "--rules", dir, "--rule", "my"); !slices.Equal(got, []string{"my-failing"}) {
		t.Errorf("scan --rules DIR --rule my: %v", got)
	}
	if got := complete(t, "scan", "--rules", dir, "--no-builtin", "--rule", ""); !slices.Equal(got, []string{"my-failing"}) {
		t.Errorf("--no-builtin: %v", got)
	}
	if got := complete(t, "rules", "show", "elastic-k8s-anonymous-request-authorized"); !slices.Equal(got, builtin[2:]) {
		t.Errorf("rules show: %v", got)
	}
	if got := complete(t, "rules", "explain", "Kub"); !slices.Equal(got, builtin[:1]) {
		t.Errorf("rules explain: %v", got)
	}
	if got := complete(t, "rules", "show", "Kubernetes.API.AnonymousAccess", ""); len(got) != 0 && got[0] != "" {
		t.Errorf("rules show takes one ID: %v", got)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"scan", "-o", ""}, []string{"auto", "table", "wide", "json", "jsonl", "yaml", "csv"}},
		{[]string{"rules", "list", "-o", ""}, []string{"text", "json"}},
		{[]string{"rules", "test", "--output", "t"}, []string{"text"}},
		{[]string{"version", "-o", ""}, []string{"text", "json"}},
		{[]string{"scan", "--format", ""}, append([]string{"auto"}, registry().Names()...)},
		{[]string{"report", "--type", ""}, []string{"html", "markdown"}},
	} {
		if got := complete(t, c.args...); !slices.Equal(got, c.want) {
			t.Errorf("%v: %v, want %v", c.args, got, c.want)
		}
	}
	// serve's outputs: the schemes, with no space after them.
	serve := complete(t, "serve", "-o", "")
	for _, want := range []string{"stdout", "file:", "webhook:", "slack:"} {
		if !slices.Contains(serve, want) {
			t.Errorf("serve -o: no %q in %v", want, serve)
		}
	}
	for _, v := range serve {
		if strings.ContainsAny(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ[") {
			t.Errorf("serve -o completes a placeholder: %q", v)
		}
	}
	// -o FILE of kanon report completes files: no values.
	if got := complete(t, "report", "-o", ""); len(got) != 0 && got[0] != "" {
		t.Errorf("report -o: %v", got)
	}
}

// TestVersion: kanon version prints the version and commit set with
// -ldflags -X, and the Go version; --version says the same.
func TestVersion(t *testing.T) {
	bin := buildKanonWith(t, "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123456789abcdef0123456789abcdef01234567")
	out, code := runBin(t, bin, "version")
	if code != 0 || !strings.HasPrefix(out, "kanon v9.8.7\ncommit:   0123456789abcdef0123456789abcdef01234567\n") || !strings.Contains(out, "go:       go1.") {
		t.Errorf("kanon version: exit %d\n%s", code, out)
	}
	out, code = runBin(t, bin, "--version")
	if code != 0 || !strings.Contains(out, "kanon version v9.8.7 (commit 0123456789ab, go1.") {
		t.Errorf("kanon --version: exit %d\n%s", code, out)
	}
	out, code = runBin(t, bin, "version", "-o", "json")
	if code != 0 || !strings.Contains(out, `"version": "v9.8.7"`) || !strings.Contains(out, `"commit": "0123456789abcdef0123456789abcdef01234567"`) {
		t.Errorf("kanon version -o json: exit %d\n%s", code, out)
	}
}

// TestBuildInfo: without -ldflags, the version of `go install ...@v1.2.3`
// and the VCS stamp of a build in a checkout are used.
func TestBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abcdef0123456789"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	b := makeBuildInfo("dev", "", bi)
	if b.Version != "v1.2.3" || b.Commit != "abcdef0123456789" || !b.Modified || b.Time != "2026-01-02T03:04:05Z" || b.Go != "go1.99.1" {
		t.Errorf("%+v", b)
	}
	if s := b.short(); s != "v1.2.3 (commit abcdef012345, modified, go1.99.1)" {
		t.Errorf("short %q", s)
	}
	bi.Main.Version = "(devel)"
	if b := makeBuildInfo("v2.0.0", "fedcba", bi); b.Version != "v2.0.0" || b.Commit != "fedcba" || b.Modified || b.Time != "" {
		t.Errorf("ldflags over another checkout: %+v", b)
	}
	if b := makeBuildInfo("dev", "", nil); b.Version != "dev" || b.Commit != "" || !strings.HasPrefix(b.Go, "go") {
		t.Errorf("no build info: %+v", b)
	}
}

// buildKanonWith builds the kanon binary with extra go build flags.
func buildKanonWith(t *testing.T, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kanon")
	args := append(append([]string{"build", "-o", bin}, flags...), ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runBin runs bin and returns its standard output and exit code.
func runBin(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}
