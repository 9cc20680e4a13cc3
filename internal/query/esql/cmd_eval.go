package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// EvalCmd is EVAL [name =] expr, ...: it appends computed columns, replacing
// any earlier column of the same name.
type EvalCmd struct {
	Fields []Assign
	Loc    pos.Span
}

func (*EvalCmd) cmd() {}

// Span returns the byte span of the command.
func (c *EvalCmd) Span() pos.Span { return c.Loc }

// Name returns "EVAL".
func (c *EvalCmd) Name() string { return "EVAL" }

// String renders EVAL assignments.
func (c *EvalCmd) String() string {
	parts := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		parts[i] = formatName(f.Name) + " = " + f.X.String()
	}
	return "EVAL " + strings.Join(parts, ", ")
}

func (p *parser) parseEval() Cmd {
	c := &EvalCmd{}
	for p.err == nil {
		a := p.parseAssign()
		if p.err != nil {
			return nil
		}
		c.Fields = append(c.Fields, a)
		if p.tok.kind != tComma {
			break
		}
		p.advance()
	}
	if p.err != nil {
		return nil
	}
	c.Loc = p.cmdSpan()
	return c
}
