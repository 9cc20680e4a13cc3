package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The range of times UnixNano represents exactly.
var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

// UnixNano encodes t as the int64 every implementation stores: 0 for the zero
// time (no expiry, or no filtering), otherwise t's Unix nanoseconds, clamped
// to the representable range, with the Unix epoch itself moved to 1ns so that
// it is not mistaken for the zero time.
func UnixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return math.MinInt64 + 1
	case t.After(maxTime):
		return math.MaxInt64
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return 1
}

// FromUnixNano decodes a time encoded by UnixNano; 0 gives the zero time.
func FromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// Live reports whether an entry with the encoded expiry is visible at the
// encoded time now: it never expires, or now is 0, or expiry is after now.
func Live(expiry, now int64) bool {
	return expiry == 0 || now == 0 || expiry > now
}

// EntryHeaderSize is the size of the header AppendEntry puts before a value.
const EntryHeaderSize = 8

// AppendEntry appends the stored form of a value to dst: the expiry as 8
// bytes, big-endian (see UnixNano), then the value. Implementations that keep
// the expiry beside the value (bolt, redis) use this layout.
func AppendEntry(dst []byte, expiry int64, value []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(expiry))
	return append(dst, value...)
}

// DecodeEntry splits a stored entry into its expiry and value. The value
// aliases b. It returns an error wrapping ErrCorrupt if b is too short.
func DecodeEntry(b []byte) (expiry int64, value []byte, err error) {
	if len(b) < EntryHeaderSize {
		return 0, nil, fmt.Errorf("%w: stored entry of %d bytes is shorter than its %d-byte header", ErrCorrupt, len(b), EntryHeaderSize)
	}
	return int64(binary.BigEndian.Uint64(b)), b[EntryHeaderSize:], nil
}

// AppendExpiryIndexKey appends to dst a key of an expiry index: the expiry as
// 8 bytes that sort in time order (the sign bit flipped, big-endian), then
// key. Iterating such an index in byte order visits entries in expiry order.
func AppendExpiryIndexKey(dst []byte, expiry int64, key []byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(expiry)^(1<<63))
	return append(dst, key...)
}

// DecodeExpiryIndexKey splits a key made by AppendExpiryIndexKey. The key
// aliases b. It returns an error wrapping ErrCorrupt if b is too short.
func DecodeExpiryIndexKey(b []byte) (expiry int64, key []byte, err error) {
	if len(b) < 8 {
		return 0, nil, fmt.Errorf("%w: expiry index key of %d bytes is shorter than 8 bytes", ErrCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)), b[8:], nil
}
