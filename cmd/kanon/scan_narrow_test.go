package main

import (
	"strings"
	"testing"
	"time"
)

const huntLog = "testdata/scan/hunt.log"

// alertRules returns the rule id of every alert.
func alertRules(as []map[string]any) map[string]int {
	out := map[string]int{}
	for _, a := range as {
		out[a["rule"].(map[string]any)["id"].(string)]++
	}
	return out
}

// TestScanSinceUntil judges only the events in range, and says how many
// were left out (of those a rule could match: the driver's prefilter drops
// the authenticated controller's request before any rule sees it).
func TestScanSinceUntil(t *testing.T) {
	out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--since", "2025-05-14T09:02:00Z", "--until", "2025-05-14T09:05:00Z", huntLog)
	as := alertsOf(t, out)
	for _, a := range as {
		ts := a["@timestamp"].(string)
		if ts < "2025-05-14T09:02:00Z" || ts >= "2025-05-14T09:05:00Z" {
			t.Errorf("alert at %s", ts)
		}
	}
	if code != 2 || len(as) != 5 || !strings.Contains(errOut, "events judged: 2025-05-14T09:02:00Z to 2025-05-14T09:05:00Z; 14 outside it left out") {
		t.Fatalf("exit %d, %d alerts\n%s", code, len(as), errOut)
	}
	// Everything is long ago: a relative --since leaves nothing.
	if out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--since", "1h", huntLog); code != 0 || out != "" || !strings.Contains(errOut, "17 outside it left out") {
		t.Fatalf("--since 1h: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "scan", "--since", "yesterday", huntLog); code != 1 || !strings.Contains(errOut, `--since: cannot read "yesterday"`) {
		t.Fatalf("--since yesterday: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "scan", "--since", "2025-05-15", "--until", "2025-05-14", huntLog); code != 1 || !strings.Contains(errOut, "is not before --until") {
		t.Fatalf("reversed range: exit %d\n%s", code, errOut)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2025, 5, 14, 12, 0, 0, 0, time.UTC)
	f := func(s, want string) {
		t.Helper()
		got, err := parseWhen(s, now)
		if err != nil || got.UTC().Format(time.RFC3339) != want {
			t.Errorf("parseWhen(%q) = %v, %v; want %s", s, got, err, want)
		}
	}
	f("1h", "2025-05-14T11:00:00Z")
	f("90m", "2025-05-14T10:30:00Z")
	f("2d", "2025-05-12T12:00:00Z")
	f("1w", "2025-05-07T12:00:00Z")
	f("2025-05-01", "2025-05-01T00:00:00Z")
	f("2025-05-14T09:30:00+02:00", "2025-05-14T07:30:00Z")
	for _, bad := range []string{"-1h", "0s", "soon", "1x", "d"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) takes it", bad)
		}
	}
}

// TestScanRuleNarrowing: --min-severity and --disable-rule leave rules out;
// unknown values are errors.
func TestScanRuleNarrowing(t *testing.T) {
	out, _, _ := runCLI(t, "", "scan", "-o", "jsonl", huntLog)
	all := alertRules(alertsOf(t, out))
	out, _, _ = runCLI(t, "", "scan", "-o", "jsonl", "--min-severity", "medium", huntLog)
	got := alertRules(alertsOf(t, out))
	if all["Kubernetes.API.AnonymousAccess"] == 0 || got["Kubernetes.API.AnonymousAccess"] != 0 || got[authorizedRule] != all[authorizedRule] {
		t.Fatalf("--min-severity medium: %v of %v", got, all)
	}
	out, _, _ = runCLI(t, "", "scan", "-o", "jsonl", "--disable-rule", authorizedRule, huntLog)
	if got := alertRules(alertsOf(t, out)); got[authorizedRule] != 0 || len(got) != len(all)-1 {
		t.Fatalf("--disable-rule: %v", got)
	}
	for _, c := range [][]string{{"--min-severity", "dire"}, {"--disable-rule", "nope"}, {"--min-severity", "critical"}} {
		if _, errOut, code := runCLI(t, "", append([]string{"scan"}, append(c, huntLog)...)...); code != 1 || errOut == "" {
			t.Errorf("%v: exit %d %s", c, code, errOut)
		}
	}
}

