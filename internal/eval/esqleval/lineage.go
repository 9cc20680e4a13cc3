package esqleval

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// Origin says what defines a column of an ES|QL query.
type Origin uint8

// Origins of columns.
const (
	OriginEvent    Origin = iota + 1 // an event field, read under its own name
	OriginMetadata                   // a METADATA column of FROM (_id, _index, _version)
	OriginEval                       // an EVAL assignment
	OriginGrok                       // a named capture of GROK
	OriginDissect                    // a key of DISSECT
	OriginStats                      // an aggregation or a group of STATS
	OriginRename                     // RENAME of another column (Of)
	OriginExpand                     // MV_EXPAND of another column (Of): one of its values per row
)

var originNames = [...]string{OriginEvent: "event", OriginMetadata: "metadata", OriginEval: "eval", OriginGrok: "grok",
	OriginDissect: "dissect", OriginStats: "stats", OriginRename: "rename", OriginExpand: "mv_expand"}

// String names the origin ("event", "eval", ...).
func (o Origin) String() string {
	if int(o) < len(originNames) && originNames[o] != "" {
		return originNames[o]
	}
	return "unknown"
}

// Column is a column of an ES|QL query as the compiler derived it: its
// name where it is defined, and where its values come from. Columns are
// immutable; the compiler makes a new Column for every definition, so a
// RENAME gives a new Column whose Of is the renamed one.
type Column struct {
	// Name is the column's name as the defining command gives it.
	Name string
	// Origin is what defines the column.
	Origin Origin
	// Type is the column's type when the compiler knows it: "keyword",
	// "long", "double", "boolean", "date", "ip" or "null"; "" when it is
	// only known at run time (fields outside the schema, mixed CASE
	// branches).
	Type string
	// Field is the event field of an OriginEvent column.
	Field event.Field
	// Expr is the defining expression of an OriginEval column (the right
	// of "name ="), and of an OriginStats column (the aggregation, or the
	// group's expression). Field references inside it resolve with
	// Lineage.Ref, at their own place in the query.
	Expr esql.Expr
	// Of is the column that an OriginRename or OriginExpand column is
	// made from, and for a STATS group that is a plain column reference
	// (BY name), the column it groups by; nil otherwise.
	Of *Column
	// Cmd is the command that defines the column (nil for OriginEvent and
	// OriginMetadata).
	Cmd esql.Cmd
}

// Defined reports whether the query itself gives the column its name
// (EVAL, GROK, DISSECT, STATS, RENAME), rather than reading an event field
// or a METADATA column under the name it has in the event (which
// MV_EXPAND keeps).
func (c *Column) Defined() bool {
	for c.Origin == OriginExpand && c.Of != nil {
		c = c.Of
	}
	return c.Origin != OriginEvent && c.Origin != OriginMetadata
}

// EventField returns the event field whose values the column carries
// unchanged: an OriginEvent column, and a column that renames, expands or
// groups by one (through any number of those). ok is false for computed
// columns.
func (c *Column) EventField() (f event.Field, ok bool) {
	for c.Of != nil && (c.Origin == OriginRename || c.Origin == OriginExpand || c.Origin == OriginStats) {
		c = c.Of
	}
	if c.Origin != OriginEvent {
		return event.Field{}, false
	}
	return c.Field, true
}

// Lineage is what the compiler derived about the columns of a query:
// which column each field reference resolves to, which columns each
// command defines, and the output columns. It is what `kanon rules
// explain` and `kanon rules lint` read instead of tracking EVAL, RENAME,
// GROK and DISSECT themselves. A Lineage is immutable; its methods may be
// called on a nil *Lineage (a query that could not be analysed), which
// knows nothing.
type Lineage struct {
	refs map[*esql.FieldExpr]*Column
	defs map[esql.Cmd][]*Column
	out  []*Column
}

// Ref returns the column the field reference f (a node of the compiled
// query) resolves to at its place in the query. ok is false for a
// reference the compiler could not resolve (in a query with errors) and
// for a node that is not part of the query.
func (l *Lineage) Ref(f *esql.FieldExpr) (c *Column, ok bool) {
	if l == nil {
		return nil, false
	}
	c, ok = l.refs[f]
	return c, ok
}

// Defines returns the columns that the command c of the query defines, in
// order: the assignments of EVAL, the captures of GROK, the keys of
// DISSECT, the aggregations then the groups of STATS, the new names of
// RENAME, the expanded column of MV_EXPAND. Other commands define none.
// The caller must not modify the slice.
func (l *Lineage) Defines(c esql.Cmd) []*Column {
	if l == nil {
		return nil
	}
	return l.defs[c]
}

// Output returns the output columns in order (the columns of
// Program.Columns); nil when the query has errors. The caller must not
// modify the slice.
func (l *Lineage) Output() []*Column {
	if l == nil {
		return nil
	}
	return l.out
}

