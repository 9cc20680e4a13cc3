package esqleval

import (
	"fmt"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
)

// TestMultiValued: an output column's shape follows from the query: lists
// for VALUES, list fields and what keeps their values, one value for
// groups, other aggregations, MV_EXPAND and the functions that reduce.
func TestMultiValued(t *testing.T) {
	isList := func(f event.Field) bool { return f.ID() == event.FieldSourceIPs || !f.Known() }
	p := mustProgram(t, `from x
		| eval ips = kubernetes.audit.sourceIPs, first = mv_first(kubernetes.audit.sourceIPs),
		       parts = split(kubernetes.audit.requestURI, "/"), lower = to_lower(kubernetes.audit.verb),
		       either = case(kubernetes.audit.verb == "get", kubernetes.audit.sourceIPs, "none"),
		       ipconv = to_ip(kubernetes.audit.sourceIPs), n = coalesce(kubernetes.audit.responseStatus.code, 0)
		| rename kubernetes.audit.user.groups as g
		| keep kubernetes.audit.sourceIPs, kubernetes.audit.verb, ips, first, parts, lower, either, ipconv, n, g, some.unknown.field`)
	want := "kubernetes.audit.sourceIPs=true kubernetes.audit.verb=false ips=true first=false parts=true lower=false either=true ipconv=true n=false g=false some.unknown.field=true"
	got := ""
	for i, c := range p.Lineage().Output() {
		if i > 0 {
			got += " "
		}
		got += fmt.Sprintf("%s=%v", c.Name, p.Lineage().MultiValued(c, isList))
	}
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	p = mustProgram(t, `from x | mv_expand kubernetes.audit.sourceIPs
		| stats n = count(*), v = values(kubernetes.audit.verb), d = count_distinct(kubernetes.audit.verb) by kubernetes.audit.sourceIPs
		| eval vv = v, m = mv_count(v)`)
	want = "n=false v=true d=false kubernetes.audit.sourceIPs=false vv=true m=false"
	got = ""
	for i, c := range p.Lineage().Output() {
		if i > 0 {
			got += " "
		}
		got += fmt.Sprintf("%s=%v", c.Name, p.Lineage().MultiValued(c, isList))
	}
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
