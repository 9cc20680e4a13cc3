package state

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Inspection: what `kanon state show|export|reset` list and delete. The
// functions here read and write a Store through its interface only (Scan
// and Update), with the key encoding of key.go and the codecs of the
// view_*.go files, so they work on every implementation, and see
// entries expired but not yet swept.

// KnownNamespaces returns the namespaces kanon writes, in the order
// `kanon state` lists them.
func KnownNamespaces() []Namespace {
	return []Namespace{NSTerms, NSGroups, NSAlerts, NSWindows, NSPositions, NSOutbox}
}

// Selection chooses the entries an inspection visits.
type Selection struct {
	// Rule is the id of the rule whose entries are chosen (for
	// NSPositions: the input's name); "" chooses every rule's.
	Rule string
	// Namespaces are the namespaces visited, in this order; empty means
	// KnownNamespaces.
	Namespaces []Namespace
}

func (sel Selection) namespaces() []Namespace {
	if len(sel.Namespaces) == 0 {
		return KnownNamespaces()
	}
	return sel.Namespaces
}

// prefix returns the scan prefix of sel in ns.
func (sel Selection) prefix(ns Namespace) []byte {
	if sel.Rule == "" {
		return []byte{byte(ns)}
	}
	return AppendPrefix(nil, ns, sel.Rule)
}

// Usage counts entries.
type Usage struct {
	// Entries is the number of entries, and Bytes the sum of the lengths
	// of their keys and values.
	Entries, Bytes int64
	// FirstExpiry and LastExpiry are the earliest and latest expiry of
	// the entries that expire; both are zero if none does.
	FirstExpiry, LastExpiry time.Time
}

func (u *Usage) add(size int, expiry time.Time) {
	u.merge(Usage{Entries: 1, Bytes: int64(size), FirstExpiry: expiry, LastExpiry: expiry})
}

// merge adds the entries counted by v to u.
func (u *Usage) merge(v Usage) {
	u.Entries += v.Entries
	u.Bytes += v.Bytes
	if !v.FirstExpiry.IsZero() && (u.FirstExpiry.IsZero() || v.FirstExpiry.Before(u.FirstExpiry)) {
		u.FirstExpiry = v.FirstExpiry
	}
	if v.LastExpiry.After(u.LastExpiry) {
		u.LastExpiry = v.LastExpiry
	}
}

// NamespaceUsage is the usage of one namespace.
type NamespaceUsage struct {
	NS Namespace
	Usage
}

// RuleSummary is the usage of one rule (or, in NSPositions, input).
type RuleSummary struct {
	Rule  string
	Total Usage
	// Namespaces are the namespaces the rule has entries in, in the
	// selection's order.
	Namespaces []NamespaceUsage
}

// In returns the rule's usage of namespace ns (zero if it has no entry
// there).
func (r *RuleSummary) In(ns Namespace) Usage {
	for _, nu := range r.Namespaces {
		if nu.NS == ns {
			return nu.Usage
		}
	}
	return Usage{}
}

// Summary is the usage of a store's entries, per namespace and per rule.
type Summary struct {
	Total Usage
	// Namespaces are the namespaces with entries, in the selection's
	// order.
	Namespaces []NamespaceUsage
	// Rules are the rules with entries, by id.
	Rules []RuleSummary
	// Malformed counts the entries whose keys do not decode with
	// ParseKey; they are in Total and Namespaces, in no rule.
	Malformed Usage
}

// summer builds a Summary entry by entry.
type summer struct {
	nsOrder []Namespace
	sum     Summary
	byNS    map[Namespace]*Usage
	byRule  map[string]map[Namespace]*Usage
}

func newSummer(nss []Namespace) *summer {
	return &summer{nsOrder: nss, byNS: map[Namespace]*Usage{}, byRule: map[string]map[Namespace]*Usage{}}
}

func (s *summer) add(ns Namespace, key []byte, size int, expiry time.Time) {
	s.sum.Total.add(size, expiry)
	u := s.byNS[ns]
	if u == nil {
		u = &Usage{}
		s.byNS[ns] = u
	}
	u.add(size, expiry)
	rule, ok := keyRule(key)
	if !ok {
		s.sum.Malformed.add(size, expiry)
		return
	}
	m := s.byRule[rule]
	if m == nil {
		m = map[Namespace]*Usage{}
		s.byRule[rule] = m
	}
	if m[ns] == nil {
		m[ns] = &Usage{}
	}
	m[ns].add(size, expiry)
}

