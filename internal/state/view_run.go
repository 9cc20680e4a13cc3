package state

import (
	"encoding/binary"
	"fmt"
	"time"
)

// The driver's record of its runs lives under NSRun (internal/run writes
// it, `kanon state show` prints it). Per rule, the key part "drops" holds
// what the rule's runs dropped (RunDrops), summed over every run of kanon
// on the store; under the empty rule, the key part "watermark" holds the
// newest event time the driver had seen when it last committed, so that a
// server restarted on the store goes on with its event-time clock. Neither
// expires. Values start with a version byte.
//
// Drivers that share a store as replicas each keep their own entries: the
// replica's name is a second key part (AppendRunSlot), since the counts are
// written blind (read, add, write, in one transaction of one writer) and
// would overwrite each other's.

const runVersion = 1

var (
	runDropsPart     = []byte("drops")
	runWatermarkPart = []byte("watermark")
)

// RunDrops counts what a rule's runs did not raise.
type RunDrops struct {
	// Late counts events that arrived after every run they belong to had
	// closed (engine.RuleStats.Late).
	Late int64
	// MaxSignals counts alerts not raised because their run had reached
	// the rule's max_signals (engine.RuleStats.Dropped).
	MaxSignals int64
	// Budget counts runs dropped because the rule's open runs outgrew its
	// memory budget: none of their alerts was raised.
	Budget int64
}

// Add returns the sums of d's and o's counts.
func (d RunDrops) Add(o RunDrops) RunDrops {
	return RunDrops{Late: d.Late + o.Late, MaxSignals: d.MaxSignals + o.MaxSignals, Budget: d.Budget + o.Budget}
}

// Zero reports whether nothing was dropped.
func (d RunDrops) Zero() bool { return d == RunDrops{} }

// AppendRunDropsKey appends to dst the key of the drop counts of rule.
func AppendRunDropsKey(dst []byte, rule string) []byte {
	return AppendPart(AppendPrefix(dst, NSRun, rule), runDropsPart)
}

// AppendRunDrops appends the encoding of d to dst: the version, then the
// three counts as uvarints.
func AppendRunDrops(dst []byte, d RunDrops) []byte {
	dst = append(dst, runVersion)
	for _, n := range []int64{d.Late, d.MaxSignals, d.Budget} {
		dst = binary.AppendUvarint(dst, uint64(max(n, 0)))
	}
	return dst
}

// DecodeRunDrops decodes a value written by AppendRunDrops. It returns an
// error wrapping ErrCorrupt if v is not one.
func DecodeRunDrops(v []byte) (RunDrops, error) {
	if len(v) == 0 || v[0] != runVersion {
		return RunDrops{}, fmt.Errorf("%w: drop counts of an unknown version", ErrCorrupt)
	}
	v = v[1:]
	var ns [3]int64
	for i := range ns {
		n, w := binary.Uvarint(v)
		if w <= 0 || w != uvarintLen(n) || n > 1<<62 {
			return RunDrops{}, fmt.Errorf("%w: malformed drop count", ErrCorrupt)
		}
		ns[i], v = int64(n), v[w:]
	}
	if len(v) != 0 {
		return RunDrops{}, fmt.Errorf("%w: %d bytes after the drop counts", ErrCorrupt, len(v))
	}
	return RunDrops{Late: ns[0], MaxSignals: ns[1], Budget: ns[2]}, nil
}

// AppendRunSlot appends to dst, a key made by AppendRunDropsKey or
// AppendWatermarkKey, the part that makes it the entry of replica (not
// empty).
func AppendRunSlot(dst []byte, replica string) []byte { return AppendPartString(dst, replica) }

// AppendWatermarkKey appends to dst the key of the driver's newest event
// time.
func AppendWatermarkKey(dst []byte) []byte {
	return AppendPart(AppendPrefix(dst, NSRun, ""), runWatermarkPart)
}

// AppendWatermark appends the encoding of t to dst: the version, then
// Unix nanoseconds, big-endian.
func AppendWatermark(dst []byte, t time.Time) []byte {
	dst = append(dst, runVersion)
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano()))
}

// DecodeWatermark decodes a value written by AppendWatermark. It returns
// an error wrapping ErrCorrupt if v is not one.
func DecodeWatermark(v []byte) (time.Time, error) {
	if len(v) != 9 || v[0] != runVersion {
		return time.Time{}, fmt.Errorf("%w: watermark entry of %d bytes", ErrCorrupt, len(v))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:]))).UTC(), nil
}

// decodeRunItem decodes an NSRun entry, whose key parts after the rule
// are parts, into it.
func decodeRunItem(it *Item, parts [][]byte, v []byte) error {
	switch len(parts) {
	case 1:
	case 2:
		if len(parts[1]) == 0 {
			return fmt.Errorf("%w: a run entry of an empty replica name", ErrInvalidKey)
		}
		it.Replica = string(parts[1])
	default:
		return fmt.Errorf("%w: %d key parts after the rule, want 1 or 2", ErrInvalidKey, len(parts))
	}
	var err error
	switch string(it.Part) {
	case string(runDropsPart):
		it.Drops, err = DecodeRunDrops(v)
	case string(runWatermarkPart):
		if it.Rule != "" {
			return fmt.Errorf("%w: a watermark entry of rule %q", ErrInvalidKey, it.Rule)
		}
		it.Watermark, err = DecodeWatermark(v)
	default:
		return fmt.Errorf("%w: run entry %q", ErrInvalidKey, it.Part)
	}
	return err
}
