package lint

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/explain"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
	"github.com/kanon-dev/kanon/internal/query/kql"
	"github.com/kanon-dev/kanon/internal/rule"
)

// Warning codes.
const (
	CodeUnknownField     = "unknown-field"
	CodeImpossibleValue  = "impossible-value"
	CodeNeverExcludes    = "never-matching-exclusion"
	CodeEmptyStringESQL  = "empty-string"
	CodeImpossibleRange  = "impossible-range"
	CodeNonResourceField = "non-resource-resource"
)

// Warning is one finding, positioned in a rule file.
type Warning struct {
	Rule    string `json:"rule"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Code    string `json:"code"`
	Message string `json:"message"`

	src  *pos.Source
	span pos.Span
}

// String renders the warning as "file:line:col: message (code, rule id)".
func (w Warning) String() string {
	return fmt.Sprintf("%s:%d:%d: %s [%s, rule %s]", w.File, w.Line, w.Col, w.Message, w.Code, w.Rule)
}

// Pretty renders the warning with the query line and a caret under what it
// is about.
func (w Warning) Pretty() string {
	if w.src == nil {
		return w.String()
	}
	e := &pos.Error{Src: w.src, Span: w.span, Msg: w.Message}
	p := e.Pretty()
	// Replace the error's own "file:line:col: message" head by ours.
	if i := strings.IndexByte(p, '\n'); i >= 0 {
		return w.String() + p[i:]
	}
	return w.String()
}

// Rules lints every rule and returns the warnings sorted by file and
// position.
func Rules(rs []*rule.Rule) []Warning {
	var out []Warning
	for _, r := range rs {
		out = append(out, Rule(r)...)
	}
	sortWarnings(out)
	return out
}

// CompiledRules is Rules for compiled rules: ES|QL queries are linted with
// the column lineage of their compiled programs.
func CompiledRules(cs []*rule.Compiled) []Warning {
	var out []Warning
	for _, c := range cs {
		out = append(out, Compiled(c)...)
	}
	sortWarnings(out)
	return out
}

func sortWarnings(out []Warning) {
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Rule lints one parsed rule (its KQL or ES|QL query), also one that does
// not compile. The columns of an ES|QL query (what EVAL, RENAME, GROK and
// DISSECT define) are what the compiler derives (esqleval.Analyze); for a
// query with errors, the part that compiled.
func Rule(r *rule.Rule) []Warning { return Compiled(&rule.Compiled{Rule: r}) }

// Compiled lints a compiled rule, reading the columns of an ES|QL query
// from its program's lineage (a Compiled without a Program is analysed as
// Rule does).
func Compiled(c *rule.Compiled) []Warning {
	r := c.Rule
	l := &linter{r: r, seen: map[string]bool{}}
	switch {
	case r.KQL != nil:
		l.kqlFields(r.KQL, "")
		n := explain.FromKQL(r.KQL)
		l.tree(n, true, false)
	case r.ESQL != nil:
		lin := explain.Lineage(c)
		l.esqlFields(r.ESQL, lin)
		for _, w := range explain.Tests(r.ESQL, lin) {
			if w.AfterStats {
				continue
			}
			l.tree(w.Node, false, w.Cmd != nil)
		}
	}
	sortWarnings(l.out)
	return l.out
}

type linter struct {
	r    *rule.Rule
	out  []Warning
	seen map[string]bool
}

func (l *linter) warn(sp pos.Span, code, format string, args ...any) {
	p := l.r.QuerySrc.Position(sp.Start)
	file := l.r.File
	if file == "" {
		file = p.File
	}
	w := Warning{Rule: l.r.ID, File: file, Line: p.Line, Col: p.Col, Code: code, Message: fmt.Sprintf(format, args...), src: l.r.QuerySrc, span: sp}
	key := fmt.Sprintf("%d:%d:%s:%s", w.Line, w.Col, w.Code, w.Message)
	if l.seen[key] {
		return
	}
	l.seen[key] = true
	l.out = append(l.out, w)
}

// ---- fields ----

// eventPrefixes are the namespaces of the canonical document: a name
// under one of them is an event field; other names (Esql.x, command) are
// columns the query computes.
var eventPrefixes = []string{"kubernetes.", "event.", "user.", "source.", "client.", "cloud.", "orchestrator.",
	"data_stream.", "user_agent.", "kanon.", "host.", "destination.", "related."}

func isEventName(name string) bool {
	if name == "@timestamp" {
		return true
	}
	for _, p := range eventPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func (l *linter) kqlFields(e kql.Expr, prefix string) {
	switch x := e.(type) {
	case *kql.OrExpr:
		for _, a := range x.Args {
			l.kqlFields(a, prefix)
		}
	case *kql.AndExpr:
		for _, a := range x.Args {
			l.kqlFields(a, prefix)
		}
	case *kql.NotExpr:
		l.kqlFields(x.X, prefix)
	case *kql.FieldExpr:
		if !x.Field.IsWildcard() {
			l.field(prefix+x.Field.Value, x.Field.Sp)
		}
	case *kql.RangeExpr:
		if !x.Field.IsWildcard() {
			l.field(prefix+x.Field.Value, x.Field.Sp)
		}
	case *kql.NestedExpr:
		l.kqlFields(x.Query, prefix+x.Path.Value+".")
	}
}

// esqlFields checks the event fields an ES|QL query names before its first
// STATS (and in the STATS itself). A name the query defines (EVAL, GROK,
// DISSECT, RENAME: the compiler's lineage says which) is a column, not an
// event field; so is every name after STATS.
func (l *linter) esqlFields(q *esql.Query, lin *esqleval.Lineage) {
	for _, c := range q.Commands {
		esql.WalkCmd(c, func(e esql.Expr) bool {
			switch x := e.(type) {
			case *esql.FieldExpr:
				if col, ok := lin.Ref(x); (!ok || !col.Defined()) && isEventName(x.Name) {
					l.field(x.Name, x.Loc)
				}
			case *esql.CallExpr:
				if x.Name == "KQL" && len(x.Args) == 1 {
					if lit, ok := x.Args[0].(*esql.LiteralExpr); ok && lit.Kind == esql.LitString {
						if k, err := kql.ParseString(lit.Str); err == nil {
							l.kqlFieldsAt(k, x.Loc)
						}
					}
					return false
				}
			}
			return true
		})
		if _, ok := c.(*esql.StatsCmd); ok {
			return // after STATS, names are its columns
		}
	}
}

// kqlFieldsAt checks the fields of a KQL query embedded in an ES|QL string,
// reporting them at sp.
func (l *linter) kqlFieldsAt(e kql.Expr, sp pos.Span) {
	sub := &linter{r: l.r, seen: l.seen}
	sub.kqlFields(e, "")
	for _, w := range sub.out {
		w2 := w
		p := l.r.QuerySrc.Position(sp.Start)
		w2.Line, w2.Col, w2.span = p.Line, p.Col, sp
		l.out = append(l.out, w2)
	}
}

// field warns when no reader produces name.
func (l *linter) field(name string, sp pos.Span) {
	if Produced(name) {
		return
	}
	msg := fmt.Sprintf("no reader produces field %s: it is not in the canonical document nor a raw part of the audit event, so it is always missing", name)
	if s := suggest(name); s != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", s)
	}
	l.warn(sp, CodeUnknownField, "%s", msg)
}
