package state

import (
	"context"
	"fmt"
	"time"
)

// Size limits every implementation enforces. They are well inside the limits
// of bbolt (32 KiB keys) and Redis (512 MiB strings).
const (
	// MaxKeySize is the largest key, in bytes.
	MaxKeySize = 4096
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 16 << 20
)

// Store holds kanon's state. See the package documentation for the
// guarantees every implementation gives: expiry in event time, atomic and
// serialisable updates, durability on return, safety for concurrent use.
//
// In every method, now is the time at which entries are judged: an entry
// whose expiry is not the zero time and not after now is invisible. The zero
// now makes every entry not yet swept visible.
type Store interface {
	// Get returns a copy of the value stored under key, owned by the
	// caller. It returns a nil error and a non-nil (possibly empty) slice
	// if the entry is live at now, and ErrNotFound if it is missing or
	// expired.
	Get(ctx context.Context, key []byte, now time.Time) ([]byte, error)

	// Update runs fn with a transaction judged at now and commits its
	// writes atomically if fn returns nil. If fn returns an error, nothing
	// is written and Update returns that error unchanged. fn may be called
	// more than once by optimistic implementations and must have no effect
	// outside tx. When Update returns nil the writes are durable.
	Update(ctx context.Context, now time.Time, fn func(tx Tx) error) error

	// Scan calls fn for every entry whose key starts with prefix and that is
	// live at now, in ascending bytewise order of keys. An empty prefix
	// scans everything. If fn returns an error, Scan stops and returns it.
	// The entry's slices are valid only until fn returns. fn must not call
	// methods of the same Store.
	Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e Entry) error) error

	// DeleteExpired removes every entry whose expiry is not the zero time
	// and not after now, and returns how many it removed. It may commit in
	// several batches; if it fails, the count covers the batches committed.
	DeleteExpired(ctx context.Context, now time.Time) (int, error)

	// Stats returns the number and size of the entries stored, including
	// entries expired but not yet swept.
	Stats(ctx context.Context) (Stats, error)

	// Close releases the store's resources, waiting for calls in progress.
	// Every later call returns an error wrapping ErrClosed. Close is
	// idempotent: calling it again returns nil.
	Close() error
}

// Tx is a transaction passed to the function given to Store.Update. It is
// valid only while that function runs, in its goroutine; afterwards every
// method returns ErrTxDone.
type Tx interface {
	// Now returns the time at which the transaction judges expiry.
	Now() time.Time

	// Get returns the value of key as of the start of the transaction plus
	// its own writes, or ErrNotFound if it has none live at Now. The slice
	// is valid until the transaction ends and must not be modified.
	Get(key []byte) ([]byte, error)

	// Put stores value under key with the given expiry (the zero time for
	// none), replacing any previous entry. It copies key and value. A Put
	// whose expiry is not after Now stores an entry that is already
	// invisible and will be swept.
	Put(key, value []byte, expiry time.Time) error

	// Delete removes key. Deleting a missing key is not an error.
	Delete(key []byte) error
}

// Prefetcher is implemented by transactions that can read several keys in
// one round trip (state/redis). Prefetch reads keys as Tx.Get would, so
// that the Gets of those keys that follow cost nothing; it changes no
// result. Callers that know the keys a transaction will read call it
// first; on other stores there is nothing to gain.
type Prefetcher interface {
	Prefetch(keys [][]byte) error
}

// Prefetch calls tx.Prefetch if tx is a Prefetcher.
func Prefetch(tx Tx, keys [][]byte) error {
	if p, ok := tx.(Prefetcher); ok && len(keys) > 0 {
		return p.Prefetch(keys)
	}
	return nil
}

// Entry is one stored entry as seen by Scan.
type Entry struct {
	Key    []byte
	Value  []byte
	Expiry time.Time // the zero time if the entry never expires
}

// Stats describes a store's size, for metrics and `kanon state show`.
type Stats struct {
	// Entries is the number of entries, including expired ones not yet
	// swept.
	Entries int64
	// Bytes is the sum of the lengths of their keys and values.
	Bytes int64
	// DiskBytes is the space used on disk by a durable store (bbolt's
	// high-water mark of pages), or 0 for stores without a file.
	DiskBytes int64
}

// Put stores value under key in s in a transaction of its own.
func Put(ctx context.Context, s Store, key, value []byte, expiry time.Time) error {
	return s.Update(ctx, time.Time{}, func(tx Tx) error {
		return tx.Put(key, value, expiry)
	})
}

// Delete removes key from s in a transaction of its own.
func Delete(ctx context.Context, s Store, key []byte) error {
	return s.Update(ctx, time.Time{}, func(tx Tx) error {
		return tx.Delete(key)
	})
}

// ValidateKey reports an error wrapping ErrInvalidKey if key is empty or
// longer than MaxKeySize. Implementations call it on every key they are given.
func ValidateKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("%w: key of %d bytes exceeds the limit of %d bytes", ErrInvalidKey, len(key), MaxKeySize)
	}
	return nil
}

// ValidateValue reports an error wrapping ErrValueTooLarge if value is longer
// than MaxValueSize. Implementations call it on every value they are given.
func ValidateValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes exceeds the limit of %d bytes", ErrValueTooLarge, len(value), MaxValueSize)
	}
	return nil
}
