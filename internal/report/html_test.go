package report_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/report"
	"github.com/kanon-dev/kanon/internal/run"
	"golang.org/x/net/html"
)

// Values an attacker chooses: a user agent, a URI, a source IP (behind a
// proxy that trusts X-Forwarded-For), a file name.
const (
	evilAgent  = `<script>alert(1)</script>`
	evilURI    = `/api/v1/"><img src=x onerror=alert(2)>`
	evilIP     = `10.0.0.1<svg onload=alert(3)>`
	evilTitle  = `</title><script>alert(4)</script>`
	evilOrigin = `logs/<iframe src=javascript:alert(5)>.log`
	evilPipe   = "curl|`x`|<b>bold</b>\n# heading"
)

// hostileReport is a report of one anonymous event and one alert whose
// every logged value is hostile.
func hostileReport(t *testing.T) *report.Report {
	t.Helper()
	c := report.New(report.Options{Title: "report <b>x</b>", Now: func() time.Time { return time.Unix(0, 0) }})
	at := time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC)
	for _, ua := range []string{evilAgent, evilPipe} {
		c.Observe(&event.Event{Verb: "get", RequestURI: evilURI, UserAgent: ua, SourceIPs: []string{evilIP},
			ObjectRef:      event.ObjectRef{Resource: "secrets<script>", Subresource: "x</td>"},
			Annotations:    []event.Annotation{{Key: "authorization_k8s_io/decision", Value: "allow"}},
			StageTimestamp: event.Timestamp{T: at}, Format: "k8s<script>", Origin: event.Origin{Name: evilOrigin, Line: 1}})
	}
	c.Alert(&alert.Alert{ID: "id<script>", Timestamp: at, Title: evilTitle, Origin: evilOrigin + ":1",
		Rule: alert.Rule{ID: "r<script>", Name: "rule <script>", Severity: "high", Runbook: "<script>alert(6)</script>"},
		Fields: alert.Fields{{Name: "user_agent", Value: evilAgent}, {Name: "source_ips", Value: []any{evilIP}},
			{Name: "request_uri", Value: evilURI}, {Name: "decision", Value: `allow" onmouseover="alert(7)`}},
		Event: map[string]any{"kubernetes": map[string]any{"audit": map[string]any{"userAgent": evilAgent}}}})
	c.Bad("file", ingest.BadRecord{Origin: event.Origin{Name: evilOrigin, Line: 2}, Err: errString(`cannot parse <script>alert(8)</script>`)})
	return c.Report(run.Stats{Files: 1, Events: 1})
}

type errString string

func (e errString) Error() string { return string(e) }

// walk calls fn on every node of n.
func walk(n *html.Node, fn func(*html.Node)) {
	fn(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// textOf is the text of n and its descendants.
func textOf(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	})
	return b.String()
}

// checkInert fails if doc holds an element or attribute that could run
// script or load anything.
func checkInert(t *testing.T, doc *html.Node) {
	t.Helper()
	walk(doc, func(n *html.Node) {
		if n.Type != html.ElementNode {
			return
		}
		switch n.Data {
		case "script", "img", "iframe", "object", "embed", "link", "base", "form", "input", "video", "audio", "foreignobject", "use", "image":
			t.Errorf("element <%s> in the report", n.Data)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "src" || a.Key == "srcdoc" || a.Key == "xlink:href" {
				t.Errorf("attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
			}
			if a.Key == "href" && !strings.HasPrefix(a.Val, "#") {
				t.Errorf("link to %q", a.Val)
			}
			if a.Key == "style" && strings.Contains(a.Val, "url(") {
				t.Errorf("style loads %q", a.Val)
			}
		}
		if n.Data == "style" && (strings.Contains(textOf(n), "url(") || strings.Contains(textOf(n), "@import")) {
			t.Error("the style sheet loads something")
		}
	})
}

// TestHTMLScriptUserAgentIsInert renders values an attacker controls and
// checks that they are text, not markup: no script, no event handler, no
// element or attribute that loads anything, and each value readable as
// written.
func TestHTMLScriptUserAgentIsInert(t *testing.T) {
	r := hostileReport(t)
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	checkInert(t, doc)
	var csp string
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "meta" {
			if v, _ := attr(n, "http-equiv"); v == "Content-Security-Policy" {
				csp, _ = attr(n, "content")
			}
		}
	})
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("content security policy %q", csp)
	}
	text := textOf(doc)
	for _, v := range []string{evilAgent, evilURI, evilIP, evilTitle, evilOrigin, "<script>alert(6)</script>", "cannot parse <script>alert(8)</script>", "report <b>x</b>"} {
		if !strings.Contains(text, v) {
			t.Errorf("the page does not show %q as text", v)
		}
	}
	// The user agent table shows the user agent, as text, in its key cell.
	found := false
	walk(doc, func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "td" {
			if c, _ := attr(n, "class"); c == "key" && textOf(n) == evilAgent {
				found = true
			}
		}
	})
	if !found {
		t.Error("no table cell holds the user agent as text")
	}
}

// TestMarkdownEscapes checks that values from the logs cannot break a
// Markdown table or become markup: every row of a table has the header's
// number of cells, and the hostile values are inside code spans.
func TestMarkdownEscapes(t *testing.T) {
	var buf bytes.Buffer
	if err := report.WriteMarkdown(&buf, hostileReport(t)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	cells := func(line string) int {
		n := 0
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case '|':
				n++
			}
		}
		return n
	}
	header := 0
	for _, line := range strings.Split(out, "\n") {
		switch {
		case !strings.HasPrefix(line, "|"):
			header = 0
		case header == 0:
			header = cells(line)
		case cells(line) != header:
			t.Errorf("row with %d cells under a header of %d: %s", cells(line), header, line)
		}
		if strings.HasPrefix(line, "# heading") {
			t.Errorf("a value from the logs became a heading: %q", line)
		}
	}
	for _, want := range []string{"`<script>alert(1)</script>`", "``curl\\|`x`\\|<b>bold</b> # heading``", "`10.0.0.1<svg onload=alert(3)>`"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	if strings.Contains(out, "report <b>") {
		t.Error("the title is not escaped")
	}
}
