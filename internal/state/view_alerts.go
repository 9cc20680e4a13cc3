package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// AlertIDs is the set of alerts one rule has raised, kept in a Store under
// NSAlerts, so that scanning the same events again never raises an alert
// twice. Each id is remembered for Retention after the event time of the
// alert (zero Retention: forever); the engine picks a retention longer than
// the span it may re-scan. AlertIDs is safe for concurrent use.
type AlertIDs struct {
	s         Store
	rule      string
	retention time.Duration
	prefix    []byte
}

// NewAlertIDs returns the raised-alert set of rule, kept in s, remembering each
// id for retention (0: forever).
func NewAlertIDs(s Store, rule string, retention time.Duration) (*AlertIDs, error) {
	if rule == "" {
		return nil, errors.New("invalid raised-alert set: rule id is empty")
	}
	if retention < 0 {
		return nil, fmt.Errorf("invalid raised-alert set of rule %q: retention %s is negative", rule, retention)
	}
	return &AlertIDs{s: s, rule: rule, retention: retention, prefix: AppendPrefix(nil, NSAlerts, rule)}, nil
}

// AppendKey appends the store key of alert id to dst.
func (a *AlertIDs) AppendKey(dst, id []byte) []byte {
	return AppendPart(append(dst, a.prefix...), id)
}

// Raised reports whether the alert id was marked raised and is remembered at
// now, and if so the event time it was marked at.
func (a *AlertIDs) Raised(ctx context.Context, id []byte, now time.Time) (time.Time, bool, error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = a.AppendKey((*bp)[:0], id)
	v, err := a.s.Get(ctx, *bp, now)
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("cannot look up alert id of rule %q: %w", a.rule, err)
	}
	at, err := decodeRaisedAt(v)
	return at, err == nil, err
}

// Mark atomically marks the alert id raised at event time at, and reports
// whether this call marked it (true) or it was already marked (false). Of
// several concurrent callers exactly one gets true. When Mark returns true
// the mark is durable, so the caller may then emit the alert; if emitting
// fails the caller may Unmark.
func (a *AlertIDs) Mark(ctx context.Context, id []byte, at time.Time) (bool, error) {
	var first bool
	err := a.s.Update(ctx, at, func(tx Tx) (err error) {
		first, err = a.MarkTx(tx, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("cannot mark alert raised for rule %q: %w", a.rule, err)
	}
	return first, nil
}

// MarkTx is Mark inside a transaction, at tx.Now().
func (a *AlertIDs) MarkTx(tx Tx, id []byte) (bool, error) { return a.MarkAtTx(tx, id, tx.Now()) }

// MarkAtTx is MarkTx at event time at, which may be later than tx.Now():
// one transaction can then mark the alerts of events of different times.
// An entry visible to tx but forgotten at at (its retention over) counts
// as not marked. tx.Now() must not be after at.
func (a *AlertIDs) MarkAtTx(tx Tx, id []byte, at time.Time) (bool, error) {
	if at.IsZero() {
		return false, fmt.Errorf("cannot mark alert raised for rule %q: event time is zero", a.rule)
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = a.AppendKey((*bp)[:0], id)
	switch _, raised, err := a.raisedTx(tx, *bp, at); {
	case err != nil:
		return false, err
	case raised:
		return false, nil
	}
	var expiry time.Time
	if a.retention > 0 {
		expiry = at.Add(a.retention)
	}
	var vb [8]byte
	binary.BigEndian.PutUint64(vb[:], uint64(UnixNano(at)))
	return true, tx.Put(*bp, vb[:], expiry)
}

// MarkUnlessLiveTx marks the alert id raised at tx.Now() unless tx sees a
// live mark of it, and reports whether it marked it. It is Raised at
// tx.Now() followed, if that said no, by MarkTx, in one look-up: a live
// mark counts as raised, as Raised reports it, whatever the retention.
func (a *AlertIDs) MarkUnlessLiveTx(tx Tx, id []byte) (bool, error) {
	at := tx.Now()
	if at.IsZero() {
		return false, fmt.Errorf("cannot mark alert raised for rule %q: event time is zero", a.rule)
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = a.AppendKey((*bp)[:0], id)
	switch v, err := tx.Get(*bp); {
	case err == nil:
		if _, err := decodeRaisedAt(v); err != nil {
			return false, err
		}
		return false, nil
	case !errors.Is(err, ErrNotFound):
		return false, err
	}
	var expiry time.Time
	if a.retention > 0 {
		expiry = at.Add(a.retention)
	}
	// The value after the key in the same buffer: Put copies both.
	n := len(*bp)
	*bp = binary.BigEndian.AppendUint64(*bp, uint64(UnixNano(at)))
	return true, tx.Put((*bp)[:n], (*bp)[n:], expiry)
}

// RaisedTx is Raised inside a transaction, judged at event time at (not
// before tx.Now()).
func (a *AlertIDs) RaisedTx(tx Tx, id []byte, at time.Time) (time.Time, bool, error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = a.AppendKey((*bp)[:0], id)
	return a.raisedTx(tx, *bp, at)
}

// raisedTx reads the mark under key and judges it at at from its value:
// a mark made at m is remembered until m plus the retention, which is the
// expiry it was stored with.
func (a *AlertIDs) raisedTx(tx Tx, key []byte, at time.Time) (time.Time, bool, error) {
	v, err := tx.Get(key)
	if errors.Is(err, ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	m, err := decodeRaisedAt(v)
	if err != nil {
		return time.Time{}, false, err
	}
	if a.retention > 0 && !m.Add(a.retention).After(at) {
		return time.Time{}, false, nil
	}
	return m, true, nil
}

// Unmark forgets that the alert id was raised.
func (a *AlertIDs) Unmark(ctx context.Context, id []byte) error {
	if err := Delete(ctx, a.s, a.AppendKey(nil, id)); err != nil {
		return fmt.Errorf("cannot unmark alert of rule %q: %w", a.rule, err)
	}
	return nil
}

func decodeRaisedAt(v []byte) (time.Time, error) {
	if len(v) != 8 {
		return time.Time{}, fmt.Errorf("%w: raised-alert entry of %d bytes, want 8", ErrCorrupt, len(v))
	}
	return FromUnixNano(int64(binary.BigEndian.Uint64(v))), nil
}
