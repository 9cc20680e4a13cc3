package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
)

// narrowFlags narrow a scan: which rules run, which events they judge, and
// what a file's events lack (their cluster).
type narrowFlags struct {
	since, until string
	minSeverity  string
	cluster      string
	disabled     []string
}

// narrowRules leaves out the rules below --min-severity and those of
// --disable-rule; an unknown id is an error, as for --rule.
func (f *narrowFlags) narrowRules(rs []*rule.Compiled) ([]*rule.Compiled, error) {
	minRank := -1
	if f.minSeverity != "" {
		if minRank = alert.SeverityRank(f.minSeverity); minRank < 0 {
			return nil, fmt.Errorf("unknown severity %q for --min-severity (info, low, medium, high or critical)", f.minSeverity)
		}
	}
	off := map[string]bool{}
	for _, id := range f.disabled {
		off[id] = true
	}
	var out []*rule.Compiled
	for _, r := range rs {
		if off[r.ID] {
			delete(off, r.ID)
			continue
		}
		if alert.SeverityRank(r.Severity) >= minRank {
			out = append(out, r)
		}
	}
	if len(off) > 0 {
		var missing []string
		for id := range off {
			missing = append(missing, id)
		}
		sort.Strings(missing)
		return nil, fmt.Errorf("--disable-rule: no rule with id %s among the rules selected (see kanon rules list)", strings.Join(missing, ", "))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no rules to run (--min-severity %s and --disable-rule leave none)", f.minSeverity)
	}
	return out, nil
}

// hunt returns the engine's hunt options the flags ask for, with times
// relative to now.
func (f *narrowFlags) hunt(now time.Time) (engine.Hunt, error) {
	var h engine.Hunt
	var err error
	if h.Since, err = parseWhen(f.since, now); err != nil {
		return h, fmt.Errorf("--since: %w", err)
	}
	if h.Until, err = parseWhen(f.until, now); err != nil {
		return h, fmt.Errorf("--until: %w", err)
	}
	if !h.Since.IsZero() && !h.Until.IsZero() && !h.Since.Before(h.Until) {
		return h, fmt.Errorf("--since %s is not before --until %s", h.Since.Format(time.RFC3339), h.Until.Format(time.RFC3339))
	}
	h.Cluster = f.cluster
	return h, nil
}

// parseWhen reads a point in time: RFC 3339 (2025-05-14T09:00:00Z), a
// date (2025-05-14, midnight UTC), or a duration before now (90m, 1h,
// 2d, 1w; Go's units and d for days, w for weeks). "" is no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := parseAgo(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("cannot read %q as a time (RFC 3339 like 2025-05-14T09:00:00Z, a date like 2025-05-14, or a duration before now like 1h or 2d)", s)
	}
	return now.Add(-d), nil
}

// parseAgo reads a positive duration with the extra units d and w.
func parseAgo(s string) (time.Duration, error) {
	for unit, mult := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, unit); ok {
			k, err := strconv.ParseFloat(n, 64)
			if err != nil || k <= 0 {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return time.Duration(k * float64(mult)), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return d, nil
}
