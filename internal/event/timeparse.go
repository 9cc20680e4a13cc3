package event

import "time"

// ParseTime parses the timestamps found in audit logs: RFC 3339 with any
// number of fractional digits and a zone ("Z" or ±hh:mm), and the
// "2006-01-02 15:04:05.999" form without zone that Panther test events
// use (read as UTC). The common UTC form is parsed without allocating.
func ParseTime(s string) (time.Time, bool) {
	if t, ok := parseFast(s); ok {
		return t, true
	}
	for _, layout := range [...]string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

func num(s string, i, n int) (int, bool) {
	v := 0
	for k := i; k < i+n; k++ {
		c := s[k]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// parseFast handles YYYY-MM-DDTHH:MM:SS[.f+]Z.
func parseFast(s string) (time.Time, bool) {
	if len(s) < 20 || s[len(s)-1] != 'Z' || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	y, ok1 := num(s, 0, 4)
	mo, ok2 := num(s, 5, 2)
	d, ok3 := num(s, 8, 2)
	h, ok4 := num(s, 11, 2)
	mi, ok5 := num(s, 14, 2)
	se, ok6 := num(s, 17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	ns := 0
	rest := s[19 : len(s)-1]
	if len(rest) > 0 {
		if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
			return time.Time{}, false
		}
		digits := rest[1:]
		v, ok := num(digits, 0, len(digits))
		if !ok {
			return time.Time{}, false
		}
		for k := len(digits); k < 9; k++ {
			v *= 10
		}
		ns = v
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, ns, time.UTC)
	if t.Day() != d {
		return time.Time{}, false // e.g. February 30
	}
	return t, true
}
