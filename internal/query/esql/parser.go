package esql

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
)

// Parse parses the ES|QL query in src. On failure it returns a nil query and
// a *pos.ErrorList of positioned errors (at most one per command: the parser
// resynchronises at the next "|"), each wrapping one of the package's
// sentinels. Parse never panics; an internal failure is reported as an error
// wrapping ErrParserBug.
func Parse(src *pos.Source) (q *Query, err error) {
	defer func() {
		if r := recover(); r != nil {
			var l pos.ErrorList
			l.Add(pos.Errorf(src, pos.Span{}, ErrParserBug, "parser bug: %v\n%s", r, debug.Stack()))
			q, err = nil, l.Err()
		}
	}()
	p := &parser{src: src, lx: lexer{text: src.Text}}
	p.advance()
	q = p.parseQuery()
	if err := p.errs.Err(); err != nil {
		return nil, err
	}
	return q, nil
}

// ParseString parses text as a query from an unnamed source; errors print
// positions as line:col.
func ParseString(text string) (*Query, error) {
	return Parse(pos.NewSource("", text))
}

// MustParse parses text and panics on error. It is meant for tests and
// package initialisation only.
func MustParse(text string) *Query {
	q, err := ParseString(text)
	if err != nil {
		panic(fmt.Sprintf("esql.MustParse(%q): %v", text, err))
	}
	return q
}

// parser is a recursive-descent parser. Errors do not unwind: the first
// error of a command is kept in err and every parse function returns early
// once it is set.
type parser struct {
	src  *pos.Source
	lx   lexer
	tok  token
	errs pos.ErrorList
	err  *pos.Error
	cmd  string // keyword of the command being parsed, for messages
	// cmdStart is the offset of the current command's keyword.
	cmdStart int
	// prevEnd is the end offset of the last consumed token.
	prevEnd int
}

func (p *parser) advance() {
	p.prevEnd = p.tok.loc.End
	p.tok = p.lx.next()
}

type parserState struct {
	off     int
	tok     token
	prevEnd int
}

func (p *parser) save() parserState     { return parserState{p.lx.off, p.tok, p.prevEnd} }
func (p *parser) restore(s parserState) { p.lx.off, p.tok, p.prevEnd = s.off, s.tok, s.prevEnd }

// failAt records the first error of the current command.
func (p *parser) failAt(sp pos.Span, code error, format string, args ...any) {
	if p.err != nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if p.cmd != "" {
		msg = "cannot parse " + p.cmd + " command: " + msg
	}
	p.err = pos.Errorf(p.src, sp, code, "%s", msg)
}

// unexpected reports the current token, saying what was expected instead.
func (p *parser) unexpected(expected string) {
	if p.tok.err != "" && (p.tok.kind == tString || p.tok.kind == tQuotedIdent) {
		p.failAt(p.tok.loc, ErrLiteral, "%s", p.tok.err)
		return
	}
	p.failAt(p.tok.loc, ErrSyntax, "unexpected %s, expected %s", p.tok.describe(), expected)
}

// isKw reports whether the current token is the keyword kw (lower-case).
func (p *parser) isKw(kw string) bool {
	return p.tok.kind == tIdent && strings.EqualFold(p.tok.text, kw)
}

// acceptKw consumes the keyword kw if it is the current token.
func (p *parser) acceptKw(kw string) bool {
	if p.isKw(kw) {
		p.advance()
		return true
	}
	return false
}

func (p *parser) expect(k tokKind, expected string) token {
	t := p.tok
	if t.kind != k {
		p.unexpected(expected)
		return t
	}
	p.advance()
	return t
}

func (p *parser) expectKw(kw string) {
	if !p.acceptKw(kw) {
		p.unexpected(strings.ToUpper(kw))
	}
}

// commandParsers maps a command keyword to its parser.
var commandParsers map[string]func(*parser) Cmd

func init() {
	commandParsers = map[string]func(*parser) Cmd{
		"WHERE": (*parser).parseWhere, "EVAL": (*parser).parseEval, "STATS": (*parser).parseStats,
		"KEEP": (*parser).parseKeep, "DROP": (*parser).parseDrop, "RENAME": (*parser).parseRename,
		"SORT": (*parser).parseSort, "LIMIT": (*parser).parseLimit, "MV_EXPAND": (*parser).parseMvExpand,
		"GROK": (*parser).parseGrok, "DISSECT": (*parser).parseDissect,
	}
}

