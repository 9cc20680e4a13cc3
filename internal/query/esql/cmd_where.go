package esql

import "github.com/kanon-dev/kanon/internal/pos"

// WhereCmd is WHERE <condition>: it keeps the rows for which the condition
// is true (not false, not null).
type WhereCmd struct {
	Cond Expr
	Loc  pos.Span
}

func (*WhereCmd) cmd() {}

// Span returns the byte span of the command.
func (c *WhereCmd) Span() pos.Span { return c.Loc }

// Name returns "WHERE".
func (c *WhereCmd) Name() string { return "WHERE" }

// String renders WHERE condition.
func (c *WhereCmd) String() string { return "WHERE " + c.Cond.String() }

func (p *parser) parseWhere() Cmd {
	x := p.parseExpr()
	if p.err != nil {
		return nil
	}
	return &WhereCmd{Cond: x, Loc: p.cmdSpan()}
}
