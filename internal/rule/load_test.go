package rule

import (
	"errors"
	"strings"
	"testing"
)

const goodRule = `id: test-rule
name: Test rule
description: A test.
type: query
query: |
  event.dataset : "kubernetes.audit_logs"
    and kubernetes.audit.user.username:"system:anonymous"
severity: medium
risk_score: 47
threat:
  - tactic: {id: TA0001, name: Initial Access}
    technique:
      - id: T1078
        name: Valid Accounts
        subtechnique: [{id: T1078.001, name: Default Accounts}]
tests:
  - name: anonymous
    expect: alert
    events:
      - {"kind": "Event", "user": {"username": "system:anonymous"}}
`

func TestParseGood(t *testing.T) {
	r, err := Parse("good.yaml", []byte(goodRule))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "test-rule" || r.Language != LangKuery || r.Schedule.Interval.D().Minutes() != 5 || r.Schedule.MaxSignals != 100 || r.Schedule.Lookback().Minutes() != 6 {
		t.Fatalf("defaults not applied: %+v", r.Schedule)
	}
	if r.Threat[0].Framework != "MITRE ATT&CK" || r.Threat[0].Technique[0].Subtechnique[0].ID != "T1078.001" {
		t.Fatalf("threat: %+v", r.Threat)
	}
	if r.Positions.Query.String() != "good.yaml:6:3" {
		t.Fatalf("query position %s", r.Positions.Query)
	}
	c, err := Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Outputs) != len(DefaultOutputFields) || c.Matcher == nil {
		t.Fatalf("compiled: %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	f := func(name, text string, code error, want string) {
		t.Helper()
		_, err := Parse("r.yaml", []byte(text))
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if code != nil && !errors.Is(err, code) {
			t.Fatalf("%s: %v is not %v", name, err, code)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %q does not contain %q", name, err, want)
		}
	}
	f("unknown key", strings.Replace(goodRule, "risk_score: 47", "risk_score: 47\nrisk: 3", 1), ErrUnknown, `r.yaml:10:1: unknown key "risk"`)
	f("nested unknown key", strings.Replace(goodRule, "name: Initial Access}", "name: Initial Access, url: x}", 1), ErrUnknown, `r.yaml:11:48: unknown key "url"`)
	f("wrong type", strings.Replace(goodRule, "risk_score: 47", "risk_score: high", 1), ErrType, "r.yaml:9:13:")
	f("kql error points into the file", strings.Replace(goodRule, `username:"system:anonymous"`, `username:("system:anonymous" or`, 1), nil, "r.yaml:7:")
	f("bad severity", strings.Replace(goodRule, "severity: medium", "severity: urgent", 1), ErrInvalid, `r.yaml:8:1: severity "urgent"`)
	f("unknown type", strings.Replace(goodRule, "type: query", "type: eql", 1), ErrInvalid, `r.yaml:4:1: unknown rule type "eql"`)
	f("yaml syntax", "id: [unclosed\n", ErrSyntax, "r.yaml:")
	f("bad test", strings.Replace(goodRule, "expect: alert", "expect: maybe", 1), ErrInvalid, "r.yaml:17:5: test 1: expect must be alert or no_alert")
	f("mixed test", strings.Replace(goodRule, "expect: alert", "expect: alert\n    ExpectedResult: true", 1), ErrInvalid, "mixes")
	f("duplicate key", strings.Replace(goodRule, "risk_score: 47", "risk_score: 47\nrisk_score: 48", 1), nil, "r.yaml:")
}

func TestTemplate(t *testing.T) {
	tm, err := ParseTemplate(`from [{{ kubernetes.audit.sourceIPs[0] }}] to [{{kubernetes.audit.requestURI | "?"}}] ua {{ kubernetes.audit.userAgent }}`)
	if err != nil {
		t.Fatal(err)
	}
	_ = tm
	for _, bad := range []string{"{{", "{{ a[x] }}", "{{ }}", `{{ a | nope }}`} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Fatalf("template %q accepted", bad)
		}
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]string{"5m": "5m0s", "7d": "168h0m0s", "90s": "1m30s"} {
		d, err := ParseDuration(in)
		if err != nil || d.String() != want {
			t.Fatalf("ParseDuration(%s) = %v %v", in, d, err)
		}
	}
	if d, err := ParseDateMath("now-7d"); err != nil || d.Hours() != 168 {
		t.Fatalf("now-7d = %v %v", d, err)
	}
	for _, bad := range []string{"-5m", "5x", "now+1d", "yesterday"} {
		if _, err := ParseDateMath(bad); err == nil {
			t.Fatalf("ParseDateMath(%q) accepted", bad)
		}
	}
}
