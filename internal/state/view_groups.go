package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Limits of the samples a group keeps.
const (
	// DefaultMaxSamples is the number of samples a group keeps when
	// GroupsConfig.MaxSamples is 0.
	DefaultMaxSamples = 5
	// MaxSamplesLimit is the largest GroupsConfig.MaxSamples.
	MaxSamplesLimit = 64
	// DefaultMaxSampleBytes is the size limit of one sample when
	// GroupsConfig.MaxSampleBytes is 0.
	DefaultMaxSampleBytes = 64 << 10
)

// GroupsConfig configures a Groups view.
type GroupsConfig struct {
	// Rule is the id of the rule whose alerts are grouped. Required.
	Rule string
	// Period is the dedup period: a group opened by an alert at time t
	// takes the alerts with the same key up to t+Period (exclusive); a
	// later one opens a new group. Required, positive.
	Period time.Duration
	// Retain is how long a group's entry stays in the store after its
	// period ends, so that its final count can still be read and
	// delivered. Zero means one Period; negative is invalid.
	Retain time.Duration
	// MaxSamples bounds the samples kept per group (0: DefaultMaxSamples,
	// at most MaxSamplesLimit).
	MaxSamples int
	// MaxSampleBytes bounds one sample; a larger sample is not kept (the
	// alert is still counted). 0: DefaultMaxSampleBytes.
	MaxSampleBytes int
}

// Validate reports whether the configuration is usable.
func (c GroupsConfig) Validate() error {
	switch {
	case c.Rule == "":
		return errors.New("invalid alert groups: rule id is empty")
	case c.Period <= 0:
		return fmt.Errorf("invalid alert groups of rule %q: period %s is not positive", c.Rule, c.Period)
	case c.Retain < 0:
		return fmt.Errorf("invalid alert groups of rule %q: retention %s is negative", c.Rule, c.Retain)
	case c.MaxSamples < 0 || c.MaxSamples > MaxSamplesLimit:
		return fmt.Errorf("invalid alert groups of rule %q: max samples %d is not in [0, %d]", c.Rule, c.MaxSamples, MaxSamplesLimit)
	case c.MaxSampleBytes < 0 || c.MaxSampleBytes > MaxValueSize/MaxSamplesLimit:
		return fmt.Errorf("invalid alert groups of rule %q: max sample size %d is not in [0, %d]", c.Rule, c.MaxSampleBytes, MaxValueSize/MaxSamplesLimit)
	}
	return nil
}

// Group is one group of alerts of a rule with the same key (Panther's
// dedup): the alert that opened it and what happened since.
type Group struct {
	// ID is the id of the alert that opened the group; updates of the
	// group are delivered under the same id.
	ID string
	// FirstSeen and LastSeen are the earliest and latest event times of
	// the group's alerts.
	FirstSeen, LastSeen time.Time
	// End is when the group's period ends: the opening alert's event time
	// plus the period. Alerts at or after End open a new group.
	End time.Time
	// Count is the number of alerts in the group.
	Count int64
	// Delivered is the Count last delivered to the sinks (0: none yet).
	Delivered int64
	// Samples are a few of the group's alerts as the engine encoded them
	// (opaque here): the first MaxSamples-1 added and the latest one.
	Samples [][]byte
}

// OpenAt reports whether an alert at t joins the group rather than opening
// a new one.
func (g *Group) OpenAt(t time.Time) bool { return t.Before(g.End) }

const groupVersion = 1

// appendGroup appends the stored form of g to dst: a version byte, the id,
// the three times (8 bytes each), count and delivered (uvarints), then the
// samples, each preceded by its length.
func appendGroup(dst []byte, g *Group) []byte {
	dst = appendGroupHead(dst, g)
	dst = binary.AppendUvarint(dst, uint64(len(g.Samples)))
	for _, s := range g.Samples {
		dst = AppendPart(dst, s)
	}
	return dst
}

