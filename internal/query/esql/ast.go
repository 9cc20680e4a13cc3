package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// Query is a parsed ES|QL query: a FROM source command followed by
// processing commands.
type Query struct {
	// Src is the source the query was parsed from; spans index Src.Text.
	Src *pos.Source
	// Commands holds the source command first, then the processing commands
	// in pipe order.
	Commands []Cmd
	Loc      pos.Span
}

// Span returns the byte span of the whole query.
func (q *Query) Span() pos.Span { return q.Loc }

// String renders the query in canonical form, one command per line after the
// first, each processing command prefixed by "| ".
func (q *Query) String() string {
	var b strings.Builder
	for i, c := range q.Commands {
		if i > 0 {
			b.WriteString("\n| ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// Text returns the source text a span covers, or "" when the query has no
// source or the span is out of range.
func (q *Query) Text(sp pos.Span) string {
	if q.Src == nil || sp.Start < 0 || sp.End > len(q.Src.Text) || sp.Start > sp.End {
		return ""
	}
	return q.Src.Text[sp.Start:sp.End]
}

// Cmd is an ES|QL command. The interface is sealed: its implementations are
// the ...Cmd types of this package.
type Cmd interface {
	// Span is the byte span of the command, from its keyword to its last token.
	Span() pos.Span
	// Name is the command keyword in upper case ("WHERE", "STATS", ...).
	Name() string
	// String renders the command in canonical form.
	String() string
	cmd()
}

// Expr is an ES|QL expression. The interface is sealed: its implementations
// are the ...Expr types of this package.
type Expr interface {
	// Span is the byte span of the expression in the query source.
	Span() pos.Span
	// String renders the expression in canonical form.
	String() string
	expr()
}

// Ident is a (possibly dotted) column name as written in a command, such as
// the target of an EVAL assignment or a METADATA field.
type Ident struct {
	Name string
	Loc  pos.Span
}

// String renders the name, backtick-quoted when it is not a plain dotted
// identifier.
func (id Ident) String() string { return formatName(id.Name) }

// Assign is "name = expr" in EVAL and STATS ... BY. When the name is omitted
// in the text the parser sets Name to the expression's source text, as ES|QL
// names such columns, and leaves NameLoc empty.
type Assign struct {
	Name    string
	NameLoc pos.Span
	X       Expr
}

func (a Assign) String() string {
	if f, ok := a.X.(*FieldExpr); ok && f.Name == a.Name {
		return a.X.String()
	}
	return formatName(a.Name) + " = " + a.X.String()
}

// reserved are words that cannot start an unquoted field name in an
// expression; names that begin with one are printed backtick-quoted.
var reserved = map[string]bool{
	"and": true, "or": true, "not": true, "in": true, "is": true, "like": true, "rlike": true,
	"null": true, "true": true, "false": true, "by": true, "asc": true, "desc": true,
	"nulls": true, "as": true, "where": true, "metadata": true,
}

func isPlainSegment(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	switch {
	case isLetter(c):
	case (c == '_' || c == '@') && len(s) > 1:
	default:
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIDBody(s[i]) {
			return false
		}
	}
	return true
}

// formatName renders a column name: bare when every dot-separated segment is
// a plain identifier and the first is not a keyword, backtick-quoted otherwise.
func formatName(name string) string {
	segs := strings.Split(name, ".")
	plain := !reserved[strings.ToLower(segs[0])]
	for _, s := range segs {
		if !isPlainSegment(s) {
			plain = false
			break
		}
	}
	if plain {
		return name
	}
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// formatString renders s as an ES|QL string literal: triple-quoted (raw)
// when s holds a quote or a backslash and no control character and can be
// written so, double-quoted
// with escapes otherwise.
func formatString(s string) string {
	if strings.ContainsAny(s, `"\`) && !strings.ContainsAny(s, "\t\n\r") && !strings.Contains(s, `"""`) && !strings.HasSuffix(s, `"`) {
		return `"""` + s + `"""`
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func joinExprs(xs []Expr) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.String()
	}
	return strings.Join(parts, ", ")
}
