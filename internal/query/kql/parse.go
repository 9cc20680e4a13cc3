package kql

import (
	"errors"
	"fmt"

	"github.com/kanon-dev/kanon/internal/pos"
)

// Parse parses the KQL query in src. On failure it returns a *pos.Error
// positioned in src, whose Code is one of the package's sentinel errors.
// The empty query parses to a *MatchAllExpr. Parse never panics.
func Parse(src *pos.Source) (e Expr, err error) {
	p := &parser{lx: lexer{src: src, text: src.Text}}
	defer func() {
		if r := recover(); r != nil {
			e = nil
			err = pos.Errorf(src, pos.Span{Start: p.lx.off, End: p.lx.off}, ErrInternal,
				"BUG: kql parser panicked: %v", r)
		}
	}()
	e, perr := p.parseQuery()
	if perr != nil {
		return nil, perr
	}
	return e, nil
}

// ParseString parses a query that is not part of a file; errors name it
// "query".
func ParseString(query string) (Expr, error) {
	return Parse(pos.NewSource("query", query))
}

// MustParse parses query and panics on error. For tests and init only.
func MustParse(query string) Expr {
	e, err := ParseString(query)
	if err != nil {
		panic(err)
	}
	return e
}

type parser struct {
	lx    lexer
	depth int
}

func (p *parser) parseQuery() (Expr, *pos.Error) {
	p.lx.skipSpace()
	if p.lx.off == len(p.lx.text) {
		return &MatchAllExpr{Sp: pos.Span{Start: 0, End: len(p.lx.text)}}, nil
	}
	e, err := p.parseOr(false)
	if err != nil {
		if err.Code == errNoOperand {
			err.Code = ErrUnexpected
			if err.Span.Start >= len(p.lx.text) {
				err.Code = ErrMissingValue
			}
		}
		return nil, err
	}
	p.lx.skipSpace()
	if p.lx.off < len(p.lx.text) {
		return nil, p.unexpected("expected \"and\", \"or\" or the end of the query")
	}
	return e, nil
}

// unexpected reports the input at the lexer's position.
func (p *parser) unexpected(expected string) *pos.Error {
	off := p.lx.off
	end := off + 1
	if end > len(p.lx.text) {
		end = off
	}
	code := ErrUnexpected
	if off >= len(p.lx.text) {
		code = ErrMissingValue
	}
	return p.lx.errorf(pos.Span{Start: off, End: end}, code, "unexpected %s, %s", p.lx.describe(off), expected)
}

// missing reports a missing operand or value after what.
func (p *parser) missing(what, after string) *pos.Error {
	off := p.lx.off
	end := min(off+1, len(p.lx.text))
	code := ErrMissingValue
	found := p.lx.describe(off)
	if off < len(p.lx.text) && !(p.lx.text[off] == ')' || p.lx.text[off] == '}') {
		code = ErrUnexpected
	}
	return p.lx.errorf(pos.Span{Start: off, End: end}, code, "expected %s after %s, found %s", what, after, found)
}

