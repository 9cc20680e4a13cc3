package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// SortKey is one key of SORT: expr [ASC|DESC] [NULLS FIRST|LAST]. By
// default the order is ascending with nulls last, and descending with nulls
// first, as in ES|QL.
type SortKey struct {
	X    Expr
	Desc bool
	// Nulls is "" (the default for the direction), "FIRST" or "LAST".
	Nulls string
}

// NullsFirst reports whether null sorts before non-null values.
func (k SortKey) NullsFirst() bool {
	if k.Nulls == "" {
		return k.Desc
	}
	return k.Nulls == "FIRST"
}

// SortCmd is SORT key, ...: it orders rows by the keys.
type SortCmd struct {
	Keys []SortKey
	Loc  pos.Span
}

func (*SortCmd) cmd() {}

// Span returns the byte span of the command.
func (c *SortCmd) Span() pos.Span { return c.Loc }

// Name returns "SORT".
func (c *SortCmd) Name() string { return "SORT" }

// String renders SORT keys.
func (c *SortCmd) String() string {
	parts := make([]string, len(c.Keys))
	for i, k := range c.Keys {
		s := k.X.String()
		if k.Desc {
			s += " DESC"
		}
		if k.Nulls != "" {
			s += " NULLS " + k.Nulls
		}
		parts[i] = s
	}
	return "SORT " + strings.Join(parts, ", ")
}

func (p *parser) parseSort() Cmd {
	c := &SortCmd{}
	for p.err == nil {
		x := p.parseExpr()
		if p.err != nil {
			return nil
		}
		k := SortKey{X: x}
		if p.acceptKw("desc") {
			k.Desc = true
		} else {
			p.acceptKw("asc")
		}
		if p.acceptKw("nulls") {
			switch {
			case p.acceptKw("first"):
				k.Nulls = "FIRST"
			case p.acceptKw("last"):
				k.Nulls = "LAST"
			default:
				p.unexpected("FIRST or LAST")
				return nil
			}
		}
		c.Keys = append(c.Keys, k)
		if p.tok.kind != tComma {
			break
		}
		p.advance()
	}
	c.Loc = p.cmdSpan()
	return c
}
