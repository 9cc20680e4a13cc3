package esql

import "github.com/kanon-dev/kanon/internal/pos"

// DropCmd is DROP pattern, ...: it removes the matching columns.
type DropCmd struct {
	Patterns []NamePattern
	Loc      pos.Span
}

func (*DropCmd) cmd() {}

// Span returns the byte span of the command.
func (c *DropCmd) Span() pos.Span { return c.Loc }

// Name returns "DROP".
func (c *DropCmd) Name() string { return "DROP" }

// String renders DROP patterns.
func (c *DropCmd) String() string { return "DROP " + joinPatterns(c.Patterns) }

func (p *parser) parseDrop() Cmd {
	ps := p.parseNamePatterns()
	if p.err != nil {
		return nil
	}
	return &DropCmd{Patterns: ps, Loc: p.cmdSpan()}
}
