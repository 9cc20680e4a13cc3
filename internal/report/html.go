package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

// DefaultTopRows is how many rows of a table are shown before the rest is
// folded under "more"; DefaultMaxRows how many rows a table lists at most.
const (
	DefaultTopRows  = 25
	DefaultMaxRows  = 500
	topAlertsByRule = 20
)

//go:embed report.html.tmpl
var htmlTemplate string

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"count": countAny,
	"time":  timeText,
	"short": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("01-02 15:04:05")
	},
	"rfc3339": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"bytes":   bytesText,
	"mini":    newMiniBar,
	"pct":     pct,
	"join":    strings.Join,
	"codes":   codesText,
	"formats": formatsText,
	"window":  windowText,
}).Parse(htmlTemplate))

// htmlView is what the page template reads.
type htmlView struct {
	*Report
	Period     string
	Chart      chart
	Severities []CodeName
	Tables     []tableView
	Reached    []tableView
	Alerting   []ruleView
	Cuts       []string
	TopRows    int
	Distinct   struct{ Sources, Agents int }
}

// tableView is a table as shown: the first rows, the rest folded.
type tableView struct {
	ID, Title, Key, Note string
	Verbs, Codes         bool
	Top, More            []Row
	// Unlisted counts the values kept but past DefaultMaxRows.
	Unlisted int
	Table    Table
}

// rowView is a row with the table's optional columns.
type rowView struct {
	Row
	ShowVerbs, ShowCodes bool
}

func (v tableView) rows(rs []Row) []rowView {
	out := make([]rowView, len(rs))
	for i, r := range rs {
		out[i] = rowView{Row: r, ShowVerbs: v.Verbs, ShowCodes: v.Codes}
	}
	return out
}

// TopRows are the rows shown at once.
func (v tableView) TopRows() []rowView { return v.rows(v.Top) }

// MoreRows are the rows folded under "more".
func (v tableView) MoreRows() []rowView { return v.rows(v.More) }

// ruleView is a rule with alerts, as shown.
type ruleView struct {
	RuleReport
	Index      int
	Techniques []string
	Top, More  []Alert
	NotKept    int64
}

func newTableView(id, title, key string, t Table, top, maxRows int) tableView {
	v := tableView{ID: id, Title: title, Key: key, Table: t}
	rows := t.Rows
	if len(rows) > maxRows {
		rows = rows[:maxRows]
		v.Unlisted = len(t.Rows) - maxRows
	}
	v.Top = rows[:min(top, len(rows))]
	v.More = rows[len(v.Top):]
	return v
}

// WriteHTML writes r as one self-contained HTML page: no script, nothing
// loaded from elsewhere, everything from the logs escaped.
func WriteHTML(w io.Writer, r *Report) error {
	v := htmlView{Report: r, Chart: newChart(r.Timeline, DefaultMaxPoints), Severities: r.AlertsBySeverity(),
		Cuts: r.Cuts(), TopRows: DefaultTopRows}
	v.Period = periodText(r.Start, r.End)
	v.Distinct.Sources, v.Distinct.Agents = len(r.Sources.Rows), len(r.UserAgents.Rows)
	top, maxRows := DefaultTopRows, DefaultMaxRows
	v.Tables = []tableView{
		newTableView("sources", "Source IPs", "Source IP", r.Sources, top, maxRows),
		newTableView("agents", "User agents", "User agent", r.UserAgents, top, maxRows),
	}
	v.Tables[0].Note = "The first of an event's source IPs: the client, before any proxy."
	v.Reached = []tableView{
		newTableView("resources", "Resources", "Resource", r.Resources, top, maxRows),
		newTableView("verbs", "Verbs", "Verb", r.Verbs, top, maxRows),
		newTableView("uris", "Request URIs", "Request URI (without query)", r.URIs, top, maxRows),
		newTableView("usernames", "Usernames", "Username", r.Usernames, top, maxRows),
	}
	v.Reached[0].Verbs, v.Reached[0].Codes, v.Reached[2].Codes = true, true, true
	v.Reached[0].Note = "Resource requests by API group, resource and subresource (kubectl's resource.group/subresource)."
	v.Reached[3].Note = "Anonymous requests are those of system:anonymous, system:unauthenticated, or without a username."
	for i, rr := range r.Rules {
		if rr.AlertsSeen == 0 {
			continue
		}
		rv := ruleView{RuleReport: rr, Index: i + 1, Techniques: rr.Techniques(), NotKept: rr.AlertsSeen - int64(len(rr.Alerts))}
		rv.Top = rr.Alerts[:min(topAlertsByRule, len(rr.Alerts))]
		rv.More = rr.Alerts[len(rv.Top):]
		v.Alerting = append(v.Alerting, rv)
	}
	if err := pageTmpl.Execute(w, v); err != nil {
		return fmt.Errorf("cannot write the HTML report: %w", err)
	}
	return nil
}

// periodText is the scanned period: "2025-05-14 09:00:00 – 09:39:40 UTC
// (39m40s)".
func periodText(start, end time.Time) string {
	if start.IsZero() {
		return "no event had a time"
	}
	s, e := start.UTC(), end.UTC()
	endText := e.Format("2006-01-02 15:04:05")
	if s.Format("2006-01-02") == e.Format("2006-01-02") {
		endText = e.Format("15:04:05")
	}
	return fmt.Sprintf("%s – %s UTC (%s)", s.Format("2006-01-02 15:04:05"), endText, e.Sub(s).Round(time.Second))
}

// countAny is count for the integers templates hold (int, int64).
func countAny(v any) string {
	switch n := v.(type) {
	case int:
		return count(int64(n))
	case int64:
		return count(n)
	}
	return fmt.Sprint(v)
}

// pct is n as a percentage of of, to one decimal ("" when of is 0).
func pct(n, of int64) string {
	if of == 0 {
		return ""
	}
	return fmt.Sprintf("%.1f %%", float64(n)*100/float64(of))
}

// codesText lists response codes: "403 ×12, 200 ×3".
func codesText(r Row) string {
	var parts []string
	for _, c := range r.Codes {
		parts = append(parts, fmt.Sprintf("%d ×%s", c.Code, count(c.N)))
	}
	if r.OtherCodes > 0 {
		parts = append(parts, fmt.Sprintf("other ×%s", count(r.OtherCodes)))
	}
	return strings.Join(parts, ", ")
}

// formatsText lists an input's formats: "k8s (198)".
func formatsText(fs []CodeName) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s (%s)", f.Name, count(f.N)))
	}
	return strings.Join(parts, ", ")
}

// windowText is a rule run: "09:09:00 – 09:15:00".
func windowText(a Alert) string {
	if a.Window == nil {
		return ""
	}
	return fmt.Sprintf("%s – %s", timeText(a.Window.Start), a.Window.End.UTC().Format("15:04:05"))
}