// Lineage returns what the compiler derived about the program's columns.
func (p *Program) Lineage() *Lineage { return p.lineage }

// Analyze runs the compiler on q for its Lineage only. On a query that
// compiles it is the Lineage of the Program that Compile returns, with a
// nil error. On a query with errors it returns the errors (as Compile
// does) and the lineage of what did compile: references the compiler could
// not resolve have no column, and Output is nil. With bad options or an
// empty query the Lineage is nil. It never panics.
func Analyze(q *esql.Query, opts ...Option) (l *Lineage, err error) {
	defer func() {
		if r := recover(); r != nil {
			l, err = nil, fmt.Errorf("esqleval: BUG: compiler panic: %v\n%s", r, debug.Stack())
		}
	}()
	p, err := build(q, opts)
	if p == nil {
		return nil, err
	}
	if err != nil {
		p.lineage.out = nil
	}
	return p.lineage, err
}

// typeName is the ES|QL name of a static type ("" for tyAny).
func typeName(t typ) string {
	switch t {
	case tyString:
		return "keyword"
	case tyLong:
		return "long"
	case tyDouble:
		return "double"
	case tyBool:
		return "boolean"
	case tyDate:
		return "date"
	case tyIP:
		return "ip"
	case tyNull:
		return "null"
	}
	return ""
}

// define records a column that cmd defines and returns it.
func (cp *compiler) define(cmd esql.Cmd, c *Column) *Column {
	c.Cmd = cmd
	cp.p.lineage.defs[cmd] = append(cp.p.lineage.defs[cmd], c)
	return c
}

// lineOf returns the lineage of a prefix column, making it on first use
// for the columns of FROM (event fields and METADATA), which are many and
// mostly never read.
func (cp *compiler) lineOf(col *pcol) *Column {
	if col.line == nil {
		if col.isEvent {
			col.line = &Column{Name: col.name, Origin: OriginEvent, Type: typeName(col.typ), Field: col.field}
		} else {
			col.line = &Column{Name: col.name, Origin: OriginMetadata, Type: typeName(col.typ)}
		}
	}
	return col.line
}

// MultiValued reports whether the cells of column c may hold several
// values, judged from the query alone, so that an output column has one
// shape (a list or a single value) in every row of every run. isList says
// which event fields are lists (the reader's arrays, such as source IPs).
// A column is multi-valued when it reads such a field (through RENAME), is
// a VALUES aggregation, or is an EVAL whose expression can give several
// values: such a field or column, SPLIT, MV_DEDUPE or a conversion of one,
// or a CASE or COALESCE with such a branch. MV_EXPAND, the groups of
// STATS, its other aggregations, GROK and DISSECT captures, METADATA
// columns and every other function give one value.
func (l *Lineage) MultiValued(c *Column, isList func(event.Field) bool) bool {
	for depth := 0; c != nil && depth < 1000; depth++ {
		switch c.Origin {
		case OriginEvent:
			return isList(c.Field)
		case OriginRename:
			c = c.Of
			continue
		case OriginStats:
			s, ok := c.Cmd.(*esql.StatsCmd)
			if !ok {
				return false
			}
			for _, a := range s.Aggs {
				if a.X == c.Expr {
					call, ok := a.X.(*esql.CallExpr)
					return ok && aggByName[strings.ToUpper(call.Name)] == aggValues
				}
			}
			return false // a group: one value per row
		case OriginEval:
			return l.multiExpr(c.Expr, isList, 0)
		}
		return false
	}
	return false
}

// multiExpr reports whether x may give several values (see MultiValued).
func (l *Lineage) multiExpr(x esql.Expr, isList func(event.Field) bool, depth int) bool {
	if depth > 100 {
		return false
	}
	switch x := x.(type) {
	case *esql.FieldExpr:
		c, ok := l.Ref(x)
		return ok && l.MultiValued(c, isList)
	case *esql.CastExpr:
		return l.multiExpr(x.X, isList, depth+1)
	case *esql.CallExpr:
		name := strings.ToUpper(x.Name)
		switch {
		case name == "SPLIT":
			return true
		case name == "MV_DEDUPE", strings.HasPrefix(name, "TO_") && name != "TO_LOWER" && name != "TO_UPPER":
			return len(x.Args) > 0 && l.multiExpr(x.Args[0], isList, depth+1)
		case name == "COALESCE":
			for _, a := range x.Args {
				if l.multiExpr(a, isList, depth+1) {
					return true
				}
			}
		case name == "CASE":
			// CASE(cond, value, ..., [else]): the values are the odd
			// arguments, and the last one when their number is odd.
			for i, a := range x.Args {
				if (i%2 == 1 || i == len(x.Args)-1) && l.multiExpr(a, isList, depth+1) {
					return true
				}
			}
		}
	}
	return false
}
