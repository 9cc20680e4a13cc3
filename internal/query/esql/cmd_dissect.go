package esql

import "github.com/kanon-dev/kanon/internal/pos"

// DissectCmd is DISSECT expr "pattern" [APPEND_SEPARATOR = "sep"]: it splits
// the string value of expr by the literal delimiters of a dissect pattern
// and appends one column per %{key}.
type DissectCmd struct {
	X          Expr
	Pattern    string
	PatternLoc pos.Span
	// AppendSeparator joins the parts of %{+key} appends; nil means "".
	AppendSeparator *string
	Loc             pos.Span
}

func (*DissectCmd) cmd() {}

// Span returns the byte span of the command.
func (c *DissectCmd) Span() pos.Span { return c.Loc }

// Name returns "DISSECT".
func (c *DissectCmd) Name() string { return "DISSECT" }

// String renders DISSECT expr "pattern" [APPEND_SEPARATOR = "sep"].
func (c *DissectCmd) String() string {
	s := "DISSECT " + sub(c.X, precAdd) + " " + formatString(c.Pattern)
	if c.AppendSeparator != nil {
		s += " APPEND_SEPARATOR = " + formatString(*c.AppendSeparator)
	}
	return s
}

func (p *parser) parseDissect() Cmd {
	x := p.parsePrimaryOperand()
	if p.err != nil {
		return nil
	}
	pat, loc := p.parseStringArg("a dissect pattern string")
	if p.err != nil {
		return nil
	}
	c := &DissectCmd{X: x, Pattern: pat, PatternLoc: loc}
	if p.acceptKw("append_separator") {
		p.expect(tAssign, `"="`)
		sep, _ := p.parseStringArg("a separator string")
		if p.err != nil {
			return nil
		}
		c.AppendSeparator = &sep
	}
	c.Loc = p.cmdSpan()
	return c
}
