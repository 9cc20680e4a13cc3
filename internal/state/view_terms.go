package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// keyBufPool holds key buffers for the typed views. Stores never retain keys,
// so a buffer goes back to the pool as soon as the call using it returns.
var keyBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// TermsConfig configures a Terms view.
type TermsConfig struct {
	// Rule is the id of the new_terms rule. Required.
	Rule string
	// Window is the history window: a term not seen for Window is new
	// again. Required, positive.
	Window time.Duration
	// Slack bounds how often a known term is rewritten: an observation
	// less than Slack after the stored last-seen time does not move it, so
	// a term seen on every event costs a read, not a write. The term may
	// therefore expire up to Slack early. Zero means exact (every
	// observation at a later time writes). Must be less than Window.
	Slack time.Duration
}

// Validate reports whether the configuration is usable.
func (c TermsConfig) Validate() error {
	switch {
	case c.Rule == "":
		return errors.New("invalid new-terms history: rule id is empty")
	case c.Window <= 0:
		return fmt.Errorf("invalid new-terms history of rule %q: window %s is not positive", c.Rule, c.Window)
	case c.Slack < 0 || c.Slack >= c.Window:
		return fmt.Errorf("invalid new-terms history of rule %q: slack %s is not in [0, window %s)", c.Rule, c.Slack, c.Window)
	}
	return nil
}

// TermInfo is what the history knows about one term.
type TermInfo struct {
	FirstSeen time.Time // earliest event time the term was observed at
	LastSeen  time.Time // latest event time the term was recorded at
}

const termValueSize = 16

func decodeTermInfo(v []byte) (TermInfo, error) {
	if len(v) != termValueSize {
		return TermInfo{}, fmt.Errorf("%w: new-terms entry of %d bytes, want %d", ErrCorrupt, len(v), termValueSize)
	}
	return TermInfo{
		FirstSeen: FromUnixNano(int64(binary.BigEndian.Uint64(v))),
		LastSeen:  FromUnixNano(int64(binary.BigEndian.Uint64(v[8:]))),
	}, nil
}

func appendTermInfo(dst []byte, ti TermInfo) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(UnixNano(ti.FirstSeen)))
	return binary.BigEndian.AppendUint64(dst, uint64(UnixNano(ti.LastSeen)))
}

// AppendTermField appends to dst, the term being built, the value of the
// next of a new_terms rule's fields. A term is the values of the rule's
// fields in order, each preceded by its length as a uvarint; Terms keeps it
// as one key part, and alert ids are derived from its bytes, so the layout
// is part of the on-disk format. The engine builds each event's terms
// with it in a reused buffer.
func AppendTermField(dst []byte, value string) []byte {
	return AppendPartString(dst, value)
}

// SplitTerm decodes a term built with AppendTermField into its field
// values. It returns an error wrapping ErrCorrupt if term is not such an
// encoding.
func SplitTerm(term []byte) ([]string, error) {
	var vals []string
	for rest := term; len(rest) > 0; {
		v, r, err := nextPart(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: new-terms term %q: %w", ErrCorrupt, term, err)
		}
		vals, rest = append(vals, string(v)), r
	}
	return vals, nil
}

// Terms is the new-terms history of one rule, kept in a Store under
// NSTerms: for each term (an encoded tuple of the rule's new_terms fields,
// opaque here) the first and last event time it was seen. An entry expires
// Window after its last-seen time, so a term is new at time t if it was not
// seen in (t-Window, t]. Terms is safe for concurrent use; it holds no state
// of its own besides its configuration.
type Terms struct {
	s      Store
	cfg    TermsConfig
	prefix []byte
}

// NewTerms returns the new-terms history described by cfg, kept in s.
func NewTerms(s Store, cfg TermsConfig) (*Terms, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Terms{s: s, cfg: cfg, prefix: AppendPrefix(nil, NSTerms, cfg.Rule)}, nil
}

// AppendKey appends the store key of term to dst.
func (t *Terms) AppendKey(dst, term []byte) []byte {
	return AppendPart(append(dst, t.prefix...), term)
}

