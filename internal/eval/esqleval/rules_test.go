package esqleval

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// anchorsDir returns ../shared/anchors/elastic-rules relative to the
// repository root (the directory holding go.mod above the test's working
// directory).
func anchorsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared", "anchors", "elastic-rules")
}

type elasticRule struct {
	file  string
	name  string
	query string
}

func loadElasticRules(t testing.TB) []elasticRule {
	t.Helper()
	dir := anchorsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Elastic rules in %s: the tests need ../shared next to the repository", dir)
	}
	var rules []elasticRule
	for _, f := range files {
		var doc struct {
			Rule struct {
				Name, Type, Query string
			}
		}
		if _, err := toml.DecodeFile(f, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if doc.Rule.Type == "esql" {
			rules = append(rules, elasticRule{file: filepath.Base(f), name: doc.Rule.Name, query: doc.Rule.Query})
		}
	}
	return rules
}

func compileRule(t testing.TB, r elasticRule) *Program {
	t.Helper()
	q, err := esql.Parse(pos.NewSource(r.file, r.query))
	if err != nil {
		t.Fatalf("%s: parse:\n%s", r.file, pos.Pretty(err))
	}
	canon := q.String()
	q2, err := esql.ParseString(canon)
	if err != nil || q2.String() != canon {
		t.Fatalf("%s: canonical form does not round-trip: %v\n%s", r.file, err, canon)
	}
	p, err := Compile(q, WithName(r.name))
	if err != nil {
		t.Fatalf("%s: compile:\n%s", r.file, pos.Pretty(err))
	}
	return p
}

// TestElasticRules parses and compiles every ES|QL query of the Elastic
// rules in the shared anchors.
func TestElasticRules(t *testing.T) {
	rules := loadElasticRules(t)
	if len(rules) != 11 {
		t.Fatalf("found %d ES|QL rules, want 11", len(rules))
	}
	for _, r := range rules {
		t.Run(strings.TrimSuffix(r.file, ".toml"), func(t *testing.T) {
			p := compileRule(t, r)
			if len(p.Columns()) == 0 {
				t.Fatal("no output columns")
			}
			fs := p.Fields()
			if len(fs.Names()) == 0 && !fs.Lazy {
				t.Fatal("the program reads no fields")
			}
		})
	}
}

// TestElasticExecRule runs a pod-exec rule (URL_DECODE, GROK, REPLACE,
// RLIKE, CASE, KEEP *) end to end on one event.
func TestElasticExecRule(t *testing.T) {
	var rule elasticRule
	for _, r := range loadElasticRules(t) {
		if r.file == "credential_access_kubernetes_pod_exec_sensitive_file_access.toml" {
			rule = r
		}
	}
	if rule.query == "" {
		t.Fatal("rule not found")
	}
	p := compileRule(t, rule)
	if !p.PerEvent() {
		t.Fatal("the rule has no STATS, SORT or LIMIT: it should be per-event")
	}
	ev := p.NewEvaluator(Env{})
	match := func(uri string) Row {
		t.Helper()
		e := ecsEvent(t, p, `{"kubernetes":{"audit":{"objectRef":{"subresource":"exec"},"requestURI":`+quoteJSON(uri)+`}}}`)
		rows, err := ev.Eval(e)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 {
			return nil
		}
		return rows[0]
	}
	col := func(name string) int {
		i := slices.Index(p.Columns(), name)
		if i < 0 {
			t.Fatalf("no column %s in %v", name, p.Columns())
		}
		return i
	}
	row := match("/api/v1/namespaces/default/pods/web/exec?command=cat&command=%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken&container=web&stdout=true")
	if row == nil {
		t.Fatal("the token read did not match")
	}
	if got := formatCell(row[col("Esql.access_type")]); got != `"K8S_SA_TOKEN"` {
		t.Fatalf("Esql.access_type = %s", got)
	}
	if got := formatCell(row[col("Esql.executed_command")]); got != `"cat /var/run/secrets/kubernetes.io/serviceaccount/token"` {
		t.Fatalf("Esql.executed_command = %s", got)
	}
	if got := formatCell(row[col("kubernetes.audit.objectRef.subresource")]); got != `"exec"` {
		t.Fatalf("KEEP * lost the event fields: subresource = %s", got)
	}
	if match("/api/v1/namespaces/default/pods/web/exec?command=cat&command=%2Fetc%2Fresolv.conf&container=web") != nil {
		t.Fatal("resolv.conf is excluded by the rule")
	}
}

// TestSeedQueryFields checks the fields seed 004's query reads.
func TestSeedQueryFields(t *testing.T) {
	p := seedProgram(t)
	if !p.Aggregates() {
		t.Fatal("seed 004 aggregates")
	}
	got := p.Fields().Names()
	for _, want := range []string{"kubernetes.audit.user.username", "kubernetes.audit.level", "kubernetes.audit.requestURI", "kubernetes.audit.sourceIPs", "kubernetes.audit.userAgent", "kubernetes.audit.responseStatus.code"} {
		if !slices.Contains(got, want) {
			t.Errorf("Fields() = %v, lacks %s", got, want)
		}
	}
	fs := p.Fields()
	if fs.IsAll() {
		t.Error("seed 004 does not read every field")
	}
}

// seedQuery returns seed 004's ES|QL query, verbatim from the shared seed.
func seedQuery(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(anchorsDir(t), "..", "..", "seeds", "004_ea07a9c2e62470e5.txt"))
	if err != nil {
		t.Fatalf("seed 004 not available: %v", err)
	}
	s := string(b)
	start := strings.Index(s, "from logs-kubernetes.audit_logs-*")
	end := strings.Index(s, "Framework: MITRE")
	if start < 0 || end < start {
		t.Fatal("no ES|QL query in seed 004")
	}
	return strings.TrimSpace(s[start:end])
}

func seedProgram(t testing.TB) *Program {
	t.Helper()
	q, err := esql.Parse(pos.NewSource("seed004", seedQuery(t)))
	if err != nil {
		t.Fatal(pos.Pretty(err))
	}
	p, err := Compile(q)
	if err != nil {
		t.Fatal(pos.Pretty(err))
	}
	return p
}

func quoteJSON(s string) string {
	b := strings.Builder{}
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// seedEvents builds n events of an anonymous burst from one source, read
// for p.
func seedEvents(t testing.TB, p *Program, n int) []*event.Event {
	t.Helper()
	resources := []string{"pods", "secrets", "namespaces", "nodes", "configmaps", "deployments"}
	var out []*event.Event
	for i := range n {
		res := resources[i%len(resources)]
		doc := `{"@timestamp":"2024-05-01T10:00:00Z","kubernetes":{"audit":{"level":"Request","verb":"list","userAgent":"curl/8.5",` +
			`"sourceIPs":["203.0.113.7"],"requestURI":"/api/v1/` + res + `?limit=` + time.Duration(i).String() + `",` +
			`"objectRef":{"resource":"` + res + `","namespace":"default"},"responseStatus":{"code":403,"message":"forbidden"},` +
			`"annotations":{"authorization_k8s_io/decision":"forbid"},"user":{"groups":["system:unauthenticated"]}}}}`
		out = append(out, ecsEvent(t, p, doc))
	}
	return out
}
