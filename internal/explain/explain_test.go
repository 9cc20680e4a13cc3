package explain_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/explain"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
)

const (
	seed000File = "elastic/kubernetes_anonymous_request_authorized.yaml"
	seed004File = "elastic/kubernetes_anonymous_endpoint_permission_enumeration.yaml"
)

func compile(t *testing.T, name string, text []byte) *rule.Compiled {
	t.Helper()
	r, err := rule.Parse(name, text)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func builtin(t *testing.T, file string) *rule.Compiled {
	t.Helper()
	data, err := rules.FS.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return compile(t, file, data)
}

// anonESQL is shaped like seed 003's rule as a non-aggregating ES|QL
// query: an exact source-IP list, a first source IP, prefixes of user
// agents and request URIs, a NOT of an OR.
const anonESQL = `id: synthetic-anonymous-access
name: Anonymous API access (synthetic)
type: esql
severity: info
risk_score: 10
query: |
  FROM logs-kubernetes.audit_logs-*
  | WHERE kubernetes.audit.user.username == "system:anonymous"
    AND NOT (MV_COUNT(kubernetes.audit.sourceIPs) == 1 AND MV_FIRST(kubernetes.audit.sourceIPs) == "127.0.0.1")
    AND NOT (kubernetes.audit.userAgent == "ELB-HealthChecker/2.0" AND STARTS_WITH(MV_FIRST(kubernetes.audit.sourceIPs), "10.0."))
    AND NOT (STARTS_WITH(kubernetes.audit.userAgent, "kube-probe/") OR STARTS_WITH(kubernetes.audit.userAgent, "GoogleHC/"))
    AND NOT (STARTS_WITH(kubernetes.audit.requestURI, "/healthz") OR STARTS_WITH(kubernetes.audit.requestURI, "/readyz")
      OR kubernetes.audit.requestURI LIKE "/livez*")
    AND kubernetes.audit.requestURI IS NOT NULL
    AND kubernetes.audit.objectRef.namespace != "kube-system"
  | EVAL Esql.first_source_ip = MV_FIRST(kubernetes.audit.sourceIPs), uri = kubernetes.audit.requestURI
  | WHERE uri NOT LIKE "*/version" AND Esql.first_source_ip IS NOT NULL
  | KEEP kubernetes.audit.user.username, Esql.first_source_ip, kubernetes.audit.requestURI
`

type row struct {
	field, fn string
	kind      explain.Kind
	values    string
	negated   bool
}

func rows(e explain.Exclusion) []row {
	var out []row
	for _, m := range e.Matches {
		out = append(out, row{m.Field, m.Func, m.Kind, strings.Join(m.Values, "|"), m.Negated})
	}
	return out
}

func TestExplainSyntheticESQL(t *testing.T) {
	syn := compile(t, "synthetic.yaml", []byte(anonESQL))
	s000 := builtin(t, seed000File)
	x := explain.Explain(syn, []*rule.Compiled{syn, s000})

	want := [][]row{
		{{"kubernetes.audit.sourceIPs", "MV_COUNT", explain.KindEq, "1", false}, {"kubernetes.audit.sourceIPs", "MV_FIRST", explain.KindEq, "127.0.0.1", false}},
		{{"kubernetes.audit.userAgent", "", explain.KindEq, "ELB-HealthChecker/2.0", false}, {"kubernetes.audit.sourceIPs", "MV_FIRST", explain.KindStartsWith, "10.0.", false}},
		{{"kubernetes.audit.userAgent", "", explain.KindStartsWith, "kube-probe/", false}},
		{{"kubernetes.audit.userAgent", "", explain.KindStartsWith, "GoogleHC/", false}},
		{{"kubernetes.audit.requestURI", "", explain.KindStartsWith, "/healthz", false}},
		{{"kubernetes.audit.requestURI", "", explain.KindStartsWith, "/readyz", false}},
		{{"kubernetes.audit.requestURI", "", explain.KindStartsWith, "/livez", false}},
		{{"kubernetes.audit.objectRef.namespace", "", explain.KindEq, "kube-system", false}},
		// The second WHERE: uri is an EVAL alias of the request URI.
		{{"kubernetes.audit.requestURI", "", explain.KindEndsWith, "/version", false}},
	}
	if len(x.Exclusions) != len(want) {
		t.Fatalf("%d exclusions, want %d: %+v", len(x.Exclusions), len(want), x.Exclusions)
	}
	for i, w := range want {
		if got := rows(x.Exclusions[i]); !reflect.DeepEqual(got, w) {
			t.Errorf("exclusion %d (%s) = %+v, want %+v", i+1, x.Exclusions[i].Text, got, w)
		}
	}
	if n := len(x.Conditions); n != 9 {
		t.Errorf("%d conditions, want 9 (7 + 2)", n)
	}
	for _, c := range x.Conditions {
		if c.Stage != explain.StageEvent {
			t.Errorf("condition %q has stage %q", c.Text, c.Stage)
		}
	}
	// Positions are in the rule file.
	if p := x.Exclusions[0].Position; p != "synthetic.yaml:9:14" {
		t.Errorf("first exclusion at %s, want synthetic.yaml:9:14", p)
	}
	type ind struct {
		field, fn string
		kind      explain.Kind
		value     string
		others    int
	}
	var gotInd []ind
	for _, in := range x.Indicators {
		gotInd = append(gotInd, ind{in.Field, in.Func, in.Kind, in.Value, in.OtherRules})
	}
	wantInd := []ind{
		{"kubernetes.audit.user.username", "", explain.KindEq, "system:anonymous", 1},
		{"kubernetes.audit.requestURI", "", explain.KindExists, "", 0},
		// Esql.first_source_ip is EVAL MV_FIRST(sourceIPs).
		{"kubernetes.audit.sourceIPs", "MV_FIRST", explain.KindExists, "", 0},
	}
	if !reflect.DeepEqual(gotInd, wantInd) {
		t.Errorf("indicators = %+v, want %+v", gotInd, wantInd)
	}
	var outs []string
	for _, o := range x.Outputs {
		outs = append(outs, o.Name+"="+o.Field)
	}
	// The KEEP columns, then (a per-event rule) the event's output fields.
	if got := strings.Join(outs[:3], ","); got != "kubernetes.audit.user.username=kubernetes.audit.user.username,Esql.first_source_ip=,kubernetes.audit.requestURI=kubernetes.audit.requestURI" ||
		len(outs) != 3+len(rule.DefaultOutputFields) || outs[3] != "username=kubernetes.audit.user.username" {
		t.Errorf("outputs %s", strings.Join(outs, ","))
	}
}

func TestExplainSeed000(t *testing.T) {
	s000 := builtin(t, seed000File)
	s004 := builtin(t, seed004File)
	x := explain.Explain(s000, []*rule.Compiled{s000, s004})
	if len(x.Conditions) != 4 || !x.Conditions[3].Exclusion || x.Conditions[0].Exclusion {
		t.Fatalf("conditions %+v", x.Conditions)
	}
	if len(x.Exclusions) != 1 {
		t.Fatalf("exclusions %+v", x.Exclusions)
	}
	want := []row{{"kubernetes.audit.objectRef.resource", "", explain.KindEq, "healthz|livez|readyz", false}}
	if got := rows(x.Exclusions[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("exclusion %+v, want %+v", got, want)
	}
	if p := x.Exclusions[0].Position; p != seed000File+":17:13" {
		t.Errorf("exclusion at %s", p)
	}
	got := map[string]int{}
	for _, in := range x.Indicators {
		got[fmt.Sprintf("%s %s %s", in.Field, in.Kind, in.Value)] = in.OtherRules
	}
	wantInd := map[string]int{
		"event.dataset eq kubernetes.audit_logs":                              0,
		"kubernetes.audit.annotations.authorization_k8s_io/decision eq allow": 0,
		"kubernetes.audit.user.username eq system:anonymous":                  1,
		"kubernetes.audit.user.username eq system:unauthenticated":            1,
	}
	if !reflect.DeepEqual(got, wantInd) {
		t.Errorf("indicators %v, want %v", got, wantInd)
	}
	if len(x.Outputs) != len(rule.DefaultOutputFields) || x.Outputs[0].Field != "kubernetes.audit.user.username" {
		t.Errorf("outputs %+v", x.Outputs)
	}
	var buf bytes.Buffer
	if err := x.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Detection logic", "exclusion", `"healthz", "livez", "readyz"`, "1 (elastic-k8s-anonymous-endpoint-permission-enumeration)", "decision       kubernetes.audit.annotations"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, buf.String())
		}
	}
}

