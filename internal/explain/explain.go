package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/rule"
)

// Stages of an ES|QL condition.
const (
	StageEvent = "event"       // a WHERE before the first STATS: tests each event
	StageStats = "after_stats" // a WHERE after STATS: tests aggregated rows
)

// Explanation is the catalogue view of one rule.
type Explanation struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Type is Elastic's rule type ("" for rules without Elastic's
	// semantics); Language and Firing are what the query is written in
	// and when the rule fires.
	Type     string `json:"type"`
	Language string `json:"language"`
	Firing   string `json:"firing"`
	File     string `json:"file"`
	// Conditions are the top-level conjuncts of the query (of each WHERE
	// command, for ES|QL), in order: all must hold.
	Conditions []Condition `json:"conditions"`
	// Exclusions are the negated top-level conjuncts, one row per disjunct
	// of "not (a or b ...)".
	Exclusions []Exclusion `json:"exclusions"`
	// Indicators are the positive predicates on event fields, one per value.
	Indicators []Indicator `json:"indicators"`
	// Outputs are the fields an alert carries (ES|QL: the output columns).
	Outputs []Output `json:"outputs"`
}

// Condition is one top-level conjunct.
type Condition struct {
	Text     string `json:"text"`
	Position string `json:"position"`
	// Stage is StageEvent or StageStats for ES|QL, "" for KQL.
	Stage     string `json:"stage,omitempty"`
	Exclusion bool   `json:"exclusion,omitempty"`
}

// Exclusion is one thing a rule excludes: events where every Match holds
// do not alert.
type Exclusion struct {
	Text     string  `json:"text"`
	Position string  `json:"position"`
	Stage    string  `json:"stage,omitempty"`
	Matches  []Match `json:"matches"`
}

// Match is a predicate in an exclusion; Negated when it holds under a NOT.
type Match struct {
	Field   string   `json:"field"`
	Func    string   `json:"func,omitempty"`
	Kind    Kind     `json:"kind"`
	Values  []string `json:"values,omitempty"`
	Negated bool     `json:"negated,omitempty"`
}

// Indicator is a positive field/kind/value predicate, with the other
// loaded rules that use the same one.
type Indicator struct {
	Field      string   `json:"field"`
	Func       string   `json:"func,omitempty"`
	Kind       Kind     `json:"kind"`
	Value      string   `json:"value,omitempty"`
	Position   string   `json:"position"`
	OtherRules int      `json:"other_rules"`
	Others     []string `json:"others,omitempty"`
}

// Output is an output field: its name in the alert and the event field it
// reads ("" for a computed ES|QL column).
type Output struct {
	Name  string `json:"name"`
	Field string `json:"field,omitempty"`
}

// source is one boolean tree of a rule with its stage.
type source struct {
	node  *Node
	stage string
}

// Lineage returns what the compiler derived about the columns of a rule's
// ES|QL query: the compiled program's, or, for a rule compiled without one
// (or whose query has errors), esqleval.Analyze's; nil for other rules.
func Lineage(r *rule.Compiled) *esqleval.Lineage {
	switch {
	case r.Program != nil:
		return r.Program.Lineage()
	case r.ESQL != nil:
		l, _ := esqleval.Analyze(r.ESQL)
		return l
	}
	return nil
}

func sources(r *rule.Compiled) []source {
	switch {
	case r.KQL != nil:
		return []source{{node: FromKQL(r.KQL)}}
	case r.ESQL != nil:
		var out []source
		for _, w := range Wheres(r.ESQL, Lineage(r)) {
			st := StageEvent
			if w.AfterStats {
				st = StageStats
			}
			out = append(out, source{node: w.Node, stage: st})
		}
		return out
	}
	return nil
}

// Position renders the file position of a span of the rule's query as
// file:line:col, with the rule's file name.
func Position(r *rule.Rule, sp pos.Span) string {
	p := r.QuerySrc.Position(sp.Start)
	file := r.File
	if file == "" {
		file = p.File
	}
	return fmt.Sprintf("%s:%d:%d", file, p.Line, p.Col)
}

