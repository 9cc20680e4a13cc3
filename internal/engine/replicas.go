package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/state"
)

// ES|QL runs shared by replicas.
//
// Engines that share one store as replicas (Options.Replica set, kanon
// serve replicas on one Redis) each see part of the events of a rule's
// run: the events of the partitions, or the webhook batches, they were
// given. A run's state is the merge of those parts, and no part may count
// twice. Each replica therefore checkpoints its own part, whole, into a
// slot of its own (the run's key followed by the replica's name): a
// checkpoint is a blind write of the replica's state, exactly as a lone
// engine writes its run, with no read of the others' and nothing to
// conflict with, so it commits through the driver's write overlay in the
// same one transaction as everything else. The replica that closes a run
// (its watermark passes the run's end first) reads the other slots,
// merges them into its own state (esqleval.State.Merge: counters add up,
// count_distinct sketches merge register by register, values unite),
// raises the run's alerts from the merged state, deletes the other slots
// and writes the run's closed mark: with the shared store's transactions
// (Options.Shared), all in the transaction that closes the run, which
// also counts as late what a replica read of a run another closed
// (replicas_close.go); without them, in its next checkpoint, and a
// replica that closes a run already marked closed raises nothing for it
// and reports through Options.OnError that what it read since its last
// checkpoint came too late. So each event counts once, in the slot of
// the replica that evaluated it, if that replica checkpointed it before
// the run closed (the driver checkpoints at every commit).
//
// A replica that dies leaves its slots: they are merged by whoever closes
// their runs. To close a run that only other replicas saw, each replica
// looks for runs it does not hold in the store whenever its closed-run
// watermark moves (once per interval of event time) and when it restores,
// and holds them empty, so that they close with its watermark.
//
// What replicas do not share: the per-run alert counts of non-aggregating
// ES|QL rules (max_signals is per replica for them; KQL rules share theirs,
// counts.go), and the closed-run watermark (each replica's own, in its
// own meta slot).

// replicaRuns is what an ES|QL runner keeps to share its runs.
type replicaRuns struct {
	name string // Options.Replica
	// closeWrites are the writes of the runs closed since the last
	// checkpoint: deletions of the other replicas' slots, closed marks.
	closeWrites []windowWrite
	// looked is true once the store was searched for other replicas'
	// runs, at the closed-run watermark lookedAt.
	looked   bool
	lookedAt int64
	// counts are, per open run, the events this replica added to it.
	counts map[int64]*slotCount
}

// slotCount counts the events a replica added to a run: n in all, last in
// its slot as last checkpointed, prev in the checkpoint before that.
type slotCount struct{ n, last, prev int64 }

// countOf returns the counts of run end, or nil (s nil: not a replica).
func (s *replicaRuns) countOf(end int64) *slotCount {
	if s == nil {
		return nil
	}
	return s.counts[end]
}

// count notes an event added to run end.
func (s *replicaRuns) count(end int64) {
	c := s.counts[end]
	if c == nil {
		if s.counts == nil {
			s.counts = map[int64]*slotCount{}
		}
		c = &slotCount{}
		s.counts[end] = c
	}
	c.n++
}

// otherSlot is a slot of another replica read from the store.
type otherSlot struct {
	key     []byte
	raw     []byte // the slot's value as read
	replica string
	run     state.WindowRun
	bad     error // the slot does not decode
}

