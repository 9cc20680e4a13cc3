package kqleval

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// parseNumber parses a KQL value for a long field. ok is false when the
// text is not a number (Elasticsearch rejects the query).
func parseNumber(s string) (f float64, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return float64(i), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseDateBound parses a date as Elasticsearch's default date format,
// strict_date_optional_time||epoch_millis, in UTC, and returns it in epoch
// milliseconds. With roundUp (the bounds of gt and lte), missing time
// components are the last instant of the day (23:59:59.999); missing month
// and day are 01 either way, as Elasticsearch documents ("Missing date
// components"). isMath reports date math ("now", "||"), which kanon does not
// evaluate.
func parseDateBound(s string, roundUp bool) (ms int64, ok, isMath bool) {
	if strings.HasPrefix(s, "now") || strings.Contains(s, "||") {
		return 0, false, true
	}
	if t, ok := parseStrictDateOptionalTime(s, roundUp); ok {
		return t.UnixMilli(), true, false
	}
	// epoch_millis, with an optional fraction.
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE") && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return int64(math.Floor(f)), true, false
	}
	return 0, false, false
}

// parseStrictDateOptionalTime parses yyyy[-MM[-dd[THH[:mm[:ss[.f{1,9}]]]]]]
// with an optional zone (Z, ±HH, ±HHmm, ±HH:mm) after the time.
func parseStrictDateOptionalTime(s string, roundUp bool) (time.Time, bool) {
	i := 0
	num := func(n int) (int, bool) {
		if len(s)-i < n {
			return 0, false
		}
		v := 0
		for j := 0; j < n; j++ {
			c := s[i+j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		i += n
		return v, true
	}
	year, ok := num(4)
	if !ok {
		return time.Time{}, false
	}
	month, day, hour, minute, sec, nsec := 1, 1, 0, 0, 0, 0
	if roundUp {
		hour, minute, sec, nsec = 23, 59, 59, 999999999
	}
	loc := time.UTC
	if i < len(s) && s[i] == '-' {
		i++
		if month, ok = num(2); !ok {
			return time.Time{}, false
		}
		if i < len(s) && s[i] == '-' {
			i++
			if day, ok = num(2); !ok {
				return time.Time{}, false
			}
			if i < len(s) && s[i] == 'T' {
				i++
				if hour, ok = num(2); !ok {
					return time.Time{}, false
				}
				if i < len(s) && s[i] == ':' {
					i++
					if minute, ok = num(2); !ok {
						return time.Time{}, false
					}
					if i < len(s) && s[i] == ':' {
						i++
						if sec, ok = num(2); !ok {
							return time.Time{}, false
						}
						if i < len(s) && (s[i] == '.' || s[i] == ',') {
							i++
							start := i
							frac := 0
							for i < len(s) && i-start < 9 && s[i] >= '0' && s[i] <= '9' {
								frac = frac*10 + int(s[i]-'0')
								i++
							}
							if i == start {
								return time.Time{}, false
							}
							for k := i - start; k < 9; k++ {
								frac *= 10
							}
							nsec = frac
						}
					}
				}
				if i < len(s) {
					switch s[i] {
					case 'Z':
						i++
					case '+', '-':
						sign := 1
						if s[i] == '-' {
							sign = -1
						}
						i++
						hh, ok := num(2)
						if !ok {
							return time.Time{}, false
						}
						mm := 0
						if i < len(s) && s[i] == ':' {
							i++
						}
						if i < len(s) {
							if mm, ok = num(2); !ok {
								return time.Time{}, false
							}
						}
						loc = time.FixedZone("", sign*(hh*3600+mm*60))
					}
				}
			}
		}
	}
	if i != len(s) || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day {
		return time.Time{}, false // 2024-02-30
	}
	return t, true
}

// floorDiv divides rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
