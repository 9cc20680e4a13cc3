package report_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/report"
	"golang.org/x/net/html"
)

// The report's browser test loads the HTML report in headless Chromium
// (Debian's chromium: apt-get install -y chromium; .ci/run installs it)
// and checks the DOM Chromium rendered against the collector's counts
// and counts made here from the logs, then takes a screenshot at
// 1280x900. It fails when Chromium is missing. KANON_CHROMIUM names
// another binary; KANON_REPORT_SCREENSHOTS=DIR keeps the screenshots
// (and the pages) in DIR to look at.

// chromiumPath finds the browser.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KANON_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: the report's browser test needs it (apt-get install -y chromium; .ci/run installs it)")
	return ""
}

// chromium runs headless Chromium on a local file with args (--dump-dom,
// --screenshot=...) and returns its standard output and error. It never
// touches the network: background networking, component updates and
// sync are off, and the page's policy forbids any fetch.
func chromium(t *testing.T, page string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
		"--no-first-run", "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
		"--hide-scrollbars", "--enable-logging=stderr", "--v=0", "--user-data-dir=" + t.TempDir(), "--window-size=1280,900"}
	cmd := exec.CommandContext(ctx, chromiumPath(t), append(append(base, args...), "file://"+page)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

// find returns the elements of doc that match.
func find(doc *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	})
	return out
}

func hasClass(n *html.Node, class string) bool {
	c, _ := attr(n, "class")
	for _, f := range strings.Fields(c) {
		if f == class {
			return true
		}
	}
	return false
}

func byID(doc *html.Node, id string) *html.Node {
	ns := find(doc, func(n *html.Node) bool { v, _ := attr(n, "id"); return v == id })
	if len(ns) != 1 {
		return nil
	}
	return ns[0]
}

func intAttr(t *testing.T, n *html.Node, key string) int64 {
	t.Helper()
	v, ok := attr(n, key)
	if !ok {
		t.Fatalf("<%s> has no %s", n.Data, key)
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, v, err)
	}
	return i
}

// tableRows returns the key and request count of each row of the table
// with id, and of its folded rest.
func tableRows(t *testing.T, doc *html.Node, id string) (top, all [][2]string) {
	t.Helper()
	for _, tid := range []string{"t-" + id, "t-" + id + "-more"} {
		tb := byID(doc, tid)
		if tb == nil {
			if tid == "t-"+id {
				t.Fatalf("no table %s", tid)
			}
			continue
		}
		for _, tr := range find(tb, func(n *html.Node) bool { return n.Data == "tr" && hasClass(n, "row") }) {
			tds := find(tr, func(n *html.Node) bool { return n.Data == "td" })
			row := [2]string{textOf(tds[0]), textOf(tds[2])}
			if tid == "t-"+id {
				top = append(top, row)
			}
			all = append(all, row)
		}
	}
	return top, all
}

// checkTable compares a rendered table with counts made from the logs.
func checkTable(t *testing.T, doc *html.Node, id string, want map[string]int64) {
	t.Helper()
	top, all := tableRows(t, doc, id)
	if len(top) != min(report.DefaultTopRows, len(want)) || len(all) != min(report.DefaultMaxRows, len(want)) {
		t.Errorf("table %s: %d rows shown, %d in all; the logs have %d values", id, len(top), len(all), len(want))
	}
	for i, row := range all {
		key := row[0]
		if key == "(none)" {
			key = ""
		}
		n, ok := want[key]
		if !ok || strconv.FormatInt(n, 10) != strings.ReplaceAll(row[1], ",", "") {
			t.Errorf("table %s row %d: %q has %s requests, the logs %d", id, i, row[0], row[1], n)
		}
		if i > 0 {
			prev, _ := strconv.ParseInt(strings.ReplaceAll(all[i-1][1], ",", ""), 10, 64)
			if prev < n {
				t.Errorf("table %s: row %d (%d) after a row of %d", id, i, n, prev)
			}
		}
	}
}

