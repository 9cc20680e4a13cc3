package alert

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var day = time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC)

func at(min, sec int) time.Time {
	return day.Add(time.Duration(min)*time.Minute + time.Duration(sec)*time.Second)
}

// huntAlerts are the alerts of a short hunt, out of time order: Elastic's
// query rule (in a run that dropped hits), its new_terms rule with a user
// agent in Japanese and accented letters, its ES|QL rule (an aggregate),
// Panther's rule (a group of 5), a dropped hit, and a user agent carrying
// a terminal escape sequence.
func huntAlerts() []*Alert {
	elastic := func(id, name string) Rule {
		return Rule{ID: id, Name: name, Severity: "medium", RiskScore: 47, Type: "query", Language: "kuery", Firing: "scheduled",
			Threat: []Threat{{Framework: "MITRE ATT&CK", Tactic: Ref{ID: "TA0001", Name: "Initial Access"}}}, Description: "A long description."}
	}
	authorized := elastic("elastic-k8s-anonymous-request-authorized", "Kubernetes Anonymous Request Authorized")
	unusual := elastic("elastic-k8s-anonymous-request-authorized-unusual-user-agent", "Kubernetes Anonymous Request Authorized by Unusual User Agent")
	unusual.Type = "new_terms"
	enum := elastic("elastic-k8s-anonymous-endpoint-permission-enumeration", "Kubernetes Potential Endpoint Permission Enumeration Attempt by Anonymous User Detected")
	enum.Type, enum.Language = "esql", "esql"
	panther := Rule{ID: "Kubernetes.API.AnonymousAccess", Name: "Kubernetes Anonymous API Access Detected", Severity: "info", RiskScore: 21, Language: "esql", Firing: "per_event"}
	run := &Window{Start: at(9, 0), End: at(15, 0), MaxSignals: 100}
	event := func(ua, uri, resource, verb string, code int, decision, reason string) (Fields, map[string]any) {
		fs := Fields{{"username", "system:anonymous"}, {"source_ips", []any{"203.0.113.7"}}, {"user_agent", ua}, {"verb", verb},
			{"resource", resource}, {"namespace", "kube-system"}, {"request_uri", uri}, {"response_code", int64(code)},
			{"decision", decision}, {"cluster", nil}}
		doc := map[string]any{"kubernetes": map[string]any{"audit": map[string]any{"annotations": map[string]any{
			"authorization_k8s_io/decision": decision, "authorization_k8s_io/reason": reason}}}}
		return fs, doc
	}
	f1, d1 := event("kubectl/v1.30.0 (linux/amd64)", "/api/v1/namespaces/kube-system/secrets", "secrets", "list", 200, "allow",
		`RBAC: allowed by ClusterRoleBinding "anon-read" of ClusterRole "view" to Group "system:unauthenticated"`)
	f2, d2 := event("Mozilla/5.0 (X11; 日本語) Ünïcødé-Scanner/2.1", "/api/v1/namespaces/kube-system/pods?limit=500", "pods", "list", 200, "allow",
		`RBAC: allowed by ClusterRoleBinding "anon-read"`)
	f3, d3 := event("curl/8.5.0\x1b[31m", "/version", "", "get", 403, "forbid", "")
	f4, d4 := event("kubectl/v1.30.0 (linux/amd64)", "/api/v1/namespaces/kube-system/configmaps", "configmaps", "list", 200, "allow", "")
	w := *run
	return []*Alert{
		{ID: "a3", Timestamp: at(15, 0), Title: enum.Name, Rule: enum, Window: &Window{Start: at(9, 0), End: at(15, 0), MaxSignals: 100},
			Fields: Fields{{"Esql.document_count", int64(8)}, {"Esql.kubernetes_audit_verb_values", []any{"get", "list"}},
				{"Esql.kubernetes_audit_responseStatus_code_values", []any{int64(401), int64(403), int64(404)}},
				{"Esql.kubernetes_audit_decision_values", []any{"forbid"}},
				{"Esql.kubernetes_audit_user_username_values", []any{"system:anonymous"}},
				{"Esql.kubernetes_audit_requestURI_values", []any{"/api/v1/nodes", "/api/v1/secrets"}},
				{"kubernetes.audit.sourceIPs", "198.51.100.23"}, {"kubernetes.audit.userAgent", "kubectl-enum/0.1"}},
			Evidence: &Evidence{Total: 8, Events: []EventRef{{at(12, 0), "e-0", "audit.log:3"}, {at(12, 1), "e-1", "audit.log:4"}}}},
		{ID: "a1", Timestamp: at(12, 5), Title: "anonymous list of secrets", Rule: authorized, Fields: f1, Event: d1, Window: run, Origin: "audit.log:7"},
		{ID: "a2", Timestamp: at(12, 7), Rule: unusual, Fields: append(Fields{{"new_terms", []any{"Mozilla"}}}, f2...), Event: d2, Origin: "audit.log:9"},
		{ID: "a4", Timestamp: at(11, 0), Rule: panther, Fields: f3, Event: d3, Origin: "audit.log:2",
			Group: &Group{Key: "anonymous_access_curl", Count: 5, FirstSeen: at(11, 0), LastSeen: at(14, 0)}},
		{ID: "a5", Timestamp: at(13, 30), Rule: authorized, Fields: f4, Event: d4, Window: &w, Dropped: true, Origin: "audit.log:40"},
	}
}

