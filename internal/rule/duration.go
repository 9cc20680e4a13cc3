package rule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses "90s", "5m", "1h", "7d" (and Go's forms such as
// "1h30m"). Days are 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(v) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 90s, 5m, 1h, 7d)", s)
	}
	return d, nil
}

// ParseDateMath parses the relative date math rules use ("now-6m",
// "now-7d", "now") into the look-back duration before now.
func ParseDateMath(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "now" {
		return 0, nil
	}
	rest, ok := strings.CutPrefix(s, "now-")
	if !ok {
		return 0, fmt.Errorf("invalid date math %q (use now-<duration>, e.g. now-6m)", s)
	}
	// Elasticsearch date math units: s m h d w M y; kanon accepts s m h d w.
	if n, ok := strings.CutSuffix(rest, "w"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("invalid date math %q", s)
		}
		return time.Duration(v) * 7 * 24 * time.Hour, nil
	}
	d, err := ParseDuration(rest)
	if err != nil {
		return 0, fmt.Errorf("invalid date math %q", s)
	}
	return d, nil
}
