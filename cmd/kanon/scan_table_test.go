package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/scan/name.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "scan", name)
	if *updateGolden {
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

// runTTY runs the CLI with stdout taken for a terminal.
func runTTY(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRootCmd(&streams{in: strings.NewReader(""), out: &out, err: &errb, outTTY: true})
	cmd.SetArgs(args)
	code := 0
	if err := cmd.Execute(); err != nil {
		code = exitCode(err, &errb)
	}
	return out.String(), code
}

// TestScanTable renders the hunt log's alerts at 80 and 200 columns and
// wide: lines fit, rows are in time order, both Elastic rules read apart,
// the decision and the response code are shown.
func TestScanTable(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	for _, c := range []struct {
		golden string
		args   []string
		width  int
	}{
		{"hunt-80.golden", []string{"-o", "table", "--width", "80"}, 80},
		{"hunt-200.golden", []string{"-o", "table", "--width", "200"}, 200},
		{"hunt-wide.golden", []string{"-o", "wide"}, 0},
	} {
		out, _, code := runCLI(t, "", append(append([]string{"scan"}, c.args...), "testdata/scan/hunt.log")...)
		if code != 2 {
			t.Fatalf("%v: exit %d", c.args, code)
		}
		checkGolden(t, c.golden, out)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		last := ""
		for _, l := range lines[2:] {
			if n := len([]rune(l)); c.width > 0 && n > c.width {
				t.Errorf("%s: a line of %d characters: %q", c.golden, n, l)
			}
			if l[:8] < last {
				t.Errorf("%s: rows not in time order at %q", c.golden, l)
			}
			last = l[:8]
		}
		if !strings.Contains(out, "403 forbid") && !strings.Contains(out, "403  ") {
			t.Errorf("%s: no response code or decision:\n%s", c.golden, out)
		}
	}
}

// TestScanTableColor: severities are coloured on a terminal, not with
// NO_COLOR, nor off a terminal; --color always and never override.
func TestScanTableColor(t *testing.T) {
	const log = "testdata/scan/hunt.log"
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm")
	if out, _ := runTTY(t, "scan", "-q", "--width", "120", log); !strings.Contains(out, "\x1b[33mmedium\x1b[0m") {
		t.Fatalf("no colour on a terminal:\n%q", out)
	}
	if out, _ := runTTY(t, "scan", "-q", "--width", "120", "--color", "never", log); strings.Contains(out, "\x1b[") {
		t.Fatal("--color never coloured")
	}
	t.Setenv("NO_COLOR", "1")
	if out, _ := runTTY(t, "scan", "-q", "--width", "120", log); strings.Contains(out, "\x1b[") || !strings.Contains(out, "SEVERITY") {
		t.Fatalf("NO_COLOR not respected:\n%q", out)
	}
	if out, _ := runTTY(t, "scan", "-q", "--width", "120", "--color", "always", log); !strings.Contains(out, "\x1b[33m") {
		t.Fatal("--color always did not colour")
	}
	t.Setenv("NO_COLOR", "")
	if out, _, _ := runCLI(t, "", "scan", "-q", "-o", "table", log); strings.Contains(out, "\x1b[") {
		t.Fatal("coloured off a terminal")
	}
}

// TestScanOutputs: -o yaml and -o csv write what -o json does, in their
// form; an unknown -o is an error that lists them.
func TestScanOutputs(t *testing.T) {
	const log = "testdata/scan/hunt.log"
	js, _, _ := runCLI(t, "", "scan", "-q", "-o", "json", log)
	doc := docOf(t, js)
	y, _, code := runCLI(t, "", "scan", "-q", "-o", "yaml", log)
	var yd struct {
		Alerts []map[string]any          `yaml:"alerts"`
		Rules  map[string]map[string]any `yaml:"rules"`
	}
	if err := yaml.Unmarshal([]byte(y), &yd); err != nil || code != 2 || len(yd.Alerts) != len(doc.Alerts) || len(yd.Rules) != len(doc.Rules) {
		t.Fatalf("yaml: exit %d, %v, %d alerts, %d rules; json %d, %d", code, err, len(yd.Alerts), len(yd.Rules), len(doc.Alerts), len(doc.Rules))
	}
	c, _, _ := runCLI(t, "", "scan", "-q", "-o", "csv", log)
	rows, err := csv.NewReader(strings.NewReader(c)).ReadAll()
	if err != nil || len(rows) != len(doc.Alerts)+1 || rows[0][0] != "time" {
		t.Fatalf("csv: %v, %d rows for %d alerts", err, len(rows), len(doc.Alerts))
	}
	for i, a := range doc.Alerts {
		if rows[i+1][len(rows[i+1])-1] != a["id"] {
			t.Fatalf("csv row %d is alert %s, json has %s", i+1, rows[i+1][len(rows[i+1])-1], a["id"])
		}
	}
	if _, errOut, code := runCLI(t, "", "scan", "-o", "xml", log); code != 1 || !strings.Contains(errOut, "jsonl (ndjson), yaml or csv") {
		t.Fatalf("-o xml: exit %d %s", code, errOut)
	}
}