// unsupportedCommands are ES|QL commands kanon recognises but does not run.
var unsupportedCommands = map[string]bool{
	"ROW": true, "SHOW": true, "TS": true, "ENRICH": true, "LOOKUP": true, "INLINESTATS": true,
	"INLINE": true, "FORK": true, "CHANGE_POINT": true, "COMPLETION": true, "RERANK": true,
	"SAMPLE": true, "LOOKUP_JOIN": true, "JOIN": true, "LEFT": true, "RIGHT": true, "FUSE": true,
	"EXPLAIN": true, "INSIST": true, "RRF": true,
}

func (p *parser) parseQuery() *Query {
	q := &Query{Src: p.src, Loc: pos.Span{Start: p.tok.loc.Start}}
	first := true
	for {
		p.err = nil
		p.cmd = ""
		start := p.tok.loc
		p.cmdStart = start.Start
		var c Cmd
		switch {
		case p.tok.kind == tEOF:
			if first {
				p.failAt(start, ErrSyntax, "empty query, expected FROM command")
			} else {
				p.failAt(start, ErrSyntax, "unexpected end of query after \"|\", expected a command")
			}
		case p.tok.kind != tIdent:
			p.unexpected("a command")
		default:
			name := strings.ToUpper(p.tok.text)
			switch {
			case name == "FROM":
				if !first {
					p.failAt(start, ErrSyntax, "unexpected FROM: a source command can only start the query")
					break
				}
				p.cmd = name
				p.advance()
				c = p.parseFrom()
			case first:
				if commandParsers[name] != nil {
					p.failAt(start, ErrSyntax, "unexpected %s, expected FROM: a query starts with a source command", name)
				} else if unsupportedCommands[name] {
					p.failAt(start, ErrUnsupported, "source command %s is not supported, expected FROM", name)
				} else {
					p.failAt(start, ErrSyntax, "unexpected %s, expected FROM", p.tok.describe())
				}
			case commandParsers[name] != nil:
				p.cmd = name
				p.advance()
				c = commandParsers[name](p)
			case unsupportedCommands[name]:
				p.failAt(start, ErrUnsupported, "command %s is not supported", name)
			default:
				p.failAt(start, ErrSyntax, "unknown command %s", p.tok.describe())
			}
		}
		if p.err == nil && p.tok.kind != tPipe && p.tok.kind != tEOF {
			p.unexpected(`"|" or end of query`)
		}
		if p.err != nil {
			p.errs.Add(p.err)
			for p.tok.kind != tPipe && p.tok.kind != tEOF {
				p.advance()
			}
		} else if c != nil {
			q.Commands = append(q.Commands, c)
		}
		first = false
		if p.tok.kind == tEOF {
			break
		}
		p.advance() // "|"
	}
	q.Loc.End = p.prevEnd
	return q
}

// ---- expressions ----

// parseExpr parses a boolean expression (the loosest binding level).
func (p *parser) parseExpr() Expr {
	x := p.parseAnd()
	for p.err == nil && p.isKw("or") {
		p.advance()
		y := p.parseAnd()
		if p.err != nil {
			return nil
		}
		x = &BinaryExpr{Op: OpOr, X: x, Y: y, Loc: x.Span().Join(y.Span())}
	}
	if p.err != nil {
		return nil
	}
	return x
}

func (p *parser) parseAnd() Expr {
	x := p.parseNot()
	for p.err == nil && p.isKw("and") {
		p.advance()
		y := p.parseNot()
		if p.err != nil {
			return nil
		}
		x = &BinaryExpr{Op: OpAnd, X: x, Y: y, Loc: x.Span().Join(y.Span())}
	}
	if p.err != nil {
		return nil
	}
	return x
}

func (p *parser) parseNot() Expr {
	if p.isKw("not") {
		start := p.tok.loc
		p.advance()
		x := p.parseNot()
		if p.err != nil {
			return nil
		}
		return &NotExpr{X: x, Loc: start.Join(x.Span())}
	}
	return p.parsePredicate()
}