// CanonicalField returns the name under which a field is compared across
// rules: ECS copies (user.name, event.action, user_agent.original) become
// their kubernetes.audit field.
func CanonicalField(name string) string {
	f := event.Lookup(name)
	if !f.Known() || f.Type == event.TypeObject || strings.HasPrefix(name, "kubernetes.audit.") {
		return name
	}
	for _, s := range event.Schema() {
		if s.ID() == f.ID() && strings.HasPrefix(s.Name, "kubernetes.audit.") {
			return s.Name
		}
	}
	return name
}

type indicatorKey struct {
	field, fn string
	kind      Kind
	value     string
}

// indicators returns the positive predicates on event fields of a rule,
// one per value, in query order, with their spans.
func indicators(r *rule.Compiled) ([]indicatorKey, []pos.Span) {
	var keys []indicatorKey
	var spans []pos.Span
	seen := map[indicatorKey]bool{}
	for _, s := range sources(r) {
		for _, c := range s.node.Conjuncts() {
			if c.Op == OpNot {
				continue
			}
			c.Preds(func(p *Predicate, negated bool) {
				if negated || p.Column || p.Field == "*" {
					return
				}
				vals := p.Values
				if len(vals) == 0 {
					vals = []string{""}
				}
				for i, v := range vals {
					k := indicatorKey{field: CanonicalField(p.Field), fn: p.Func, kind: p.Kind, value: v}
					if seen[k] {
						continue
					}
					seen[k] = true
					keys = append(keys, k)
					sp := p.Span
					if i < len(p.ValueSpans) {
						sp = p.ValueSpans[i]
					}
					spans = append(spans, sp)
				}
			})
		}
	}
	return keys, spans
}

// Explain describes r. loaded are the rules loaded with it (r may be among
// them), for the indicators' counts of other rules.
func Explain(r *rule.Compiled, loaded []*rule.Compiled) *Explanation {
	x := &Explanation{ID: r.ID, Name: r.Name, Type: r.Type, Language: r.Language, Firing: r.Firing, File: r.File,
		Conditions: []Condition{}, Exclusions: []Exclusion{}, Indicators: []Indicator{}, Outputs: []Output{}}
	for _, s := range sources(r) {
		for _, c := range s.node.Conjuncts() {
			excl := c.Op == OpNot
			x.Conditions = append(x.Conditions, Condition{Text: c.Text, Position: Position(r.Rule, c.Span), Stage: s.stage, Exclusion: excl})
			if !excl {
				continue
			}
			for _, d := range c.Args[0].Disjuncts() {
				e := Exclusion{Text: d.Text, Position: Position(r.Rule, d.Span), Stage: s.stage, Matches: []Match{}}
				d.Preds(func(p *Predicate, negated bool) {
					e.Matches = append(e.Matches, Match{Field: p.Field, Func: p.Func, Kind: p.Kind, Values: p.Values, Negated: negated})
				})
				x.Exclusions = append(x.Exclusions, e)
			}
		}
	}
	// Indicators, with the other rules using each.
	users := map[indicatorKey][]string{}
	for _, o := range loaded {
		if o.ID == r.ID {
			continue
		}
		keys, _ := indicators(o)
		for _, k := range keys {
			users[k] = append(users[k], o.ID)
		}
	}
	keys, spans := indicators(r)
	for i, k := range keys {
		others := users[k]
		sort.Strings(others)
		x.Indicators = append(x.Indicators, Indicator{Field: k.field, Func: k.fn, Kind: k.kind, Value: k.value,
			Position: Position(r.Rule, spans[i]), OtherRules: len(others), Others: others})
	}
	// Output fields: an ES|QL rule's columns; a per-event rule's alert
	// (KQL, or ES|QL without STATS) also carries the event's output fields.
	if r.Program != nil {
		lin := r.Program.Lineage().Output()
		for i, name := range r.Program.Columns() {
			o := Output{Name: name}
			if f, ok := lin[i].EventField(); ok && f.Type != event.TypeObject {
				o.Field = f.Name
			}
			x.Outputs = append(x.Outputs, o)
		}
	}
	if r.Program == nil || r.Program.PerEvent() {
		for _, o := range r.Outputs {
			x.Outputs = append(x.Outputs, Output{Name: o.Name, Field: o.Field.Name})
		}
	}
	return x
}

