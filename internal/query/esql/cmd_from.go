package esql

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// FromCmd is the source command FROM <index pattern>[, ...] [METADATA f, ...].
// kanon evaluates queries over audit events, so the index patterns are kept
// for display only; METADATA makes the named metadata columns (_id, _index,
// _version, ...) available to later commands.
type FromCmd struct {
	Indices  []Ident
	Metadata []Ident
	Loc      pos.Span
}

func (*FromCmd) cmd() {}

// Span returns the byte span of the command.
func (c *FromCmd) Span() pos.Span { return c.Loc }

// Name returns "FROM".
func (c *FromCmd) Name() string { return "FROM" }

// String renders FROM indices [METADATA fields].
func (c *FromCmd) String() string {
	var b strings.Builder
	b.WriteString("FROM ")
	for i, ix := range c.Indices {
		if i > 0 {
			b.WriteString(", ")
		}
		if isRawIndex(ix.Name) {
			b.WriteString(ix.Name)
		} else {
			b.WriteString(formatString(ix.Name))
		}
	}
	if len(c.Metadata) > 0 {
		b.WriteString(" METADATA ")
		for i, m := range c.Metadata {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(m.String())
		}
	}
	return b.String()
}

// isRawIndex reports whether an index pattern can be written unquoted.
func isRawIndex(s string) bool {
	if s == "" || strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/*") || strings.EqualFold(s, "metadata") {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n', '\r', ',', '|', '"', '`':
			return false
		}
		if i > 0 && s[i] == '/' && (s[i-1] == '/' || i+1 < len(s) && (s[i+1] == '/' || s[i+1] == '*')) {
			return false
		}
	}
	return true
}

func (p *parser) parseFrom() Cmd {
	c := &FromCmd{}
	for p.err == nil {
		if p.tok.kind == tString {
			if p.tok.err != "" {
				p.unexpected("an index pattern")
				return nil
			}
			c.Indices = append(c.Indices, Ident{Name: p.tok.val, Loc: p.tok.loc})
			p.advance()
		} else {
			if p.tok.kind == tEOF || p.tok.kind == tPipe || p.tok.kind == tComma {
				p.unexpected("an index pattern")
				return nil
			}
			p.lx.off = p.tok.loc.Start
			sp := p.lx.rawIndexPattern()
			c.Indices = append(c.Indices, Ident{Name: p.lx.text[sp.Start:sp.End], Loc: sp})
			p.prevEnd = sp.End
			p.tok = p.lx.next()
		}
		if p.tok.kind != tComma {
			break
		}
		p.advance()
	}
	if p.acceptKw("metadata") {
		for p.err == nil {
			id := p.parseIdent("a metadata field name")
			if p.err != nil {
				return nil
			}
			c.Metadata = append(c.Metadata, id)
			if p.tok.kind != tComma {
				break
			}
			p.advance()
		}
	}
	if p.err != nil {
		return nil
	}
	c.Loc = p.cmdSpan()
	return c
}
