package esqleval

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/query/esql"
)

// describeColumn renders a column's lineage: "name:origin[:type][<-of]"
// plus "=field" for an event field it carries.
func describeColumn(c *Column) string {
	if c == nil {
		return "?"
	}
	s := c.Name + ":" + c.Origin.String()
	if c.Type != "" {
		s += ":" + c.Type
	}
	if f, ok := c.EventField(); ok {
		s += "=" + f.Name
	}
	if c.Of != nil {
		s += "<-" + describeColumn(c.Of)
	}
	return s
}

// refs renders what each field reference of the query resolves to, in
// source order.
func refs(q *esql.Query, l *Lineage) string {
	var out []string
	for _, c := range q.Commands {
		esql.WalkCmd(c, func(e esql.Expr) bool {
			if f, ok := e.(*esql.FieldExpr); ok {
				col, ok := l.Ref(f)
				if !ok {
					out = append(out, f.Name+" -> unresolved")
				} else {
					out = append(out, f.Name+" -> "+describeColumn(col))
				}
			}
			return true
		})
	}
	return strings.Join(out, "\n")
}

func TestLineage(t *testing.T) {
	q := esql.MustParse(`from logs metadata _id
| eval uri = kubernetes.audit.requestURI, first = mv_first(kubernetes.audit.sourceIPs)
| rename kubernetes.audit.verb as verb, uri as u
| grok u "/api/%{WORD:version}/%{NUMBER:n:int}"
| dissect kubernetes.audit.userAgent "%{agent}/%{?skip}"
| mv_expand kubernetes.audit.user.groups
| where verb == "get" and u like "/api*" and version == "v1" and agent == "curl" and kubernetes.audit.user.groups == "x" and _id is null
| stats c = count(*), v = values(n) by verb, first
| eval d = c * 2
| where d > 1 and verb == "get"
| keep verb, first, d`)
	p, err := Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	l := p.Lineage()
	want := `kubernetes.audit.requestURI -> kubernetes.audit.requestURI:event:keyword=kubernetes.audit.requestURI
kubernetes.audit.sourceIPs -> kubernetes.audit.sourceIPs:event:keyword=kubernetes.audit.sourceIPs
u -> u:rename:keyword<-uri:eval:keyword
kubernetes.audit.userAgent -> kubernetes.audit.userAgent:event:keyword=kubernetes.audit.userAgent
verb -> verb:rename:keyword=kubernetes.audit.verb<-kubernetes.audit.verb:event:keyword=kubernetes.audit.verb
u -> u:rename:keyword<-uri:eval:keyword
version -> version:grok:keyword
agent -> agent:dissect:keyword
kubernetes.audit.user.groups -> kubernetes.audit.user.groups:mv_expand:keyword=kubernetes.audit.user.groups<-kubernetes.audit.user.groups:event:keyword=kubernetes.audit.user.groups
_id -> _id:metadata
n -> n:grok:long
verb -> verb:rename:keyword=kubernetes.audit.verb<-kubernetes.audit.verb:event:keyword=kubernetes.audit.verb
first -> first:eval:keyword
c -> c:stats:long
d -> d:eval:long
verb -> verb:stats:keyword=kubernetes.audit.verb<-verb:rename:keyword=kubernetes.audit.verb<-kubernetes.audit.verb:event:keyword=kubernetes.audit.verb`
	if got := refs(q, l); got != want {
		t.Errorf("references:\n%s\nwant\n%s", got, want)
	}
	defines := func(i int) string {
		var out []string
		for _, c := range l.Defines(q.Commands[i]) {
			out = append(out, c.Name+":"+c.Origin.String())
			if c.Cmd != q.Commands[i] {
				t.Errorf("column %s names another command", c.Name)
			}
		}
		return strings.Join(out, ",")
	}
	for i, w := range []string{"", "uri:eval,first:eval", "verb:rename,u:rename", "version:grok,n:grok", "agent:dissect",
		"kubernetes.audit.user.groups:mv_expand", "", "c:stats,v:stats,verb:stats,first:stats", "d:eval", "", ""} {
		if got := defines(i); got != w {
			t.Errorf("command %d (%s) defines %q, want %q", i, q.Commands[i].Name(), got, w)
		}
	}
	var out []string
	for _, c := range l.Output() {
		out = append(out, describeColumn(c))
	}
	if got := strings.Join(out, " | "); got != "verb:stats:keyword=kubernetes.audit.verb<-verb:rename:keyword=kubernetes.audit.verb<-kubernetes.audit.verb:event:keyword=kubernetes.audit.verb | first:stats:keyword<-first:eval:keyword | d:eval:long" {
		t.Errorf("output %s", got)
	}
	if fmt.Sprint(p.Columns()) != "[verb first d]" {
		t.Errorf("columns %v", p.Columns())
	}
	if c := l.Defines(q.Commands[1])[0]; c.Expr.String() != "kubernetes.audit.requestURI" || !c.Defined() {
		t.Errorf("uri: expr %v, defined %v", c.Expr, c.Defined())
	}
	if c, _ := l.Ref(esql.Fields(q.Commands[6].(*esql.WhereCmd).Cond)[4]); c.Defined() {
		t.Errorf("an expanded event field is not defined by the query")
	}
}

