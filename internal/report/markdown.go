package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Markdown limits: rows per table, alerts per rule, timeline characters.
const (
	mdTopRows       = 10
	mdAlertsPerRule = 10
	mdSparkPoints   = 72
	mdBusiest       = 10
)

// WriteMarkdown writes r as Markdown for a ticket: the summary, a
// sparkline of the timeline and its busiest buckets, the alerts by rule,
// the top rows of each table, the rules and the inputs. Values from the
// logs are written as code spans (no markup, no links, no HTML).
func WriteMarkdown(w io.Writer, r *Report) error {
	bw := bufio.NewWriter(w)
	m := &md{w: bw}
	m.report(r)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("cannot write the Markdown report: %w", err)
	}
	return nil
}

type md struct{ w *bufio.Writer }

func (m *md) p(format string, args ...any) { fmt.Fprintf(m.w, format, args...) }

func (m *md) report(r *Report) {
	m.p("# %s\n\n", esc(r.Title))
	m.p("Incident report from Kubernetes audit logs · %s\n\n", esc(periodText(r.Start, r.End)))

	m.p("## Summary\n\n| | |\n|---|---|\n")
	share := ""
	if s := pct(r.Anonymous.Requests, r.Events); s != "" {
		share = " (" + s + ")"
	}
	m.p("| Anonymous requests | %s of %s events%s |\n", count(r.Anonymous.Requests), count(r.Events), share)
	m.p("| Allowed | %s |\n| Forbidden | %s |\n| No decision | %s |\n", count(r.Anonymous.Allowed), count(r.Anonymous.Forbidden), count(r.Anonymous.NoDecision))
	var sev []string
	for _, s := range r.AlertsBySeverity() {
		sev = append(sev, fmt.Sprintf("%s %s", s.Name, count(s.N)))
	}
	alerts := count(r.AlertsTotal)
	if len(sev) > 0 {
		alerts += " (" + strings.Join(sev, ", ") + ")"
	}
	m.p("| Alerts | %s |\n", alerts)
	m.p("| Source IPs | %s |\n| User agents | %s |\n", count(int64(len(r.Sources.Rows))), count(int64(len(r.UserAgents.Rows))))
	m.p("| Inputs | %s (%s), %s bad records |\n\n", count(r.Stats.Files), bytesText(r.Stats.Bytes), count(r.BadTotal))

	m.timeline(r)
	m.alerts(r)

	m.table("Source IPs", "Source IP", r.Sources, false, false)
	m.table("User agents", "User agent", r.UserAgents, false, false)
	m.p("## What they reached\n\n")
	m.table("Resources", "Resource", r.Resources, true, true)
	m.table("Verbs", "Verb", r.Verbs, false, false)
	m.table("Request URIs", "Request URI", r.URIs, false, true)
	m.table("Usernames", "Username", r.Usernames, false, false)

	m.p("## Rules that ran\n\n| Rule | From | Fires | Severity | Matched | Alerts | Dropped at max_signals | Already raised | Grouped | Late | Errors |\n|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, rr := range r.Rules {
		m.p("| %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", esc(rr.Name), code(rr.ID), esc(rr.From()), esc(or(rr.Firing, "—")),
			esc(rr.Severity), count(rr.Stats.Matched), count(rr.AlertsSeen), count(rr.Stats.Dropped), count(rr.Stats.Suppressed),
			count(rr.Stats.Grouped), count(rr.Stats.Late), count(rr.Stats.Errors))
	}
	m.p("\n## Inputs\n\n%s inputs, %s: %s records, %s events, %s bad records, %s read with a warning (a repeated key read two ways), %s skipped (not audit events), %s repeated deliveries dropped.\n\n",
		count(r.Stats.Files), bytesText(r.Stats.Bytes), count(r.Stats.Records), count(r.Stats.Events), count(r.Stats.Bad),
		count(r.Stats.Warnings), count(r.Stats.Skipped), count(r.Stats.Duplicates))
	m.p("| Input | Formats | Events | Anonymous | Bad records | Warnings | First event | Last event |\n|---|---|--:|--:|--:|--:|---|---|\n")
	ins := r.Inputs
	if r.OtherInputs != nil {
		ins = append(ins[:len(ins):len(ins)], *r.OtherInputs)
	}
	for _, in := range ins {
		name := code(in.Name)
		if in.Name == "" {
			name = "other inputs"
		}
		m.p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, esc(formatsText(in.Formats)), count(in.Events), count(in.Anonymous),
			count(in.Bad), count(in.Warned), timeText(in.First), timeText(in.Last))
	}
	if len(r.Bad) > 0 {
		m.p("\nBad records (%s of %s):\n\n", count(int64(len(r.Bad))), count(r.BadTotal))
		for _, b := range r.Bad {
			m.p("- %s\n", code(b))
		}
	}
	if len(r.Warnings) > 0 {
		m.p("\nRecords read with a warning (%s of %s):\n\n", count(int64(len(r.Warnings))), count(r.WarningsTotal))
		for _, w := range r.Warnings {
			m.p("- %s\n", code(w))
		}
	}
	for i, s := range r.Skipped {
		if i == 0 {
			m.p("\nNot read:\n\n")
		}
		m.p("- %s: %s\n", code(s.Path), esc(s.Why))
	}
	if cuts := r.Cuts(); len(cuts) > 0 {
		m.p("\n## Limits\n\nTo bound its memory on inputs of any size, this report left out:\n\n")
		for _, c := range cuts {
			m.p("- %s\n", esc(c))
		}
	}
	m.p("\n---\n")
	if r.Generator != "" {
		m.p("%s · ", esc(r.Generator))
	}
	m.p("generated %s UTC\n", timeText(r.Generated))
}

