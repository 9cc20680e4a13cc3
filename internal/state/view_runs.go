package state

import (
	"encoding/binary"
	"fmt"
)

// The ES|QL windows of the engine live under NSWindows. Each rule has, after
// its prefix, one key part per entry: a run's end (AppendPartUint of the end
// in Unix nanoseconds with its sign bit flipped, so that keys sort in time
// order), or "meta" for the rule's watermark and per-run alert counts. Every
// value starts with a version byte and the 8-byte fingerprint of the rule's
// query and schedule, so that runs of a changed rule are recognised.
//
// Engines that share a store as replicas (engine.Options.Replica) each keep
// their own slot: a second key part, the replica's name, after the run's
// end or "meta". A run's key followed by an empty part is the run's closed
// mark, written by the replica that closed the run for all of them. A
// rule's runs, slots and marks of one end therefore share the prefix
// AppendWindowRunKey, and sort together.
//
// The engine owns the meaning of the fingerprint and of a run's state; this
// file owns their layout, which is part of the on-disk format. (It is
// named view_runs.go because a _windows.go suffix would build it on Windows
// only.)

const (
	windowsVersion = 1
	windowHeader   = 1 + 8
	windowRunState = 'S' // an open run: the exported aggregation state follows
	windowDropped  = 'D' // a run dropped for its memory budget
	windowClosed   = 'C' // a run closed by one of the replicas sharing it
)

var windowMetaPart = []byte("meta")

// WindowKey is a decoded key of the NSWindows namespace.
type WindowKey struct {
	Rule string
	// Meta is true for the rule's watermark and run counts (WindowMeta),
	// false for a run (WindowRun).
	Meta bool
	// End is the run's end in Unix nanoseconds; 0 when Meta is true.
	End int64
	// Replica is the name of the replica whose slot the entry is, or ""
	// for the entry of an engine without one.
	Replica string
	// Closed is true for a run's closed mark (AppendWindowClosedKey).
	Closed bool
}

// AppendWindowPrefix appends to dst the prefix of every window key of
// rule, for Scan.
func AppendWindowPrefix(dst []byte, rule string) []byte {
	return AppendPrefix(dst, NSWindows, rule)
}

// AppendWindowRunKey appends to dst the key of the run of rule that ends at
// end (Unix nanoseconds).
func AppendWindowRunKey(dst []byte, rule string, end int64) []byte {
	return AppendPartUint(AppendWindowPrefix(dst, rule), uint64(end)^(1<<63))
}

// AppendWindowMetaKey appends to dst the key of the watermark and run
// counts of rule.
func AppendWindowMetaKey(dst []byte, rule string) []byte {
	return AppendPart(AppendWindowPrefix(dst, rule), windowMetaPart)
}

// AppendWindowSlot appends to dst, a key made by AppendWindowRunKey or
// AppendWindowMetaKey, the part that makes it the slot of replica (not
// empty).
func AppendWindowSlot(dst []byte, replica string) []byte {
	return AppendPartString(dst, replica)
}

// AppendWindowClosedKey appends to dst the key of the closed mark of the
// run of rule that ends at end.
func AppendWindowClosedKey(dst []byte, rule string, end int64) []byte {
	return AppendPart(AppendWindowRunKey(dst, rule, end), nil)
}

// ParseWindowKey decodes a key built by AppendWindowRunKey or
// AppendWindowMetaKey, with or without AppendWindowSlot, or by
// AppendWindowClosedKey. It returns an error wrapping ErrInvalidKey for any
// other key.
func ParseWindowKey(key []byte) (WindowKey, error) {
	pk, err := ParseKey(key)
	if err != nil {
		return WindowKey{}, err
	}
	var wk WindowKey
	switch {
	case pk.NS != NSWindows || len(pk.Parts) < 1 || len(pk.Parts) > 2:
		return WindowKey{}, fmt.Errorf("%w: %q is not a key of an ES|QL window", ErrInvalidKey, key)
	case string(pk.Parts[0]) == string(windowMetaPart):
		wk = WindowKey{Rule: pk.Rule, Meta: true}
	case len(pk.Parts[0]) == 8:
		wk = WindowKey{Rule: pk.Rule, End: int64(binary.BigEndian.Uint64(pk.Parts[0]) ^ (1 << 63))}
	default:
		return WindowKey{}, fmt.Errorf("%w: %q is not a key of an ES|QL window", ErrInvalidKey, key)
	}
	if len(pk.Parts) == 2 {
		wk.Replica = string(pk.Parts[1])
		wk.Closed = wk.Replica == ""
		if wk.Closed && wk.Meta {
			return WindowKey{}, fmt.Errorf("%w: %q is not a key of an ES|QL window", ErrInvalidKey, key)
		}
	}
	return wk, nil
}

// WindowRun is the stored form of one open run of an ES|QL rule.
type WindowRun struct {
	// Fingerprint identifies the rule's query and schedule the run was
	// made with.
	Fingerprint uint64
	// Dropped is true for a run dropped for its memory budget, which has
	// no State.
	Dropped bool
	// Closed is true for a run's closed mark, which has no State.
	Closed bool
	// State is the run's exported aggregation state, opaque here. When
	// decoded it aliases the value.
	State []byte
}

