package wildcard

import (
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Kind is the shape of a pattern, which decides how it is matched.
type Kind uint8

// Kinds of pattern, from the cheapest check to the dearest.
const (
	Exact    Kind = iota // no wildcard: the value equals Literal
	Any                  // stars only ("*"): any value, also ""
	Prefix               // "lit*": the value starts with Literal
	Suffix               // "*lit": the value ends with Literal
	Contains             // "*lit*": the value contains Literal
	Glob                 // any other pattern whose wildcards are all stars
	General              // a pattern with a One wildcard ("?")
)

var kindNames = [...]string{Exact: "exact", Any: "any", Prefix: "prefix", Suffix: "suffix", Contains: "contains", Glob: "glob", General: "general"}

// String names the kind ("exact", "prefix", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

type elemKind uint8

const (
	elemLit  elemKind = iota // literal text
	elemStar                 // any run of characters
	elemOne                  // exactly one character
)

type elem struct {
	kind elemKind
	lit  string
}

// Builder assembles a Pattern from literal text and wildcards, in order.
// Adjacent literals are joined and consecutive stars collapse into one.
// The zero Builder is ready to use; a Builder is not safe for concurrent
// use.
type Builder struct {
	elems []elem
	cur   strings.Builder
}

// Literal appends literal text (it may be empty).
func (b *Builder) Literal(s string) { b.cur.WriteString(s) }

// Star appends a wildcard matching any run of characters, also none.
func (b *Builder) Star() {
	b.flush()
	if n := len(b.elems); n > 0 && b.elems[n-1].kind == elemStar {
		return
	}
	b.elems = append(b.elems, elem{kind: elemStar})
}

// One appends a wildcard matching exactly one character.
func (b *Builder) One() {
	b.flush()
	b.elems = append(b.elems, elem{kind: elemOne})
}

func (b *Builder) flush() {
	if b.cur.Len() > 0 {
		b.elems = append(b.elems, elem{kind: elemLit, lit: b.cur.String()})
		b.cur.Reset()
	}
}

// Pattern returns the pattern built so far, classified and compiled, and
// resets the Builder.
func (b *Builder) Pattern() Pattern {
	b.flush()
	p := compile(b.elems)
	b.elems = nil
	return p
}

// Parts returns the pattern whose literal text between stars is parts, in
// order: ["", "a", "b"] is "*a*b", ["ab"] the exact value "ab". It is the
// form of KQL wildcard values (kql.Literal.Parts) and of name patterns
// split at "*". No parts is the exact value "".
func Parts(parts []string) Pattern {
	var b Builder
	for i, s := range parts {
		if i > 0 {
			b.Star()
		}
		b.Literal(s)
	}
	return b.Pattern()
}

// ExactValue returns the pattern that matches s and nothing else.
func ExactValue(s string) Pattern {
	if s == "" {
		return Pattern{}
	}
	return compile([]elem{{kind: elemLit, lit: s}})
}

// Pattern is a classified wildcard pattern with its matcher. Patterns are
// immutable once built and safe for concurrent use. The zero Pattern is
// the exact value "".
type Pattern struct {
	elems []elem
	kind  Kind
	// lit is the literal of Exact, Prefix, Suffix and Contains.
	lit string
	// Glob and General: the literal text before the first wildcard and
	// after the last one, and the shortest length of a match in bytes.
	prefix, suffix string
	minLen         int
	// middle (Glob) is the non-empty literal runs between the first and
	// the last star; inner (General) the elements from the first wildcard
	// to the last.
	middle []string
	inner  []elem
}

// compile classifies normalised elements (no empty literal, no adjacent
// literals, no adjacent stars) and precomputes the matcher.
func compile(elems []elem) Pattern {
	p := Pattern{elems: elems}
	stars, ones := 0, 0
	for _, e := range elems {
		switch e.kind {
		case elemStar:
			stars++
		case elemOne:
			ones++
		default:
			p.minLen += len(e.lit)
		}
	}
	p.minLen += ones
	shape := func(kinds ...elemKind) bool {
		if len(elems) != len(kinds) {
			return false
		}
		for i, k := range kinds {
			if elems[i].kind != k {
				return false
			}
		}
		return true
	}
	switch {
	case stars == 0 && ones == 0:
		p.kind = Exact
		if len(elems) == 1 {
			p.lit = elems[0].lit
		}
		return p
	case ones == 0 && len(elems) == 1:
		p.kind = Any
		return p
	case shape(elemLit, elemStar):
		p.kind, p.lit = Prefix, elems[0].lit
		return p
	case shape(elemStar, elemLit):
		p.kind, p.lit = Suffix, elems[1].lit
		return p
	case shape(elemStar, elemLit, elemStar):
		p.kind, p.lit = Contains, elems[1].lit
		return p
	}
	first, last := 0, len(elems)-1
	if elems[first].kind == elemLit {
		p.prefix = elems[first].lit
		first++
	}
	if elems[last].kind == elemLit {
		p.suffix = elems[last].lit
		last--
	}
	if ones == 0 {
		p.kind = Glob
		for _, e := range elems[first : last+1] {
			if e.kind == elemLit {
				p.middle = append(p.middle, e.lit)
			}
		}
		return p
	}
	p.kind = General
	p.inner = elems[first : last+1]
	return p
}

// Kind returns the pattern's shape.
func (p *Pattern) Kind() Kind { return p.kind }

// Literal returns the literal an Exact, Prefix, Suffix or Contains pattern
// compares with, and "" for the other kinds.
func (p *Pattern) Literal() string { return p.lit }

// Literals returns the pattern's runs of literal text, in order (none for
// "*"). The caller owns the slice.
func (p *Pattern) Literals() []string {
	var out []string
	for _, e := range p.elems {
		if e.kind == elemLit {
			out = append(out, e.lit)
		}
	}
	return out
}

// LeadingLiteral returns the literal text before the first wildcard (the
// whole value of an Exact pattern): every match starts with it.
func (p *Pattern) LeadingLiteral() string {
	if len(p.elems) > 0 && p.elems[0].kind == elemLit {
		return p.elems[0].lit
	}
	return ""
}

// HasWildcard reports whether the pattern has a wildcard (is not Exact).
func (p *Pattern) HasWildcard() bool { return p.kind != Exact }

// Map returns the pattern with f applied to each run of literal text (to
// lower-case a pattern, for instance), classified again.
func (p *Pattern) Map(f func(string) string) Pattern {
	var b Builder
	for _, e := range p.elems {
		switch e.kind {
		case elemStar:
			b.Star()
		case elemOne:
			b.One()
		default:
			b.Literal(f(e.lit))
		}
	}
	return b.Pattern()
}

// String renders the pattern with "*" and "?" for the wildcards and a
// backslash before a literal "*", "?" or "\" (the syntax of ES|QL's
// LIKE). Languages print their own syntax; this form is for messages and
// tests.
func (p *Pattern) String() string {
	var b strings.Builder
	for _, e := range p.elems {
		switch e.kind {
		case elemStar:
			b.WriteByte('*')
		case elemOne:
			b.WriteByte('?')
		default:
			for i := 0; i < len(e.lit); i++ {
				if c := e.lit[i]; c == '*' || c == '?' || c == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(e.lit[i])
			}
		}
	}
	return b.String()
}

// Match reports whether the whole of s matches the pattern. It does not
// allocate.
func (p *Pattern) Match(s string) bool {
	switch p.kind {
	case Exact:
		return s == p.lit
	case Any:
		return true
	case Prefix:
		return strings.HasPrefix(s, p.lit)
	case Suffix:
		return strings.HasSuffix(s, p.lit)
	case Contains:
		return strings.Contains(s, p.lit)
	case General:
		if len(s) < p.minLen || !strings.HasPrefix(s, p.prefix) || !strings.HasSuffix(s, p.suffix) {
			return false
		}
		return matchElems(p.inner, s[len(p.prefix):len(s)-len(p.suffix)])
	}
	// Glob. Stars only: taking each middle part at its leftmost occurrence
	// leaves the most room for the parts after it, so the greedy search is
	// exact.
	if len(s) < p.minLen || !strings.HasPrefix(s, p.prefix) || !strings.HasSuffix(s, p.suffix) {
		return false
	}
	s = s[len(p.prefix) : len(s)-len(p.suffix)]
	for _, m := range p.middle {
		i := strings.Index(s, m)
		if i < 0 {
			return false
		}
		s = s[i+len(m):]
	}
	return true
}

// MatchBytes is Match for a byte slice, which it reads without copying
// and does not keep; b must not change during the call.
func (p *Pattern) MatchBytes(b []byte) bool {
	return p.Match(unsafe.String(unsafe.SliceData(b), len(b)))
}

// matchElems matches s against elements that start and end with a
// wildcard. On a mismatch it goes back to the last star and lets it take
// one more character: with only "*" and "?" as wildcards, an earlier star
// never needs to take more, so the match runs in O(len(s)·len(elems))
// time without allocating.
func matchElems(elems []elem, s string) bool {
	pi, si := 0, 0
	star, starSi := -1, 0
	for {
		if pi < len(elems) {
			switch e := elems[pi]; e.kind {
			case elemStar:
				if pi == len(elems)-1 {
					return true
				}
				star, starSi = pi, si
				pi++
				continue
			case elemOne:
				if si < len(s) {
					_, w := utf8.DecodeRuneInString(s[si:])
					si += w
					pi++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], e.lit) {
					si += len(e.lit)
					pi++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if star < 0 || starSi >= len(s) {
			return false
		}
		_, w := utf8.DecodeRuneInString(s[starSi:])
		starSi += w
		pi, si = star+1, starSi
	}
}
