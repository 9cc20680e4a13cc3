package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve --check with a configuration of many errors prints each of them,
// once: the configuration's, the certificate's, the token file's and the
// rule files' together (a list of rule errors used to hide the others,
// and a missing certificate was reported twice).
func TestServeCheckEachErrorOnce(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules")
	os.Mkdir(rules, 0o700)
	os.WriteFile(filepath.Join(rules, "x.yaml"), []byte("id: x\nname: x\ntype: query\nlanguage: kuery\nquery: 'a:('\nseverity: low\nrisk_score: 1\n"), 0o600)
	cfg := filepath.Join(dir, "kanon.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: "127.0.0.1:8443"
token_files: [%s]
max_in_flight: -1
log:
  format: xml
store: "redis://h:1/x"
outputs:
  - type: file
    path: %s
    min_severity: dire
`, filepath.Join(dir, "no-token"), filepath.Join(dir, "alerts.ndjson"))), 0o600)
	var out, errb bytes.Buffer
	cmd := newRootCmd(&streams{in: strings.NewReader(""), out: &out, err: &errb})
	cmd.SetArgs([]string{"serve", "--check", "--config", cfg, "--rules", rules})
	err := cmd.Execute()
	if err == nil {
		t.Fatalf("--check passed a bad configuration: %s", out.String())
	}
	var stderr bytes.Buffer
	if code := exitCode(err, &stderr); code != 1 {
		t.Fatalf("exit %d", code)
	}
	got := stderr.String()
	for _, want := range []string{
		"listen: the HTTPS webhook needs tls.cert_file and tls.key_file",
		"max_in_flight: must be positive",
		`log.format: "xml" is not text or json`,
		`store: invalid redis store URL`,
		`min_severity: "dire"`,
		"token_files: open " + filepath.Join(dir, "no-token"),
		"x.yaml:5:12: query: expected a value",
	} {
		if n := strings.Count(got, want); n != 1 {
			t.Errorf("%q printed %d times, want once:\n%s", want, n, got)
		}
	}
	if strings.Contains(got, "TLS needs a certificate file and a key file") {
		t.Errorf("the missing certificate is reported twice:\n%s", got)
	}
}

// What README says of the file output and alerts raised again: a batch
// that kube-apiserver sends again after its answer was lost, or after a
// restart, raises nothing a second time (the ids raised are in the state);
// the file, rotated by size, holds each delivery once across the current
// file and the one rotated last; a dedup group's update is a delivery of
// its own, a new line with the same id and a larger group.count.
func TestServeFileOutputClaims(t *testing.T) {
	bin := kanonBinary(t)
	dir := t.TempDir()
	alerts := filepath.Join(dir, "alerts.ndjson")
	cfg := filepath.Join(dir, "kanon.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: ""
insecure_listen: 127.0.0.1:0
state_dir: %s
outputs:
  - type: file
    path: %s
    max_size: 64KiB
    max_backups: 1
`, filepath.Join(dir, "state"), alerts)), 0o600)
	lines, _ := handoverEvents()
	batches := tenLineBatches(lines)
	half := len(batches) / 2
	p := startServe(t, bin, true, "--config", cfg)
	url := "http://" + p.waitAddr(t) + "/audit/lab"
	postBatches(t, http.DefaultClient, url, batches, 0, half)
	postBatches(t, http.DefaultClient, url, batches, half-5, half) // answers lost: sent again
	p.stop(t)
	p = startServe(t, bin, true, "--config", cfg)
	url = "http://" + p.waitAddr(t) + "/audit/lab"
	postBatches(t, http.DefaultClient, url, batches, half-3, len(batches)) // sent again after the restart
	postBatches(t, http.DefaultClient, url, batches, len(batches)-4, len(batches))
	p.stop(t)

	files, _ := filepath.Glob(filepath.Join(dir, "alerts-*.ndjson"))
	if len(files) != 1 {
		t.Fatalf("rotated files %v, want one (max_backups 1); the test needs the rotation", files)
	}
	files = append(files, alerts)
	seen := map[string]bool{}
	counts := map[string][]int64{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var a struct {
				ID    string `json:"id"`
				Group *struct {
					Count int64 `json:"count"`
				} `json:"group"`
			}
			if err := json.Unmarshal(l, &a); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			key := a.ID
			if a.Group != nil {
				key = fmt.Sprintf("%s#%d", a.ID, a.Group.Count)
				counts[a.ID] = append(counts[a.ID], a.Group.Count)
			}
			if seen[key] {
				t.Fatalf("delivery %s written twice", key)
			}
			seen[key] = true
		}
	}
	updated := 0
	for id, cs := range counts {
		for i := 1; i < len(cs); i++ {
			if cs[i] <= cs[i-1] {
				t.Fatalf("group %s delivered with counts %v: an update must grow", id, cs)
			}
		}
		if len(cs) > 1 {
			updated++
		}
	}
	if updated == 0 {
		t.Fatalf("no dedup group delivered as an update (counts %v)", counts)
	}
}
