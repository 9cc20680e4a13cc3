package report

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
)

// Report is what a report shows, built by Collector.Report once a run is
// closed. WriteHTML and WriteMarkdown render it.
type Report struct {
	Title, Generator string
	Generated        time.Time
	// Start and End are the first and last event times (zero when no
	// event had a time); NoTime counts the events without one.
	Start, End time.Time
	Events     int64
	NoTime     int64
	// Anonymous counts the anonymous requests.
	Anonymous Counts
	// Timeline is the activity per minute (or wider buckets, see
	// Timeline.Width).
	Timeline Timeline
	// The tables of anonymous requests.
	Usernames, Sources, UserAgents, Resources, Verbs, URIs Table
	// Rules are the rules that ran, those that raised alerts first (by
	// severity), each with its counts and the alerts kept.
	Rules []RuleReport
	// AlertsTotal counts every alert; AlertsCut those not kept (past
	// Options.MaxAlerts), AlertsMax that cap.
	AlertsTotal, AlertsCut int64
	AlertsMax              int
	// EventsCut counts the alerts whose event document was cut at
	// EventMaxBytes.
	EventsCut     int
	EventMaxBytes int
	// Inputs are the inputs, in the order read; OtherInputs counts those
	// past InputsMax together (nil when none was).
	Inputs      []Input
	OtherInputs *Input
	InputsMax   int
	// Bad holds the first bad records (BadMax at most) of BadTotal.
	Bad      []string
	BadTotal int64
	BadMax   int
	// Warnings holds the first records read with a warning (BadMax at
	// most) of WarningsTotal: repeated keys read two ways.
	Warnings      []string
	WarningsTotal int64
	// Stats is the driver's summary of the run.
	Stats run.Stats
	// Skipped lists what the directories held that was not read (set by
	// the caller).
	Skipped []ingest.SkippedPath
}

// RuleInfo is a rule's metadata as alerts carry it, and its file.
type RuleInfo struct {
	alert.Rule
	File string
}

// From says where a rule comes from: "Elastic's rule", "Panther's rule",
// "built-in rule" or "your rule".
func (r RuleInfo) From() string {
	vendor, _, _ := strings.Cut(r.Source, ":")
	switch vendor {
	case "elastic":
		return "Elastic's rule"
	case "panther":
		return "Panther's rule"
	}
	if strings.HasPrefix(r.File, "builtin:") {
		return "built-in rule"
	}
	return "your rule"
}

