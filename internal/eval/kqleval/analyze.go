package kqleval

import (
	"unicode"
	"unicode/utf8"
)

// This file approximates Elasticsearch's standard analyzer (Lucene's
// StandardTokenizer, Unicode UAX #29 word boundaries, then lowercasing) for
// text fields. The approximation, documented in testdata/README.md:
//
//   - letters (and digits) join into words; digits join into numbers; letters
//     and digits join each other ("k8s", "v1"); "_" joins anything;
//   - ":" "·" between letters, "." and "'" between letters or between
//     digits, "," ";" between digits do not break ("system:masters",
//     "example.com", "don't", "8.1", "1,000");
//   - combining marks stay with their word; Han and Hiragana characters are
//     one token each; Katakana runs are one token;
//   - everything else (spaces, "-", "/", "@", emoji, ...) separates tokens
//     and is dropped;
//   - tokens longer than 255 characters are split; tokens are lowercased
//     with unicode.ToLower.

type wbClass uint8

const (
	wbOther wbClass = iota
	wbLetter
	wbNumeric
	wbExtendNumLet
	wbMidLetter
	wbMidNumLet
	wbMidNum
	wbExtend
	wbIdeo
	wbKatakana
)

func classify(r rune) wbClass {
	switch r {
	case ':', '\u00b7', '\u0387', '\u05f4', '\u2027', '\ufe13', '\ufe55', '\uff1a':
		return wbMidLetter
	case '.', '\'', '\u2018', '\u2019', '\u2024', '\ufe52', '\uff07', '\uff0e':
		return wbMidNumLet
	case ',', ';', '\u037e', '\u0589', '\u060c', '\u060d', '\u066c', '\u07f8', '\u2044',
		'\ufe10', '\ufe14', '\ufe50', '\ufe54', '\uff0c', '\uff1b':
		return wbMidNum
	case '_', '\u202f', '\u203f', '\u2040', '\u2054', '\ufe33', '\ufe34', '\ufe4d', '\ufe4e', '\ufe4f', '\uff3f':
		return wbExtendNumLet
	}
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
			return wbLetter
		case r >= '0' && r <= '9':
			return wbNumeric
		}
		return wbOther
	case unicode.Is(unicode.Han, r), unicode.Is(unicode.Hiragana, r):
		return wbIdeo
	case unicode.Is(unicode.Katakana, r), r == '\u30fc', r == '\uff70', r == '\u3031', r == '\u3035':
		return wbKatakana
	case unicode.IsLetter(r):
		return wbLetter
	case unicode.Is(unicode.Nd, r):
		return wbNumeric
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc) || r == '\u200d':
		return wbExtend
	}
	return wbOther
}

// maxTokenLen is the standard tokenizer's max_token_length (in characters).
const maxTokenLen = 255

// analyzer appends the lowercased tokens of text values to buf; ends[i] is
// the end offset in buf of token i. It is scratch reused across events.
type analyzer struct {
	buf  []byte
	ends []int
}

func (a *analyzer) reset() {
	a.buf = a.buf[:0]
	a.ends = a.ends[:0]
}

// token returns token i of the analyzed text.
func (a *analyzer) token(i int) []byte {
	start := 0
	if i > 0 {
		start = a.ends[i-1]
	}
	return a.buf[start:a.ends[i]]
}

// analyze tokenizes s and appends its tokens.
func (a *analyzer) analyze(s string) {
	i := 0
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		c := classify(r)
		if c == wbIdeo {
			a.buf = utf8.AppendRune(a.buf, unicode.ToLower(r))
			a.ends = append(a.ends, len(a.buf))
			i += w
			continue
		}
		if c != wbLetter && c != wbNumeric && c != wbExtendNumLet && c != wbKatakana {
			i += w
			continue
		}
		// A word starts at i.
		start := len(a.buf)
		n := 0
		hasWord := false
		prev := c
		for i < len(s) {
			r, w := utf8.DecodeRuneInString(s[i:])
			c := classify(r)
			if n > 0 {
				if c == wbExtend {
					i += w
					continue
				}
				if !joins(prev, c) {
					if (c == wbMidLetter || c == wbMidNumLet || c == wbMidNum) && i+w < len(s) {
						r2, w2 := utf8.DecodeRuneInString(s[i+w:])
						c2 := classify(r2)
						if midJoins(prev, c, c2) {
							// Keep the middle character and continue.
							a.buf = utf8.AppendRune(a.buf, unicode.ToLower(r))
							a.buf = utf8.AppendRune(a.buf, unicode.ToLower(r2))
							n += 2
							i += w + w2
							prev = c2
							hasWord = true
							continue
						}
					}
					break
				}
			}
			if n >= maxTokenLen {
				if hasWord {
					a.ends = append(a.ends, len(a.buf))
				} else {
					a.buf = a.buf[:start]
				}
				start, n, hasWord = len(a.buf), 0, false
			}
			a.buf = utf8.AppendRune(a.buf, unicode.ToLower(r))
			n++
			hasWord = hasWord || c == wbLetter || c == wbNumeric || c == wbKatakana
			prev = c
			i += w
		}
		if hasWord && len(a.buf) > start {
			a.ends = append(a.ends, len(a.buf))
		} else {
			a.buf = a.buf[:start]
		}
	}
}

// joins reports whether no word boundary falls between classes a and b.
func joins(a, b wbClass) bool {
	switch a {
	case wbLetter, wbNumeric:
		return b == wbLetter || b == wbNumeric || b == wbExtendNumLet
	case wbExtendNumLet:
		return b == wbLetter || b == wbNumeric || b == wbExtendNumLet || b == wbKatakana
	case wbKatakana:
		return b == wbKatakana || b == wbExtendNumLet
	}
	return false
}

// midJoins reports whether a, mid, b form "letter mid letter" or "digit mid
// digit" without a boundary (UAX #29 rules WB6/7 and WB11/12).
func midJoins(a, mid, b wbClass) bool {
	switch {
	case a == wbLetter && b == wbLetter:
		return mid == wbMidLetter || mid == wbMidNumLet
	case a == wbNumeric && b == wbNumeric:
		return mid == wbMidNum || mid == wbMidNumLet
	}
	return false
}

// analyzeString returns the tokens of s (compile time only).
func analyzeString(s string) []string {
	var a analyzer
	a.analyze(s)
	out := make([]string, len(a.ends))
	for i := range a.ends {
		out[i] = string(a.token(i))
	}
	return out
}
