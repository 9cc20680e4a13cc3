package kqleval

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

func TestAnalyze(t *testing.T) {
	f := func(s string, want ...string) {
		t.Helper()
		got := analyzeString(s)
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("analyze(%q) = %q, want %q", s, got, want)
		}
	}
	f("system:serviceaccounts:flux-system", "system:serviceaccounts:flux", "system")
	f("Hello, World!", "hello", "world")
	f("10.0.0.1", "10.0.0.1")
	f("::1", "1")
	f("fe80::1", "fe80", "1")
	f("example.com/path", "example.com", "path")
	f("a.", "a")
	f("don't 1,000.5 k8s v1_2", "don't", "1,000.5", "k8s", "v1_2")
	f("ÉCOLE café", "école", "café")
	f("東京タワー", "東", "京", "タワー")
	f("--- / @")
	f("__")
	f(strings.Repeat("a", 300), strings.Repeat("a", 255), strings.Repeat("a", 45))
}

func TestRequired(t *testing.T) {
	f := func(query, want string) {
		t.Helper()
		m, err := Compile(kql.MustParse(query))
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, r := range m.Required() {
			parts = append(parts, r.Field.Name+" "+r.Kind.String()+" "+strings.Join(r.Values, "|"))
		}
		if got := strings.Join(parts, "; "); got != want {
			t.Fatalf("Required(%q) = %q, want %q", query, got, want)
		}
	}
	f(`event.dataset : "kubernetes.audit_logs" and kubernetes.audit.annotations.authorization_k8s_io/decision:"allow" and (kubernetes.audit.user.username:("system:anonymous" or "system:unauthenticated") or not kubernetes.audit.user.username:*) and not kubernetes.audit.objectRef.resource:("healthz" or "livez" or "readyz")`,
		`event.dataset equal kubernetes.audit_logs`)
	f(`kubernetes.audit.verb:(get or list)`, `kubernetes.audit.verb equal get|list`)
	f(`kubernetes.audit.verb:get or kubernetes.audit.verb:wat*`, `kubernetes.audit.verb prefix get|wat`)
	f(`kubernetes.audit.requestURI:(*secrets* or /api*)`, `kubernetes.audit.requestURI contains secrets|/api`)
	f(`kubernetes.audit.verb:get or kubernetes.audit.stage:x`, ``)
	f(`not kubernetes.audit.verb:*`, ``)
	f(`kubernetes.audit.verb:*`, ``)
	f(`kubernetes.audit.user.groups:"system:masters"`, ``) // text
	f(`kubernetes.audit.verb:(* and not get)`, ``)
	f(`kubernetes.audit.verb:(get and g*)`, `kubernetes.audit.verb equal get`)
	f(`(kubernetes.audit.verb:get and kubernetes.audit.stage:x) or (kubernetes.audit.verb:list and user.name:y)`, `kubernetes.audit.verb equal get|list`)
}

func TestCompileErrors(t *testing.T) {
	src := pos.NewEmbeddedSource("rules/r.yaml", "kubernetes.audit.responseStatus.code:abc and source.ip:x", 5, 10, 2)
	_, err := Compile(kql.MustParse(src.Text), WithSource(src))
	if !errors.Is(err, ErrType) {
		t.Fatalf("got %v, want ErrType", err)
	}
	var l *pos.ErrorList
	if !errors.As(err, &l) || l.Len() != 2 {
		t.Fatalf("want 2 errors, got %v", err)
	}
	if got := l.Errs[0].Error(); got != "rules/r.yaml:5:47: abc is not a number, but kubernetes.audit.responseStatus.code is a long field" {
		t.Fatalf("got %q", got)
	}
	if _, err := Compile(kql.MustParse("foo")); !errors.Is(err, ErrBareValue) {
		t.Fatalf("bare value: %v", err)
	}
	if _, err := Compile(kql.MustParse("p:{a:b}")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("nested: %v", err)
	}
	if _, err := Compile(kql.MustParse("a:b"), WithDefaultFields()); err == nil {
		t.Fatal("WithDefaultFields() should fail")
	}
}

func TestFields(t *testing.T) {
	m, err := Compile(kql.MustParse(`kubernetes.audit.verb:get and not user.name:* and kubernetes.audit.requestObject.spec.x:1`))
	if err != nil {
		t.Fatal(err)
	}
	fs := m.Fields()
	names := strings.Join(fs.Names(), ",")
	if !strings.Contains(names, "kubernetes.audit.verb") && !strings.Contains(names, "event.action") {
		t.Fatalf("fields %s lack the verb", names)
	}
	if !strings.Contains(names, "user.username") || !fs.Lazy {
		t.Fatalf("fields %s (lazy %v)", names, fs.Lazy)
	}
}
