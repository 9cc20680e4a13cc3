package report_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/report"
	"github.com/kanon-dev/kanon/internal/run"
	"golang.org/x/net/html"
)

// FuzzReportValues renders reports whose logged values are arbitrary
// bytes: rendering never fails or panics, the HTML page never holds an
// element or attribute that could run or load anything, and each user
// agent is shown as the text it was (valid UTF-8 ones), and every
// Markdown table row keeps its header's cells.
func FuzzReportValues(f *testing.F) {
	for _, s := range []string{evilAgent, evilURI, evilIP, evilTitle, evilOrigin, evilPipe, "", "`", "``x``", "\\|", "a\r\nb", "\x00\xff", "</svg><script>x</script>", "]]>", "<!--", "&amp;"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, ua, uri string) {
		c := report.New(report.Options{Now: func() time.Time { return time.Unix(0, 0) }})
		at := time.Date(2025, 5, 14, 9, 0, 0, 0, time.UTC)
		c.Observe(&event.Event{Verb: ua, RequestURI: uri, UserAgent: ua, SourceIPs: []string{uri},
			ObjectRef: event.ObjectRef{Resource: ua, APIGroup: uri}, StageTimestamp: event.Timestamp{T: at},
			Annotations: []event.Annotation{{Key: "authorization_k8s_io/decision", Value: "allow"}}, Format: "k8s", Origin: event.Origin{Name: uri}})
		c.Alert(&alert.Alert{ID: ua, Timestamp: at, Title: uri, Origin: uri, Rule: alert.Rule{ID: "r", Name: ua, Severity: "high", Runbook: uri},
			Fields: alert.Fields{{Name: "user_agent", Value: ua}, {Name: "request_uri", Value: uri}}, Event: map[string]any{"u": ua}})
		r := c.Report(run.Stats{Files: 1, Events: 1})
		var page, md bytes.Buffer
		if err := report.WriteHTML(&page, r); err != nil {
			t.Fatal(err)
		}
		if err := report.WriteMarkdown(&md, r); err != nil {
			t.Fatal(err)
		}
		doc, err := html.Parse(bytes.NewReader(page.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		checkInert(t, doc)
		if isText(ua) && !strings.Contains(textOf(doc), ua) {
			t.Errorf("the page does not show the user agent %q", ua)
		}
		header := 0
		for _, line := range strings.Split(md.String(), "\n") {
			n := 0
			for i := 0; i < len(line); i++ {
				switch line[i] {
				case '\\':
					i++
				case '|':
					n++
				}
			}
			switch {
			case !strings.HasPrefix(line, "|"):
				header = 0
			case header == 0:
				header = n
			case n != header:
				t.Fatalf("row with %d cells under a header of %d: %q", n, header, line)
			}
		}
	})
}

// isText reports whether s is shown as written: valid UTF-8 without
// control characters or NUL (which HTML parsing replaces) and without
// carriage returns (which it folds).
func isText(s string) bool {
	for _, r := range s {
		if r == 0xFFFD || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
