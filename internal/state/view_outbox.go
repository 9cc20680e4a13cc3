package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The outbox (namespace NSOutbox) holds the alerts that replicas sharing a
// store decided to raise and have not yet seen delivered. A replica takes
// each decision in a transaction on the shared store (the alert id marked
// raised, the new term recorded, the group opened) and, in the same
// transaction, writes the alert here under its owner's name and the wall
// time of the decision; once its outputs have made the alert durable it
// deletes the entry. An entry whose owner died in between is found by
// another replica (or by the owner's next run) and delivered again, under
// the same id: a decision is taken once, and its alert is not lost.
//
// Keys: the prefix of the rule, then the alert id, then the delivery
// number (AppendPartUint): 0 for an alert, a group's count for the update
// of a group, which is delivered under the id of its opening alert.
// Values: a version byte, the owner (a key part), the wall time of the
// decision (8 bytes, Unix nanoseconds) and the alert as its sink encodes it.

const outboxVersion = 1

// OutboxEntry is one alert waiting in the outbox.
type OutboxEntry struct {
	Rule  string
	ID    string // the alert's id
	Seq   uint64 // 0 for an alert, the count of a group's update
	Owner string // the replica that decided to raise it
	// ClaimedAt is the wall time at which Owner decided (or took the
	// entry over).
	ClaimedAt time.Time
	// Alert is the alert, encoded by the engine (opaque here).
	Alert []byte
	// Expiry is the entry's expiry, as ScanOutbox reads it.
	Expiry time.Time
}

// AppendOutboxKey appends the key of the outbox entry of alert id of rule
// with delivery number seq to dst.
func AppendOutboxKey(dst []byte, rule, id string, seq uint64) []byte {
	dst = AppendPrefix(dst, NSOutbox, rule)
	dst = AppendPartString(dst, id)
	return AppendPartUint(dst, seq)
}

// AppendOutboxValue appends the stored form of e's owner, time and alert to
// dst.
func AppendOutboxValue(dst []byte, e OutboxEntry) []byte {
	dst = append(dst, outboxVersion)
	dst = AppendPartString(dst, e.Owner)
	dst = binary.BigEndian.AppendUint64(dst, uint64(UnixNano(e.ClaimedAt)))
	return append(dst, e.Alert...)
}

// DecodeOutbox decodes an outbox entry from its key and value. The entry's
// strings and alert are copies. It returns an error wrapping ErrCorrupt or
// ErrInvalidKey if they are not an outbox entry.
func DecodeOutbox(key, value []byte) (OutboxEntry, error) {
	var e OutboxEntry
	pk, err := ParseKey(key)
	if err != nil {
		return e, err
	}
	if pk.NS != NSOutbox || len(pk.Parts) != 2 || len(pk.Parts[1]) != 8 {
		return e, fmt.Errorf("%w: outbox key %q", ErrInvalidKey, key)
	}
	e.Rule, e.ID, e.Seq = pk.Rule, string(pk.Parts[0]), binary.BigEndian.Uint64(pk.Parts[1])
	if len(value) == 0 || value[0] != outboxVersion {
		return e, fmt.Errorf("%w: outbox entry of alert %s: unknown version", ErrCorrupt, e.ID)
	}
	owner, rest, err := nextPart(value[1:])
	if err != nil || len(rest) < 8 {
		return e, fmt.Errorf("%w: outbox entry of alert %s: truncated", ErrCorrupt, e.ID)
	}
	e.Owner = string(owner)
	e.ClaimedAt = FromUnixNano(int64(binary.BigEndian.Uint64(rest)))
	e.Alert = append([]byte(nil), rest[8:]...)
	return e, nil
}

// ScanOutbox calls fn with the key and entry of every outbox entry of s not
// yet swept, in key order. The key is valid only until fn returns. fn must
// not call methods of s. An entry that does not decode stops the scan with
// an error naming its key.
func ScanOutbox(ctx context.Context, s Store, fn func(key []byte, e OutboxEntry) error) error {
	return s.Scan(ctx, []byte{byte(NSOutbox)}, time.Time{}, func(en Entry) error {
		e, err := DecodeOutbox(en.Key, en.Value)
		if err != nil {
			return fmt.Errorf("cannot decode the outbox entry %q: %w", en.Key, err)
		}
		e.Expiry = en.Expiry
		return fn(en.Key, e)
	})
}

// TakeOutboxTx makes owner the owner of the outbox entry under key, as of
// claimedAt, if it is still there and still held by prev.Owner since
// prev.ClaimedAt (nobody took it over since it was read); the entry keeps
// prev.Expiry. It reports whether it took the entry.
func TakeOutboxTx(tx Tx, key []byte, prev OutboxEntry, owner string, claimedAt time.Time) (bool, error) {
	v, err := tx.Get(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil // delivered meanwhile
	}
	if err != nil {
		return false, err
	}
	cur, err := DecodeOutbox(key, v)
	if err != nil {
		return false, err
	}
	if cur.Owner != prev.Owner || !cur.ClaimedAt.Equal(prev.ClaimedAt) {
		return false, nil
	}
	cur.Owner, cur.ClaimedAt = owner, claimedAt
	return true, tx.Put(key, AppendOutboxValue(nil, cur), prev.Expiry)
}