// parsePredicate parses a comparison optionally followed by one of
// [NOT] IN (...), [NOT] LIKE "p", [NOT] RLIKE "p", IS [NOT] NULL.
func (p *parser) parsePredicate() Expr {
	x := p.parseComparison()
	if p.err != nil {
		return nil
	}
	not := false
	if p.isKw("not") {
		st := p.save()
		p.advance()
		if p.isKw("in") || p.isKw("like") || p.isKw("rlike") {
			not = true
		} else {
			p.restore(st)
			return x
		}
	}
	switch {
	case p.isKw("in"):
		p.advance()
		p.expect(tLParen, `"(" after IN`)
		var list []Expr
		for p.err == nil {
			e := p.parseExpr()
			if p.err != nil {
				return nil
			}
			list = append(list, e)
			if p.tok.kind != tComma {
				break
			}
			p.advance()
		}
		end := p.expect(tRParen, `"," or ")" in IN list`)
		if p.err != nil {
			return nil
		}
		return &InExpr{X: x, List: list, Not: not, Loc: x.Span().Join(end.loc)}
	case p.isKw("like") || p.isKw("rlike"):
		regex := p.isKw("rlike")
		p.advance()
		t := p.tok
		if t.kind != tString || t.err != "" {
			p.unexpected("a string pattern")
			return nil
		}
		p.advance()
		return &LikeExpr{X: x, Pattern: t.val, PatternLoc: t.loc, Regex: regex, Not: not, Loc: x.Span().Join(t.loc)}
	case p.isKw("is"):
		p.advance()
		isNot := p.acceptKw("not")
		end := p.tok.loc
		p.expectKw("null")
		if p.err != nil {
			return nil
		}
		return &IsNullExpr{X: x, Not: isNot, Loc: x.Span().Join(end)}
	}
	return x
}

var cmpOps = map[tokKind]BinaryOp{tEq: OpEq, tNeq: OpNeq, tLt: OpLt, tLe: OpLe, tGt: OpGt, tGe: OpGe}

func (p *parser) parseComparison() Expr {
	x := p.parseAdditive()
	if p.err != nil {
		return nil
	}
	if op, ok := cmpOps[p.tok.kind]; ok {
		p.advance()
		y := p.parseAdditive()
		if p.err != nil {
			return nil
		}
		x = &BinaryExpr{Op: op, X: x, Y: y, Loc: x.Span().Join(y.Span())}
		if _, ok := cmpOps[p.tok.kind]; ok {
			p.failAt(p.tok.loc, ErrSyntax, "unexpected %s: comparisons do not chain, use AND", p.tok.describe())
			return nil
		}
	}
	return x
}

func (p *parser) parseAdditive() Expr {
	x := p.parseMultiplicative()
	for p.err == nil && (p.tok.kind == tPlus || p.tok.kind == tMinus) {
		op := OpAdd
		if p.tok.kind == tMinus {
			op = OpSub
		}
		p.advance()
		y := p.parseMultiplicative()
		if p.err != nil {
			return nil
		}
		x = &BinaryExpr{Op: op, X: x, Y: y, Loc: x.Span().Join(y.Span())}
	}
	if p.err != nil {
		return nil
	}
	return x
}

func (p *parser) parseMultiplicative() Expr {
	x := p.parseUnary()
	for p.err == nil && (p.tok.kind == tStar || p.tok.kind == tSlash || p.tok.kind == tPercent) {
		op := map[tokKind]BinaryOp{tStar: OpMul, tSlash: OpDiv, tPercent: OpMod}[p.tok.kind]
		p.advance()
		y := p.parseUnary()
		if p.err != nil {
			return nil
		}
		x = &BinaryExpr{Op: op, X: x, Y: y, Loc: x.Span().Join(y.Span())}
	}
	if p.err != nil {
		return nil
	}
	return x
}

func (p *parser) parseUnary() Expr {
	if p.tok.kind == tMinus || p.tok.kind == tPlus {
		op := OpNeg
		if p.tok.kind == tPlus {
			op = OpPos
		}
		start := p.tok.loc
		p.advance()
		x := p.parseUnary()
		if p.err != nil {
			return nil
		}
		return &UnaryExpr{Op: op, X: x, Loc: start.Join(x.Span())}
	}
	return p.parsePostfix()
}

// castTypes are the type names accepted after "::" and by TO_* conversions.
var castTypes = map[string]bool{
	"keyword": true, "text": true, "string": true, "integer": true, "int": true, "long": true,
	"double": true, "boolean": true, "bool": true, "datetime": true, "date": true, "ip": true,
	"version": true, "unsigned_long": true,
}

func (p *parser) parsePostfix() Expr {
	x := p.parsePrimary()
	for p.err == nil && p.tok.kind == tCast {
		p.advance()
		t := p.tok
		if t.kind != tIdent || !castTypes[strings.ToLower(t.text)] {
			p.unexpected("a type name (keyword, long, double, boolean, datetime, ip, ...)")
			return nil
		}
		p.advance()
		x = &CastExpr{X: x, Type: strings.ToLower(t.text), TypeLoc: t.loc, Loc: x.Span().Join(t.loc)}
	}
	if p.err != nil {
		return nil
	}
	return x
}