// Techniques lists the rule's MITRE ATT&CK mapping, one entry per
// technique or sub-technique: "T1078.001 Default Accounts (TA0001 Initial
// Access)".
func (r RuleInfo) Techniques() []string {
	var out []string
	for _, t := range r.Threat {
		tactic := strings.TrimSpace(t.Tactic.ID + " " + t.Tactic.Name)
		if len(t.Technique) == 0 && tactic != "" {
			out = append(out, tactic)
		}
		for _, tech := range t.Technique {
			refs := []alert.Ref{tech.Ref}
			if len(tech.Subtechnique) > 0 {
				refs = nil
				for _, s := range tech.Subtechnique {
					refs = append(refs, alert.Ref{ID: s.ID, Name: tech.Name + ": " + s.Name})
				}
			}
			for _, ref := range refs {
				s := strings.TrimSpace(ref.ID + " " + ref.Name)
				if tactic != "" {
					s += " (" + tactic + ")"
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// RuleReport is one rule that ran: its metadata, what it did, and the
// alerts kept.
type RuleReport struct {
	RuleInfo
	// Stats are the engine's counts for the rule.
	Stats engine.RuleStats
	// AlertsSeen counts the alerts the collector saw; Alerts are those
	// kept, in time order.
	AlertsSeen int64
	Alerts     []Alert
}

// Alert is what a report keeps of an alert.
type Alert struct {
	ID, Title, Rule, Severity string
	Time                      time.Time
	Origin, Reader            string
	// The common output fields, as text ("" when the alert has none).
	Username, SourceIP, UserAgent, Verb, Resource, URI, Decision, Code string
	// Fields are every output field, as text, in the alert's order.
	Fields []Field
	Window *alert.Window
	Group  *Group
	// Event is the event document, indented JSON, cut at
	// Options.MaxEventBytes (EventCut).
	Event    string
	EventCut bool
}

// Field is an output field as text.
type Field struct{ Name, Value string }

// Group is an alert's dedup group.
type Group struct {
	Key                 string
	Count               int64
	FirstSeen, LastSeen time.Time
	Samples             int
}

// Input is one input's counts.
type Input struct {
	Name                           string
	Events, Anonymous, Bad, Warned int64
	Formats                        []CodeName
	First, Last                    time.Time
}

// Report builds the report from what was collected and the driver's
// summary st (Driver.Stats once it is closed).
func (c *Collector) Report(st run.Stats) *Report {
	r := &Report{
		Title: c.opts.Title, Generator: c.opts.Generator, Generated: c.opts.Now().UTC(),
		Start: c.first, End: c.last, Events: c.events, NoTime: c.noTime, Anonymous: c.anon,
		Timeline:   c.tl.export(),
		Usernames:  table(&c.users, identity),
		Sources:    table(&c.sources, identity),
		UserAgents: table(&c.agents, identity),
		Verbs:      table(&c.verbs, identity),
		URIs:       table(&c.uris, identity),
		Resources:  table(&c.resources, resKey.String),
		AlertsCut:  c.alertsCut, AlertsMax: c.opts.MaxAlerts, EventMaxBytes: c.opts.MaxEventBytes,
		InputsMax: c.opts.MaxInputs, Bad: append([]string(nil), c.bad...), BadTotal: c.badAll, BadMax: c.opts.MaxBad,
		Warnings: append([]string(nil), c.warnings...), WarningsTotal: c.warnedAll,
		Stats: st,
	}
	for _, n := range c.alertCount {
		r.AlertsTotal += n
	}
	for _, name := range c.order {
		r.Inputs = append(r.Inputs, c.inputs[name].export())
	}
	if o := c.otherIn; o.events > 0 || o.bad > 0 || o.warned > 0 {
		in := o.export()
		in.Name = ""
		r.OtherInputs = &in
	}
	byRule := map[string][]Alert{}
	for _, a := range c.alerts {
		byRule[a.Rule] = append(byRule[a.Rule], a)
		if a.EventCut {
			r.EventsCut++
		}
	}
	rules := append([]RuleInfo(nil), c.rules...)
	seen := map[string]bool{}
	for _, ri := range rules {
		seen[ri.ID] = true
	}
	for id := range st.Engine.Rules {
		if !seen[id] {
			rules = append(rules, RuleInfo{Rule: alert.Rule{ID: id, Name: id}})
		}
	}
	for _, ri := range rules {
		rr := RuleReport{RuleInfo: ri, AlertsSeen: c.alertCount[ri.ID], Alerts: byRule[ri.ID]}
		if s := st.Engine.Rules[ri.ID]; s != nil {
			rr.Stats = *s
		}
		sort.SliceStable(rr.Alerts, func(i, j int) bool {
			a, b := rr.Alerts[i], rr.Alerts[j]
			if !a.Time.Equal(b.Time) {
				return a.Time.Before(b.Time)
			}
			return a.ID < b.ID
		})
		r.Rules = append(r.Rules, rr)
	}
	sort.SliceStable(r.Rules, func(i, j int) bool {
		a, b := r.Rules[i], r.Rules[j]
		if (a.AlertsSeen > 0) != (b.AlertsSeen > 0) {
			return a.AlertsSeen > 0
		}
		if ra, rb := rule.SeverityRank(a.Severity), rule.SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		return a.ID < b.ID
	})
	return r
}

func identity(s string) string { return s }

func (in *inputStats) export() Input {
	return Input{Name: in.name, Events: in.events, Anonymous: in.anonymous, Bad: in.bad, Warned: in.warned,
		Formats: append([]CodeName(nil), in.formats...), First: in.first, Last: in.last}
}

// AlertsBySeverity counts the alerts per severity, highest first, for the
// severities that have alerts.
func (r *Report) AlertsBySeverity() []CodeName {
	n := map[string]int64{}
	for _, rr := range r.Rules {
		n[rr.Severity] += rr.AlertsSeen
	}
	var out []CodeName
	for i := len(rule.Severities) - 1; i >= 0; i-- {
		if s := rule.Severities[i]; n[s] > 0 {
			out = append(out, CodeName{Name: s, N: n[s]})
			delete(n, s)
		}
	}
	for s, k := range n {
		if k > 0 {
			out = append(out, CodeName{Name: s, N: k})
		}
	}
	return out
}

// Cuts says, one sentence each, what the report left out to bound its
// memory: values past a table's cap, widened timeline buckets, alerts
// and event documents not kept, bad records not kept, inputs not listed.
func (r *Report) Cuts() []string {
	var out []string
	for _, t := range []struct {
		name string
		t    Table
	}{{"usernames", r.Usernames}, {"source IPs", r.Sources}, {"user agents", r.UserAgents},
		{"resources", r.Resources}, {"verbs", r.Verbs}, {"request URIs", r.URIs}} {
		if t.t.Full {
			out = append(out, fmt.Sprintf("%s: only the first %s distinct values are counted one by one; %s requests of other values are counted together as “other”",
				t.name, count(int64(t.t.Max)), count(t.t.Other.Requests)))
		}
	}
	if r.Timeline.Width > time.Minute {
		out = append(out, fmt.Sprintf("timeline: the period needed more buckets than the cap, so they were widened to %s", duration(r.Timeline.Width)))
	}
	if r.AlertsCut > 0 {
		out = append(out, fmt.Sprintf("alerts: the first %s are kept with their events; %s more are counted in their rules",
			count(int64(r.AlertsMax)), count(r.AlertsCut)))
	}
	if r.EventsCut > 0 {
		out = append(out, fmt.Sprintf("events: the event documents of %d alerts are cut at %s", r.EventsCut, bytesText(int64(r.EventMaxBytes))))
	}
	if r.BadTotal > int64(len(r.Bad)) {
		out = append(out, fmt.Sprintf("bad records: the first %s of %s are listed", count(int64(len(r.Bad))), count(r.BadTotal)))
	}
	if r.WarningsTotal > int64(len(r.Warnings)) {
		out = append(out, fmt.Sprintf("records read with a warning: the first %s of %s are listed", count(int64(len(r.Warnings))), count(r.WarningsTotal)))
	}
	if r.OtherInputs != nil {
		out = append(out, fmt.Sprintf("inputs: the first %s are listed one by one; the others are counted together", count(int64(r.InputsMax))))
	}
	return out
}

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// bytesText formats a size.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// duration formats a bucket width: "minute", "10 minutes", "hour", "6
// hours", "day", "week".
func duration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch m := int64(d / time.Minute); {
	case m%10080 == 0:
		return unit(m/10080, "week")
	case m%1440 == 0:
		return unit(m/1440, "day")
	case m%60 == 0:
		return unit(m/60, "hour")
	default:
		return unit(m, "minute")
	}
}