func (p *parser) enter(at int) *pos.Error {
	p.depth++
	if p.depth > MaxDepth {
		return p.lx.errorf(pos.Span{Start: at, End: at + 1}, ErrTooDeep, "query nested deeper than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// parseOr parses or-separated operands; values selects the value-list
// grammar (inside "field:( ... )").
func (p *parser) parseOr(values bool) (Expr, *pos.Error) {
	first, err := p.parseAnd(values)
	if err != nil {
		return nil, err
	}
	args := []Expr{first}
	for {
		kw, ok := p.lx.acceptConj("or")
		if !ok {
			break
		}
		next, err := p.parseAnd(values)
		if err != nil {
			return nil, p.afterKeyword(err, kw, values)
		}
		args = append(args, next)
	}
	if len(args) == 1 {
		return first, nil
	}
	return &OrExpr{Args: args, Sp: first.Span().Join(args[len(args)-1].Span())}, nil
}

func (p *parser) parseAnd(values bool) (Expr, *pos.Error) {
	first, err := p.parseNot(values)
	if err != nil {
		return nil, err
	}
	args := []Expr{first}
	for {
		kw, ok := p.lx.acceptConj("and")
		if !ok {
			break
		}
		next, err := p.parseNot(values)
		if err != nil {
			return nil, p.afterKeyword(err, kw, values)
		}
		args = append(args, next)
	}
	if len(args) == 1 {
		return first, nil
	}
	return &AndExpr{Args: args, Sp: first.Span().Join(args[len(args)-1].Span())}, nil
}

// afterKeyword rewords a missing-operand error to name the keyword.
func (p *parser) afterKeyword(err *pos.Error, kw pos.Span, values bool) *pos.Error {
	if err.Code == errNoOperand {
		what := "an expression"
		if values {
			what = "a value"
		}
		return p.missing(what, fmt.Sprintf("%q", p.lx.text[kw.Start:kw.End]))
	}
	return err
}

// errNoOperand marks "no operand here" until a caller names the keyword or
// punctuation before it; parseQuery turns any left into ErrUnexpected or
// ErrMissingValue.
var errNoOperand = errors.New("kql: no operand")

func (p *parser) parseNot(values bool) (Expr, *pos.Error) {
	kw, ok := p.lx.acceptNot()
	if !ok {
		if values {
			return p.parseValues()
		}
		return p.parseSub()
	}
	if err := p.enter(kw.Start); err != nil {
		return nil, err
	}
	defer p.leave()
	var x Expr
	var err *pos.Error
	if values {
		x, err = p.parseValues()
	} else {
		x, err = p.parseSub()
	}
	if err != nil {
		return nil, p.afterKeyword(err, kw, values)
	}
	return &NotExpr{X: x, Sp: kw.Join(x.Span())}, nil
}

// parseSub parses "( query )", a nested query or an expression.
func (p *parser) parseSub() (Expr, *pos.Error) {
	start := p.lx.off
	if p.lx.acceptByte('(') {
		if err := p.enter(start); err != nil {
			return nil, err
		}
		defer p.leave()
		p.lx.skipSpace()
		if p.lx.off < len(p.lx.text) && p.lx.text[p.lx.off] == ')' {
			return nil, p.missing("an expression", `"("`)
		}
		e, err := p.parseOr(false)
		if err != nil {
			return nil, p.afterKeyword(err, pos.Span{Start: start, End: start + 1}, false)
		}
		p.lx.skipSpace()
		if !p.lx.acceptByte(')') {
			if p.lx.off >= len(p.lx.text) {
				return nil, p.lx.errorf(pos.Span{Start: start, End: start + 1}, ErrUnclosed, `unclosed "(": missing ")"`)
			}
			return nil, p.unexpected(`expected "and", "or" or ")"`)
		}
		return e, nil
	}
	return p.parseExpression()
}

// parseExpression parses a nested query, a field or range expression, or a
// bare value; all start with a literal.
func (p *parser) parseExpression() (Expr, *pos.Error) {
	lit, ok, err := p.lx.literal()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.lx.errorf(pos.Span{Start: p.lx.off, End: min(p.lx.off+1, len(p.lx.text))}, errNoOperand,
			"unexpected %s, expected a field, a value or \"(\"", p.lx.describe(p.lx.off))
	}
	afterLit := p.lx.off
	p.lx.skipSpace()
	colon := p.lx.off
	if p.lx.acceptByte(':') {
		p.lx.skipSpace()
		brace := p.lx.off
		if p.lx.acceptByte('{') {
			if err := p.enter(brace); err != nil {
				return nil, err
			}
			defer p.leave()
			p.lx.skipSpace()
			if p.lx.off < len(p.lx.text) && p.lx.text[p.lx.off] == '}' {
				return nil, p.missing("a query", `"{"`)
			}
			q, err := p.parseOr(false)
			if err != nil {
				return nil, p.afterKeyword(err, pos.Span{Start: brace, End: brace + 1}, false)
			}
			p.lx.skipSpace()
			end := p.lx.off
			if !p.lx.acceptByte('}') {
				if p.lx.off >= len(p.lx.text) {
					return nil, p.lx.errorf(pos.Span{Start: brace, End: brace + 1}, ErrUnclosed, `unclosed "{": missing "}"`)
				}
				return nil, p.unexpected(`expected "and", "or" or "}"`)
			}
			return &NestedExpr{Path: lit, Query: q, Sp: pos.Span{Start: lit.Sp.Start, End: end + 1}}, nil
		}
		vals, err := p.parseValues()
		if err != nil {
			return nil, p.afterKeyword(err, pos.Span{Start: colon, End: colon + 1}, true)
		}
		return &FieldExpr{Field: lit, Values: vals, Sp: lit.Sp.Join(vals.Span())}, nil
	}
	if op, _, ok := p.lx.acceptRange(); ok {
		p.lx.skipSpace()
		val, ok, err := p.lx.literal()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, p.missing("a value", fmt.Sprintf("%q", op.String()))
		}
		return &RangeExpr{Field: lit, Op: op, Value: val, Sp: lit.Sp.Join(val.Sp)}, nil
	}
	p.lx.off = afterLit
	return &ValueExpr{Value: lit}, nil
}

// parseValues parses Kibana's ListOfValues: "( value-list )" or one value.
func (p *parser) parseValues() (Expr, *pos.Error) {
	start := p.lx.off
	if p.lx.acceptByte('(') {
		if err := p.enter(start); err != nil {
			return nil, err
		}
		defer p.leave()
		p.lx.skipSpace()
		if p.lx.off < len(p.lx.text) && p.lx.text[p.lx.off] == ')' {
			return nil, p.missing("a value", `"("`)
		}
		e, err := p.parseOr(true)
		if err != nil {
			return nil, p.afterKeyword(err, pos.Span{Start: start, End: start + 1}, true)
		}
		p.lx.skipSpace()
		if !p.lx.acceptByte(')') {
			if p.lx.off >= len(p.lx.text) {
				return nil, p.lx.errorf(pos.Span{Start: start, End: start + 1}, ErrUnclosed, `unclosed "(": missing ")"`)
			}
			return nil, p.unexpected(`expected "and", "or" or ")" in a list of values`)
		}
		return e, nil
	}
	lit, ok, err := p.lx.literal()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, p.lx.errorf(pos.Span{Start: p.lx.off, End: min(p.lx.off+1, len(p.lx.text))}, errNoOperand,
			"unexpected %s, expected a value", p.lx.describe(p.lx.off))
	}
	return &ValueExpr{Value: lit}, nil
}
