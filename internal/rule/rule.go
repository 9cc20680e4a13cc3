package rule

import (
	"time"

	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
	"gopkg.in/yaml.v3"
)

// Elastic's rule types. A rule's type declares Elastic's semantics: its
// query's language and when it fires (see TypeLanguage and TypeFiring).
const (
	TypeQuery    = "query"
	TypeESQL     = "esql"
	TypeNewTerms = "new_terms"
)

// Query languages: what a rule is written in.
const (
	LangKuery = "kuery"
	LangESQL  = "esql"
)

// Firing modes: when a rule fires.
const (
	// FiringPerEvent: each matching event alerts when it is read. There are
	// no runs and no max_signals (Panther's rules, and rules that declare
	// neither type nor firing).
	FiringPerEvent = "per_event"
	// FiringScheduled: Elastic's runs, every interval over the look-back
	// from, at most max_signals alerts per run; an ES|QL query aggregates
	// over each run.
	FiringScheduled = "scheduled"
	// FiringNewTerms: Elastic's new terms, a value not seen among matching
	// events within the history window, on Elastic's runs.
	FiringNewTerms = "new_terms"
)

// Types, Languages and Firings are the accepted values, for messages.
var (
	Types     = []string{TypeQuery, TypeESQL, TypeNewTerms}
	Languages = []string{LangKuery, LangESQL}
	Firings   = []string{FiringPerEvent, FiringScheduled, FiringNewTerms}
)

// TypeLanguage is the language an Elastic rule type implies ("" for a type
// that is not Elastic's).
func TypeLanguage(typ string) string {
	switch typ {
	case TypeQuery, TypeNewTerms:
		return LangKuery
	case TypeESQL:
		return LangESQL
	}
	return ""
}

// TypeFiring is the firing an Elastic rule type implies ("" for a type
// that is not Elastic's).
func TypeFiring(typ string) string {
	switch typ {
	case TypeQuery, TypeESQL:
		return FiringScheduled
	case TypeNewTerms:
		return FiringNewTerms
	}
	return ""
}

// Severities, lowest first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// SeverityRank orders severities (info=0 ... critical=4); -1 if unknown.
func SeverityRank(s string) int {
	for i, x := range Severities {
		if x == s {
			return i
		}
	}
	return -1
}

// Rule is one rule file as written. Optional fields are zero when absent.
type Rule struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// Type is Elastic's rule type (query, esql, new_terms), "" when the
	// rule has none. It declares Elastic's semantics: the language and
	// firing it implies (TypeLanguage, TypeFiring) and Elastic's schedule.
	Type string `yaml:"type"`
	// Language is what the query is written in (kuery, esql). The loader
	// fills it from Type, else kuery.
	Language string `yaml:"language"`
	// Firing is when the rule fires (per_event, scheduled, new_terms). The
	// loader fills it from Type, else per_event.
	Firing    string   `yaml:"firing"`
	Query     string   `yaml:"query"`
	Index     []string `yaml:"index"`
	Severity  string   `yaml:"severity"`
	RiskScore int      `yaml:"risk_score"`
	// Schedule is Elastic's run schedule, for scheduled and new_terms
	// rules only; the loader fills Elastic's defaults.
	Schedule   Schedule `yaml:"schedule"`
	Threat     []Threat `yaml:"threat"`
	Tags       []string `yaml:"tags"`
	References []string `yaml:"references"`
	Author     []string `yaml:"author"`
	License    string   `yaml:"license"`
	Version    int      `yaml:"version"`
	// Note is the investigation guide (Markdown); Runbook the response steps.
	Note           string   `yaml:"note"`
	Runbook        string   `yaml:"runbook"`
	FalsePositives []string `yaml:"false_positives"`
	// OutputFields are extra fields (ECS names) carried in every alert.
	OutputFields []string `yaml:"output_fields"`
	// Title is the alert title: a template, or conditional templates.
	Title Title `yaml:"title"`
	// Dedup groups repeated alerts (Panther's DedupPeriodMinutes).
	Dedup *Dedup `yaml:"dedup"`
	// NewTerms configures the new_terms rule type.
	NewTerms *NewTerms `yaml:"new_terms"`
	// Notes documents quirks kept from the original rule.
	Notes string `yaml:"notes"`
	// Source records where the rule comes from.
	Source *Source `yaml:"source"`
	// Enabled defaults to true.
	Enabled *bool  `yaml:"enabled"`
	Tests   []Test `yaml:"tests"`

	// Set by the loader.
	File string `yaml:"-"`
	// Src is the rule file's text, for positioned messages.
	Src       *pos.Source   `yaml:"-"`
	QuerySrc  *pos.Source   `yaml:"-"`
	Positions RulePositions `yaml:"-"`
	// KQL is the parsed query of query and new_terms rules.
	KQL kql.Expr `yaml:"-"`
	// ESQL is the parsed query of esql rules.
	ESQL *esql.Query `yaml:"-"`
	// Parsed templates.
	TitleTmpl []TitleTemplate `yaml:"-"`
	DedupTmpl *Template       `yaml:"-"`
}

// RulePositions are the file positions of parts of the rule, for messages.
type RulePositions struct {
	ID, Query, Tests pos.Position
	TestPos          []pos.Position
}