// TestReportInChromium renders the report of the real-shaped logs, then
// of a larger one with two hours of generated traffic, in Chromium, and
// checks the rendered page: the timeline has a point per minute of the
// scanned period holding that minute's anonymous requests by decision
// (counted here from the logs), its alert markers add up to the alerts
// raised, the tables have the rows the logs call for, in order, and every
// kept alert has its row. It takes a screenshot at 1280x900 and checks
// that it was drawn (the header's colour, not a blank page).
func TestReportInChromium(t *testing.T) {
	real := realLogs(t)
	start := time.Date(2025, 5, 14, 8, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		paths []string
	}{
		{"real", real},
		{"generated", append([]string{generatedLog(t, 40000, 5, start)}, real...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, alerts := scan(t, report.Options{Generator: "kanon test"}, c.paths...)
			want := countLogs(t, c.paths...)
			dir := t.TempDir()
			if keep := os.Getenv("KANON_REPORT_SCREENSHOTS"); keep != "" {
				dir = keep
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			page := filepath.Join(dir, "report-"+c.name+".html")
			var buf bytes.Buffer
			if err := report.WriteHTML(&buf, r); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			dom, logs := chromium(t, page, "--dump-dom")
			if bytes.Contains(logs, []byte("Refused to")) || bytes.Contains(logs, []byte("Content Security Policy")) {
				t.Errorf("the page tried to load something:\n%s", logs)
			}
			doc, err := html.Parse(bytes.NewReader(dom))
			if err != nil {
				t.Fatal(err)
			}
			if len(find(doc, func(n *html.Node) bool { return n.Data == "main" })) != 1 {
				t.Fatalf("chromium's DOM has no <main>:\n%.2000s", dom)
			}
			checkInert(t, doc)

			// The timeline: one point per minute from the first event to
			// the last, each with the anonymous requests the logs hold.
			pts := find(doc, func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "tl-point") })
			firstMin, lastMin := want.first.Unix()/60, want.last.Unix()/60
			for _, a := range alerts {
				firstMin, lastMin = min(firstMin, a.Timestamp.Unix()/60), max(lastMin, a.Timestamp.Unix()/60)
			}
			if n := lastMin - firstMin + 1; int64(len(pts)) != n {
				t.Fatalf("the timeline has %d points, the period %d minutes", len(pts), n)
			}
			var allowed, forbidden int64
			for i, p := range pts {
				st, _ := attr(p, "data-start")
				at, err := time.Parse(time.RFC3339, st)
				if err != nil || at.Unix()/60 != firstMin+int64(i) {
					t.Fatalf("point %d starts at %q", i, st)
				}
				w := want.perMinute[at.Unix()/60]
				got := [3]int64{intAttr(t, p, "data-allowed"), intAttr(t, p, "data-forbidden"), intAttr(t, p, "data-nodecision")}
				if got != w {
					t.Errorf("minute %s: %v, the logs %v", st, got, w)
				}
				allowed += got[0]
				forbidden += got[1]
				bars := find(p, func(n *html.Node) bool { return n.Data == "rect" && !hasClass(n, "band") })
				nonzero := 0
				for _, v := range got {
					if v > 0 {
						nonzero++
					}
				}
				if len(bars) != nonzero {
					t.Errorf("minute %s: %d bars for %v", st, len(bars), got)
				}
			}
			if allowed != want.allowed || forbidden != want.forbidden {
				t.Errorf("timeline: %d allowed, %d forbidden; the logs %d, %d", allowed, forbidden, want.allowed, want.forbidden)
			}
			var marked int64
			for _, m := range find(doc, func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "tl-alert") }) {
				marked += intAttr(t, m, "data-alerts")
			}
			if marked != int64(len(alerts)) || r.AlertsTotal != int64(len(alerts)) {
				t.Errorf("the timeline marks %d alerts, %d were raised", marked, len(alerts))
			}

			// The tables.
			checkTable(t, doc, "sources", want.sources)
			checkTable(t, doc, "agents", want.agents)
			checkTable(t, doc, "verbs", want.verbs)
			checkTable(t, doc, "resources", want.res)
			if got := textOf(byID(doc, "n-anonymous")); got != fmt.Sprint(want.anon) && strings.ReplaceAll(got, ",", "") != fmt.Sprint(want.anon) {
				t.Errorf("summary: %q anonymous requests, the logs %d", got, want.anon)
			}
			rows := find(doc, func(n *html.Node) bool { return n.Data == "tr" && hasClass(n, "alert") })
			if len(rows) != len(alerts) {
				t.Errorf("%d alert rows, %d alerts", len(rows), len(alerts))
			}
			ids := map[string]bool{}
			for _, a := range alerts {
				ids[a.ID] = true
			}
			for _, row := range rows {
				if id, _ := attr(row, "data-id"); !ids[id] {
					t.Errorf("alert row %q is no alert raised", id)
				}
			}
			var ruleRows []string
			for _, tr := range find(byID(doc, "rules"), func(n *html.Node) bool { return n.Data == "tr" }) {
				if id, ok := attr(tr, "data-rule"); ok {
					ruleRows = append(ruleRows, id)
				}
			}
			sort.Strings(ruleRows)
			if len(ruleRows) != len(r.Rules) || len(ruleRows) != 4 {
				t.Errorf("rules table: %v", ruleRows)
			}

			// The screenshot.
			shot := filepath.Join(dir, "report-"+c.name+".png")
			chromium(t, page, "--screenshot="+shot)
			f, err := os.Open(shot)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
				t.Fatalf("screenshot %v, want 1280x900", b)
			}
			r0, g0, b0, _ := img.At(8, 8).RGBA()
			if r0>>8 != 0x16 || g0>>8 != 0x20 || b0>>8 != 0x2b {
				t.Errorf("the header is not drawn: pixel (8,8) is %02x%02x%02x", r0>>8, g0>>8, b0>>8)
			}
			colours := map[uint32]bool{}
			for y := 0; y < 900; y += 3 {
				for x := 0; x < 1280; x += 3 {
					r, g, b, _ := img.At(x, y).RGBA()
					colours[r>>8<<16|g>>8<<8|b>>8] = true
				}
			}
			if len(colours) < 50 {
				t.Errorf("the screenshot has %d colours: a blank page?", len(colours))
			}
		})
	}
}