func (s *summer) summary() Summary {
	sum := s.sum
	sum.Namespaces, sum.Rules = nil, nil
	for _, ns := range s.nsOrder {
		if u := s.byNS[ns]; u != nil {
			sum.Namespaces = append(sum.Namespaces, NamespaceUsage{ns, *u})
		}
	}
	for rule, m := range s.byRule {
		rs := RuleSummary{Rule: rule}
		for _, ns := range s.nsOrder {
			if u := m[ns]; u != nil {
				rs.Namespaces = append(rs.Namespaces, NamespaceUsage{ns, *u})
				rs.Total.merge(*u)
			}
		}
		sum.Rules = append(sum.Rules, rs)
	}
	sort.Slice(sum.Rules, func(i, j int) bool { return sum.Rules[i].Rule < sum.Rules[j].Rule })
	return sum
}

// keyRule returns the rule id of a key built with AppendPrefix.
func keyRule(key []byte) (string, bool) {
	if len(key) == 0 {
		return "", false
	}
	rule, _, err := nextPart(key[1:])
	if err != nil {
		return "", false
	}
	return string(rule), true
}

// Summarize returns the usage of the entries of s that sel selects,
// expired ones not yet swept included. It decodes keys only, not values,
// so it works on entries that do not decode.
func Summarize(ctx context.Context, s Store, sel Selection) (Summary, error) {
	nss := sel.namespaces()
	sm := newSummer(nss)
	for _, ns := range nss {
		err := s.Scan(ctx, sel.prefix(ns), time.Time{}, func(e Entry) error {
			sm.add(ns, e.Key, len(e.Key)+len(e.Value), e.Expiry)
			return nil
		})
		if err != nil {
			return Summary{}, fmt.Errorf("cannot summarize the state store: %w", err)
		}
	}
	return sm.summary(), nil
}

// Item is one entry of a store, decoded by its namespace, as Each passes
// it. Each reuses one Item for every entry, and Key, Value and Part alias
// the store's slices: all are valid only while the callback runs. The
// decoded Term and Group are copies.
type Item struct {
	NS     Namespace
	Rule   string // the rule id; for NSPositions, the input's name
	Key    []byte
	Value  []byte
	Expiry time.Time // zero if the entry never expires
	// Part is the key part after the rule's prefix: the term (NSTerms),
	// group key (NSGroups), alert id (NSAlerts), path (NSPositions), or
	// the run's end or "meta" as stored (NSWindows).
	Part []byte

	// Decoded values; only the fields of the entry's namespace are set.
	Term     []string    // NSTerms: the values of the rule's fields
	TermInfo TermInfo    // NSTerms
	Group    Group       // NSGroups
	RaisedAt time.Time   // NSAlerts
	Window   WindowKey   // NSWindows
	Position Position    // NSPositions
	Outbox   OutboxEntry // NSOutbox
}

// Each calls fn with every entry of s that sel selects, decoded, namespace
// by namespace in the selection's order and in key order within each, expired
// entries not yet swept included. Entries of namespaces kanon does not know
// are passed with Part set and nothing decoded. An entry of a known
// namespace that does not decode stops Each with an error wrapping
// ErrCorrupt or ErrInvalidKey that names its key; an error from fn stops it
// and is returned as is. fn must not call methods of s.
func Each(ctx context.Context, s Store, sel Selection, fn func(it *Item) error) error {
	var it Item
	for _, ns := range sel.namespaces() {
		var stop error
		err := s.Scan(ctx, sel.prefix(ns), time.Time{}, func(e Entry) error {
			if err := decodeItem(&it, ns, e); err != nil {
				return fmt.Errorf("cannot decode the %s entry %q: %w", ns, e.Key, err)
			}
			if err := fn(&it); err != nil {
				stop = err
				return err
			}
			return nil
		})
		if stop != nil && errors.Is(err, stop) {
			return stop
		}
		if err != nil {
			return fmt.Errorf("cannot read the state store: %w", err)
		}
	}
	return nil
}

