package main

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestCloudSamplesRaiseSeedAlerts scans every cloud sample (EKS, AKS, GKE,
// in each export shape) with seeds 000 and 003 and checks which events each
// rule raises (events grouped by seed 003's dedup key count as raised).
func TestCloudSamplesRaiseSeedAlerts(t *testing.T) {
	dir, err := filepath.Abs("../../../shared/anchors/cloud-samples")
	if err != nil {
		t.Fatal(err)
	}
	const s000, s003 = "elastic-k8s-anonymous-request-authorized", "Kubernetes.API.AnonymousAccess"
	cases := []struct {
		file      string
		want000   string
		want003   string
		wantCloud string
	}{
		// The anonymous configmap read alerts for both; the anonymous 403
		// only for seed 003 (grouped with the first: same user agent).
		{"eks-cloudwatch-subscription.json", "0b6c5e2a-4f91-4d3e-a7c8-5e1d9b2f6a03", "0b6c5e2a-4f91-4d3e-a7c8-5e1d9b2f6a03 6e2f8d41-0a7b-4c59-9e13-c4b7a2d5f816", "aws"},
		{"eks-cloudwatch-subscription.awslogs-event.json", "0b6c5e2a-4f91-4d3e-a7c8-5e1d9b2f6a03", "0b6c5e2a-4f91-4d3e-a7c8-5e1d9b2f6a03 6e2f8d41-0a7b-4c59-9e13-c4b7a2d5f816", "aws"},
		{"eks-filter-log-events.json", "d976bfc6-a2bc-49d5-bdeb-074441e0b875", "d976bfc6-a2bc-49d5-bdeb-074441e0b875 edf35e8d-92c3-4507-9bc6-4dd9cf068bcf", "aws"},
		{"aks-records.json", "c2f5a3d1-8e4b-4f0a-9b7c-2d6e1f3a5b90", "9d84e6b2-3c1f-4a7e-8f05-b6a2c9d1e374 c2f5a3d1-8e4b-4f0a-9b7c-2d6e1f3a5b90", "azure"},
		// Seed 000's health-check quirk: the anonymous /readyz (kube-probe,
		// 127.0.0.1) alerts for it; seed 003 excludes it twice over.
		{"gke-logentry.json", "3f1c2a9e-7b4d-4c1e-9a55-0d2e8b6f4a11 e973134d-b4d5-4e2f-92b8-82bba13fdb92", "3f1c2a9e-7b4d-4c1e-9a55-0d2e8b6f4a11 b7e0d6c4-2f38-4e5a-8c19-6a7f3d2e9b40 k8s-nonmatch-0001", "gcp"},
	}
	for _, c := range cases {
		out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--rule", s000, "--rule", s003, filepath.Join(dir, c.file))
		if code != 2 {
			t.Fatalf("%s: exit %d\n%s", c.file, code, errOut)
		}
		raised := map[string][]string{}
		for _, a := range alertsOf(t, out) {
			rule := a["rule"].(map[string]any)["id"].(string)
			ev := a["event"].(map[string]any)
			if p, _ := ev["cloud"].(map[string]any)["provider"].(string); p != c.wantCloud {
				t.Errorf("%s: cloud.provider %q", c.file, p)
			}
			raised[rule] = append(raised[rule], ev["kubernetes"].(map[string]any)["audit"].(map[string]any)["auditID"].(string))
			if g, ok := a["group"].(map[string]any); ok {
				for _, s := range g["samples"].([]any) {
					id := s.(map[string]any)["kubernetes"].(map[string]any)["audit"].(map[string]any)["auditID"].(string)
					raised[rule] = append(raised[rule], id)
				}
			}
		}
		for rule, want := range map[string]string{s000: c.want000, s003: c.want003} {
			ids := uniq(raised[rule])
			if got := strings.Join(ids, " "); got != want {
				t.Errorf("%s: %s raised %q, want %q", c.file, rule, got, want)
			}
		}
	}
}

func uniq(ss []string) []string {
	sort.Strings(ss)
	var out []string
	for i, s := range ss {
		if i == 0 || s != ss[i-1] {
			out = append(out, s)
		}
	}
	return out
}
