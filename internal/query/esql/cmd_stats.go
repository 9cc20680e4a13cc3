package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// AggField is one aggregation of STATS: [name =] agg(...) [WHERE cond].
// Without a name the column is named by the expression's source text.
type AggField struct {
	Name    string
	NameLoc pos.Span
	X       Expr
	// Where, when not nil, restricts the rows this aggregation sees.
	Where Expr
}

// StatsCmd is STATS [aggs] [BY groups]: it groups rows by the BY values and
// computes the aggregations per group. The output columns are the
// aggregations in order, then the groups.
type StatsCmd struct {
	Aggs []AggField
	By   []Assign
	Loc  pos.Span
}

func (*StatsCmd) cmd() {}

// Span returns the byte span of the command.
func (c *StatsCmd) Span() pos.Span { return c.Loc }

// Name returns "STATS".
func (c *StatsCmd) Name() string { return "STATS" }

// String renders STATS aggs BY groups.
func (c *StatsCmd) String() string {
	var b strings.Builder
	b.WriteString("STATS")
	for i, a := range c.Aggs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(' ')
		b.WriteString(formatName(a.Name))
		b.WriteString(" = ")
		b.WriteString(a.X.String())
		if a.Where != nil {
			b.WriteString(" WHERE ")
			b.WriteString(a.Where.String())
		}
	}
	if len(c.By) > 0 {
		b.WriteString(" BY ")
		for i, g := range c.By {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(g.String())
		}
	}
	return b.String()
}

func (p *parser) parseStats() Cmd {
	c := &StatsCmd{}
	if p.tok.kind == tEOF || p.tok.kind == tPipe {
		p.unexpected("an aggregation or BY")
		return nil
	}
	if !p.isKw("by") {
		for p.err == nil {
			a := p.parseAssign()
			if p.err != nil {
				return nil
			}
			f := AggField{Name: a.Name, NameLoc: a.NameLoc, X: a.X}
			if p.acceptKw("where") {
				f.Where = p.parseExpr()
				if p.err != nil {
					return nil
				}
			}
			c.Aggs = append(c.Aggs, f)
			if p.tok.kind != tComma {
				break
			}
			p.advance()
		}
	}
	if p.acceptKw("by") {
		for p.err == nil {
			g := p.parseAssign()
			if p.err != nil {
				return nil
			}
			c.By = append(c.By, g)
			if p.tok.kind != tComma {
				break
			}
			p.advance()
		}
	}
	if p.err != nil {
		return nil
	}
	c.Loc = p.cmdSpan()
	return c
}
