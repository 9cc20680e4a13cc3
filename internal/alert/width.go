package alert

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// runeWidth is the number of terminal columns r takes: 2 for East Asian
// wide and fullwidth characters, 0 for combining marks and other
// zero-width characters, 1 otherwise. Control characters never reach it
// (clean replaces them).
func runeWidth(r rune) int {
	switch {
	case r < 0x300:
		return 1
	case unicode.Is(unicode.Mn, r), unicode.Is(unicode.Me, r), r == 0x200B, r == 0x200C, r == 0x200D, r == 0xFEFF:
		return 0
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return 2
	}
	return 1
}

// displayWidth is the number of terminal columns s takes once cleaned.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

// clean makes s safe to print on a terminal: control characters (which
// an audit log's user agent or URI may carry, escape sequences included)
// and invalid UTF-8 become U+FFFD, and line breaks and tabs a space.
func clean(s string) string {
	ok := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 || unicode.IsControl(r) {
			ok = false
			break
		}
		i += n
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r == utf8.RuneError && n <= 1 || unicode.IsControl(r):
			b.WriteRune(utf8.RuneError)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cut shortens s to at most w columns, ending it with "…" when it cuts;
// it never splits a character. w <= 0 leaves s as it is.
func cut(s string, w int) string {
	if w <= 0 || displayWidth(s) <= w {
		return s
	}
	n := 0
	for i, r := range s {
		rw := runeWidth(r)
		if n+rw > w-1 {
			return s[:i] + "…"
		}
		n += rw
	}
	return s
}

// cutMiddle shortens s to at most w columns by cutting out its middle, so
// that names that share a beginning (two rules of one vendor) stay apart.
func cutMiddle(s string, w int) string {
	if w <= 0 || displayWidth(s) <= w {
		return s
	}
	if w < 8 {
		return cut(s, w)
	}
	tail := (w - 1) / 2
	head := cut(s, w-tail) // head plus its "…"
	rs := []rune(s)
	n, i := 0, len(rs)
	for i > 0 && n+runeWidth(rs[i-1]) <= tail {
		i--
		n += runeWidth(rs[i])
	}
	return head + string(rs[i:])
}

// pad returns s followed by spaces up to w columns.
func pad(s string, w int) string {
	if d := w - displayWidth(s); d > 0 {
		return s + strings.Repeat(" ", d)
	}
	return s
}
