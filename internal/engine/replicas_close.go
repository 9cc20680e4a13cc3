package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/state"
)

// Closing an ES|QL run shared by replicas that share the store's
// transactions (Options.Shared).
//
// The replica whose watermark passes a run's end first closes it in one
// transaction that reads the run's closed mark, this replica's slot and
// the other replicas' slots (as it merged them: if one changed since, the
// run is merged again from a fresh read), and, if the run is not marked,
// deletes those slots, writes the mark and marks the alerts raised. So a
// slot is merged exactly when the transaction that closes its run deletes
// it, and a slot found in the store after its run's mark was written
// holds a part that no merge counted.
//
// A replica that closes a run already marked (its own watermark came
// later) raises nothing for it and counts as late (RuleStats.Late, so
// kanon_events_late_total) the events of the run that the closing merge
// did not count: those it added since the checkpoint the merge read —
// its last one if its slot was gone, the one before if the slot was
// there (written after the merge, and now deleted). Events of a run that
// arrive at a replica after another closed it are so counted, never
// silently lost; an event counts in its run if its replica checkpointed
// it before the run closed, that is if it arrived within the lateness of
// the newest event of the replica that closed it, less the time its
// batch took to commit. (A slot a replica writes for the first time
// between the closer's read of the slots and its transaction is not in
// the merge either: it is found there afterwards, and counted late the
// same way.)
//
// Expiries are in event time, and a replica ahead of the others sweeps
// the store for all: so before a sweep a replica closes the other
// replicas' runs that its watermark passed (closeAdopted), and slots and
// closed marks are kept ClosedRetention after their run's end, longer
// than any lateness.

// ClosedRetention is how long (in event time) after its end a shared
// run's closed mark is kept: a replica behind the others by more than
// this in event time would take a run they closed for one nobody did, and
// a lateness longer than this would let a sweep delete a slot of a run
// still open.
const ClosedRetention = 7 * 24 * time.Hour

// errRegather: a slot changed between its merge and the close.
var errRegather = errors.New("a replica's part of the run changed while it was merged")

// closeShared closes run end of a replica sharing the store's
// transactions: merges the slots, raises the run's alerts once across
// replicas (claimClose), and counts what came too late.
func (r *esqlRunner) closeShared(ctx context.Context, end int64) error {
	own := r.runs[end]
	var exported []byte
	if own != nil {
		exported = own.Export()
	}
	cnt := r.shared.counts[end]
	delete(r.shared.counts, end)
	if cnt == nil {
		cnt = &slotCount{}
	}
	r.forgetRun(end)
	if own == nil {
		return nil // dropped: its error was reported when it happened
	}
	for attempt := 1; ; attempt++ {
		others, _, err := r.scanSlots(ctx, end)
		if err != nil {
			return err
		}
		st := r.rule.Program.NewState()
		if attempt == 1 {
			st = own
		} else if err := st.Import(exported); err != nil {
			return fmt.Errorf("engine: rule %s: cannot merge a run again: %w", r.rule.ID, err)
		}
		if st = r.mergeSlots(end, st, others); st == nil {
			return nil
		}
		alerts, extra, err := r.results(end, st)
		if err != nil || alerts == nil {
			return err
		}
		known, err := r.claimClose(ctx, end, others, alerts, cnt)
		if errors.Is(err, errRegather) && attempt < 8 {
			continue
		}
		if err != nil || known {
			return err
		}
		return extra(ctx)
	}
}

// claimClose closes run end, whose merge read the slots others, and
// raises alerts, its alerts, if the transaction finds the run not marked
// closed and the slots as they were merged (errRegather otherwise); it
// deletes the slots, writes the run's closed mark and marks the alerts
// raised in the same transaction. If the run was marked, it reports known
// and counts the events of cnt that no merge counted as late.
func (r *esqlRunner) claimClose(ctx context.Context, end int64, others []otherSlot, alerts []*alert.Alert, cnt *slotCount) (known bool, err error) {
	c := r.eng.claims
	closedKey := state.AppendWindowClosedKey(nil, r.rule.ID, end)
	ownKey := r.runKey(end)
	mark := state.AppendWindowRun(nil, state.WindowRun{Fingerprint: r.fp, Closed: true})
	stop := time.Unix(0, end).UTC()
	keys := [][]byte{closedKey, ownKey}
	for _, o := range others {
		keys = append(keys, o.key)
	}
	var suppressed int64
	var orphan bool
	err = c.now1(ctx, claim{
		decide: func(tx state.Tx, wall time.Time, res *claimResult) error {
			suppressed, orphan = 0, false
			if err := state.Prefetch(tx, keys); err != nil {
				return err
			}
			switch _, err := tx.Get(closedKey); {
			case err == nil:
				res.known = true
				switch _, err := tx.Get(ownKey); {
				case err == nil:
					orphan = true
					return tx.Delete(ownKey)
				case !errors.Is(err, state.ErrNotFound):
					return err
				}
				return nil
			case !errors.Is(err, state.ErrNotFound):
				return err
			}
			for _, o := range others {
				v, err := tx.Get(o.key)
				if errors.Is(err, state.ErrNotFound) || err == nil && !bytes.Equal(v, o.raw) {
					return errRegather
				}
				if err != nil {
					return err
				}
				if err := tx.Delete(o.key); err != nil {
					return err
				}
			}
			if err := tx.Put(closedKey, mark, stop.Add(ClosedRetention)); err != nil {
				return err
			}
			for _, a := range alerts {
				first, err := r.ids.MarkAtTx(tx, []byte(a.ID), a.Timestamp)
				if err != nil {
					return err
				}
				if !first {
					suppressed++
					continue
				}
				if err := c.outbox(tx, r.base, a, 0, a.Timestamp, wall, res); err != nil {
					return err
				}
			}
			return nil
		},
		done: func(ctx context.Context, res *claimResult) error {
			if res.known {
				known = true
				lost := cnt.n - cnt.last
				if orphan {
					lost = cnt.n - cnt.prev
				}
				if lost > 0 {
					r.stats.Late += lost
					start, stop := r.sched.Window(end)
					r.notice(fmt.Errorf("rule %s: run %s–%s was closed by another replica before %d events of it read here were checkpointed: counted late", r.rule.ID, start.Format(time.RFC3339), stop.Format(time.RFC3339), lost))
				}
				return nil
			}
			r.stats.Suppressed += suppressed
			r.stats.Alerts += int64(len(res.deliver))
			return c.deliver(ctx, r.base, res)
		},
	})
	return known, err
}

// closeAdopted closes, before a sweep, the runs of other replicas that
// ended by this replica's closed-run watermark: a sweep may delete slots
// of runs nobody closed yet (their expiry is in event time, and this
// replica may be ahead of the one that wrote them).
func (r *esqlRunner) closeAdopted(ctx context.Context) error {
	if r.shared == nil || r.eng.claims == nil || r.retired {
		return nil
	}
	if !r.shared.looked || r.shared.lookedAt != r.closed {
		if err := r.adopt(ctx); err != nil {
			return err
		}
	}
	for _, end := range sortedKeys(r.runs) {
		if end > r.closed {
			break
		}
		if err := r.closeRun(ctx, end); err != nil {
			return err
		}
	}
	return nil
}
