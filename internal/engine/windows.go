package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/state"
)

// Durable ES|QL windows.
//
// With Options.Windows set to WindowsRebuild or WindowsRestore, the open
// runs of ES|QL rules are written to the store (namespace state.NSWindows)
// by Checkpoint, not per event: the per-event path only notes which runs
// changed. The guarantee is exactly this: once Checkpoint has returned and
// the store has made its write durable (at once for bolt; at the next
// commit for serve's overlay, which commits it with the alert ids and the
// acknowledgements of the same batches), the store holds, for every ES|QL
// rule, the aggregation state (or the rows) of each open run as of the
// last event processed before Checkpoint, which runs were dropped for
// their memory budget, the closed-run watermark, and the per-run alert
// counts of per-event rules (max_signals); runs closed by then are deleted.
// Events processed after the last durable Checkpoint are in no stored run.
//
// Keys and values are laid out by package state (AppendWindowRunKey and
// WindowRun for a run, AppendWindowMetaKey and WindowMeta for the
// watermark and counts). Every value carries a fingerprint of the rule's
// canonical query and schedule (windowFingerprint); an entry with another
// fingerprint (the query or schedule changed) is not restored but deleted,
// and reported through Options.OnError. A run entry expires
// WindowRetention after its end, the meta entry WindowRetention plus the
// look-back after the latest of its watermark and the runs it counts, so
// that entries nobody restores (a rule removed) are swept. How long a run
// stays open after its end (the lateness) is the caller's choice, made
// through Advance, not the engine's to know: the retention is far beyond
// any lateness.

// WindowMode chooses what the engine does with the open runs of ES|QL
// rules and the store.
type WindowMode int

const (
	// WindowsInMemory keeps open runs in memory only: a crash or a new
	// engine loses them. Rule tests use it; it is the zero value.
	WindowsInMemory WindowMode = iota
	// WindowsRebuild writes open runs at each Checkpoint, and deletes the
	// stored runs of its rules when the engine is built: the input is read
	// again from its start and the runs are rebuilt, so restoring them
	// would count the re-read events twice. kanon scan's default.
	WindowsRebuild
	// WindowsRestore writes open runs at each Checkpoint and restores them
	// when the engine is built: the input goes on after what was
	// checkpointed (serve: kube-apiserver sends again only the batches
	// that were not acknowledged, and a batch is acknowledged only after
	// the checkpoint that holds its events is committed).
	WindowsRestore
)

// String returns the mode's name, as flags spell it.
func (m WindowMode) String() string {
	switch m {
	case WindowsInMemory:
		return "memory"
	case WindowsRebuild:
		return "rebuild"
	case WindowsRestore:
		return "restore"
	}
	return fmt.Sprintf("WindowMode(%d)", int(m))
}

// ParseWindowMode returns the mode named s (memory, rebuild or restore).
func ParseWindowMode(s string) (WindowMode, error) {
	for _, m := range []WindowMode{WindowsInMemory, WindowsRebuild, WindowsRestore} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown window mode %q (memory, rebuild or restore)", s)
}

// WindowRetention is how long (in event time) after its end a stored run,
// or a rule's watermark, is kept before it expires: far longer than any
// lateness the caller keeps runs open for.
const WindowRetention = 24 * time.Hour

// windowFingerprint identifies what stored runs of r can be restored
// into: the canonical query (as esqleval's program hash) and the schedule.
func windowFingerprint(r *esqlRunner) uint64 {
	h := fnv.New64a()
	h.Write([]byte(r.rule.Program.Query().String()))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(r.sched.Interval))
	binary.BigEndian.PutUint64(b[8:], uint64(r.sched.Lookback))
	h.Write(b[:])
	return h.Sum64()
}

// runKey is the key of run end: the run's own key, or, for a replica, its
// slot under it.
func (r *esqlRunner) runKey(end int64) []byte {
	k := state.AppendWindowRunKey(make([]byte, 0, 16+len(r.rule.ID)), r.rule.ID, end)
	if r.shared != nil {
		k = state.AppendWindowSlot(k, r.shared.name)
	}
	return k
}

