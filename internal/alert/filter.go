package alert

import "strings"

// severities, lowest first (the same list as the rule schema's).
var severities = []string{"info", "low", "medium", "high", "critical"}

// severityRank orders severities (info=0 ... critical=4); -1 if unknown.
func severityRank(s string) int {
	for i, x := range severities {
		if x == s {
			return i
		}
	}
	return -1
}

// Filter decides which alerts an output receives: a minimum severity and
// rule id patterns to include and exclude. The zero Filter passes every
// alert. A Filter is immutable and safe for concurrent use.
type Filter struct {
	minRank int // -1: no minimum
	include []idMatcher
	exclude []idMatcher
}

// NewFilter compiles a filter. minSeverity may be empty (no minimum);
// include, when not empty, passes only rule ids matching one of its
// patterns, and exclude drops rule ids matching one of its patterns.
// Patterns are rule ids in which * stands for any run of characters.
func NewFilter(minSeverity string, include, exclude []string) Filter {
	f := Filter{minRank: -1}
	if minSeverity != "" {
		f.minRank = severityRank(minSeverity)
	}
	for _, p := range include {
		f.include = append(f.include, compileIDPattern(p))
	}
	for _, p := range exclude {
		f.exclude = append(f.exclude, compileIDPattern(p))
	}
	return f
}

// Match reports whether a passes the filter. An alert of unknown severity
// passes only a filter without a minimum severity.
func (f *Filter) Match(a *Alert) bool {
	if f.minRank >= 0 && severityRank(a.Rule.Severity) < f.minRank {
		return false
	}
	if len(f.include) > 0 {
		ok := false
		for i := range f.include {
			if f.include[i].match(a.Rule.ID) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range f.exclude {
		if f.exclude[i].match(a.Rule.ID) {
			return false
		}
	}
	return true
}

// idMatcher matches a rule id against a pattern with * wildcards. The
// common shapes (exact, prefix*, *suffix, *infix*) are literal checks; any
// other pattern is matched by its literal parts in order.
type idMatcher struct {
	parts  []string // the pattern split at '*'
	prefix bool     // the pattern does not start with '*'
	suffix bool     // the pattern does not end with '*'
}

func compileIDPattern(p string) idMatcher {
	p = strings.TrimSpace(p)
	return idMatcher{
		parts:  strings.Split(p, "*"),
		prefix: !strings.HasPrefix(p, "*"),
		suffix: !strings.HasSuffix(p, "*"),
	}
}

func (m *idMatcher) match(s string) bool {
	parts := m.parts
	if len(parts) == 1 {
		return s == parts[0]
	}
	if m.prefix {
		if !strings.HasPrefix(s, parts[0]) {
			return false
		}
		s = s[len(parts[0]):]
	}
	last := parts[len(parts)-1]
	if m.suffix {
		if !strings.HasSuffix(s, last) {
			return false
		}
		s = s[:len(s)-len(last)]
	}
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
