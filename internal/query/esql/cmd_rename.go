package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// RenamePair is one "old AS new" of RENAME.
type RenamePair struct {
	Old, New Ident
}

// RenameCmd is RENAME old AS new, ... (also accepted: new = old). The
// renamed column keeps its position; an existing column named new is
// replaced.
type RenameCmd struct {
	Pairs []RenamePair
	Loc   pos.Span
}

func (*RenameCmd) cmd() {}

// Span returns the byte span of the command.
func (c *RenameCmd) Span() pos.Span { return c.Loc }

// Name returns "RENAME".
func (c *RenameCmd) Name() string { return "RENAME" }

// String renders RENAME old AS new, ....
func (c *RenameCmd) String() string {
	parts := make([]string, len(c.Pairs))
	for i, pr := range c.Pairs {
		parts[i] = pr.Old.String() + " AS " + pr.New.String()
	}
	return "RENAME " + strings.Join(parts, ", ")
}

func (p *parser) parseRename() Cmd {
	c := &RenameCmd{}
	for p.err == nil {
		a := p.parseIdent("a column name")
		if p.err != nil {
			return nil
		}
		var pr RenamePair
		switch {
		case p.acceptKw("as"):
			pr = RenamePair{Old: a, New: p.parseIdent("the new column name")}
		case p.tok.kind == tAssign:
			p.advance()
			pr = RenamePair{New: a, Old: p.parseIdent("the column to rename")}
		default:
			p.unexpected("AS")
		}
		if p.err != nil {
			return nil
		}
		c.Pairs = append(c.Pairs, pr)
		if p.tok.kind != tComma {
			break
		}
		p.advance()
	}
	c.Loc = p.cmdSpan()
	return c
}
