package report

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
)

// Defaults of Options.
const (
	DefaultMaxKeys       = 10000
	DefaultMaxBuckets    = 1 << 16 // 45 days of minutes
	DefaultMaxAlerts     = 1000
	DefaultMaxEventBytes = 16 << 10
	DefaultMaxBad        = 100
	DefaultMaxInputs     = 1000
)

// Options configure a Collector. Zero values take the defaults.
type Options struct {
	// Title heads the report ("" : "Anonymous access to the Kubernetes API").
	Title string
	// Generator names the program in the report's footer ("kanon v1.2.0").
	Generator string
	// MaxKeys caps the distinct values of each table (source IPs, user
	// agents, resources, verbs, URIs, usernames).
	MaxKeys int
	// MaxBuckets caps the timeline's buckets (past it, buckets widen).
	MaxBuckets int
	// MaxAlerts caps the alerts kept with their events; the others are
	// counted per rule.
	MaxAlerts int
	// MaxEventBytes cuts the event document kept with an alert.
	MaxEventBytes int
	// MaxBad caps the bad records, and the records read with a warning,
	// kept as text (all are counted).
	MaxBad int
	// MaxInputs caps the inputs listed one by one.
	MaxInputs int
	// Now is the clock that dates the report (nil: time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxKeys, DefaultMaxKeys)
	def(&o.MaxBuckets, DefaultMaxBuckets)
	def(&o.MaxAlerts, DefaultMaxAlerts)
	def(&o.MaxEventBytes, DefaultMaxEventBytes)
	def(&o.MaxBad, DefaultMaxBad)
	def(&o.MaxInputs, DefaultMaxInputs)
	if o.Title == "" {
		o.Title = "Anonymous access to the Kubernetes API"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Collector gathers a report while a driver runs. Its methods are called
// in the driver's goroutine (Attach wires them); Report is called once
// the driver is closed. It is not safe for concurrent use.
type Collector struct {
	opts Options

	rules   []RuleInfo
	ruleIdx map[string]int

	events, noTime int64
	first, last    time.Time
	anon           Counts

	users, sources, agents, verbs, uris tally[string]
	resources                           tally[resKey]
	tl                                  timeline

	inputs    map[string]*inputStats
	order     []string // input names, in the order first seen
	otherIn   inputStats
	lastName  string
	lastInput *inputStats

	alerts     []Alert
	alertCount map[string]int64 // by rule id
	alertsCut  int64

	bad, warnings     []string
	badAll, warnedAll int64
}

// inputStats counts one input.
type inputStats struct {
	name                           string
	events, anonymous, bad, warned int64
	formats                        []CodeName
	first, last                    time.Time
}

// CodeName is a name and how many times it was seen (an input's formats).
type CodeName struct {
	Name string
	N    int64
}

// maxFormats bounds the formats listed for one input.
const maxFormats = 8

// New returns a collector.
func New(opts Options) *Collector {
	opts.defaults()
	return &Collector{
		opts: opts, ruleIdx: map[string]int{},
		users: newTally(opts.MaxKeys, strings.Clone), sources: newTally(opts.MaxKeys, strings.Clone),
		agents: newTally(opts.MaxKeys, strings.Clone), verbs: newTally(opts.MaxKeys, strings.Clone),
		uris: newTally(opts.MaxKeys, strings.Clone), resources: newTally(opts.MaxKeys, cloneRes),
		tl: newTimeline(opts.MaxBuckets), inputs: map[string]*inputStats{}, alertCount: map[string]int64{},
	}
}

// Attach adds the collector to cfg: it observes every event, sees every
// alert (cfg.OnAlert), every bad record (cfg.OnBad) and every record read
// with a warning (cfg.OnWarn), the hooks already set being called after
// it, and it lists cfg.Rules as the rules that ran.
func (c *Collector) Attach(cfg *run.Config) {
	c.SetRules(cfg.Rules)
	cfg.Observers = append(cfg.Observers, c)
	if prev := cfg.OnAlert; prev != nil {
		cfg.OnAlert = func(a *alert.Alert, d time.Duration) { c.Alert(a); prev(a, d) }
	} else {
		cfg.OnAlert = func(a *alert.Alert, _ time.Duration) { c.Alert(a) }
	}
	if prev := cfg.OnBad; prev != nil {
		cfg.OnBad = func(in string, b ingest.BadRecord) { c.Bad(in, b); prev(in, b) }
	} else {
		cfg.OnBad = c.Bad
	}
	if prev := cfg.OnWarn; prev != nil {
		cfg.OnWarn = func(in string, b ingest.BadRecord) { c.Warn(in, b); prev(in, b) }
	} else {
		cfg.OnWarn = c.Warn
	}
}

// SetRules lists the rules that run (their metadata; their counts come
// from the run's stats).
func (c *Collector) SetRules(rs []*rule.Compiled) {
	for _, r := range rs {
		c.addRule(RuleInfo{Rule: engine.RuleInfo(r), File: r.File})
	}
}

func (c *Collector) addRule(ri RuleInfo) {
	if _, ok := c.ruleIdx[ri.ID]; ok {
		return
	}
	c.ruleIdx[ri.ID] = len(c.rules)
	c.rules = append(c.rules, ri)
}

// Fields implements run.Observer: what Observe reads.
func (c *Collector) Fields() event.FieldSet {
	var fs event.FieldSet
	for _, name := range []string{
		"@timestamp", "kubernetes.audit.user.username", "kubernetes.audit.sourceIPs", "kubernetes.audit.userAgent",
		"kubernetes.audit.verb", "kubernetes.audit.requestURI", "kubernetes.audit.objectRef.resource",
		"kubernetes.audit.objectRef.apiGroup", "kubernetes.audit.objectRef.subresource",
		"kubernetes.audit.responseStatus.code", "kubernetes.audit.annotations.authorization_k8s_io/decision",
		"kanon.reader",
	} {
		fs.Add(event.Lookup(name))
	}
	return fs
}

// IsAnonymous reports whether e is an anonymous request as the built-in
// rules define it: username system:anonymous or system:unauthenticated,
// or none.
func IsAnonymous(e *event.Event) bool {
	switch e.User.Username {
	case "", "system:anonymous", "system:unauthenticated":
		return true
	}
	return false
}

// Observe implements run.Observer: it counts e.
func (c *Collector) Observe(e *event.Event) {
	c.events++
	t := e.Time()
	anon := IsAnonymous(e)
	in := c.input(e.Origin.Name)
	in.events++
	in.addFormat(e.Format)
	if t.IsZero() {
		c.noTime++
	} else {
		if c.first.IsZero() || t.Before(c.first) {
			c.first = t
		}
		if t.After(c.last) {
			c.last = t
		}
		if in.first.IsZero() || t.Before(in.first) {
			in.first = t
		}
		if t.After(in.last) {
			in.last = t
		}
	}
	var d Decision
	if anon {
		d = decisionOf(e.Decision())
	}
	if !t.IsZero() {
		b := c.tl.at(t)
		b.all++
		if anon {
			switch d {
			case Allowed:
				b.allowed++
			case Forbidden:
				b.forbidden++
			default:
				b.none++
			}
		}
	}
	if !anon {
		return
	}
	in.anonymous++
	c.anon.add(d, t)
	c.users.add(e.User.Username, d, t)
	ip := ""
	if len(e.SourceIPs) > 0 {
		ip = e.SourceIPs[0]
	}
	c.sources.add(ip, d, t)
	c.agents.add(e.UserAgent, d, t)
	c.verbs.add(e.Verb, d, t)
	if e.ObjectRef.Resource != "" {
		k := resKey{e.ObjectRef.APIGroup, e.ObjectRef.Resource, e.ObjectRef.Subresource}
		if r := c.resources.add(k, d, t); r != nil {
			r.addVerb(e.Verb)
			if e.ResponseStatus.HasCode {
				r.addCode(e.ResponseStatus.Code)
			}
		}
	}
	if e.RequestURI != "" {
		if u := c.uris.add(uriKey(e.RequestURI), d, t); u != nil && e.ResponseStatus.HasCode {
			u.addCode(e.ResponseStatus.Code)
		}
	}
}

// input returns the counts of the input named name.
func (c *Collector) input(name string) *inputStats {
	if c.lastInput != nil && name == c.lastName {
		return c.lastInput
	}
	in := c.inputs[name]
	if in == nil {
		if len(c.inputs) >= c.opts.MaxInputs {
			return &c.otherIn
		}
		in = &inputStats{name: strings.Clone(name)}
		c.inputs[in.name] = in
		c.order = append(c.order, in.name)
	}
	c.lastName, c.lastInput = in.name, in
	return in
}

func (in *inputStats) addFormat(f string) {
	for i := range in.formats {
		if in.formats[i].Name == f {
			in.formats[i].N++
			return
		}
	}
	if len(in.formats) < maxFormats {
		in.formats = append(in.formats, CodeName{Name: strings.Clone(f), N: 1})
	}
}

// Bad counts a bad record of input (run.Config.OnBad).
func (c *Collector) Bad(input string, b ingest.BadRecord) {
	name := b.Origin.Name
	if name == "" {
		name = input
	}
	c.input(name).bad++
	c.badAll++
	if len(c.bad) < c.opts.MaxBad {
		c.bad = append(c.bad, b.Error())
	}
}

// Warn counts a record of input read with a warning (run.Config.OnWarn:
// a repeated key read two ways).
func (c *Collector) Warn(input string, b ingest.BadRecord) {
	name := b.Origin.Name
	if name == "" {
		name = input
	}
	c.input(name).warned++
	c.warnedAll++
	if len(c.warnings) < c.opts.MaxBad {
		c.warnings = append(c.warnings, b.Error())
	}
}

// Alert keeps a copy of a (run.Config.OnAlert): the first MaxAlerts in
// full, the others counted.
func (c *Collector) Alert(a *alert.Alert) {
	if _, ok := c.ruleIdx[a.Rule.ID]; !ok {
		c.addRule(RuleInfo{Rule: copyRule(a.Rule)})
	}
	c.alertCount[a.Rule.ID]++
	if !a.Timestamp.IsZero() {
		b := c.tl.at(a.Timestamp)
		b.alerts++
		b.severity = max(b.severity, rule.SeverityRank(a.Rule.Severity))
	}
	if len(c.alerts) >= c.opts.MaxAlerts {
		c.alertsCut++
		return
	}
	c.alerts = append(c.alerts, c.keep(a))
}

// copyRule deep-copies what the report shows of an alert's rule.
func copyRule(r alert.Rule) alert.Rule {
	b, err := json.Marshal(r)
	if err != nil {
		return alert.Rule{ID: r.ID, Name: r.Name, Severity: r.Severity}
	}
	var out alert.Rule
	if err := json.Unmarshal(b, &out); err != nil {
		return alert.Rule{ID: r.ID, Name: r.Name, Severity: r.Severity}
	}
	return out
}

// keep copies what the report shows of an alert.
func (c *Collector) keep(a *alert.Alert) Alert {
	// Copied: the report outlives the batch whose memory an alert's
	// strings may share.
	k := Alert{ID: strings.Clone(a.ID), Title: strings.Clone(a.Title), Rule: strings.Clone(a.Rule.ID),
		Severity: strings.Clone(a.Rule.Severity), Time: a.Timestamp, Origin: strings.Clone(a.Origin), Reader: strings.Clone(a.Reader)}
	for _, f := range a.Fields {
		v := fieldText(f.Value)
		switch f.Name {
		case "username":
			k.Username = v
		case "source_ips":
			if s, ok := f.Value.([]any); ok && len(s) > 0 {
				k.SourceIP = fieldText(s[0])
			} else {
				k.SourceIP = v
			}
		case "user_agent":
			k.UserAgent = v
		case "verb":
			k.Verb = v
		case "resource":
			k.Resource = v
		case "request_uri":
			k.URI = v
		case "decision":
			k.Decision = v
		case "response_code":
			k.Code = v
		}
		k.Fields = append(k.Fields, Field{Name: strings.Clone(f.Name), Value: v})
	}
	if a.Window != nil {
		w := *a.Window
		k.Window = &w
	}
	if g := a.Group; g != nil {
		k.Group = &Group{Key: strings.Clone(g.Key), Count: g.Count, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen, Samples: len(g.Samples)}
	}
	if a.Event != nil {
		if b, err := json.MarshalIndent(a.Event, "", "  "); err == nil {
			k.Event, k.EventCut = cut(string(b), c.opts.MaxEventBytes)
		}
	}
	return k
}

// cut cuts s at n bytes, at a rune boundary.
func cut(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n], true
}

// fieldText writes an output field's value as text (a copy): lists
// joined by ", ", nothing for null.
func fieldText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return strings.Clone(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, y := range x {
			parts = append(parts, fieldText(y))
		}
		return strings.Join(parts, ", ")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