// WriteJSON writes x as indented JSON.
func (x *Explanation) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(x)
}

// WriteText writes x for people.
func (x *Explanation) WriteText(w io.Writer) error {
	bw := &errWriter{w: w}
	fmt.Fprintf(bw, "%s\n%s\n", x.Name, strings.Repeat("=", len(x.Name)))
	elastic := ""
	if x.Type != "" {
		elastic = "   type: " + x.Type
	}
	fmt.Fprintf(bw, "id: %s   language: %s   firing: %s%s   file: %s\n\n", x.ID, x.Language, x.Firing, elastic, x.File)

	fmt.Fprintln(bw, "Detection logic (every condition must hold):")
	tw := tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	for i, c := range x.Conditions {
		role := ""
		if c.Exclusion {
			role = "exclusion"
		}
		stage := ""
		switch c.Stage {
		case StageEvent:
			stage = "per event"
		case StageStats:
			stage = "after STATS"
		}
		fmt.Fprintf(tw, "  %d.\t%s\t%s\t%s\t%s\n", i+1, oneLine(c.Text, 90), stage, role, c.Position)
	}
	tw.Flush()

	fmt.Fprintf(bw, "\nExclusions (%d): an event matching a row does not alert\n", len(x.Exclusions))
	if len(x.Exclusions) > 0 {
		tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FIELD\tMATCH\tVALUES\tPOSITION")
		for _, e := range x.Exclusions {
			for j, m := range e.Matches {
				field := m.Field
				if m.Func != "" {
					field = m.Func + "(" + m.Field + ")"
				}
				kind := string(m.Kind)
				if m.Negated {
					kind = "not " + kind
				}
				if j > 0 {
					field = "  and " + field
				}
				p := e.Position
				if j > 0 {
					p = ""
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", field, kind, strings.Join(quoteAll(m.Values), ", "), p)
			}
			if len(e.Matches) == 0 {
				fmt.Fprintf(tw, "  %s\t\t\t%s\n", oneLine(e.Text, 60), e.Position)
			}
		}
		tw.Flush()
	}

	fmt.Fprintf(bw, "\nIndicators (%d): what the rule looks for, and how many other loaded rules look for it too\n", len(x.Indicators))
	if len(x.Indicators) > 0 {
		tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  FIELD\tMATCH\tVALUE\tOTHER RULES")
		for _, in := range x.Indicators {
			field := in.Field
			if in.Func != "" {
				field = in.Func + "(" + in.Field + ")"
			}
			others := fmt.Sprint(in.OtherRules)
			if in.OtherRules > 0 {
				others += " (" + strings.Join(in.Others, ", ") + ")"
			}
			v := ""
			if in.Kind != KindExists {
				v = quote(in.Value)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", field, in.Kind, v, others)
		}
		tw.Flush()
	}

	fmt.Fprintf(bw, "\nOutput fields (%d):\n", len(x.Outputs))
	tw = tabwriter.NewWriter(bw, 0, 4, 2, ' ', 0)
	for _, o := range x.Outputs {
		if o.Field != "" && o.Field != o.Name {
			fmt.Fprintf(tw, "  %s\t%s\n", o.Name, o.Field)
		} else {
			fmt.Fprintf(tw, "  %s\t\n", o.Name)
		}
	}
	tw.Flush()
	return bw.err
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

func quoteAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = quote(v)
	}
	return out
}

// oneLine collapses whitespace and cuts s to n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