func decodeItem(it *Item, ns Namespace, e Entry) error {
	*it = Item{NS: ns, Key: e.Key, Value: e.Value, Expiry: e.Expiry}
	pk, err := ParseKey(e.Key)
	if err != nil {
		return err
	}
	it.Rule = pk.Rule
	if len(pk.Parts) > 0 {
		it.Part = pk.Parts[0]
	}
	known := true
	switch ns {
	case NSTerms:
		if it.Term, err = SplitTerm(it.Part); err == nil {
			it.TermInfo, err = DecodeTermInfo(e.Value)
		}
	case NSGroups:
		it.Group, err = DecodeGroup(e.Value)
	case NSAlerts:
		it.RaisedAt, err = DecodeRaisedAt(e.Value)
	case NSWindows:
		it.Window, err = ParseWindowKey(e.Key)
	case NSPositions:
		it.Position, err = DecodePosition(e.Value)
	case NSOutbox:
		it.Outbox, err = DecodeOutbox(e.Key, e.Value)
	default:
		known = false
	}
	if err == nil && known && len(pk.Parts) != 1 && ns != NSWindows && ns != NSOutbox { // ParseWindowKey and DecodeOutbox check their parts
		err = fmt.Errorf("%w: %d key parts after the rule, want 1", ErrInvalidKey, len(pk.Parts))
	}
	return err
}

// resetBatch is the number of deletions per transaction of Reset.
const resetBatch = 1000

// Reset deletes the entries of s that sel selects: every entry of
// sel.Rule in the selection's namespaces, or of every rule if sel.Rule is
// empty, expired or not; other rules' entries are never touched, since a
// rule's prefix is a prefix of its keys only. It deletes in transactions
// of at most 1000 entries and returns a summary of what it deleted. Entries
// written while it runs may survive. If a transaction fails, the summary
// covers those committed before, and the error says how many were deleted.
func Reset(ctx context.Context, s Store, sel Selection) (Summary, error) {
	nss := sel.namespaces()
	done := newSummer(nss)
	type target struct {
		key    []byte
		expiry time.Time
	}
	var page []target
	errFull := errors.New("page full")
	for _, ns := range nss {
		prefix := sel.prefix(ns)
		for {
			// Each page scans the prefix again: the keys deleted are gone,
			// so it starts where the last page ended.
			page = page[:0]
			err := s.Scan(ctx, prefix, time.Time{}, func(e Entry) error {
				page = append(page, target{append([]byte(nil), e.Key...), e.Expiry})
				if len(page) == resetBatch {
					return errFull
				}
				return nil
			})
			if err != nil && !errors.Is(err, errFull) {
				return done.summary(), fmt.Errorf("cannot reset the state store (%d entries deleted): %w", done.sum.Total.Entries, err)
			}
			if len(page) == 0 {
				break
			}
			var batch *summer
			err = s.Update(ctx, time.Time{}, func(tx Tx) error {
				batch = newSummer(nss) // fn may run more than once
				for _, t := range page {
					v, err := tx.Get(t.key)
					if errors.Is(err, ErrNotFound) {
						continue
					}
					if err != nil {
						return err
					}
					batch.add(ns, t.key, len(t.key)+len(v), t.expiry)
					if err := tx.Delete(t.key); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return done.summary(), fmt.Errorf("cannot reset the state store (%d entries deleted): %w", done.sum.Total.Entries, err)
			}
			done.merge(batch)
			if batch.sum.Total.Entries == 0 {
				break // what the scan saw was deleted concurrently
			}
		}
	}
	return done.summary(), nil
}

// merge adds the counts of b to s.
func (s *summer) merge(b *summer) {
	s.sum.Total.merge(b.sum.Total)
	s.sum.Malformed.merge(b.sum.Malformed)
	for ns, u := range b.byNS {
		if s.byNS[ns] == nil {
			s.byNS[ns] = &Usage{}
		}
		s.byNS[ns].merge(*u)
	}
	for rule, m := range b.byRule {
		if s.byRule[rule] == nil {
			s.byRule[rule] = map[Namespace]*Usage{}
		}
		for ns, u := range m {
			if s.byRule[rule][ns] == nil {
				s.byRule[rule][ns] = &Usage{}
			}
			s.byRule[rule][ns].merge(*u)
		}
	}
}