// TestScanCluster names the cluster of a log file's events.
func TestScanCluster(t *testing.T) {
	out, _, _ := runCLI(t, "", "scan", "-o", "jsonl", "--rule", authorizedRule, huntLog)
	for _, a := range alertsOf(t, out) {
		if c := a["fields"].(map[string]any)["cluster"]; c != nil {
			t.Fatalf("cluster without --cluster: %v", c)
		}
	}
	out, errOut, _ := runCLI(t, "", "scan", "-o", "jsonl", "--cluster", "prod-eu-1", "--rule", authorizedRule, huntLog)
	as := alertsOf(t, out)
	for _, a := range as {
		orch := a["event"].(map[string]any)["orchestrator"].(map[string]any)
		if a["fields"].(map[string]any)["cluster"] != "prod-eu-1" || orch["cluster"].(map[string]any)["name"] != "prod-eu-1" {
			t.Fatalf("alert %s: cluster %v", a["id"], a["fields"])
		}
	}
	if len(as) == 0 || !strings.Contains(errOut, "cluster of events that name none: prod-eu-1") {
		t.Fatalf("%d alerts\n%s", len(as), errOut)
	}
}

// TestScanFieldTypesAreStable: in every alert a list field is a list and
// a single field one value, whatever the event.
func TestScanFieldTypesAreStable(t *testing.T) {
	out, _, _ := runCLI(t, "", "scan", "-o", "jsonl", huntLog)
	kinds := map[string]map[string]bool{} // field -> JSON kinds seen
	for _, a := range alertsOf(t, out) {
		for k, v := range a["fields"].(map[string]any) {
			kind := "value"
			switch v.(type) {
			case nil:
				continue
			case []any:
				kind = "list"
			case map[string]any:
				kind = "object"
			}
			if kinds[k] == nil {
				kinds[k] = map[string]bool{}
			}
			kinds[k][kind] = true
		}
	}
	for k, ks := range kinds {
		if len(ks) != 1 {
			t.Errorf("field %s has the kinds %v", k, ks)
		}
	}
	for k, want := range map[string]string{"source_ips": "list", "username": "value", "response_code": "value",
		"Esql.kubernetes_audit_verb_values": "list", "Esql.kubernetes_audit_user_username_values": "list", "new_terms": "list"} {
		if !kinds[k][want] {
			t.Errorf("field %s: kinds %v, want %s", k, kinds[k], want)
		}
	}
}

// TestScanRuleDetails: alerts name their rule briefly; --rule-details
// repeats it whole; -o json describes each rule once.
func TestScanRuleDetails(t *testing.T) {
	out, _, _ := runCLI(t, "", "scan", "-o", "jsonl", "--rule", authorizedRule, huntLog)
	for _, a := range alertsOf(t, out) {
		if r := a["rule"].(map[string]any); len(r) != 4 || r["threat"] != nil {
			t.Fatalf("slim rule: %v", r)
		}
	}
	out, _, _ = runCLI(t, "", "scan", "-o", "jsonl", "--rule-details", "--rule", authorizedRule, huntLog)
	if r := alertsOf(t, out)[0]["rule"].(map[string]any); r["threat"] == nil || r["references"] == nil {
		t.Fatalf("--rule-details: %v", r)
	}
	out, _, _ = runCLI(t, "", "scan", "-o", "json", huntLog)
	d := docOf(t, out)
	for id := range alertRules(d.Alerts) {
		if r := d.Rules[id]; r == nil || r["threat"] == nil || r["id"] != id {
			t.Errorf("rules section lacks %s: %v", id, r)
		}
	}
}