// IsEnabled reports whether the rule runs (true unless enabled: false).
func (r *Rule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// HasRuns reports whether the rule fires on Elastic's runs (scheduled and
// new_terms firing), so that its Schedule applies.
func (r *Rule) HasRuns() bool { return r.Firing == FiringScheduled || r.Firing == FiringNewTerms }

// Schedule is Elastic's rule schedule: a run every Interval over the
// look-back From (a date-math expression "now-6m"), raising at most
// MaxSignals alerts per run.
type Schedule struct {
	Interval   Duration `yaml:"interval"`
	From       string   `yaml:"from"`
	MaxSignals int      `yaml:"max_signals"`
}

// Elastic's defaults.
const (
	DefaultInterval   = 5 * time.Minute
	DefaultFrom       = "now-6m"
	DefaultMaxSignals = 100
)

// Lookback returns the look-back of From as a duration (now-6m -> 6m).
func (s Schedule) Lookback() time.Duration {
	d, _ := ParseDateMath(s.From)
	return d
}

// Threat is one MITRE ATT&CK mapping, as in Elastic's rule schema.
type Threat struct {
	Framework string      `yaml:"framework"`
	Tactic    ThreatRef   `yaml:"tactic"`
	Technique []Technique `yaml:"technique"`
}

// ThreatRef is a tactic, technique or sub-technique.
type ThreatRef struct {
	ID        string `yaml:"id" json:"id"`
	Name      string `yaml:"name" json:"name"`
	Reference string `yaml:"reference" json:"reference,omitempty"`
}

// Technique is a MITRE technique with its sub-techniques.
type Technique struct {
	ID           string      `yaml:"id" json:"id"`
	Name         string      `yaml:"name" json:"name"`
	Reference    string      `yaml:"reference" json:"reference,omitempty"`
	Subtechnique []ThreatRef `yaml:"subtechnique" json:"subtechnique,omitempty"`
}

// Title is an alert title: either one template, or a list of cases whose
// first matching "when" (a KQL query over the event) picks the template;
// a case without "when" is the default.
type Title struct {
	Template string
	Cases    []TitleCase
}

// TitleCase is one conditional title.
type TitleCase struct {
	When     string `yaml:"when"`
	Template string `yaml:"title"`

	WhenSrc *pos.Source `yaml:"-"`
}

// UnmarshalYAML accepts a string or a list of cases.
func (t *Title) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&t.Template)
	}
	return decodeStrict(n, &t.Cases)
}

// IsZero reports whether no title is set.
func (t Title) IsZero() bool { return t.Template == "" && len(t.Cases) == 0 }

// Dedup groups alerts of a rule with the same key within a period into one
// alert with a count and first/last times.
type Dedup struct {
	Key    string   `yaml:"key"`
	Period Duration `yaml:"period"`
}

// NewTerms configures the new_terms rule type.
type NewTerms struct {
	Fields             []string `yaml:"fields"`
	HistoryWindowStart string   `yaml:"history_window_start"`
}

// Source is the provenance of a rule.
type Source struct {
	Vendor  string `yaml:"vendor" json:"vendor,omitempty"`
	RuleID  string `yaml:"rule_id" json:"rule_id,omitempty"`
	Version string `yaml:"version" json:"version,omitempty"`
	URL     string `yaml:"url" json:"url,omitempty"`
}

// Test is one embedded rule test, in kanon's form (name, expect, events)
// or verbatim in Panther's (Name, ExpectedResult, Log).
type Test struct {
	Name string `yaml:"name"`
	// Expect is "alert" or "no_alert".
	Expect string `yaml:"expect"`
	// Alerts, if set, is the exact number of alerts expected.
	Alerts *int `yaml:"alerts"`
	// Fields are values the first alert must carry (output fields, title,
	// or ES|QL columns).
	Fields map[string]any `yaml:"fields"`
	// Events are the input: YAML/JSON objects, or strings holding one raw
	// record each, in any format kanon reads.
	Events []yaml.Node `yaml:"events"`
	// History are events read before Events with alerting off: they only
	// teach stateful rules (new-terms history) what was seen before.
	History []yaml.Node `yaml:"history"`
	// Now, for windowed rules, is when the test runs (default: the end of
	// the last run that covers the events).
	Now string `yaml:"now"`

	// Panther's form.
	PantherName    string      `yaml:"Name"`
	ExpectedResult *bool       `yaml:"ExpectedResult"`
	Log            *yaml.Node  `yaml:"Log"`
	PantherMocks   []yaml.Node `yaml:"Mocks"`

	Line, Col int `yaml:"-"`
}

// DisplayName is the test's name in either form.
func (t *Test) DisplayName() string {
	if t.PantherName != "" {
		return t.PantherName
	}
	return t.Name
}

// WantAlert reports the expected verdict.
func (t *Test) WantAlert() bool {
	if t.ExpectedResult != nil {
		return *t.ExpectedResult
	}
	return t.Expect == "alert"
}

// Duration is a time.Duration written as "5m", "1h", "7d" or "90s".
type Duration time.Duration

// UnmarshalYAML parses a duration with day support.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
