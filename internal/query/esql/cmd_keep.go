package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// KeepCmd is KEEP pattern, ...: it keeps the matching columns in pattern
// order. A column matching several patterns is placed by the most specific
// one (exact name, then partial wildcard, then "*"; the rightmost on ties).
type KeepCmd struct {
	Patterns []NamePattern
	Loc      pos.Span
}

func (*KeepCmd) cmd() {}

// Span returns the byte span of the command.
func (c *KeepCmd) Span() pos.Span { return c.Loc }

// Name returns "KEEP".
func (c *KeepCmd) Name() string { return "KEEP" }

// String renders KEEP patterns.
func (c *KeepCmd) String() string { return "KEEP " + joinPatterns(c.Patterns) }

func joinPatterns(ps []NamePattern) string {
	parts := make([]string, len(ps))
	for i, np := range ps {
		parts[i] = np.String()
	}
	return strings.Join(parts, ", ")
}

func (p *parser) parseKeep() Cmd {
	ps := p.parseNamePatterns()
	if p.err != nil {
		return nil
	}
	return &KeepCmd{Patterns: ps, Loc: p.cmdSpan()}
}
