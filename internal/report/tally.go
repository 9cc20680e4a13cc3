package report

import (
	"sort"
	"strings"
	"time"
)

// Decision is an authorization decision as the report counts it.
type Decision uint8

// Decisions.
const (
	// NoDecision: the request has no authorization decision (it was
	// refused before authorization, e.g. 401 with anonymous auth off).
	NoDecision Decision = iota
	Allowed
	Forbidden
)

// decisionOf reads the authorization decision annotation.
func decisionOf(s string) Decision {
	switch s {
	case "allow":
		return Allowed
	case "forbid":
		return Forbidden
	}
	return NoDecision
}

// Counts are the requests of one value (a source IP, a user agent, ...)
// by decision, with the first and last event time seen.
type Counts struct {
	Requests, Allowed, Forbidden, NoDecision int64
	// First and Last are zero when no request had a time.
	First, Last time.Time
}

func (c *Counts) add(d Decision, t time.Time) {
	c.Requests++
	switch d {
	case Allowed:
		c.Allowed++
	case Forbidden:
		c.Forbidden++
	default:
		c.NoDecision++
	}
	if t.IsZero() {
		return
	}
	if c.First.IsZero() || t.Before(c.First) {
		c.First = t
	}
	if t.After(c.Last) {
		c.Last = t
	}
}

// maxVerbs and maxCodes bound what one row keeps of the verbs and
// response codes it saw.
const (
	maxVerbs = 12
	maxCodes = 8
)

// CodeCount is a response code and how many requests got it.
type CodeCount struct {
	Code int64
	N    int64
}

// entry is one value's counts and, for resources and URIs, the verbs and
// response codes seen.
type entry struct {
	Counts
	verbs      []string
	codes      []CodeCount
	otherCodes int64 // requests whose code did not fit in codes
}

func (e *entry) addVerb(v string) {
	if v == "" {
		return
	}
	for _, x := range e.verbs {
		if x == v {
			return
		}
	}
	if len(e.verbs) < maxVerbs {
		e.verbs = append(e.verbs, strings.Clone(v))
	}
}

func (e *entry) addCode(code int64) {
	for i := range e.codes {
		if e.codes[i].Code == code {
			e.codes[i].N++
			return
		}
	}
	if len(e.codes) < maxCodes {
		e.codes = append(e.codes, CodeCount{Code: code, N: 1})
		return
	}
	e.otherCodes++
}

// tally counts requests by a key, keeping at most max distinct keys;
// requests of keys that no longer fit are counted in other.
type tally[K comparable] struct {
	max   int
	m     map[K]*entry
	other Counts
	clone func(K) K // copies a key's strings on insert (events are reused)
}

func newTally[K comparable](max int, clone func(K) K) tally[K] {
	return tally[K]{max: max, m: map[K]*entry{}, clone: clone}
}

// add counts one request of k; it returns k's entry, or nil when k did
// not fit.
func (t *tally[K]) add(k K, d Decision, at time.Time) *entry {
	e := t.m[k]
	if e == nil {
		if len(t.m) >= t.max {
			t.other.add(d, at)
			return nil
		}
		e = &entry{}
		t.m[t.clone(k)] = e
	}
	e.add(d, at)
	return e
}

// Row is one value of a table.
type Row struct {
	// Key is the value (a source IP, a user agent, a URI, ...); "" when the
	// events had none.
	Key string
	Counts
	// Verbs are the verbs used (resources), at most 12.
	Verbs []string
	// Codes are the response codes, most frequent first, at most 8;
	// OtherCodes counts the requests with other codes.
	Codes      []CodeCount
	OtherCodes int64
}

// Table is a counted table: every value kept, most requests first.
type Table struct {
	Rows []Row
	// Max is the cap on distinct values; Full reports that it was reached,
	// and Other counts the requests of the values that did not fit.
	Max   int
	Full  bool
	Other Counts
}

// table sorts the entries of t by requests (then key) into a Table.
func table[K comparable](t *tally[K], key func(K) string) Table {
	out := Table{Max: t.max, Full: len(t.m) >= t.max && t.other.Requests > 0, Other: t.other}
	out.Rows = make([]Row, 0, len(t.m))
	for k, e := range t.m {
		r := Row{Key: key(k), Counts: e.Counts, Verbs: append([]string(nil), e.verbs...),
			Codes: append([]CodeCount(nil), e.codes...), OtherCodes: e.otherCodes}
		sort.Strings(r.Verbs)
		sort.Slice(r.Codes, func(i, j int) bool {
			if r.Codes[i].N != r.Codes[j].N {
				return r.Codes[i].N > r.Codes[j].N
			}
			return r.Codes[i].Code < r.Codes[j].Code
		})
		out.Rows = append(out.Rows, r)
	}
	sort.Slice(out.Rows, func(i, j int) bool {
		a, b := out.Rows[i], out.Rows[j]
		if a.Requests != b.Requests {
			return a.Requests > b.Requests
		}
		return a.Key < b.Key
	})
	return out
}

// resKey is a resource: API group, resource and subresource.
type resKey struct{ group, resource, sub string }

func cloneRes(k resKey) resKey {
	return resKey{strings.Clone(k.group), strings.Clone(k.resource), strings.Clone(k.sub)}
}

// String writes a resource as kubectl names it: resource[.group][/sub].
func (k resKey) String() string {
	s := k.resource
	if k.group != "" {
		s += "." + k.group
	}
	if k.sub != "" {
		s += "/" + k.sub
	}
	return s
}

// maxURIBytes is where a request URI is cut in the URI table (at a rune
// boundary, without the cut being marked in the key).
const maxURIBytes = 512

// uriKey is the path of a request URI: the query is cut (it holds
// timeouts, limits and continue tokens, not what was reached).
func uriKey(uri string) string {
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	if len(uri) > maxURIBytes {
		n := maxURIBytes
		for n > 0 && uri[n]&0xC0 == 0x80 {
			n--
		}
		uri = uri[:n]
	}
	return uri
}