func TestExplainSeed004(t *testing.T) {
	s004 := builtin(t, seed004File)
	x := explain.Explain(s004, nil)
	var stages []string
	for _, c := range x.Conditions {
		stages = append(stages, c.Stage)
	}
	if got := strings.Join(stages, ","); got != "event,event,after_stats,after_stats,after_stats,after_stats" {
		t.Errorf("stages %s", got)
	}
	if len(x.Exclusions) != 0 {
		t.Errorf("exclusions %+v", x.Exclusions)
	}
	var inds []string
	for _, in := range x.Indicators {
		inds = append(inds, in.Field+"="+in.Value)
	}
	want := "kubernetes.audit.user.username=system:anonymous,kubernetes.audit.user.username=system:unauthenticated,kubernetes.audit.user.username=," +
		"kubernetes.audit.level=RequestResponse,kubernetes.audit.level=ResponseComplete,kubernetes.audit.level=Request"
	if got := strings.Join(inds, ","); got != want {
		t.Errorf("indicators %s\nwant %s", got, want)
	}
	if len(x.Outputs) != 24 || x.Outputs[0].Name != "Esql.document_count" || x.Outputs[23].Field != "kubernetes.audit.userAgent" {
		t.Errorf("outputs %+v", x.Outputs)
	}
	var buf bytes.Buffer
	if err := x.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back explain.Explanation
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, x) {
		t.Errorf("JSON does not round-trip:\n%s", buf.String())
	}
}