// appendGroupHead appends the stored form of g without its samples; the
// samples' count and samples follow it.
func appendGroupHead(dst []byte, g *Group) []byte {
	dst = append(dst, groupVersion)
	dst = AppendPartString(dst, g.ID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(UnixNano(g.FirstSeen)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(UnixNano(g.LastSeen)))
	dst = binary.BigEndian.AppendUint64(dst, uint64(UnixNano(g.End)))
	dst = binary.AppendUvarint(dst, uint64(g.Count))
	return binary.AppendUvarint(dst, uint64(g.Delivered))
}

// DecodeGroup decodes a stored group (a value of the NSGroups namespace).
// The group's id and samples are copies; v may be reused afterwards. It
// returns an error wrapping ErrCorrupt if v is not a group.
func DecodeGroup(v []byte) (Group, error) {
	g, n, rest, err := decodeGroupHead(v)
	if err != nil {
		return Group{}, err
	}
	for i := uint64(0); i < n; i++ {
		var s []byte
		if s, rest, err = nextPart(rest); err != nil {
			return Group{}, fmt.Errorf("%w: alert group entry: bad sample", ErrCorrupt)
		}
		g.Samples = append(g.Samples, append([]byte(nil), s...))
	}
	if len(rest) != 0 {
		return Group{}, fmt.Errorf("%w: alert group entry: trailing bytes", ErrCorrupt)
	}
	return g, nil
}

// decodeGroupHead decodes a stored group but its samples: it returns the
// group without samples, the number of samples and the bytes that hold
// them.
func decodeGroupHead(v []byte) (Group, uint64, []byte, error) {
	var g Group
	bad := func(what string) (Group, uint64, []byte, error) {
		return Group{}, 0, nil, fmt.Errorf("%w: alert group entry: %s", ErrCorrupt, what)
	}
	if len(v) == 0 || v[0] != groupVersion {
		return bad("unknown version")
	}
	id, rest, err := nextPart(v[1:])
	if err != nil {
		return bad("bad id")
	}
	g.ID = string(id)
	if len(rest) < 24 {
		return bad("truncated times")
	}
	g.FirstSeen = FromUnixNano(int64(binary.BigEndian.Uint64(rest)))
	g.LastSeen = FromUnixNano(int64(binary.BigEndian.Uint64(rest[8:])))
	g.End = FromUnixNano(int64(binary.BigEndian.Uint64(rest[16:])))
	rest = rest[24:]
	var nums [3]uint64
	for i := range nums {
		n, w := binary.Uvarint(rest)
		if w <= 0 || w != uvarintLen(n) || n > 1<<62 {
			return bad("bad count")
		}
		nums[i], rest = n, rest[w:]
	}
	g.Count, g.Delivered = int64(nums[0]), int64(nums[1])
	if nums[2] > MaxSamplesLimit {
		return bad("too many samples")
	}
	return g, nums[2], rest, nil
}

// Groups is the set of alert groups of one rule, kept in a Store under
// NSGroups: for each group key (the rendered dedup key, opaque here) the
// group open or last open for it. An entry expires Retain after its
// group's End. Groups is safe for concurrent use; it holds no state of
// its own besides its configuration.
type Groups struct {
	s      Store
	cfg    GroupsConfig
	prefix []byte
}

// NewGroups returns the alert groups described by cfg, kept in s.
func NewGroups(s Store, cfg GroupsConfig) (*Groups, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Retain == 0 {
		cfg.Retain = cfg.Period
	}
	if cfg.MaxSamples == 0 {
		cfg.MaxSamples = DefaultMaxSamples
	}
	if cfg.MaxSampleBytes == 0 {
		cfg.MaxSampleBytes = DefaultMaxSampleBytes
	}
	return &Groups{s: s, cfg: cfg, prefix: AppendPrefix(nil, NSGroups, cfg.Rule)}, nil
}

// Config returns the configuration with its defaults filled in.
func (gs *Groups) Config() GroupsConfig { return gs.cfg }

// AppendKey appends the store key of the group key to dst.
func (gs *Groups) AppendKey(dst, key []byte) []byte {
	return AppendPart(append(dst, gs.prefix...), key)
}

// Get returns the group stored under key and true, or false if there is
// none live at now. The entry outlives the group's period by Retain, so a
// group found may be closed at now: check OpenAt. The zero now shows every
// group not yet swept.
func (gs *Groups) Get(ctx context.Context, key []byte, now time.Time) (Group, bool, error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = gs.AppendKey((*bp)[:0], key)
	v, err := gs.s.Get(ctx, *bp, now)
	if errors.Is(err, ErrNotFound) {
		return Group{}, false, nil
	}
	if err != nil {
		return Group{}, false, fmt.Errorf("cannot look up alert group of rule %q: %w", gs.cfg.Rule, err)
	}
	g, err := DecodeGroup(v)
	return g, err == nil, err
}

// AddTx adds an alert at tx.Now() to the group of key. If the group stored
// there is open at that time, the alert joins it: the count grows, the
// first and last times widen, and sample replaces the latest sample (or is
// appended while there is room). Otherwise a new group opens with the given
// id, a count of 1, End at tx.Now() plus the period, sample as its only
// sample and nothing delivered. A nil sample keeps no sample. It returns
// the group after the change and whether it opened.
func (gs *Groups) AddTx(tx Tx, key []byte, id string, sample []byte) (Group, bool, error) {
	return gs.AddAtTx(tx, key, id, sample, tx.Now())
}

// AddAtTx is AddTx at event time now, which may be later than tx.Now():
// one transaction can then add the alerts of events of different times.
// A group visible to tx but expired at now has ended before now, so the
// alert opens a new group, as AddTx would. tx.Now() must not be after now.
func (gs *Groups) AddAtTx(tx Tx, key []byte, id string, sample []byte, now time.Time) (Group, bool, error) {
	if now.IsZero() {
		return Group{}, false, fmt.Errorf("cannot add alert to a group of rule %q: event time is zero", gs.cfg.Rule)
	}
	if id == "" {
		return Group{}, false, fmt.Errorf("cannot add alert to a group of rule %q: alert id is empty", gs.cfg.Rule)
	}
	if len(sample) > gs.cfg.MaxSampleBytes {
		sample = nil
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = gs.AppendKey((*bp)[:0], key)
	k := *bp

	g, found, err := gs.getTx(tx, k)
	if err != nil {
		return Group{}, false, err
	}
	opened := !found || !g.OpenAt(now)
	if opened {
		g = Group{ID: id, FirstSeen: now, LastSeen: now, End: now.Add(gs.cfg.Period), Count: 1}
		if sample != nil {
			g.Samples = [][]byte{append([]byte(nil), sample...)}
		}
	} else {
		g.Count++
		if now.Before(g.FirstSeen) {
			g.FirstSeen = now
		}
		if now.After(g.LastSeen) {
			g.LastSeen = now
		}
		if sample != nil {
			s := append([]byte(nil), sample...)
			if len(g.Samples) < gs.cfg.MaxSamples {
				g.Samples = append(g.Samples, s)
			} else {
				g.Samples[len(g.Samples)-1] = s
			}
		}
	}
	if err := gs.putTx(tx, k, &g); err != nil {
		return Group{}, false, err
	}
	return g, opened, nil
}

// JoinTx counts an alert at event time now in the group of key if that
// group is open at now, as AddTx would, without changing its samples: the
// engine calls it for an alert whose sample it keeps to write later
// (SetLatestTx). It returns the group after the change, without its
// samples (Samples is nil; SampleCount says how many it holds), and false,
// writing nothing, if there is no group open at now under key. tx.Now()
// must not be after now.
func (gs *Groups) JoinTx(tx Tx, key []byte, now time.Time) (g Group, sampleCount int, joined bool, err error) {
	return gs.joinTx(tx, key, 1, now, now, func(g *Group) bool { return g.OpenAt(now) })
}

// JoinManyTx counts n alerts of event times first to last (the earliest
// and the latest) in the group of key if that group is still the one with
// id, as n calls of JoinTx would once each had found it open at its
// alert's time: the engine counts the alerts of a burst as they come and
// writes them at once, when it writes the group's latest sample. It
// reports false, writing nothing, if the group under key is not the one
// with id.
func (gs *Groups) JoinManyTx(tx Tx, key []byte, id string, n int64, first, last time.Time) (bool, error) {
	if n <= 0 {
		return false, fmt.Errorf("invalid join of %d alerts to a group of rule %q", n, gs.cfg.Rule)
	}
	_, _, joined, err := gs.joinTx(tx, key, n, first, last, func(g *Group) bool { return g.ID == id })
	return joined, err
}

// joinTx adds n alerts of event times first to last to the group of key
// if it passes ok, rewriting its head and keeping its samples.
func (gs *Groups) joinTx(tx Tx, key []byte, n int64, first, last time.Time, ok func(*Group) bool) (g Group, sampleCount int, joined bool, err error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = gs.AppendKey((*bp)[:0], key)
	k := *bp
	v, err := tx.Get(k)
	if errors.Is(err, ErrNotFound) {
		return Group{}, 0, false, nil
	}
	if err != nil {
		return Group{}, 0, false, err
	}
	g, samples, rest, err := decodeGroupHead(v)
	if err != nil || !ok(&g) {
		return Group{}, 0, false, err
	}
	g.Count += n
	if first.Before(g.FirstSeen) {
		g.FirstSeen = first
	}
	if last.After(g.LastSeen) {
		g.LastSeen = last
	}
	vp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(vp)
	val := appendGroupHead((*vp)[:0], &g)
	val = binary.AppendUvarint(val, samples)
	val = append(val, rest...)
	*vp = val
	if err := tx.Put(k, val, g.End.Add(gs.cfg.Retain)); err != nil {
		return Group{}, 0, false, err
	}
	return g, int(samples), true, nil
}

// SetLatestTx makes sample the latest sample of the group of key, if that
// group is still the one with id: it replaces the last sample when the
// group holds MaxSamples, and is appended otherwise. A sample larger than
// MaxSampleBytes is not kept. It reports whether it changed anything.
func (gs *Groups) SetLatestTx(tx Tx, key []byte, id string, sample []byte) (bool, error) {
	if len(sample) > gs.cfg.MaxSampleBytes {
		return false, nil
	}
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = gs.AppendKey((*bp)[:0], key)
	g, found, err := gs.getTx(tx, *bp)
	if err != nil || !found || g.ID != id {
		return false, err
	}
	s := append([]byte(nil), sample...)
	if len(g.Samples) < gs.cfg.MaxSamples {
		g.Samples = append(g.Samples, s)
	} else {
		g.Samples[len(g.Samples)-1] = s
	}
	return true, gs.putTx(tx, *bp, &g)
}

// DeliveredTx records that the group of key with the given id was
// delivered with count alerts: Delivered becomes count unless it is
// already larger. It does nothing if the group stored under key is not
// the one with that id (a newer group replaced it, or it expired), and
// reports whether it changed anything.
func (gs *Groups) DeliveredTx(tx Tx, key []byte, id string, count int64) (bool, error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = gs.AppendKey((*bp)[:0], key)
	g, found, err := gs.getTx(tx, *bp)
	if err != nil || !found || g.ID != id || g.Delivered >= count {
		return false, err
	}
	g.Delivered = count
	return true, gs.putTx(tx, *bp, &g)
}

// Delivered is DeliveredTx in a transaction of its own, at time now (the
// zero time reaches groups whose entry expired but was not swept yet).
func (gs *Groups) Delivered(ctx context.Context, key []byte, id string, count int64, now time.Time) error {
	err := gs.s.Update(ctx, now, func(tx Tx) error {
		_, err := gs.DeliveredTx(tx, key, id, count)
		return err
	})
	if err != nil {
		return fmt.Errorf("cannot record delivery of alert group of rule %q: %w", gs.cfg.Rule, err)
	}
	return nil
}

// GetTx is Get inside a transaction: the group stored under key and
// visible to tx.
func (gs *Groups) GetTx(tx Tx, key []byte) (Group, bool, error) {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = gs.AppendKey((*bp)[:0], key)
	return gs.getTx(tx, *bp)
}

// Scan calls fn with the key and group of every group of the rule live at
// now, in key order. The key is valid only until fn returns. fn must not
// call methods of the same Store.
func (gs *Groups) Scan(ctx context.Context, now time.Time, fn func(key []byte, g Group) error) error {
	return gs.s.Scan(ctx, gs.prefix, now, func(e Entry) error {
		pk, err := ParseKey(e.Key)
		if err != nil || len(pk.Parts) != 1 {
			return fmt.Errorf("%w: alert group key %q of rule %q", ErrCorrupt, e.Key, gs.cfg.Rule)
		}
		g, err := DecodeGroup(e.Value)
		if err != nil {
			return err
		}
		return fn(pk.Parts[0], g)
	})
}

func (gs *Groups) getTx(tx Tx, k []byte) (Group, bool, error) {
	v, err := tx.Get(k)
	if errors.Is(err, ErrNotFound) {
		return Group{}, false, nil
	}
	if err != nil {
		return Group{}, false, err
	}
	g, err := DecodeGroup(v)
	return g, err == nil, err
}

func (gs *Groups) putTx(tx Tx, k []byte, g *Group) error {
	bp := keyBufPool.Get().(*[]byte)
	defer keyBufPool.Put(bp)
	*bp = appendGroup((*bp)[:0], g)
	return tx.Put(k, *bp, g.End.Add(gs.cfg.Retain))
}
