package kqleval

import (
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// seedQuery returns the query of seed rule 000 (from the conformance file).
func seedQuery(tb testing.TB, prefix string) string {
	for _, c := range loadConformance(tb) {
		if strings.HasPrefix(c.query, prefix) && strings.HasSuffix(c.file, "seeds.kqltest") {
			return c.query
		}
	}
	tb.Fatalf("seed query %q not found", prefix)
	return ""
}

func benchMatch(b *testing.B, query, doc string, want bool) {
	m, err := Compile(kql.MustParse(query))
	if err != nil {
		b.Fatal(err)
	}
	var e *event.Event
	if err := readAudit(doc, m.Fields(), func(ev *event.Event) { e = ev.Clone() }); err != nil {
		b.Fatal(err)
	}
	if m.Match(e) != want {
		b.Fatalf("Match = %v, want %v", !want, want)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	var sink bool
	for i := 0; i < b.N; i++ {
		sink = m.Match(e)
	}
	if sink != want {
		b.Fatal("unexpected result")
	}
}

const seed000 = `event.dataset : "kubernetes.audit_logs"`

func BenchmarkMatchSeed000_Match(b *testing.B) {
	benchMatch(b, seedQuery(b, seed000),
		`{"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:public-info-viewer\""},"user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"objectRef":{"resource":"pods","namespace":"default"},"verb":"list","userAgent":"curl/8.4.0","requestURI":"/api/v1/namespaces/default/pods"}`, true)
}

func BenchmarkMatchSeed000_NoMatch(b *testing.B) {
	benchMatch(b, seedQuery(b, seed000),
		`{"annotations":{"authorization.k8s.io/decision":"allow"},"user":{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts","system:authenticated"]},"objectRef":{"resource":"pods","namespace":"kube-system"},"verb":"create","userAgent":"kube-controller-manager/v1.29.1 (linux/amd64) kubernetes/$Format","requestURI":"/api/v1/namespaces/kube-system/pods"}`, false)
}

func BenchmarkMatchSeed001_Match(b *testing.B) {
	benchMatch(b, seedQuery(b, `event.dataset:"kubernetes.audit_logs" and`),
		`{"annotations":{"authorization.k8s.io/decision":"allow"},"user":{"username":"system:anonymous"},"userAgent":"curl/8.4.0","requestURI":"/api/v1/secrets"}`, true)
}

// TestMatchAllocs keeps Match allocation-free on the seed queries.
func TestMatchAllocs(t *testing.T) {
	for _, c := range loadConformance(t) {
		if !strings.HasSuffix(c.file, "seeds.kqltest") {
			continue
		}
		m, err := Compile(kql.MustParse(c.query))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range c.docs {
			err := readAudit(d.json, m.Fields(), func(e *event.Event) {
				m.Match(e)
				if n := testing.AllocsPerRun(100, func() { m.Match(e) }); n != 0 {
					t.Errorf("%s:%d: Match allocates %v times per call", c.file, d.line, n)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestElasticRules parses and compiles every kuery query of the shared
// Elastic rules (in ../shared from the repository root).
func TestElasticRules(t *testing.T) {
	qs := elasticRuleQueries(t)
	if len(qs) == 0 {
		t.Fatal("shared Elastic rules not found next to the repository: the tests need ../shared")
	}
	for name, q := range qs {
		src := newRuleSource(name, q)
		expr, err := kql.Parse(src)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		m, err := Compile(expr, WithSource(src))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if m.Fields().IsEmpty() {
			t.Errorf("%s: compiled query reads no fields", name)
		}
	}
	if len(qs) < 25 {
		t.Errorf("only %d kuery rules found", len(qs))
	}
}

// wildcardDoc is the document of the wildcard benchmarks.
const wildcardDoc = `{"user":{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts","system:authenticated"]},"userAgent":"kube-controller-manager/v1.29.1 (linux/amd64) kubernetes/$Format","requestURI":"/api/v1/namespaces/kube-system/pods","requestObject":{"spec":{"nodeName":"node-17.example.internal"}}}`

// BenchmarkMatchWildcard measures each kind of compiled wildcard pattern
// (prefix, suffix, contains, general) on keyword, text and unmapped fields.
func BenchmarkMatchWildcard(b *testing.B) {
	for _, c := range []struct {
		name, query string
		want        bool
	}{
		{"keyword_prefix", `kubernetes.audit.userAgent:kube-controller-manager*`, true},
		{"keyword_suffix", `kubernetes.audit.userAgent:*kubernetes/$Format`, true},
		{"keyword_contains", `kubernetes.audit.userAgent:*linux*`, true},
		{"keyword_general", `kubernetes.audit.userAgent:kube-*linux*$Format`, true},
		{"keyword_general_miss", `kubernetes.audit.requestURI:/api/*/secrets*`, false},
		{"text_prefix", `kubernetes.audit.user.groups:system\:authen*`, true},
		{"text_general", `kubernetes.audit.user.groups:sys*\:auth*ted`, true},
		{"unmapped_suffix", `kubernetes.audit.requestObject.spec.nodeName:*.internal`, true},
	} {
		b.Run(c.name, func(b *testing.B) { benchMatch(b, c.query, wildcardDoc, c.want) })
	}
}