func (r *esqlRunner) metaKey() []byte {
	k := state.AppendWindowMetaKey(nil, r.rule.ID)
	if r.shared != nil {
		k = state.AppendWindowSlot(k, r.shared.name)
	}
	return k
}

// touch notes that run end changed since the last checkpoint. The runs
// touched between checkpoints are few and the newest is touched most, so
// the list is searched from its end.
func (r *esqlRunner) touch(end int64) {
	for i := len(r.dirty) - 1; i >= 0; i-- {
		if r.dirty[i] == end {
			return
		}
	}
	r.dirty = append(r.dirty, end)
}

// windowWrite is one write of a checkpoint.
type windowWrite struct {
	key, val []byte
	exp      time.Time
	del      bool
}

// appendWrites appends the writes that bring the store up to date with
// the runner: the runs touched since the last checkpoint, and its meta
// entry when it changed.
func (r *esqlRunner) appendWrites(ws []windowWrite) []windowWrite {
	for _, end := range r.dirty {
		st, open := r.runs[end]
		if !open {
			if _, ok := r.stored[end]; ok {
				ws = append(ws, windowWrite{key: r.runKey(end), del: true})
			}
			continue
		}
		run := state.WindowRun{Fingerprint: r.fp, Dropped: st == nil}
		if st != nil {
			run.State = st.Export()
		}
		val := state.AppendWindowRun(nil, run)
		if len(val) > state.MaxValueSize {
			start, stop := r.sched.Window(end)
			r.ruleError(fmt.Errorf("rule %s: run %s–%s not checkpointed: its state of %d bytes exceeds the store's limit of %d bytes", r.rule.ID, start.Format(time.RFC3339), stop.Format(time.RFC3339), len(val), state.MaxValueSize))
			ws = append(ws, windowWrite{key: r.runKey(end), del: true})
			continue
		}
		keep := WindowRetention
		if r.shared != nil {
			// Another replica, ahead in event time, sweeps the store:
			// the slot must outlive any lateness that keeps its run open.
			keep = ClosedRetention
		}
		ws = append(ws, windowWrite{key: r.runKey(end), val: val, exp: time.Unix(0, end).Add(keep)})
	}
	if r.shared != nil {
		ws = append(ws, r.shared.closeWrites...)
	}
	if r.metaDirty && !r.retired {
		horizon := r.closed
		meta := state.WindowMeta{Fingerprint: r.fp, Closed: r.closed, Counts: make([]state.WindowCount, 0, len(r.counter.counts))}
		for _, end := range sortedKeys(r.counter.counts) {
			meta.Counts = append(meta.Counts, state.WindowCount{End: end, Count: uint64(r.counter.counts[end])})
			horizon = max(horizon, end)
		}
		val := state.AppendWindowMeta(nil, meta)
		exp := time.Unix(0, horizon).Add(r.sched.Lookback + WindowRetention)
		ws = append(ws, windowWrite{key: r.metaKey(), val: val, exp: exp})
	}
	return ws
}

// checkpointed records that the writes of appendWrites are in the store.
func (r *esqlRunner) checkpointed() {
	for _, end := range r.dirty {
		if _, open := r.runs[end]; open {
			r.stored[end] = struct{}{}
			if c := r.shared.countOf(end); c != nil {
				c.prev, c.last = c.last, c.n
			}
		} else {
			delete(r.stored, end)
		}
	}
	r.dirty = r.dirty[:0]
	r.metaDirty = false
	if r.shared != nil {
		r.shared.closeWrites = r.shared.closeWrites[:0]
	}
}