// timeUnits maps the unit words of time span literals to canonical units.
var timeUnits = map[string]string{
	"ms": "millisecond", "millisecond": "millisecond", "milliseconds": "millisecond",
	"s": "second", "sec": "second", "second": "second", "seconds": "second",
	"min": "minute", "minute": "minute", "minutes": "minute",
	"h": "hour", "hour": "hour", "hours": "hour",
	"d": "day", "day": "day", "days": "day",
	"w": "week", "week": "week", "weeks": "week",
	"mo": "month", "month": "month", "months": "month",
	"q": "quarter", "quarter": "quarter", "quarters": "quarter",
	"y": "year", "yr": "year", "year": "year", "years": "year",
}

// TimeUnits returns the canonical time span units in increasing length.
func TimeUnits() []string {
	return []string{"millisecond", "second", "minute", "hour", "day", "week", "month", "quarter", "year"}
}

func (p *parser) parsePrimary() Expr {
	t := p.tok
	switch t.kind {
	case tInt:
		p.advance()
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(t.text, 64)
			if ferr != nil || math.IsInf(f, 0) {
				p.failAt(t.loc, ErrLiteral, "number %s is out of range", t.text)
				return nil
			}
			return &LiteralExpr{Kind: LitFloat, Float: f, Loc: t.loc}
		}
		if p.tok.kind == tIdent {
			if unit, ok := timeUnits[strings.ToLower(p.tok.text)]; ok {
				end := p.tok.loc
				p.advance()
				return &DurationExpr{N: n, Unit: unit, Loc: t.loc.Join(end)}
			}
		}
		return &LiteralExpr{Kind: LitInt, Int: n, Loc: t.loc}
	case tDecimal:
		p.advance()
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil || math.IsInf(f, 0) {
			p.failAt(t.loc, ErrLiteral, "number %s is out of range", t.text)
			return nil
		}
		return &LiteralExpr{Kind: LitFloat, Float: f, Loc: t.loc}
	case tString:
		if t.err != "" {
			p.failAt(t.loc, ErrLiteral, "%s", t.err)
			return nil
		}
		p.advance()
		return &LiteralExpr{Kind: LitString, Str: t.val, Loc: t.loc}
	case tLParen:
		p.advance()
		x := p.parseExpr()
		p.expect(tRParen, `")"`)
		if p.err != nil {
			return nil
		}
		return x
	case tParam:
		p.failAt(t.loc, ErrUnsupported, "query parameters are not supported")
		return nil
	case tLBracket:
		p.failAt(t.loc, ErrUnsupported, "array literals are not supported")
		return nil
	case tQuotedIdent:
		return p.parseName()
	case tIdent:
		lw := strings.ToLower(t.text)
		switch lw {
		case "null":
			p.advance()
			return &LiteralExpr{Kind: LitNull, Loc: t.loc}
		case "true", "false":
			p.advance()
			return &LiteralExpr{Kind: LitBool, Bool: lw == "true", Loc: t.loc}
		}
		if reserved[lw] {
			p.unexpected("an expression")
			return nil
		}
		st := p.save()
		p.advance()
		if p.tok.kind == tLParen {
			return p.parseCall(t)
		}
		p.restore(st)
		return p.parseName()
	}
	p.unexpected("an expression")
	return nil
}

// parseName parses a qualified name: segments separated by dots, each an
// identifier or a backtick-quoted identifier.
func (p *parser) parseName() Expr {
	id := p.parseIdent("a field name")
	if p.err != nil {
		return nil
	}
	return &FieldExpr{Name: id.Name, Loc: id.Loc}
}

func (p *parser) parseIdent(expected string) Ident {
	var parts []string
	start := p.tok.loc
	for {
		t := p.tok
		switch {
		case t.kind == tIdent && (len(parts) > 0 || !reserved[strings.ToLower(t.text)]):
			parts = append(parts, t.text)
		case t.kind == tQuotedIdent && t.err == "":
			parts = append(parts, t.val)
		default:
			p.unexpected(expected)
			return Ident{}
		}
		p.advance()
		// A dot continues the name only when it is glued to both segments.
		if p.tok.kind != tDot || p.tok.loc.Start != p.prevEnd {
			break
		}
		st := p.save()
		p.advance()
		if (p.tok.kind != tIdent && p.tok.kind != tQuotedIdent) || p.tok.loc.Start != p.prevEnd {
			p.restore(st)
			break
		}
	}
	return Ident{Name: strings.Join(parts, "."), Loc: pos.Span{Start: start.Start, End: p.prevEnd}}
}

