package kql

import (
	"strings"
	"unicode/utf8"
)

// String returns the canonical KQL text of e: keywords in lower case, one
// space around "and" and "or", parentheses only where the grammar needs them
// to keep the tree (so "a or (b or c)" keeps its nesting), quoted literals
// re-escaped and unquoted literals escaped just enough to parse back to the
// same value. Parsing the result gives a tree that prints the same:
// String(Parse(String(x))) == String(x).
func String(e Expr) string {
	if e == nil {
		return ""
	}
	var b strings.Builder
	printExpr(&b, e, false)
	return b.String()
}

// String returns the canonical KQL text of the expression.
func (e *OrExpr) String() string { return String(e) }

// String returns the canonical KQL text of the expression.
func (e *AndExpr) String() string { return String(e) }

// String returns the canonical KQL text of the expression.
func (e *NotExpr) String() string { return String(e) }

// String returns the canonical KQL text of the expression.
func (e *FieldExpr) String() string { return String(e) }

// String returns the canonical KQL text of the expression.
func (e *RangeExpr) String() string { return String(e) }

// String returns the canonical KQL text of the expression.
func (e *NestedExpr) String() string { return String(e) }

// String returns the canonical KQL text of the value.
func (e *ValueExpr) String() string { return String(e) }

// String returns "", the canonical text of the empty query.
func (e *MatchAllExpr) String() string { return "" }

// String returns the literal as KQL text: quoted if it was quoted, escaped
// otherwise.
func (l Literal) String() string {
	var b strings.Builder
	printLiteral(&b, l)
	return b.String()
}

// printExpr writes e; values is true inside a field's value list.
func printExpr(b *strings.Builder, e Expr, values bool) {
	switch e := e.(type) {
	case *OrExpr:
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(" or ")
			}
			_, isOr := a.(*OrExpr)
			printMaybeParen(b, a, values, isOr)
		}
	case *AndExpr:
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(" and ")
			}
			paren := false
			switch a.(type) {
			case *OrExpr, *AndExpr:
				paren = true
			}
			printMaybeParen(b, a, values, paren)
		}
	case *NotExpr:
		b.WriteString("not ")
		paren := false
		switch e.X.(type) {
		case *OrExpr, *AndExpr, *NotExpr:
			paren = true
		}
		printMaybeParen(b, e.X, values, paren)
	case *FieldExpr:
		printLiteral(b, e.Field)
		b.WriteByte(':')
		if v, ok := e.Values.(*ValueExpr); ok {
			printLiteral(b, v.Value)
		} else {
			b.WriteByte('(')
			printExpr(b, e.Values, true)
			b.WriteByte(')')
		}
	case *RangeExpr:
		printLiteral(b, e.Field)
		b.WriteByte(' ')
		b.WriteString(e.Op.String())
		b.WriteByte(' ')
		printLiteral(b, e.Value)
	case *NestedExpr:
		printLiteral(b, e.Path)
		b.WriteString(":{")
		printExpr(b, e.Query, false)
		b.WriteByte('}')
	case *ValueExpr:
		printLiteral(b, e.Value)
	case *MatchAllExpr:
	}
}

func printMaybeParen(b *strings.Builder, e Expr, values, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	printExpr(b, e, values)
	if paren {
		b.WriteByte(')')
	}
}

func printLiteral(b *strings.Builder, l Literal) {
	if l.Quoted {
		b.WriteByte('"')
		for _, r := range l.Value {
			switch r {
			case '"', '\\':
				b.WriteByte('\\')
				b.WriteRune(r)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			case '\n':
				b.WriteString(`\n`)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
		return
	}
	// Units: the literal's runes, with -1 for a wildcard.
	var units []rune
	if l.Parts == nil {
		units = []rune(l.Value)
	} else {
		for i, p := range l.Parts {
			if i > 0 {
				units = append(units, -1)
			}
			units = append(units, []rune(p)...)
		}
	}
	if len(units) == 0 {
		// Only an escaped whitespace, trimmed away, parses to "".
		b.WriteString(`\t`)
		return
	}
	for i := 0; i < len(units); i++ {
		r := units[i]
		if r == -1 {
			b.WriteByte('*')
			continue
		}
		if n := keywordLen(units, i); n > 0 {
			if units[i] == 'n' {
				// "\n" is a newline, so a lower-case "not" needs \u006e.
				b.WriteString(`\u006e`)
			} else {
				b.WriteByte('\\')
				b.WriteRune(units[i])
			}
			for _, r := range units[i+1 : i+n] {
				b.WriteRune(r)
			}
			i += n - 1
			continue
		}
		switch r {
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\n':
			b.WriteString(`\n`)
		case utf8.RuneError:
			b.WriteRune(r)
		default:
			if r < utf8.RuneSelf && isSpecial(byte(r)) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
	}
}

// keywordLen returns the length of a keyword at units[i] that the parser
// would take as a keyword if printed raw: "not" followed by whitespace or the
// end of the literal, and "or" or "and" also preceded by whitespace or the
// start. It returns 0 otherwise.
func keywordLen(units []rune, i int) int {
	for _, kw := range [...]string{"not", "or", "and"} {
		n := len(kw)
		if i+n > len(units) || !eqFoldUnits(units[i:i+n], kw) {
			continue
		}
		if i+n < len(units) && !(units[i+n] != -1 && isSpace(units[i+n])) {
			continue
		}
		if kw != "not" && i > 0 && !(units[i-1] != -1 && isSpace(units[i-1]) && units[i-1] != '\t' && units[i-1] != '\r' && units[i-1] != '\n') {
			continue
		}
		return n
	}
	return 0
}

func eqFoldUnits(u []rune, kw string) bool {
	for j := 0; j < len(kw); j++ {
		r := u[j]
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		if r != rune(kw[j]) {
			return false
		}
	}
	return true
}