// sparks are the levels of the sparkline.
var sparks = []rune("▁▂▃▄▅▆▇█")

func (m *md) timeline(r *Report) {
	m.p("## Timeline\n\n")
	width, pts := r.Timeline.Points(mdSparkPoints)
	if len(pts) == 0 {
		m.p("No event had a time: there is no timeline.\n\n")
		return
	}
	var top int64
	for _, p := range pts {
		top = max(top, p.Anonymous())
	}
	var line, marks strings.Builder
	for _, p := range pts {
		switch n := p.Anonymous(); {
		case n == 0:
			line.WriteRune(' ')
		default:
			line.WriteRune(sparks[min(int((n*int64(len(sparks))-1)/max(top, 1)), len(sparks)-1)])
		}
		if p.Alerts > 0 {
			marks.WriteRune('▲')
		} else {
			marks.WriteRune(' ')
		}
	}
	m.p("Anonymous requests per %s from %s to %s UTC (highest: %s); ▲ marks alerts:\n\n```text\n%s\n%s\n```\n\n",
		duration(width), pts[0].Start.Format("2006-01-02 15:04"), pts[len(pts)-1].Start.Add(width).Format("15:04"), count(top),
		strings.TrimRight(line.String(), " "), strings.TrimRight(marks.String(), " "))
	busy := append([]Point(nil), r.Timeline.Buckets...)
	sort.SliceStable(busy, func(i, j int) bool { return busy[i].Anonymous() > busy[j].Anonymous() })
	for len(busy) > 0 && busy[len(busy)-1].Anonymous() == 0 {
		busy = busy[:len(busy)-1]
	}
	if len(busy) == 0 {
		return
	}
	busy = busy[:min(len(busy), mdBusiest)]
	m.p("Busiest %ss:\n\n| %s (UTC) | Anonymous | Allowed | Forbidden | No decision | Events | Alerts |\n|---|--:|--:|--:|--:|--:|--:|\n",
		duration(r.Timeline.Width), capital(duration(r.Timeline.Width)))
	for _, p := range busy {
		m.p("| %s | %s | %s | %s | %s | %s | %s |\n", p.Start.Format("2006-01-02 15:04"), count(p.Anonymous()), count(p.Allowed),
			count(p.Forbidden), count(p.NoDecision), count(p.All), count(p.Alerts))
	}
	m.p("\n")
}