func (p *parser) parseCall(name token) Expr {
	p.advance() // "("
	call := &CallExpr{Name: strings.ToUpper(name.text), NameLoc: name.loc}
	switch p.tok.kind {
	case tRParen:
	case tStar:
		call.Args = []Expr{&StarExpr{Loc: p.tok.loc}}
		p.advance()
	default:
		for p.err == nil {
			a := p.parseExpr()
			if p.err != nil {
				return nil
			}
			call.Args = append(call.Args, a)
			if p.tok.kind != tComma {
				break
			}
			p.advance()
		}
	}
	end := p.expect(tRParen, `"," or ")" after function argument`)
	if p.err != nil {
		return nil
	}
	call.Loc = name.loc.Join(end.loc)
	return call
}

// ---- shared command pieces ----

// cmdSpan is the span from the current command's keyword to the last
// consumed token.
func (p *parser) cmdSpan() pos.Span { return pos.Span{Start: p.cmdStart, End: p.prevEnd} }

// parseAssign parses "[name =] expr". Without a name, the column is named
// by the expression's source text, as ES|QL does.
func (p *parser) parseAssign() Assign {
	st := p.save()
	if p.tok.kind == tIdent || p.tok.kind == tQuotedIdent {
		id := p.parseIdent("a column name")
		if p.err == nil && p.tok.kind == tAssign {
			p.advance()
			x := p.parseExpr()
			if p.err != nil {
				return Assign{}
			}
			return Assign{Name: id.Name, NameLoc: id.Loc, X: x}
		}
		p.err = nil
		p.restore(st)
	}
	x := p.parseExpr()
	if p.err != nil {
		return Assign{}
	}
	name := p.src.Text[x.Span().Start:x.Span().End]
	if f, ok := x.(*FieldExpr); ok {
		name = f.Name
	}
	return Assign{Name: name, X: x}
}

// NamePattern is a column name pattern in KEEP and DROP, where "*" matches
// any run of characters (including dots).
type NamePattern struct {
	Pattern string
	Loc     pos.Span
}

// HasWildcard reports whether the pattern contains "*".
func (n NamePattern) HasWildcard() bool { return strings.Contains(n.Pattern, "*") }

// String renders the pattern, backtick-quoted when it is not made of plain
// identifier characters, dots and stars.
func (n NamePattern) String() string {
	plain := n.Pattern != ""
	for _, seg := range strings.Split(n.Pattern, ".") {
		if seg == "" {
			plain = false
		}
		for i := 0; i < len(seg); i++ {
			if !isIDBody(seg[i]) && seg[i] != '*' && seg[i] != '@' {
				plain = false
			}
		}
	}
	if plain && !reserved[strings.ToLower(strings.Split(n.Pattern, ".")[0])] {
		return n.Pattern
	}
	return "`" + strings.ReplaceAll(n.Pattern, "`", "``") + "`"
}

// parseNamePattern scans a name pattern from the current token: segments of
// identifier characters and "*", or backtick-quoted text, joined by dots.
func (p *parser) parseNamePattern() NamePattern {
	if p.tok.kind == tEOF || p.tok.kind == tPipe || p.tok.kind == tComma {
		p.unexpected("a column name or pattern")
		return NamePattern{}
	}
	text := p.lx.text
	i := p.tok.loc.Start
	start := i
	var b strings.Builder
	for {
		segStart := i
		if i < len(text) && text[i] == '`' {
			p.lx.off = i
			t := p.lx.quotedIdent()
			if t.err != "" {
				p.tok = t
				p.unexpected("a column name or pattern")
				return NamePattern{}
			}
			b.WriteString(t.val)
			i = t.loc.End
		} else {
			for i < len(text) && (isIDBody(text[i]) || text[i] == '*' || text[i] == '@') {
				i++
			}
			b.WriteString(text[segStart:i])
		}
		if i == segStart {
			p.lx.off = i
			p.tok = p.lx.next()
			p.unexpected("a column name or pattern")
			return NamePattern{}
		}
		if i < len(text) && text[i] == '.' {
			b.WriteByte('.')
			i++
			continue
		}
		break
	}
	p.lx.off = i
	p.prevEnd = i
	p.tok = p.lx.next()
	return NamePattern{Pattern: b.String(), Loc: pos.Span{Start: start, End: i}}
}

func (p *parser) parseNamePatterns() []NamePattern {
	var out []NamePattern
	for p.err == nil {
		np := p.parseNamePattern()
		if p.err != nil {
			return nil
		}
		out = append(out, np)
		if p.tok.kind != tComma {
			break
		}
		p.advance()
	}
	return out
}

// parseStringArg parses a string literal argument of a command (GROK and
// DISSECT patterns).
func (p *parser) parseStringArg(expected string) (string, pos.Span) {
	t := p.tok
	if t.kind != tString || t.err != "" {
		p.unexpected(expected)
		return "", pos.Span{}
	}
	p.advance()
	return t.val, t.loc
}