// tally says the query rule's run dropped 50 hits.
func tally(rule string, end time.Time) int64 {
	if rule == "elastic-k8s-anonymous-request-authorized" && end.Equal(at(15, 0)) {
		return 50
	}
	return 0
}

// render writes the hunt's alerts through a sink and returns the output.
func render(t *testing.T, mk func(w *bytes.Buffer) Sink) string {
	t.Helper()
	var b bytes.Buffer
	s := mk(&b)
	for _, a := range huntAlerts() {
		if err := s.Write(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if tl, ok := s.(Tallied); ok {
		tl.SetTally(tally)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n%s", path, got)
	}
}

// TestTableWidths renders the table at 80 and 200 columns and wide: no
// line is wider than the terminal, rows are in time order, a rule name
// is cut in its middle (both Elastic rules stay apart), cells are cut by
// display width (a wide character is never split), and the escape
// sequence in a user agent is not printed.
func TestTableWidths(t *testing.T) {
	for _, c := range []struct {
		name string
		opts TableOptions
	}{
		{"table-80.golden", TableOptions{Width: 80}},
		{"table-200.golden", TableOptions{Width: 200}},
		{"table-wide.golden", TableOptions{Wide: true, Width: 80}},
		{"table-verbose-120.golden", TableOptions{Width: 120, Verbose: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := render(t, func(w *bytes.Buffer) Sink { return NewTableSink(w, c.opts) })
			golden(t, c.name, out)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			for _, l := range lines {
				if !c.opts.Wide && displayWidth(l) > c.opts.Width {
					t.Errorf("line of %d columns: %q", displayWidth(l), l)
				}
				if strings.ContainsRune(l, 0x1b) || strings.ContainsRune(l, '\uFFFD') && !strings.Contains(l, "curl/8.5.0") {
					t.Errorf("escape or replacement where none belongs: %q", l)
				}
			}
			if lines[0] != "2025-05-14 (UTC)" || !strings.HasPrefix(lines[1], "TIME") {
				t.Fatalf("caption and header: %q %q", lines[0], lines[1])
			}
			var times []string
			for _, l := range lines[2:] {
				if len(l) > 8 && l[2] == ':' {
					times = append(times, l[:8])
				}
			}
			if strings.Join(times, " ") != "09:11:00 09:12:05 09:12:07 09:13:30 09:15:00" {
				t.Errorf("rows not in time order: %v", times)
			}
		})
	}
}

// TestTableColor colours the severity only, and pads by the text's width.
func TestTableColor(t *testing.T) {
	out := render(t, func(w *bytes.Buffer) Sink { return NewTableSink(w, TableOptions{Width: 120, Color: true}) })
	if !strings.Contains(out, "\x1b[33mmedium\x1b[0m") || !strings.Contains(out, "\x1b[2minfo\x1b[0m") || !strings.Contains(out, "\x1b[2mdropped\x1b[0m") {
		t.Fatalf("severities not coloured:\n%q", out)
	}
	plain := render(t, func(w *bytes.Buffer) Sink { return NewTableSink(w, TableOptions{Width: 120}) })
	stripped := strings.NewReplacer("\x1b[33m", "", "\x1b[2m", "", "\x1b[0m", "").Replace(out)
	if stripped != plain || strings.Contains(plain, "\x1b") {
		t.Fatalf("colour changed the layout:\n%s\n%s", stripped, plain)
	}
}

// TestCut never splits a character and counts wide ones twice.
func TestCut(t *testing.T) {
	f := func(s string, w int, want string) {
		t.Helper()
		if got := cut(s, w); got != want || displayWidth(got) > w {
			t.Errorf("cut(%q, %d) = %q (%d columns), want %q", s, w, got, displayWidth(got), want)
		}
	}
	f("abcdef", 6, "abcdef")
	f("abcdef", 4, "abc…")
	f("日本語のUA", 6, "日本…")
	f("日本語のUA", 5, "日本…")
	f("Ünïcødé", 4, "Ünï…")
	f("e\u0301e\u0301e\u0301", 2, "e\u0301…")
	if got := cutMiddle("Anonymous Request Authorized by Unusual User Agent", 24); got != "Anonymous Re… User Agent" {
		t.Errorf("cutMiddle: %q", got)
	}
	if got := clean("a\x1b[31mb\tc\xff"); got != "a\uFFFD[31mb c\uFFFD" {
		t.Errorf("clean: %q", got)
	}
}

// TestCSV: a header, a row per alert in time order, values whole, the
// run's tally, and formula-like cells quoted.
func TestCSV(t *testing.T) {
	out := render(t, func(w *bytes.Buffer) Sink { return NewCSVSink(w) })
	golden(t, "alerts.golden.csv", out)
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || rows[0][0] != "time" || len(rows[0]) != len(csvHeader) {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	if rows[2][3] != "Kubernetes Anonymous Request Authorized" || rows[2][20] != "50" || rows[3][6] != "Mozilla/5.0 (X11; 日本語) Ünïcødé-Scanner/2.1" {
		t.Fatalf("rows: %v\n%v", rows[2], rows[3])
	}
}

// TestDocuments: -o json and -o yaml write one document with the alerts in
// time order, each with a slim rule, and the rules once; the dropped hit
// is marked; every alert of the capped run says how many it dropped.
func TestDocuments(t *testing.T) {
	out := render(t, func(w *bytes.Buffer) Sink { return NewJSONDocumentSink(w, false) })
	var doc struct {
		Alerts []map[string]any `json:"alerts"`
		Rules  map[string]Rule  `json:"rules"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, a := range doc.Alerts {
		order = append(order, a["id"].(string))
		r := a["rule"].(map[string]any)
		if len(r) != 4 || r["id"] == nil || r["severity"] == nil {
			t.Errorf("alert %s: rule %v, want id, name, severity, risk score", a["id"], r)
		}
	}
	if strings.Join(order, " ") != "a4 a1 a2 a5 a3" {
		t.Errorf("order %v", order)
	}
	if len(doc.Rules) != 4 || doc.Rules["elastic-k8s-anonymous-request-authorized"].Threat[0].Tactic.ID != "TA0001" {
		t.Errorf("rules section: %+v", doc.Rules)
	}
	if doc.Alerts[1]["window"].(map[string]any)["dropped"] != float64(50) || doc.Alerts[3]["dropped"] != true {
		t.Errorf("tally or dropped mark: %v %v", doc.Alerts[1]["window"], doc.Alerts[3]["dropped"])
	}
	full := render(t, func(w *bytes.Buffer) Sink { return NewJSONDocumentSink(w, true) })
	if !strings.Contains(full, `"description": "A long description."`) || strings.Count(full, "A long description.") != 4+3 {
		t.Errorf("with rule details, %d descriptions", strings.Count(full, "A long description."))
	}
	y := render(t, func(w *bytes.Buffer) Sink { return NewYAMLDocumentSink(w, false) })
	var back any
	if err := yaml.Unmarshal([]byte(y), &back); err != nil {
		t.Fatal(err)
	}
	bj, _ := json.Marshal(back)
	var fromYAML, fromJSON any
	_ = json.Unmarshal(bj, &fromYAML)
	_ = json.Unmarshal([]byte(out), &fromJSON)
	if a, b := mustJSON(fromYAML), mustJSON(fromJSON); a != b {
		t.Errorf("the YAML document is not the JSON one:\n%s\n%s", a, b)
	}
	if !strings.HasPrefix(y, "alerts:\n  - id: a4\n") {
		t.Errorf("YAML does not keep the order of keys:\n%.200s", y)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestJSONLinesSlim: NDJSON alerts carry a slim rule unless asked.
func TestJSONLinesSlim(t *testing.T) {
	for _, details := range []bool{false, true} {
		var b bytes.Buffer
		s := NewJSONLinesSink(&b, details)
		a := huntAlerts()[1]
		if err := s.Write(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(b.String(), "A long description."); got != details {
			t.Errorf("ruleDetails %v: description written %v", details, got)
		}
		if a.Rule.Description == "" {
			t.Fatal("the sink changed the alert")
		}
	}
}
