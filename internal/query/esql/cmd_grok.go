package esql

import "github.com/kanon-dev/kanon/internal/pos"

// GrokCmd is GROK expr "pattern": it matches the string value of expr
// against a grok pattern and appends one column per named capture
// (%{SYNTAX:name} or %{SYNTAX:name:type}).
type GrokCmd struct {
	X          Expr
	Pattern    string
	PatternLoc pos.Span
	Loc        pos.Span
}

func (*GrokCmd) cmd() {}

// Span returns the byte span of the command.
func (c *GrokCmd) Span() pos.Span { return c.Loc }

// Name returns "GROK".
func (c *GrokCmd) Name() string { return "GROK" }

// String renders GROK expr "pattern".
func (c *GrokCmd) String() string { return "GROK " + sub(c.X, precAdd) + " " + formatString(c.Pattern) }

func (p *parser) parseGrok() Cmd {
	x := p.parsePrimaryOperand()
	if p.err != nil {
		return nil
	}
	pat, loc := p.parseStringArg("a grok pattern string")
	if p.err != nil {
		return nil
	}
	return &GrokCmd{X: x, Pattern: pat, PatternLoc: loc, Loc: p.cmdSpan()}
}

// parsePrimaryOperand parses the input of GROK and DISSECT: an arithmetic
// expression (not a predicate, since the pattern string follows).
func (p *parser) parsePrimaryOperand() Expr {
	return p.parseAdditive()
}