// TestLineageShadowing checks that a reference resolves to the column of
// that name at its own place: before and after an EVAL that replaces it.
func TestLineageShadowing(t *testing.T) {
	q := esql.MustParse(`from x | eval kubernetes.audit.verb = to_lower(kubernetes.audit.verb) | where kubernetes.audit.verb == "get"`)
	p, err := Compile(q)
	if err != nil {
		t.Fatal(err)
	}
	want := "kubernetes.audit.verb -> kubernetes.audit.verb:event:keyword=kubernetes.audit.verb\nkubernetes.audit.verb -> kubernetes.audit.verb:eval:keyword"
	if got := refs(q, p.Lineage()); got != want {
		t.Errorf("references:\n%s\nwant\n%s", got, want)
	}
}

// TestAnalyze checks the lineage of a query that does not compile: what
// compiled is resolved, the rest is not, and the errors are Compile's.
func TestAnalyze(t *testing.T) {
	q := esql.MustParse(`from x | eval a = kubernetes.audit.verb, b = nosuchfunction(a) | keep a | where b == 1 and a == "get"`)
	l, err := Analyze(q)
	_, cerr := Compile(q)
	if err == nil || cerr == nil || err.Error() != cerr.Error() || !errors.Is(err, ErrUnknownFunction) {
		t.Fatalf("Analyze error %v, Compile error %v", err, cerr)
	}
	// The arguments of an unknown function are not compiled; b is not
	// defined, since its EVAL failed.
	want := "kubernetes.audit.verb -> kubernetes.audit.verb:event:keyword=kubernetes.audit.verb\na -> unresolved\nb -> unresolved\na -> a:eval:keyword"
	if got := refs(q, l); got != want {
		t.Errorf("references:\n%s\nwant\n%s", got, want)
	}
	if l.Output() != nil {
		t.Errorf("output of a query with errors: %v", l.Output())
	}
	ok := esql.MustParse(`from x | where kubernetes.audit.verb == "get"`)
	la, err := Analyze(ok)
	if err != nil || len(la.Output()) == 0 {
		t.Fatalf("Analyze of a good query: %v, %d output columns", err, len(la.Output()))
	}
	if l, err := Analyze(nil); l != nil || err == nil {
		t.Fatalf("Analyze(nil) = %v, %v", l, err)
	}
	var nl *Lineage
	if _, ok := nl.Ref(&esql.FieldExpr{}); ok || nl.Defines(nil) != nil || nl.Output() != nil {
		t.Fatal("a nil Lineage knows something")
	}
}