func (m *md) alerts(r *Report) {
	m.p("## Alerts\n\n")
	any := false
	for _, rr := range r.Rules {
		if rr.AlertsSeen == 0 {
			continue
		}
		any = true
		m.p("### %s · %s (%s)\n\n", esc(rr.Severity), esc(rr.Name), code(rr.ID))
		line := fmt.Sprintf("- **Alerts:** %s", count(rr.AlertsSeen))
		if rr.Stats.Dropped > 0 {
			line += fmt.Sprintf("; %s more matched but were dropped at max_signals", count(rr.Stats.Dropped))
		}
		if rr.Stats.Grouped > 0 {
			line += fmt.Sprintf("; %s more folded into these alerts' groups", count(rr.Stats.Grouped))
		}
		m.p("%s\n", line)
		rule := rr.From()
		if rr.Firing != "" {
			rule += ", fires " + rr.Firing
		}
		if rr.Language != "" {
			rule += ", written in " + rr.Language
		}
		m.p("- **Rule:** %s\n", esc(rule))
		if t := rr.Techniques(); len(t) > 0 {
			m.p("- **MITRE ATT&CK:** %s\n", esc(strings.Join(t, "; ")))
		}
		if rr.Runbook != "" {
			m.p("- **Runbook:**\n\n%s", fence(rr.Runbook, "  "))
		}
		m.p("\n| Time (UTC) | Source IP | User agent | Request | Result | Origin |\n|---|---|---|---|---|---|\n")
		for i, a := range rr.Alerts {
			if i == mdAlertsPerRule {
				break
			}
			req := strings.TrimSpace(a.Verb + " " + or(a.URI, a.Resource))
			if a.Window != nil {
				req = "rule run " + windowText(a)
			}
			res := strings.TrimSpace(a.Decision + " " + a.Code)
			if a.Group != nil {
				res = strings.TrimSpace(res + fmt.Sprintf(" (group of %s)", count(a.Group.Count)))
			}
			m.p("| %s | %s | %s | %s | %s | %s |\n", timeText(a.Time), code(a.SourceIP), code(a.UserAgent), code(req), esc(res), code(a.Origin))
		}
		if n := rr.AlertsSeen - int64(min(len(rr.Alerts), mdAlertsPerRule)); n > 0 {
			m.p("\n%s more alerts of this rule are in the HTML report (kanon report -o FILE.html).\n", count(n))
		}
		m.p("\n")
	}
	if !any {
		m.p("No rule raised an alert.\n\n")
	}
}

func (m *md) table(title, key string, t Table, verbs, codes bool) {
	m.p("### %s\n\n", esc(title))
	if len(t.Rows) == 0 {
		m.p("None.\n\n")
		return
	}
	head := fmt.Sprintf("| %s | Requests | Allowed | Forbidden | No decision | First seen | Last seen |", key)
	sep := "|---|--:|--:|--:|--:|---|---|"
	if verbs {
		head, sep = head+" Verbs |", sep+"---|"
	}
	if codes {
		head, sep = head+" Response codes |", sep+"---|"
	}
	m.p("%s\n%s\n", head, sep)
	for i, r := range t.Rows {
		if i == mdTopRows {
			break
		}
		k := code(r.Key)
		if r.Key == "" {
			k = "(none)"
		}
		m.p("| %s | %s | %s | %s | %s | %s | %s |", k, count(r.Requests), count(r.Allowed), count(r.Forbidden), count(r.NoDecision),
			timeText(r.First), timeText(r.Last))
		if verbs {
			m.p(" %s |", code(strings.Join(r.Verbs, ", ")))
		}
		if codes {
			m.p(" %s |", esc(codesText(r)))
		}
		m.p("\n")
	}
	if t.Full {
		m.p("| other (past the cap of %s values) | %s | %s | %s | %s | %s | %s |", count(int64(t.Max)), count(t.Other.Requests),
			count(t.Other.Allowed), count(t.Other.Forbidden), count(t.Other.NoDecision), timeText(t.Other.First), timeText(t.Other.Last))
		if verbs {
			m.p(" |")
		}
		if codes {
			m.p(" |")
		}
		m.p("\n")
	}
	if n := len(t.Rows) - mdTopRows; n > 0 {
		m.p("\n%s more in the HTML report.\n", count(int64(n)))
	}
	m.p("\n")
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func capital(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// oneLine turns line breaks and other control characters into spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// esc escapes text for Markdown prose and table cells: what could start
// markup, a link, HTML or an entity is backslash-escaped; line breaks
// become spaces.
func esc(s string) string {
	s = oneLine(s)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|&~!#", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// code writes s as a code span, safe in a table cell: no markup, link or
// HTML is read inside it. Pipes are escaped (GFM tables split on them
// even in code spans). A backslash before a pipe would make the escape
// ambiguous (renderers disagree on "\\|"), so such a value is written as
// escaped text instead.
func code(s string) string {
	if s == "" {
		return "—"
	}
	s = oneLine(s)
	if strings.Contains(s, `\|`) {
		return esc(s)
	}
	s = strings.ReplaceAll(s, "|", `\|`)
	run, longest := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	ticks := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || strings.HasPrefix(s, " ") && strings.HasSuffix(s, " ") {
		s = " " + s + " "
	}
	return ticks + s + ticks
}

// fence writes s as a fenced code block, indented by ind, with a fence
// longer than any run of backticks in s.
func fence(s, ind string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	f := strings.Repeat("`", max(3, longest+1))
	var b strings.Builder
	b.WriteString(ind + f + "text\n")
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(ind + l + "\n")
	}
	b.WriteString(ind + f + "\n")
	return b.String()
}