// TestExplainKQLValueTrees checks KQL value lists with mixed kinds, value
// negation, ranges and nested queries.
func TestExplainKQLValueTrees(t *testing.T) {
	r := compile(t, "k.yaml", []byte(`id: k
name: K
type: query
severity: low
risk_score: 1
query: >-
  kubernetes.audit.verb:(get or list) and kubernetes.audit.responseStatus.code >= 400
  and kubernetes.audit.userAgent:(curl* or *python* or *Go-http-client) and kubernetes.audit.requestURI:/api*v1*
  and not (kubernetes.audit.user.username:system\:serviceaccount\:* or kubernetes.audit.sourceIPs:"10.0.0.1")
  and kubernetes.audit.objectRef.name:(not kube-root-ca.crt)
`))
	x := explain.Explain(r, nil)
	var got []string
	for _, in := range x.Indicators {
		got = append(got, fmt.Sprintf("%s %s %s", in.Field, in.Kind, in.Value))
	}
	want := []string{
		"kubernetes.audit.verb eq get", "kubernetes.audit.verb eq list",
		"kubernetes.audit.responseStatus.code range >= 400",
		"kubernetes.audit.userAgent starts_with curl", "kubernetes.audit.userAgent contains python", "kubernetes.audit.userAgent ends_with Go-http-client",
		"kubernetes.audit.requestURI wildcard /api*v1*",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("indicators\n%q\nwant\n%q", got, want)
	}
	var ex []string
	for _, e := range x.Exclusions {
		for _, m := range e.Matches {
			ex = append(ex, fmt.Sprintf("%s %s %s", m.Field, m.Kind, strings.Join(m.Values, "|")))
		}
	}
	wantEx := []string{"kubernetes.audit.user.username starts_with system:serviceaccount:", "kubernetes.audit.sourceIPs eq 10.0.0.1", "kubernetes.audit.objectRef.name eq kube-root-ca.crt"}
	if !reflect.DeepEqual(ex, wantEx) {
		t.Errorf("exclusions\n%q\nwant\n%q", ex, wantEx)
	}
}

