package ruletest_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/ruletest"
	"github.com/kanon-dev/kanon/rules"
)

// TestSeed003OnPantherEKSAnonymousEvents feeds the test events of Panther's
// EKS-specific anonymous access rule (Amazon.EKS.AnonymousAPIAccess, in
// ../shared/anchors/panther/anonymous_api_access.yml) through the readers
// and seed 003's rule, and checks Panther's expected verdicts. The two
// Panther rules differ in one place, which this test pins: seed 003
// excludes every request to /healthz, so an ELB health check of /healthz
// from a public address does not alert, where the EKS rule (which excludes
// ELB checks from private ranges only) does.
func TestSeed003OnPantherEKSAnonymousEvents(t *testing.T) {
	anchor, err := filepath.Abs("../../../shared/anchors/panther/anonymous_api_access.yml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile(anchor)
	if err != nil {
		t.Fatalf("reference material missing: %v", err)
	}
	i := strings.Index(string(spec), "\nTests:\n")
	if i < 0 {
		t.Fatal("no Tests in the anchor")
	}
	seed, err := fs.ReadFile(rules.FS, "panther/kubernetes_anonymous_api_access.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j := strings.Index(string(seed), "\ntests:\n")
	text := string(seed[:j]) + "\ntests:\n" + string(spec[i+len("\nTests:\n"):])
	r, err := rule.Parse("seed003-with-eks-tests.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	results := ruletest.Run(context.Background(), []*rule.Compiled{c}, formats.Registry())
	if len(results) != 8 {
		t.Fatalf("%d tests, want 8", len(results))
	}
	for _, res := range results {
		diverges := res.Test == "ELB Health Check from Public IP"
		if res.Pass == diverges {
			t.Errorf("%s: pass=%v (%s, got %s) %v", res.Test, res.Pass, res.Expected, res.Got, res.Problems)
		}
	}
}
