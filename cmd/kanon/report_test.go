package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// countElements counts the elements of an HTML page with the class.
func countElements(t *testing.T, page, tag, class string) int {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(*html.Node)
	walk = func(x *html.Node) {
		if x.Type == html.ElementNode && x.Data == tag {
			for _, a := range x.Attr {
				if a.Key == "class" && strings.Contains(" "+a.Val+" ", " "+class+" ") {
					n++
				}
			}
		}
		for c := x.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return n
}

// TestReportCommand writes the HTML and Markdown reports of the bundled
// example log with kanon report and checks what they hold: a timeline
// point per minute of its 40, an alert row per alert, the sources.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "incident.html")
	log := filepath.Join("..", "..", "examples", "logs", "audit.log")
	_, errOut, code := runCLI(t, "", "report", "-o", page, log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "wrote the html report "+page) || !strings.Contains(errOut, "27 alerts") {
		t.Errorf("stderr: %s", errOut)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if n := countElements(t, string(b), "g", "tl-point"); n != 40 {
		t.Errorf("%d timeline points, the log spans 40 minutes", n)
	}
	if n := countElements(t, string(b), "tr", "alert"); n != 27 {
		t.Errorf("%d alert rows, want 27", n)
	}
	if !strings.Contains(string(b), "203.0.113.45") || !strings.Contains(string(b), "Panther&#39;s rule") {
		t.Error("the report lacks the scanner's source IP or the rules' origin")
	}

	md := filepath.Join(dir, "ticket.md")
	if _, errOut, code := runCLI(t, "", "report", "-o", md, "--title", "INC-42", log); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	b, err = os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# INC-42\n", "## Timeline", "| `203.0.113.45` | 8 | 1 | 7 |", "Panther's rule", "## Rules that ran"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the Markdown report lacks %q", want)
		}
	}

	// Standard output, the bundled examples, a forced type.
	out, _, code := runCLI(t, "", "report", "-o", "-", "--type", "markdown")
	if code != 0 || !strings.HasPrefix(out, "# Anonymous access to the Kubernetes API\n") {
		t.Errorf("exit %d, %.60q", code, out)
	}
	// A name whose type is unknown is refused before anything is read.
	if _, errOut, code := runCLI(t, "", "report", "-o", filepath.Join(dir, "x.pdf"), log); code != 1 || !strings.Contains(errOut, "name it .html or .md") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, "", "report", "-o", filepath.Join(dir, "no", "such", "x.html"), log); code != 1 || !strings.Contains(errOut, "no directory") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

// TestScanReportFlag checks kanon scan --report: the scan prints its
// alerts and exits as usual, and the report holds the same alerts.
func TestScanReportFlag(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "scan.html")
	log := filepath.Join("..", "..", "examples", "logs", "audit.log")
	out, errOut, code := runCLI(t, "", "scan", "-o", "jsonl", "--report", page, log)
	if code != 2 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	alerts := alertsOf(t, out)
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if n := countElements(t, string(b), "tr", "alert"); n != len(alerts) || n == 0 {
		t.Errorf("%d alert rows, the scan printed %d alerts", n, len(alerts))
	}
	for _, a := range alerts {
		if !strings.Contains(string(b), `data-id="`+a["id"].(string)+`"`) {
			t.Errorf("alert %s is not in the report", a["id"])
		}
	}
	if _, errOut, code := runCLI(t, "", "scan", "--report", filepath.Join(dir, "x.txt"), log); code != 1 || !strings.Contains(errOut, "cannot tell the report type") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
