package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// Durable run counts of KQL rules.
//
// A scheduled KQL rule (Elastic's query rule) and a new_terms rule count
// their alerts per run against max_signals. In WindowsRestore (serve)
// those counts are kept in the store as ES|QL rules keep theirs: in the
// rule's meta entry of the windows namespace (state.WindowMeta, with no
// closed-run watermark), written by Checkpoint when they changed and
// restored by New; WindowsRebuild (a scan, which reads its input again)
// deletes them and keeps none. So a serve restarted in the middle of a
// run raises no more of that run's alerts than an uninterrupted one
// would. The entry carries a fingerprint of the rule's query and
// schedule; one made with another is deleted, as a stale ES|QL run is.
// Replicas share the entry instead (below).

// runCounts is the durable part of a KQL rule's run counter.
type runCounts struct {
	b       *base
	c       *runCounter
	fp      uint64
	changed bool // counts changed since the last checkpoint
	rebuild bool // WindowsRebuild: only delete what an earlier serve stored
}

// countsFingerprint identifies what stored counts of b's rule can be
// restored into: its query and schedule.
func countsFingerprint(b *base) uint64 {
	h := fnv.New64a()
	h.Write([]byte(b.rule.Language + "\x00" + b.rule.Query))
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(b.sched.Interval))
	binary.BigEndian.PutUint64(buf[8:], uint64(b.sched.Lookback))
	h.Write(buf[:])
	return h.Sum64()
}

// trackCounts makes the run counter c of b's rule durable when the engine
// restores runs and the rule has a cap, and has stale counts deleted when
// it rebuilds them.
func (e *Engine) trackCounts(b *base, c *runCounter) {
	if !e.persist() || b.rule.Schedule.MaxSignals <= 0 || e.claims != nil {
		return // replicas share their counts (below)
	}
	if e.opts.Windows != WindowsRestore {
		e.counts = append(e.counts, &runCounts{b: b, c: &runCounter{}, fp: countsFingerprint(b), rebuild: true})
		return
	}
	rc := &runCounts{b: b, c: c, fp: countsFingerprint(b)}
	c.track = &rc.changed
	e.counts = append(e.counts, rc)
}

func (rc *runCounts) key() []byte {
	k := state.AppendWindowMetaKey(nil, rc.b.rule.ID)
	if r := rc.b.eng.opts.Replica; r != "" {
		k = state.AppendWindowSlot(k, r)
	}
	return k
}

// write appends the checkpoint's write of the counts, if they changed.
func (rc *runCounts) write(ws []windowWrite) []windowWrite {
	if !rc.changed || rc.rebuild {
		return ws
	}
	meta := state.WindowMeta{Fingerprint: rc.fp, Counts: make([]state.WindowCount, 0, len(rc.c.counts))}
	var horizon int64
	for _, end := range sortedKeys(rc.c.counts) {
		meta.Counts = append(meta.Counts, state.WindowCount{End: end, Count: uint64(rc.c.counts[end])})
		horizon = max(horizon, end)
	}
	if len(meta.Counts) == 0 {
		return append(ws, windowWrite{key: rc.key(), del: true})
	}
	exp := time.Unix(0, horizon).Add(rc.b.sched.Lookback + WindowRetention)
	return append(ws, windowWrite{key: rc.key(), val: state.AppendWindowMeta(nil, meta), exp: exp})
}

// load restores (WindowsRestore) or deletes (WindowsRebuild) the stored
// counts; counts that cannot be restored are deleted and reported.
func (rc *runCounts) load(ctx context.Context) error {
	s := rc.b.eng.opts.Store
	key := rc.key()
	val, err := s.Get(ctx, key, time.Time{})
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("engine: rule %s: cannot read its stored run counts: %w", rc.b.rule.ID, err)
	}
	if rc.b.eng.opts.Windows == WindowsRestore {
		why := rc.restore(val)
		if why == nil {
			return nil
		}
		rc.b.ruleError(fmt.Errorf("rule %s: %w: its run counts (%v) deleted", rc.b.rule.ID, errStaleWindow, why))
	}
	if err := state.Delete(ctx, s, key); err != nil {
		return fmt.Errorf("engine: rule %s: cannot delete its stored run counts: %w", rc.b.rule.ID, err)
	}
	return nil
}