// scanSlots reads the other replicas' slots of run end, and whether the
// run is marked closed.
func (r *esqlRunner) scanSlots(ctx context.Context, end int64) (others []otherSlot, closed bool, err error) {
	prefix := state.AppendWindowRunKey(nil, r.rule.ID, end)
	err = r.eng.opts.Store.Scan(ctx, prefix, time.Time{}, func(e state.Entry) error {
		wk, err := state.ParseWindowKey(e.Key)
		switch {
		case err != nil || wk.Meta || wk.End != end:
			return nil // not an entry of this run
		case wk.Closed:
			closed = true
			return nil
		case wk.Replica == r.shared.name:
			return nil // this replica's state is newer than its slot
		}
		raw := append([]byte(nil), e.Value...)
		run, err := state.DecodeWindowRun(raw)
		others = append(others, otherSlot{key: append([]byte(nil), e.Key...), raw: raw, replica: wk.Replica, run: run, bad: err})
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("engine: rule %s: cannot read the other replicas' parts of a run: %w", r.rule.ID, err)
	}
	return others, closed, nil
}

// mergeSlots merges the parts others into st, the state of run end, and
// returns it, or nil if a part cannot be merged (dropped by its replica
// for its memory budget, over the budget once merged, corrupt): a partial
// aggregation would raise wrong alerts, so the run is dropped.
func (r *esqlRunner) mergeSlots(end int64, st *esqleval.State, others []otherSlot) *esqleval.State {
	start, stop := r.sched.Window(end)
	window := start.Format(time.RFC3339) + "–" + stop.Format(time.RFC3339)
	for _, o := range others {
		if st == nil {
			return nil
		}
		var why error
		switch {
		case o.bad != nil:
			why = o.bad
		case o.run.Fingerprint != r.fp:
			r.notice(fmt.Errorf("rule %s: %w: the part of run %s from replica %s was made with another query or schedule", r.rule.ID, errStaleWindow, window, o.replica))
			continue
		case o.run.Dropped:
			why = fmt.Errorf("replica %s dropped its part for the memory budget", o.replica)
		default:
			part := r.rule.Program.NewState()
			if why = part.Import(o.run.State); why == nil {
				why = st.Merge(part)
			}
		}
		if why != nil {
			r.ruleError(fmt.Errorf("rule %s: run %s dropped: cannot merge the part of replica %s: %w", r.rule.ID, window, o.replica, why))
			st.Reset()
			st = nil
		}
	}
	return st
}

// gather prepares run end for closing, for a replica that does not share
// its store's transactions (no Options.Shared): it merges the other
// replicas' slots into the runner's state of the run, or, if another
// replica closed the run already, drops the run (r.runs[end] = nil) so
// that it raises nothing. It queues the deletion of the slots and the
// run's closed mark for the next checkpoint.
func (r *esqlRunner) gather(ctx context.Context, end int64) ([]otherSlot, error) {
	others, closed, err := r.scanSlots(ctx, end)
	if err != nil {
		return nil, err
	}
	if closed {
		if r.runs[end] != nil && r.changed(end) {
			start, stop := r.sched.Window(end)
			r.notice(fmt.Errorf("rule %s: run %s–%s was closed by another replica: the events of it this replica read since its last checkpoint came too late", r.rule.ID, start.Format(time.RFC3339), stop.Format(time.RFC3339)))
		}
		r.runs[end] = nil
		return nil, nil
	}
	for _, o := range others {
		r.shared.closeWrites = append(r.shared.closeWrites, windowWrite{key: o.key, del: true})
	}
	r.runs[end] = r.mergeSlots(end, r.runs[end], others)
	mark := state.AppendWindowRun(nil, state.WindowRun{Fingerprint: r.fp, Closed: true})
	r.shared.closeWrites = append(r.shared.closeWrites, windowWrite{
		key: state.AppendWindowClosedKey(nil, r.rule.ID, end), val: mark, exp: time.Unix(0, end).Add(ClosedRetention),
	})
	return others, nil
}

// changed reports whether run end changed since the last checkpoint.
func (r *esqlRunner) changed(end int64) bool {
	for _, e := range r.dirty {
		if e == end {
			return true
		}
	}
	return false
}

// adopt holds, empty, the runs that other replicas checkpointed and this
// one does not hold, unless they are marked closed, so that they close
// here when the watermark passes them (a run that already ended closes at
// the next Advance).
func (r *esqlRunner) adopt(ctx context.Context) error {
	closed := map[int64]bool{}
	var ends []int64
	err := r.eng.opts.Store.Scan(ctx, state.AppendWindowPrefix(nil, r.rule.ID), time.Time{}, func(e state.Entry) error {
		wk, err := state.ParseWindowKey(e.Key)
		switch {
		case err != nil || wk.Meta || wk.Replica == r.shared.name && !wk.Closed:
		case wk.Closed:
			closed[wk.End] = true
		default:
			ends = append(ends, wk.End)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: rule %s: cannot look for the runs of other replicas: %w", r.rule.ID, err)
	}
	for _, w := range r.shared.closeWrites {
		// Runs this replica closed since its last checkpoint, whose
		// marks are not written yet.
		if wk, err := state.ParseWindowKey(w.key); err == nil && wk.Closed {
			closed[wk.End] = true
		}
	}
	for _, end := range ends {
		if _, held := r.runs[end]; !held && !closed[end] {
			r.runs[end] = r.rule.Program.NewState()
		}
	}
	r.shared.looked, r.shared.lookedAt = true, r.closed
	return nil
}
