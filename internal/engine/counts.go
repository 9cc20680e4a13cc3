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
// deletes them and keeps none. So a serve restarted in the middle of a run raises no
// more of that run's alerts than an uninterrupted one would. The entry
// carries a fingerprint of the rule's query and schedule; one made with
// another is deleted, as a stale ES|QL run is. Replicas keep a slot each
// (max_signals is per replica).

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
	if !e.persist() || b.rule.Schedule.MaxSignals <= 0 {
		return
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