func (rc *runCounts) restore(val []byte) error {
	m, err := state.DecodeWindowMeta(val)
	if err != nil {
		return err
	}
	if m.Fingerprint != rc.fp {
		return errors.New("the rule's query or schedule changed")
	}
	counts := make(map[int64]int, len(m.Counts))
	for _, c := range m.Counts {
		if c.Count > uint64(rc.b.rule.Schedule.MaxSignals) {
			return errors.New("malformed run count")
		}
		counts[c.End] = int(c.Count)
	}
	rc.c.counts = counts
	return nil
}

// Run counts shared by replicas.
//
// Replicas (Options.Shared) count the alerts of their scheduled KQL and
// new_terms rules against max_signals together: the count of every run
// of a rule is in one entry of the shared store, the rule's meta entry
// of the windows namespace without a replica's slot (the layout of
// runCounts, so an engine alone on that store would read it as its own),
// and the decision of a hit takes its run's slot in the transaction that
// marks its alert raised (claims.go). Two replicas that see hits of one
// run at once therefore raise at most max_signals of them between them,
// as one engine would; which hits those are follows the order in which
// the replicas' transactions commit (one engine: the order it reads
// them). A hit whose alert was raised before (an event delivered again)
// takes no slot: its first decision took it. The scheduled ES|QL rules
// without STATS still count per replica (their slot of the meta entry).

// sharesSignals reports whether b's hits at t take their max_signals
// slot in the replicas' shared transaction (sharedSlot) rather than from
// the engine's own counter.
func (b *base) sharesSignals(t time.Time) bool {
	return b.eng.claims != nil && b.ids != nil && b.maxSignals() > 0 && !t.IsZero()
}

// sharedCountsKey is the key of the shared run counts of b's rule.
func sharedCountsKey(b *base) []byte {
	return state.AppendWindowMetaKey(nil, b.rule.ID)
}

// sharedSlot counts a hit at t of b's rule in tx, against the shared
// counts of the runs that read it, as runCounter.take does alone: it
// returns the end of the run it counts in and true, or the end of the
// first run that reads it and false when every one of them is full.
// Counts stored by another version of the rule are started again; counts
// of runs that ended more than the lookback and WindowRetention before
// the newest are forgotten.
func sharedSlot(tx state.Tx, b *base, t time.Time) (int64, bool, error) {
	key := sharedCountsKey(b)
	fp := countsFingerprint(b)
	counts := map[int64]uint64{}
	val, err := tx.Get(key)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return 0, false, err
	default:
		if m, err := state.DecodeWindowMeta(val); err == nil && m.Fingerprint == fp {
			for _, c := range m.Counts {
				counts[c.End] = c.Count
			}
		} else if err != nil {
			b.ruleError(fmt.Errorf("rule %s: %w: its shared run counts (%v) started again", b.rule.ID, errStaleWindow, err))
		}
	}
	limit := uint64(b.maxSignals())
	first, ok := b.sched.FirstRun(t), false
	b.sched.Runs(t, func(end int64) bool {
		if counts[end] < limit {
			counts[end]++
			first, ok = end, true
			return false
		}
		return true
	})
	if !ok {
		return first, false, nil
	}
	keep := b.sched.Lookback + WindowRetention
	var horizon int64
	for end := range counts {
		horizon = max(horizon, end)
	}
	meta := state.WindowMeta{Fingerprint: fp, Counts: make([]state.WindowCount, 0, len(counts))}
	for _, end := range sortedKeys(counts) {
		if end >= horizon-int64(keep) {
			meta.Counts = append(meta.Counts, state.WindowCount{End: end, Count: counts[end]})
		}
	}
	return first, true, tx.Put(key, state.AppendWindowMeta(nil, meta), time.Unix(0, horizon).Add(keep))
}