// AppendWindowRun appends the stored form of r to dst: the header, then
// 'C' for a closed mark, 'D' for a dropped run, or 'S' and the state.
func AppendWindowRun(dst []byte, r WindowRun) []byte {
	dst = appendWindowHeader(dst, r.Fingerprint)
	switch {
	case r.Closed:
		return append(dst, windowClosed)
	case r.Dropped:
		return append(dst, windowDropped)
	}
	dst = append(dst, windowRunState)
	return append(dst, r.State...)
}

// DecodeWindowRun decodes a value written by AppendWindowRun. It returns an
// error wrapping ErrCorrupt if v is not a run.
func DecodeWindowRun(v []byte) (WindowRun, error) {
	fp, b, err := decodeWindowHeader(v)
	if err != nil {
		return WindowRun{}, err
	}
	r := WindowRun{Fingerprint: fp}
	if len(b) == 0 {
		return WindowRun{}, fmt.Errorf("%w: empty run", ErrCorrupt)
	}
	switch b[0] {
	case windowDropped, windowClosed:
		if len(b) != 1 {
			return WindowRun{}, fmt.Errorf("%w: trailing bytes after a dropped or closed run", ErrCorrupt)
		}
		r.Dropped, r.Closed = b[0] == windowDropped, b[0] == windowClosed
	case windowRunState:
		r.State = b[1:]
	default:
		return WindowRun{}, fmt.Errorf("%w: unknown run kind %q", ErrCorrupt, b[0])
	}
	return r, nil
}

// WindowMeta is the stored watermark and per-run alert counts of an ES|QL
// rule.
type WindowMeta struct {
	// Fingerprint identifies the rule's query and schedule.
	Fingerprint uint64
	// Closed is the closed-run watermark: runs ending at or before it
	// (Unix nanoseconds) are closed.
	Closed int64
	// Counts are the alerts raised per run (max_signals), in the order
	// written.
	Counts []WindowCount
}

// WindowCount is the number of alerts raised in the run ending at End (Unix
// nanoseconds).
type WindowCount struct {
	End   int64
	Count uint64
}

// AppendWindowMeta appends the stored form of m to dst: the header, the
// watermark (8 bytes), the number of counts (uvarint), then each run's end
// (8 bytes) and count (uvarint).
func AppendWindowMeta(dst []byte, m WindowMeta) []byte {
	dst = appendWindowHeader(dst, m.Fingerprint)
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.Closed))
	dst = binary.AppendUvarint(dst, uint64(len(m.Counts)))
	for _, c := range m.Counts {
		dst = binary.BigEndian.AppendUint64(dst, uint64(c.End))
		dst = binary.AppendUvarint(dst, c.Count)
	}
	return dst
}

// DecodeWindowMeta decodes a value written by AppendWindowMeta. It returns
// an error wrapping ErrCorrupt if v is not a watermark entry, including
// numbers not in their shortest uvarint form, which AppendWindowMeta never
// writes.
func DecodeWindowMeta(v []byte) (WindowMeta, error) {
	fp, b, err := decodeWindowHeader(v)
	if err != nil {
		return WindowMeta{}, err
	}
	m := WindowMeta{Fingerprint: fp}
	if len(b) < 8 {
		return WindowMeta{}, fmt.Errorf("%w: truncated watermark", ErrCorrupt)
	}
	m.Closed = int64(binary.BigEndian.Uint64(b))
	b = b[8:]
	n, w := binary.Uvarint(b)
	if w <= 0 || w != uvarintLen(n) || n > uint64(len(b)) {
		return WindowMeta{}, fmt.Errorf("%w: malformed run counts", ErrCorrupt)
	}
	b = b[w:]
	m.Counts = make([]WindowCount, 0, min(n, uint64(len(b)/9))) // a count takes 9 bytes or more
	for range n {
		if len(b) < 8 {
			return WindowMeta{}, fmt.Errorf("%w: truncated run counts", ErrCorrupt)
		}
		end := int64(binary.BigEndian.Uint64(b))
		c, w := binary.Uvarint(b[8:])
		if w <= 0 || w != uvarintLen(c) {
			return WindowMeta{}, fmt.Errorf("%w: malformed run count", ErrCorrupt)
		}
		m.Counts = append(m.Counts, WindowCount{End: end, Count: c})
		b = b[8+w:]
	}
	if len(b) != 0 {
		return WindowMeta{}, fmt.Errorf("%w: trailing bytes after the run counts", ErrCorrupt)
	}
	return m, nil
}

func appendWindowHeader(dst []byte, fp uint64) []byte {
	dst = append(dst, windowsVersion)
	return binary.BigEndian.AppendUint64(dst, fp)
}

// decodeWindowHeader checks a window value's version and returns its
// fingerprint and the rest.
func decodeWindowHeader(v []byte) (uint64, []byte, error) {
	if len(v) < windowHeader || v[0] != windowsVersion {
		return 0, nil, fmt.Errorf("%w: unknown format of an ES|QL window entry", ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v[1:windowHeader]), v[windowHeader:], nil
}
