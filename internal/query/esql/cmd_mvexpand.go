package esql

import "github.com/kanon-dev/kanon/internal/pos"

// MvExpandCmd is MV_EXPAND column: it replaces each row by one row per value
// of the multi-valued column (a null column gives one row).
type MvExpandCmd struct {
	Field Ident
	Loc   pos.Span
}

func (*MvExpandCmd) cmd() {}

// Span returns the byte span of the command.
func (c *MvExpandCmd) Span() pos.Span { return c.Loc }

// Name returns "MV_EXPAND".
func (c *MvExpandCmd) Name() string { return "MV_EXPAND" }

// String renders MV_EXPAND column.
func (c *MvExpandCmd) String() string { return "MV_EXPAND " + c.Field.String() }

func (p *parser) parseMvExpand() Cmd {
	id := p.parseIdent("a column name")
	if p.err != nil {
		return nil
	}
	return &MvExpandCmd{Field: id, Loc: p.cmdSpan()}
}
