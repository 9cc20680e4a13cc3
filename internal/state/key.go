package state

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Namespace is the first byte of every key built by this package; it
// separates the kinds of state so that each can be scanned and exported on
// its own.
type Namespace byte

// The namespaces kanon uses.
const (
	// NSTerms holds new-terms history: rule, term → first and last seen.
	NSTerms Namespace = 't'
	// NSGroups holds dedup and alert groups: rule, group key → count,
	// first and last event time, sample events.
	NSGroups Namespace = 'g'
	// NSWindows holds ES|QL windows in progress: rule, window → serialised
	// aggregation state.
	NSWindows Namespace = 'w'
	// NSPositions holds input positions: input, path, inode → offset.
	NSPositions Namespace = 'p'
	// NSAlerts holds the ids of alerts already raised: rule, alert id.
	NSAlerts Namespace = 'a'
	// NSOutbox holds alerts that replicas decided to raise and have not
	// seen delivered yet: rule, alert id, delivery number → owner, time,
	// alert (view_outbox.go).
	NSOutbox Namespace = 'o'
)

// String returns the namespace's name, as `kanon state show` prints it.
func (ns Namespace) String() string {
	switch ns {
	case NSTerms:
		return "terms"
	case NSGroups:
		return "groups"
	case NSWindows:
		return "windows"
	case NSPositions:
		return "positions"
	case NSAlerts:
		return "alerts"
	case NSOutbox:
		return "outbox"
	}
	return "namespace(" + strconv.Itoa(int(ns)) + ")"
}

// ParseNamespace returns the known namespace (KnownNamespaces) whose name
// (String) is name.
func ParseNamespace(name string) (Namespace, error) {
	for _, ns := range KnownNamespaces() {
		if ns.String() == name {
			return ns, nil
		}
	}
	return 0, fmt.Errorf("unknown kind of state %q (terms, groups, alerts, windows, positions or outbox)", name)
}

// AppendPrefix appends to dst the key prefix of one rule in namespace ns:
// the namespace byte, then the rule id preceded by its length as a uvarint.
// Because of the length, the prefix of rule "a" is not a prefix of the keys
// of rule "ab". For state that belongs to no rule (input positions), pass
// the input's name or "" as rule.
func AppendPrefix(dst []byte, ns Namespace, rule string) []byte {
	dst = append(dst, byte(ns))
	return AppendPartString(dst, rule)
}

// AppendPart appends one key part to dst: its length as a uvarint, then its
// bytes. A key is a prefix followed by any number of parts; the encoding is
// deterministic and decodes unambiguously with ParseKey.
func AppendPart(dst, part []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(part)))
	return append(dst, part...)
}

// AppendPartString is AppendPart for a string part.
func AppendPartString(dst []byte, part string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(part)))
	return append(dst, part...)
}

// AppendPartUint appends a number as a key part: 8 bytes, big-endian, so
// that keys of numbered parts (window starts, inodes) sort numerically.
func AppendPartUint(dst []byte, v uint64) []byte {
	dst = append(dst, 8)
	return binary.BigEndian.AppendUint64(dst, v)
}

// Key returns a new key made of the prefix of rule in ns and the given parts.
func Key(ns Namespace, rule string, parts ...[]byte) []byte {
	n := 1 + binary.MaxVarintLen64 + len(rule)
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	k := AppendPrefix(make([]byte, 0, n), ns, rule)
	for _, p := range parts {
		k = AppendPart(k, p)
	}
	return k
}

// ParsedKey is a key decoded by ParseKey.
type ParsedKey struct {
	NS    Namespace
	Rule  string
	Parts [][]byte // aliases the key passed to ParseKey
}

// ParseKey decodes a key built with AppendPrefix and AppendPart. It returns an
// error wrapping ErrInvalidKey if the key is not such an encoding, including
// lengths that are not in their shortest uvarint form, so that every key has
// exactly one decoding and every decoding exactly one key.
func ParseKey(key []byte) (ParsedKey, error) {
	var pk ParsedKey
	if len(key) == 0 {
		return pk, fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	pk.NS = Namespace(key[0])
	rest := key[1:]
	rule, rest, err := nextPart(rest)
	if err != nil {
		return pk, fmt.Errorf("cannot decode rule id of key %q: %w", key, err)
	}
	pk.Rule = string(rule)
	for len(rest) > 0 {
		var p []byte
		if p, rest, err = nextPart(rest); err != nil {
			return pk, fmt.Errorf("cannot decode part %d of key %q: %w", len(pk.Parts)+1, key, err)
		}
		pk.Parts = append(pk.Parts, p)
	}
	return pk, nil
}

func nextPart(b []byte) (part, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, nil, fmt.Errorf("%w: malformed length", ErrInvalidKey)
	}
	if w != uvarintLen(n) {
		return nil, nil, fmt.Errorf("%w: length %d is not in shortest form", ErrInvalidKey, n)
	}
	b = b[w:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: length %d exceeds the %d bytes left", ErrInvalidKey, n, len(b))
	}
	return b[:n], b[n:], nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// PrefixEnd returns the smallest key that is greater than every key starting
// with prefix, or nil if there is none (prefix is empty or all 0xff). Range
// scans use it as their exclusive upper bound.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
