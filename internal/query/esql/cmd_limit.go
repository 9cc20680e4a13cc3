package esql

import (
	"strconv"

	"github.com/kanon-dev/kanon/internal/pos"
)

// LimitCmd is LIMIT n: it keeps the first n rows.
type LimitCmd struct {
	N   int64
	Loc pos.Span
}

func (*LimitCmd) cmd() {}

// Span returns the byte span of the command.
func (c *LimitCmd) Span() pos.Span { return c.Loc }

// Name returns "LIMIT".
func (c *LimitCmd) Name() string { return "LIMIT" }

// String renders LIMIT n.
func (c *LimitCmd) String() string { return "LIMIT " + strconv.FormatInt(c.N, 10) }

func (p *parser) parseLimit() Cmd {
	t := p.tok
	if t.kind != tInt {
		p.unexpected("a non-negative integer")
		return nil
	}
	n, err := strconv.ParseInt(t.text, 10, 64)
	if err != nil {
		p.failAt(t.loc, ErrLiteral, "limit %s is out of range", t.text)
		return nil
	}
	p.advance()
	return &LimitCmd{N: n, Loc: p.cmdSpan()}
}