// Checkpoint writes the open runs of the ES|QL rules that changed since
// the last checkpoint (and deletes the runs closed since) to the store, in
// one transaction; see the package's WindowMode for what is durable when.
// Its cost is an export of each changed run, not of every run, and nothing
// per event. Without a store, or in WindowsInMemory, it does nothing.
//
// A run whose exported state exceeds state.MaxValueSize is reported
// through Options.OnError and its stored copy deleted: it is not durable.
// Checkpoint returns an error only when the store fails; the runs stay
// marked as changed, so the next Checkpoint writes them. It first settles
// a replica's decisions (Settle) and writes the latest alert of each full
// dedup group as its latest sample (dedup.go), in every window mode.
func (e *Engine) Checkpoint(ctx context.Context) error {
	if err := e.Settle(ctx); err != nil {
		return err
	}
	for _, d := range e.dedups {
		if err := d.flushLatest(ctx, ""); err != nil {
			return err
		}
	}
	if !e.persist() {
		return nil
	}
	var ws []windowWrite
	for _, r := range e.esql {
		if r.shared != nil && !r.retired && (!r.shared.looked || r.shared.lookedAt != r.closed) {
			if err := r.adopt(ctx); err != nil {
				return err
			}
		}
		ws = r.appendWrites(ws)
	}
	for _, rc := range e.counts {
		ws = rc.write(ws)
	}
	if len(ws) == 0 {
		return nil
	}
	err := e.opts.Store.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for _, w := range ws {
			var err error
			if w.del {
				err = tx.Delete(w.key)
			} else {
				err = tx.Put(w.key, w.val, w.exp)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: cannot checkpoint the ES|QL runs: %w", err)
	}
	for _, r := range e.esql {
		r.checkpointed()
	}
	for _, rc := range e.counts {
		rc.changed = false
	}
	return nil
}

func (e *Engine) persist() bool {
	return e.opts.Store != nil && e.opts.Windows != WindowsInMemory
}

// notice reports a rule-level event that is not an evaluation error (runs
// not restored) through Options.OnError, without counting it in the
// rule's errors.
func (r *esqlRunner) notice(err error) {
	if r.eng.opts.OnError != nil {
		r.eng.opts.OnError(r.rule.ID, err)
	}
}

// errStaleWindow marks a stored run or watermark that cannot be restored.
var errStaleWindow = errors.New("stored ES|QL run not restored")

// loadWindows restores (WindowsRestore) or deletes (WindowsRebuild) the
// stored runs of the engine's ES|QL rules. Entries that cannot be
// restored — another fingerprint, a corrupt value, a run that closed
// before the stored watermark — are deleted and reported.
func (e *Engine) loadWindows(ctx context.Context) error {
	var dels [][]byte
	for _, r := range e.esql {
		type entry struct{ key, val []byte }
		var ents []entry
		prefix := state.AppendWindowPrefix(nil, r.rule.ID)
		err := e.opts.Store.Scan(ctx, prefix, time.Time{}, func(en state.Entry) error {
			ents = append(ents, entry{append([]byte(nil), en.Key...), append([]byte(nil), en.Value...)})
			return nil
		})
		if err != nil {
			return fmt.Errorf("engine: rule %s: cannot read the stored ES|QL runs: %w", r.rule.ID, err)
		}
		if r.shared != nil {
			// Only this replica's slots are its to restore or delete;
			// the others' are merged when their runs close.
			ents = slices.DeleteFunc(ents, func(en entry) bool {
				wk, err := state.ParseWindowKey(en.key)
				return err == nil && wk.Replica != r.shared.name
			})
		}
		if e.opts.Windows != WindowsRestore {
			for _, en := range ents {
				dels = append(dels, en.key)
			}
			continue
		}
		dropped := 0
		var why error
		drop := func(key []byte, err error) {
			dels = append(dels, key)
			dropped++
			if why == nil {
				why = err
			}
		}
		type run struct {
			entry
			end int64
		}
		var runs []run
		for _, en := range ents {
			wk, err := state.ParseWindowKey(en.key)
			if err != nil {
				drop(en.key, fmt.Errorf("malformed key %q", en.key))
				continue
			}
			if wk.Meta {
				if err := r.importMeta(en.val); err != nil {
					drop(en.key, err)
				}
				continue
			}
			runs = append(runs, run{en, wk.End})
		}
		for _, en := range runs {
			if err := r.importRun(en.end, en.val); err != nil {
				drop(en.key, err)
			}
		}
		if dropped > 0 {
			r.notice(fmt.Errorf("rule %s: %w: %d stored entries deleted (first: %v)", r.rule.ID, errStaleWindow, dropped, why))
		}
		if r.shared != nil {
			if err := r.adopt(ctx); err != nil {
				return err
			}
		}
	}
	if len(dels) == 0 {
		return nil
	}
	err := e.opts.Store.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for _, k := range dels {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: cannot delete stored ES|QL runs: %w", err)
	}
	return nil
}

// checkFingerprint reports whether a stored entry was made with r's query
// and schedule.
func (r *esqlRunner) checkFingerprint(fp uint64) error {
	if fp != r.fp {
		return errors.New("the rule's query or schedule changed")
	}
	return nil
}

func (r *esqlRunner) importMeta(val []byte) error {
	m, err := state.DecodeWindowMeta(val)
	if err != nil {
		return err
	}
	if err := r.checkFingerprint(m.Fingerprint); err != nil {
		return err
	}
	counts := make(map[int64]int, len(m.Counts))
	for _, c := range m.Counts {
		if c.Count > uint64(r.rule.Schedule.MaxSignals) {
			return errors.New("malformed run count")
		}
		counts[c.End] = int(c.Count)
	}
	r.closed = max(r.closed, m.Closed)
	r.counter.counts = counts
	return nil
}

func (r *esqlRunner) importRun(end int64, val []byte) error {
	run, err := state.DecodeWindowRun(val)
	if err != nil {
		return err
	}
	if err := r.checkFingerprint(run.Fingerprint); err != nil {
		return err
	}
	if end <= r.closed {
		return errors.New("the run closed before the stored watermark")
	}
	if run.Dropped {
		r.runs[end] = nil
	} else {
		st := r.rule.Program.NewState()
		if err := st.Import(run.State); err != nil {
			if errors.Is(err, esqleval.ErrBudgetExceeded) {
				r.runs[end] = nil // as when it was collected
				r.stored[end] = struct{}{}
				r.touch(end)
				return nil
			}
			return err
		}
		r.runs[end] = st
	}
	r.stored[end] = struct{}{}
	return nil
}

// Handover moves the open runs of e's ES|QL rules to next, a new engine
// (a rule reload), for every rule that next runs with the same query and
// schedule; those runs go on in next as if no reload happened, and runs
// next restored from the store for them are replaced. It returns the
// number of runs moved. The runs of e's other ES|QL rules stay in e, for
// e.Close to close. After Handover, e's Checkpoint writes only deletions
// (of the runs e.Close closes), never the state of a rule next owns; call
// it before dropping e. Both engines must be used from the caller's
// goroutine.
func (e *Engine) Handover(next *Engine) int {
	byID := make(map[string]*esqlRunner, len(next.esql))
	for _, n := range next.esql {
		byID[n.rule.ID] = n
	}
	moved := 0
	for _, r := range e.esql {
		r.retired = true
		n := byID[r.rule.ID]
		if n == nil || n.fp != r.fp {
			continue
		}
		moved += len(r.runs)
		// What next restored from the store is older than r's runs:
		// rewrite every run either knows of at next's next checkpoint.
		for end := range n.stored {
			r.touch(end)
			r.stored[end] = struct{}{}
		}
		n.runs, n.closed, n.counter = r.runs, r.closed, r.counter
		n.stored, n.dirty, n.metaDirty = r.stored, r.dirty, true
		r.runs, r.counter, r.stored, r.dirty = map[int64]*esqleval.State{}, runCounter{}, map[int64]struct{}{}, nil
	}
	if e.newest.After(next.newest) {
		next.newest = e.newest
	}
	return moved
}