// TestExplainKQLInsideESQL checks KQL("...") in a WHERE: its predicates
// join the tree at their positions inside the string, and EVAL columns of
// COALESCE(MV_*(field), default) resolve to the field.
func TestExplainKQLInsideESQL(t *testing.T) {
	r := compile(t, "kq.yaml", []byte(`id: kq
name: KQ
type: esql
severity: low
risk_score: 1
query: |
  from logs-kubernetes.audit_logs-*
  | where KQL("""kubernetes.audit.user.username:"system:anonymous" and not kubernetes.audit.userAgent:kube-probe/*""")
  | eval n = coalesce(mv_count(kubernetes.audit.sourceIPs), 0)
  | where not (n == 1)
  | keep n
`))
	x := explain.Explain(r, nil)
	if len(x.Exclusions) != 2 {
		t.Fatalf("exclusions %+v", x.Exclusions)
	}
	if e := x.Exclusions[0]; e.Position != "kq.yaml:8:76" || e.Matches[0].Kind != explain.KindStartsWith || e.Matches[0].Values[0] != "kube-probe/" {
		t.Errorf("KQL exclusion %+v", e)
	}
	if m := x.Exclusions[1].Matches[0]; m.Field != "kubernetes.audit.sourceIPs" || m.Func != "MV_COUNT" || m.Values[0] != "1" {
		t.Errorf("alias exclusion %+v", m)
	}
	if len(x.Indicators) != 1 || x.Indicators[0].Position != "kq.yaml:8:49" {
		t.Errorf("indicators %+v", x.Indicators)
	}
}

// TestExplainLineage checks that predicates on columns follow the
// compiler's lineage: a RENAME of an EVAL alias, a GROK capture, an EVAL
// that replaces the field it reads, a STATS group of an alias, and an
// output column that renames a field.
func TestExplainLineage(t *testing.T) {
	r := compile(t, "l.yaml", []byte(`id: l
name: L
type: esql
severity: low
risk_score: 1
query: |
  from logs-kubernetes.audit_logs-*
  | eval ip = mv_first(kubernetes.audit.sourceIPs), kubernetes.audit.verb = to_lower(kubernetes.audit.verb)
  | rename ip as first_ip, kubernetes.audit.userAgent as ua
  | grok kubernetes.audit.requestURI "/api/%{WORD:kubernetes.audit.apiver}/%{GREEDYDATA:rest}"
  | where not (first_ip == "10.0.0.1" or kubernetes.audit.verb == "get" or kubernetes.audit.apiver == "v1" or ua like "kube-probe/?.*")
  | stats c = count(*) by first_ip, ua
  | where not (first_ip == "127.0.0.1")
  | keep first_ip, ua, c
`))
	x := explain.Explain(r, nil)
	var got []string
	for _, e := range x.Exclusions {
		for _, m := range e.Matches {
			got = append(got, fmt.Sprintf("%s %s %s %s %s", e.Stage, m.Func, m.Field, m.Kind, strings.Join(m.Values, "|")))
		}
	}
	want := []string{
		"event MV_FIRST kubernetes.audit.sourceIPs eq 10.0.0.1",
		"event TO_LOWER kubernetes.audit.verb eq get",
		"event  kubernetes.audit.apiver eq v1",
		"event  kubernetes.audit.userAgent wildcard kube-probe/?.*",
		"after_stats MV_FIRST kubernetes.audit.sourceIPs eq 127.0.0.1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exclusions\n%q\nwant\n%q", got, want)
	}
	// The GROK capture is a column, not an event field: no indicator.
	if len(x.Indicators) != 0 {
		t.Errorf("indicators %+v", x.Indicators)
	}
	var outs []string
	for _, o := range x.Outputs {
		outs = append(outs, o.Name+"="+o.Field)
	}
	if s := strings.Join(outs, ","); s != "first_ip=,ua=kubernetes.audit.userAgent,c=" {
		t.Errorf("outputs %s", s)
	}
}