// Seen looks term up without changing anything. It returns the term's info
// and true if it was seen in the window before now, and false if it is new
// at now.
func (t *Terms) Seen(ctx context.Context, term []byte, now time.Time) (TermInfo, bool, error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = t.AppendKey((*bp)[:0], term)
	v, err := t.s.Get(ctx, *bp, now)
	if errors.Is(err, ErrNotFound) {
		return TermInfo{}, false, nil
	}
	if err != nil {
		return TermInfo{}, false, fmt.Errorf("cannot look up term of rule %q: %w", t.cfg.Rule, err)
	}
	ti, err := decodeTermInfo(v)
	return ti, err == nil, err
}

// Observe records that term was seen at now and reports whether it was new,
// that is not seen in the window before now; exactly one of several
// concurrent observers of a new term is told it is new. The returned info
// is the term's history after the observation (for a new term, FirstSeen is
// now). A known term recorded within Slack costs one read and no write.
func (t *Terms) Observe(ctx context.Context, term []byte, now time.Time) (info TermInfo, isNew bool, err error) {
	if now.IsZero() {
		return TermInfo{}, false, fmt.Errorf("cannot observe term of rule %q: event time is zero", t.cfg.Rule)
	}
	if ti, ok, err := t.Seen(ctx, term, now); err != nil {
		return TermInfo{}, false, err
	} else if ok && t.fresh(ti, now) {
		return ti, false, nil
	}
	err = t.s.Update(ctx, now, func(tx Tx) error {
		info, isNew, err = t.ObserveTx(tx, term)
		return err
	})
	if err != nil {
		return TermInfo{}, false, fmt.Errorf("cannot record term of rule %q: %w", t.cfg.Rule, err)
	}
	return info, isNew, nil
}

// fresh reports whether an observation at now leaves the stored info as is.
func (t *Terms) fresh(ti TermInfo, now time.Time) bool {
	if now.Before(ti.FirstSeen) {
		return false
	}
	return !now.After(ti.LastSeen) || now.Sub(ti.LastSeen) < t.cfg.Slack
}

// ObserveTx is Observe inside a transaction, at tx.Now(), so that the engine
// can record the terms of a batch of events, with the alerts they raise, in
// one commit.
func (t *Terms) ObserveTx(tx Tx, term []byte) (TermInfo, bool, error) {
	return t.ObserveAtTx(tx, term, tx.Now())
}

// ObserveAtTx is ObserveTx at event time now, which may be later than
// tx.Now(): one transaction can then observe the terms of events of
// different times. A term visible to tx but not seen in the window before
// now (its entry expired at now) is new. tx.Now() must not be after now.
func (t *Terms) ObserveAtTx(tx Tx, term []byte, now time.Time) (TermInfo, bool, error) {
	if now.IsZero() {
		return TermInfo{}, false, fmt.Errorf("cannot observe term of rule %q: event time is zero", t.cfg.Rule)
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = t.AppendKey((*bp)[:0], term)
	key := *bp

	var ti TermInfo
	isNew := false
	v, err := tx.Get(key)
	if err == nil {
		if ti, err = decodeTermInfo(v); err != nil {
			return TermInfo{}, false, err
		}
		if !ti.LastSeen.Add(t.cfg.Window).After(now) {
			// Stored with that expiry: forgotten at now.
			err = ErrNotFound
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		isNew = true
		ti = TermInfo{FirstSeen: now, LastSeen: now}
	case err != nil:
		return TermInfo{}, false, err
	default:
		if t.fresh(ti, now) {
			return ti, false, nil
		}
		if now.Before(ti.FirstSeen) {
			ti.FirstSeen = now
		}
		if now.After(ti.LastSeen) {
			ti.LastSeen = now
		}
	}
	var vb [termValueSize]byte
	if err := tx.Put(key, appendTermInfo(vb[:0], ti), ti.LastSeen.Add(t.cfg.Window)); err != nil {
		return TermInfo{}, false, err
	}
	return ti, isNew, nil
}
