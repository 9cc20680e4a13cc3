package kqleval

import (
	"bytes"
	"strings"
)

// patKind is how a compiled wildcard pattern tests a string.
type patKind uint8

const (
	patEqual    patKind = iota // no wildcard
	patAny                     // "*": any non-empty value
	patPrefix                  // "abc*"
	patSuffix                  // "*abc"
	patContains                // "*abc*"
	patGlob                    // anything else: prefix, ordered middle parts, suffix
)

// pattern is a KQL wildcard pattern compiled to literal checks. "*" matches
// any run of characters (KQL has no "?"); the greedy leftmost search for the
// middle parts is exact for "*"-only globs, so no regexp is ever needed.
type pattern struct {
	kind   patKind
	lit    string   // equal, prefix, suffix, contains
	prefix string   // glob
	middle []string // glob, non-empty parts in order
	suffix string   // glob
	// minLen is the shortest length a match can have.
	minLen int
	// litB and middleB are lit and middle as bytes, for matchBytes.
	litB    []byte
	middleB [][]byte
}

// withBytes fills litB and middleB.
func (p pattern) withBytes() pattern {
	p.litB = []byte(p.lit)
	for _, m := range p.middle {
		p.middleB = append(p.middleB, []byte(m))
	}
	return p
}

// newPattern compiles the parts of a wildcard literal (see kql.Literal.Parts);
// nil parts means an exact value.
func newPattern(parts []string, exact string) pattern {
	return newPattern1(parts, exact).withBytes()
}

func newPattern1(parts []string, exact string) pattern {
	if parts == nil {
		return pattern{kind: patEqual, lit: exact, minLen: len(exact)}
	}
	var mid []string
	n := 0
	for i, p := range parts {
		n += len(p)
		if i > 0 && i < len(parts)-1 && p != "" {
			mid = append(mid, p)
		}
	}
	first, last := parts[0], parts[len(parts)-1]
	switch {
	case len(mid) == 0 && first == "" && last == "":
		return pattern{kind: patAny}
	case len(mid) == 0 && last == "":
		return pattern{kind: patPrefix, lit: first, minLen: n}
	case len(mid) == 0 && first == "":
		return pattern{kind: patSuffix, lit: last, minLen: n}
	case len(mid) == 1 && first == "" && last == "":
		return pattern{kind: patContains, lit: mid[0], minLen: n}
	}
	return pattern{kind: patGlob, prefix: first, middle: mid, suffix: last, minLen: n}
}

// match reports whether s matches the whole pattern.
func (p *pattern) match(s string) bool {
	switch p.kind {
	case patEqual:
		return s == p.lit
	case patAny:
		return true
	case patPrefix:
		return strings.HasPrefix(s, p.lit)
	case patSuffix:
		return strings.HasSuffix(s, p.lit)
	case patContains:
		return strings.Contains(s, p.lit)
	}
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

// matchBytes is match for a []byte (analyzed tokens).
func (p *pattern) matchBytes(b []byte) bool {
	switch p.kind {
	case patEqual:
		return string(b) == p.lit
	case patAny:
		return true
	case patPrefix:
		return len(b) >= len(p.lit) && string(b[:len(p.lit)]) == p.lit
	case patSuffix:
		return len(b) >= len(p.lit) && string(b[len(b)-len(p.lit):]) == p.lit
	case patContains:
		return bytes.Contains(b, p.litB)
	}
	if len(b) < p.minLen || string(b[:len(p.prefix)]) != p.prefix || string(b[len(b)-len(p.suffix):]) != p.suffix {
		return false
	}
	b = b[len(p.prefix) : len(b)-len(p.suffix)]
	for _, m := range p.middleB {
		i := bytes.Index(b, m)
		if i < 0 {
			return false
		}
		b = b[i+len(m):]
	}
	return true
}
