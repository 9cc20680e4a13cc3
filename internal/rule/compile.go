package rule

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/eval/kqleval"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
)

// DefaultOutputFields are the fields every alert carries, by short name.
var DefaultOutputFields = []OutputField{
	{"username", "kubernetes.audit.user.username"},
	{"source_ips", "kubernetes.audit.sourceIPs"},
	{"user_agent", "kubernetes.audit.userAgent"},
	{"verb", "kubernetes.audit.verb"},
	{"resource", "kubernetes.audit.objectRef.resource"},
	{"namespace", "kubernetes.audit.objectRef.namespace"},
	{"request_uri", "kubernetes.audit.requestURI"},
	{"response_code", "kubernetes.audit.responseStatus.code"},
	{"decision", "kubernetes.audit.annotations.authorization_k8s_io/decision"},
	{"cluster", "orchestrator.cluster.name"},
}

// OutputField is a field carried in alerts: its short name and ECS field.
type OutputField struct {
	Name  string
	Field string
}

// Compiled is a rule ready to run: its query compiled, its field set known.
// A Compiled rule is safe for concurrent use.
type Compiled struct {
	*Rule
	// Matcher is the compiled query of a kuery rule.
	Matcher *kqleval.Matcher
	// Program is the compiled query of an esql rule.
	Program *esqleval.Program
	// Titles are the compiled title cases.
	Titles []CompiledTitle
	// Outputs are the output fields, resolved.
	Outputs []ResolvedOutput
	// TermFields are the new_terms fields, resolved.
	TermFields []event.Field
	// History is the new_terms history window.
	History time.Duration
	// Fields is everything the rule reads (query, outputs, templates).
	Fields event.FieldSet
}

// CompiledTitle is a title case with its condition compiled.
type CompiledTitle struct {
	When     *kqleval.Matcher // nil: always
	Template *Template
}

// ResolvedOutput is an output field resolved to an event field.
type ResolvedOutput struct {
	Name  string
	Field event.Field
}

// Interval is the schedule's interval.
func (c *Compiled) Interval() time.Duration { return c.Schedule.Interval.D() }

// Lookback is the schedule's look-back (from).
func (c *Compiled) Lookback() time.Duration { return c.Schedule.Lookback() }

// Title renders the alert title for e ("" when the rule has none).
func (c *Compiled) Title(e *event.Event) string {
	for _, t := range c.Titles {
		if t.When == nil || t.When.Match(e) {
			return t.Template.Render(e)
		}
	}
	return ""
}

// MemoryBudget is the per-rule state budget of windowed rules.
const MemoryBudget = 256 << 20

// Compile compiles a parsed rule.
func Compile(r *Rule) (*Compiled, error) {
	c := &Compiled{Rule: r}
	var errs pos.ErrorList
	add := func(err error) {
		if err == nil {
			return
		}
		switch e := err.(type) {
		case *pos.Error:
			errs.Add(e)
		case *pos.ErrorList:
			for _, x := range e.Errs {
				errs.Add(x)
			}
		default:
			errs.Add(pos.Errorf(r.QuerySrc, pos.Span{}, ErrQuery, "rule %s: %v", r.ID, err))
		}
	}
	switch r.Language {
	case LangKuery:
		m, err := kqleval.Compile(r.KQL, kqleval.WithSource(r.QuerySrc))
		add(err)
		c.Matcher = m
		if m != nil {
			c.Fields.Union(m.Fields())
		}
	case LangESQL:
		p, err := esqleval.Compile(r.ESQL, esqleval.WithName("rule "+r.ID), esqleval.WithMemoryBudget(MemoryBudget))
		add(err)
		c.Program = p
		if p != nil {
			c.Fields.Union(p.Fields())
		}
	}
	if r.NewTerms != nil {
		for _, f := range r.NewTerms.Fields {
			ef := event.Lookup(f)
			c.TermFields = append(c.TermFields, ef)
			c.Fields.Add(ef)
		}
		c.History, _ = ParseDateMath(r.NewTerms.HistoryWindowStart)
	}
	for i, t := range r.TitleTmpl {
		ct := CompiledTitle{Template: t.Template}
		t.Template.Fields(&c.Fields)
		if t.When != nil {
			src := r.QuerySrc
			if i < len(r.Title.Cases) && r.Title.Cases[i].WhenSrc != nil {
				src = r.Title.Cases[i].WhenSrc
			}
			m, err := kqleval.Compile(t.When, kqleval.WithSource(src))
			add(err)
			if m != nil {
				ct.When = m
				c.Fields.Union(m.Fields())
			}
		}
		c.Titles = append(c.Titles, ct)
	}
	if r.DedupTmpl != nil {
		r.DedupTmpl.Fields(&c.Fields)
	}
	for _, o := range DefaultOutputFields {
		f := event.Lookup(o.Field)
		c.Outputs = append(c.Outputs, ResolvedOutput{Name: o.Name, Field: f})
	}
	for _, name := range r.OutputFields {
		c.Outputs = append(c.Outputs, ResolvedOutput{Name: name, Field: event.Lookup(name)})
	}
	for _, o := range c.Outputs {
		// An output naming an object is rendered from the alert's
		// materialised document: readers need not keep raw parts for it.
		if o.Field.Type != event.TypeObject {
			c.Fields.Add(o.Field)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// CompileAll compiles rules, collecting every error: ids defined twice and
// the errors of every rule, together (see MergeErrors). On any error it
// returns no rules.
func CompileAll(rules []*Rule) ([]*Compiled, error) {
	errs := []error{CheckUnique(rules)}
	var out []*Compiled
	for _, r := range rules {
		c, err := Compile(r)
		if err != nil {
			var l *pos.ErrorList
			if !errors.As(err, &l) {
				err = fmt.Errorf("rule %s: %w", r.ID, err)
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, c)
	}
	if err := MergeErrors(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// Load loads and compiles the rules under dir of fsys. The errors of the
// files that do not load and of the rules that do not compile are returned
// together.
func Load(fsys fs.FS, dir string) ([]*Compiled, error) {
	rules, loadErr := LoadFS(fsys, dir)
	compiled, err := CompileAll(rules)
	if err := MergeErrors(loadErr, err); err != nil {
		return nil, err
	}
	return compiled, nil
}
