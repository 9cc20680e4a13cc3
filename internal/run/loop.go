package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
)

// loop is the driver's goroutine. It evaluates jobs as they come and
// commits in groups: while one group's commit (checkpoint, sink flush,
// store transaction) runs in the background, the next jobs are evaluated
// and wait for the following commit, so the engine never waits for the
// disk.
func (d *Driver) loop() {
	defer close(d.done)
	pol := d.cfg.Policy
	every := pol.IdleCheck
	if c := pol.CommitEvery; c > 0 && (every <= 0 || c < every) {
		every = c
	}
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	d.redeliver(true)
	var waiting, inFlight []*job
	committing := false
	done := make(chan error, 1)
	var started time.Time
	start := func() {
		d.checkpoint()
		layer, err := d.ov.Freeze()
		if err != nil {
			d.ack(waiting, err)
			waiting = nil
			return
		}
		inFlight, waiting = waiting, nil
		d.dirty = false
		d.starved.Store(false)
		committing, started = true, d.cfg.Now()
		d.lastCommit = started
		go func() {
			ctx, cancel := context.WithTimeout(d.ctx, DefaultCommitTimeout)
			defer cancel()
			done <- d.ov.CommitLayer(ctx, layer)
		}()
	}
	finish := func(err error) {
		committing = false
		d.m.commitTime.Observe(d.cfg.Now().Sub(started).Seconds())
		d.mu.Lock()
		d.storeErr = err
		d.mu.Unlock()
		if err != nil {
			d.commitFailed(err)
		}
		d.ack(inFlight, err)
		inFlight = nil
	}
	due := func() bool {
		return !committing && (len(waiting) > 0 || d.dirty || d.ov.Pending() > 0) &&
			(pol.CommitEvery <= 0 || d.cfg.Now().Sub(d.lastCommit) >= pol.CommitEvery || d.starved.Load())
	}
	for {
		select {
		case j := <-d.jobs:
			waiting = d.gather(append(waiting, j), len(waiting))
			if due() {
				start()
			}
		case err := <-done:
			finish(err)
			if due() {
				start()
			}
		case <-d.wake:
			if due() {
				start()
			}
		case <-tick:
			d.idleAdvance()
			d.redeliver(false)
			if due() {
				start()
			}
		case <-d.quit:
			if committing {
				finish(<-done)
			}
			// Submissions under way queue their job or give up (quit is
			// closed); none starts any more.
			d.sending.Wait()
			for drained := false; !drained; {
				select {
				case j := <-d.jobs:
					waiting = d.gather(append(waiting, j), len(waiting))
				default:
					drained = true
				}
			}
			d.finishRun(waiting)
			return
		}
	}
}

// finishRun ends the run: at the end of the input (Close) the open runs
// close and the store is swept; then everything is committed and the last
// batches acknowledged.
func (d *Driver) finishRun(waiting []*job) {
	d.cur = nil
	var errs []error
	d.mu.RLock()
	end := d.endInput
	d.mu.RUnlock()
	if end {
		if err := d.eng.Close(d.ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot close the open runs: %w", err))
		}
		if d.cfg.Policy.SweepEvery > 0 {
			d.sweep()
		}
		d.drops.note(true)
	} else if d.cfg.GroupUpdates {
		// Stop: the groups' counts so far are delivered, the groups stay
		// open for the next run.
		if err := d.eng.DeliverGroups(d.ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot deliver the open groups: %w", err))
		}
	}
	d.checkpoint()
	t0 := d.cfg.Now()
	ctx, cancel := context.WithTimeout(d.ctx, DefaultCommitTimeout)
	err := d.ov.Commit(ctx)
	cancel()
	d.m.commitTime.Observe(d.cfg.Now().Sub(t0).Seconds())
	if err != nil {
		errs = append(errs, err)
	} else {
		d.dirty = false
	}
	d.ack(waiting, err)
	d.snapshot()
	if d.decodeQ != nil {
		close(d.decodeQ)
	}
	if d.own != nil {
		d.own.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fatal != nil {
		errs = append([]error{d.fatal}, errs...)
	}
	d.closeErr = errors.Join(errs...)
}

// commitFailed handles a commit that failed: a live run keeps the writes
// pending for the next commit (the batches are answered with the error
// and sent again); a batch run, whose batches nobody sends again, fails.
func (d *Driver) commitFailed(err error) {
	d.log.Error("cannot commit", "err", err)
	d.dirty = true
	if d.cfg.Policy.CommitEvery > 0 {
		d.setFatal(err)
	}
}

// checkpoint writes the engine's changed ES|QL runs to the overlay, so
// that the commit that follows holds them with the alert ids and positions
// of the same batches. A failure is logged: the runs stay marked changed
// and the next checkpoint writes them.
func (d *Driver) checkpoint() {
	d.drops.note(false)
	if err := d.drops.write(d.ctx); err != nil {
		d.log.Error("cannot record the drop counts and the newest event time", "err", err)
	}
	if err := d.eng.Checkpoint(d.ctx); err != nil {
		d.log.Error("cannot checkpoint the open ES|QL runs", "err", err)
	}
}

// gather runs the jobs of group from index from on, then the queued ones,
// up to the policy's group bounds.
func (d *Driver) gather(group []*job, from int) []*job {
	start := d.cfg.Now()
	events := 0
	for _, j := range group[from:] {
		events += d.run(j)
	}
	pol := d.cfg.Policy
	for events < pol.GroupEvents && d.cfg.Now().Sub(start) < pol.GroupDelay {
		select {
		case j := <-d.jobs:
			group = append(group, j)
			events += d.run(j)
			continue
		default:
		}
		break
	}
	return group
}

// ack answers the jobs of a committed group.
func (d *Driver) ack(group []*job, err error) {
	for _, j := range group {
		if j.res.Err == nil && err != nil {
			j.res.Err = err
		}
		switch {
		case j.reply != nil:
			j.reply <- j.res
		case j.b != nil && j.b.Done != nil:
			j.b.Done(j.res)
		}
		d.release(j) // its records are no longer read
	}
}

// run evaluates one job and returns the number of events it held.
func (d *Driver) run(j *job) int {
	d.m.queue.Dec()
	switch j.kind {
	case jobBatch:
		d.runBatch(j)
	case jobReload:
		d.runReload(j)
	}
	return j.res.Events
}

// reportBad counts a bad record and reports it to the current job.
func (d *Driver) reportBad(input string, b ingest.BadRecord) {
	d.m.bad.WithLabelValues(validLabel(input)).Inc()
	if j := d.cur; j != nil {
		j.res.Bad++
		if len(j.res.Errors) < maxResultErrors {
			j.res.Errors = append(j.res.Errors, b.Error())
		}
	}
	if d.cfg.OnBad != nil {
		d.cfg.OnBad(input, b)
	} else {
		d.log.Debug("bad record", "input", input, "err", b)
	}
}

func (d *Driver) runBatch(j *job) {
	b := j.b
	res := j.dec
	defer func() {
		if b.Release != nil {
			b.Release()
			b.Release = nil
		}
		if res != nil {
			putDecoded(res)
		}
	}()
	if res != nil {
		<-res.done
	}
	if err := d.failedErr(); err != nil {
		j.res.Err = err
		return
	}
	cfg := d.decodeCfg.Load()
	if res == nil || res.gen != cfg.gen {
		// Decoded here: no decoding goroutines, or decoded ahead with the
		// fields of rules since reloaded.
		if res == nil {
			res = getDecoded()
		}
		d.dec.decode(b, res, cfg)
	}
	d.cur = j
	defer func() { d.cur = nil }()
	t0 := d.cfg.Now()
	received, evaluated, untimed, dups := 0, 0, 0, 0
	eval := func(e *event.Event, cand bool) error {
		if d.dedup != nil && d.dedup.Duplicate(e) {
			dups++
			return nil
		}
		if e.ClusterName == "" {
			e.ClusterName = b.Cluster
		}
		received++
		if e.Time().IsZero() {
			if !d.cfg.Policy.UntimedAtReceipt {
				untimed++
				d.reportBad(b.Input, ingest.BadRecord{Origin: e.Origin, Err: fmt.Errorf("%w: none of stageTimestamp, requestReceivedTimestamp or the format's time", ingest.ErrNoTime)})
				return nil
			}
			e.Timestamp = j.received
		}
		if cand {
			if err := d.eng.Process(d.ctx, e); err != nil {
				return err
			}
		} else {
			d.eng.Skip(e) // no rule can match it (the prefilter)
		}
		evaluated++
		for _, o := range d.cfg.Observers {
			o.Observe(e)
		}
		return d.observe(e.Time())
	}
	for _, it := range res.items {
		var err error
		switch it.kind {
		case itemEvent:
			err = eval(&res.evs[it.ev], it.cand)
		case itemBad:
			d.reportBad(b.Input, it.bad)
		case itemSkip:
			d.m.skipped.WithLabelValues(validLabel(b.Input)).Inc()
		case itemWarn:
			d.reportWarn(b.Input, it.bad)
		case itemStrict:
			err = it.err
			d.setFatal(err)
		}
		if err != nil {
			j.res.Err = err
			break
		}
	}
	if j.res.Err == nil {
		// A replica's decisions on the shared store, for the whole batch
		// (engine.Settle); alone, nothing.
		if err := d.eng.Settle(d.ctx); err != nil {
			j.res.Err = err
		}
	}
	if b.Commit != nil && j.res.Err == nil {
		if err := d.ov.Update(d.ctx, time.Time{}, b.Commit); err != nil {
			j.res.Err = err
		}
		d.dirty = true
	}
	now := d.cfg.Now()
	if received > 0 {
		d.lastArrival = now
		d.m.evalTime.Observe(now.Sub(t0).Seconds() / float64(received))
	}
	j.res.Events, j.res.Duplicates = evaluated, dups
	d.m.counted(b.Input, b.Cluster, received, evaluated)
	st := res.stats
	d.mu.Lock()
	d.stats.Files += int64(b.Files)
	d.stats.Bytes += b.Bytes
	d.stats.Records += st.Records
	d.stats.Events += st.Events - int64(dups)
	d.stats.Bad += st.Bad + int64(untimed)
	d.stats.Skipped += st.Skipped
	d.stats.Warnings += st.Warnings
	d.stats.Duplicates += int64(dups)
	d.mu.Unlock()
	d.snapshot()
}

// reportWarn reports a record read with a warning.
func (d *Driver) reportWarn(input string, b ingest.BadRecord) {
	if d.cfg.OnWarn != nil {
		d.cfg.OnWarn(input, b)
	} else {
		d.log.Warn("record read two ways", "input", input, "err", b)
	}
}

// failedErr is the run's fatal error, if any.
func (d *Driver) failedErr() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.fatal
}

// observe moves the event-time watermark on with an event's time: runs
// that ended Lateness before the newest event time close, and the store
// is swept every SweepEvery of event time.
func (d *Driver) observe(t time.Time) error {
	if !t.After(d.newest) {
		return nil
	}
	d.newest = t
	pol := d.cfg.Policy
	if pol.Lateness >= 0 {
		if err := d.eng.Advance(d.ctx, t.Add(-pol.Lateness)); err != nil {
			return err
		}
	}
	if pol.SweepEvery > 0 && t.Sub(d.swept) >= pol.SweepEvery {
		d.sweep()
	}
	return nil
}

// sweep removes the store's entries that expired before the newest event
// time, through the engine (which first delivers the groups that ended).
func (d *Driver) sweep() {
	if d.newest.IsZero() {
		return
	}
	d.swept = d.newest
	if err := d.eng.Sweep(d.ctx); err != nil {
		d.log.Warn("cannot remove expired state", "err", err)
	}
}

// RedeliverEvery is how often (wall time) a replica looks in the shared
// store's outbox for alerts that replicas decided and did not deliver
// (engine.Redeliver).
const RedeliverEvery = 5 * time.Second

// redeliver delivers the alerts that replicas left in the outbox: at
// start, and then every RedeliverEvery.
func (d *Driver) redeliver(now bool) {
	if d.cfg.Replica == "" {
		return
	}
	t := d.cfg.Now()
	if !now && t.Sub(d.redelivered) < RedeliverEvery {
		return
	}
	d.redelivered = t
	n, err := d.eng.Redeliver(d.ctx)
	if err != nil {
		d.log.Error("cannot deliver the alerts left by replicas", "err", err)
	}
	if n > 0 {
		d.log.Info("delivered alerts that a replica decided and did not see delivered", "alerts", n)
		d.dirty = true
	}
}

// idleAdvance closes windows by the wall clock when no event has arrived
// for a while: event time is taken to go on at the wall clock's pace from
// the newest event seen, so runs close once that passes their end plus
// the lateness.
func (d *Driver) idleAdvance() {
	pol := d.cfg.Policy
	if pol.IdleCheck <= 0 || d.newest.IsZero() || pol.Lateness < 0 {
		return
	}
	idle := d.cfg.Now().Sub(d.lastArrival)
	if idle < pol.IdleCheck {
		return
	}
	w := d.newest.Add(idle - pol.Lateness)
	if !w.After(d.idleMark) || !w.After(d.newest.Add(-pol.Lateness)) {
		return
	}
	d.idleMark = w
	if err := d.eng.Advance(d.ctx, w); err != nil {
		d.log.Error("cannot close runs by the wall clock", "err", err)
	}
}

func (d *Driver) runReload(j *job) {
	eng, err := d.newEngine(j.rules)
	if err != nil {
		j.res.Err = err
		return
	}
	moved := d.eng.Handover(eng)
	if err := d.eng.Close(d.ctx); err != nil {
		d.log.Error("cannot close the open runs of the old rules", "err", err)
	}
	d.checkpoint() // deletes the runs the old engine closed
	d.log.Info("ES|QL runs carried over to the new rules", "runs", moved)
	d.retire()
	d.mu.Lock()
	d.eng = eng
	d.mu.Unlock()
	d.decodeCfg.Store(d.newDecodeConfig(d.decodeCfg.Load().gen+1, eng))
	d.dirty = true
	d.drops.rules(j.rules)
	d.m.rules.Set(float64(len(j.rules)))
	d.m.reloads.WithLabelValues("ok").Inc()
}

// snapshot copies the engine's counts into the stats.
func (d *Driver) snapshot() {
	es := d.eng.Stats()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Engine = mergeEngineStats(d.retired, es)
}

// retire keeps the counts of an engine being replaced.
func (d *Driver) retire() {
	d.retired = mergeEngineStats(d.retired, d.eng.Stats())
}

func mergeEngineStats(a, b engine.Stats) engine.Stats {
	out := engine.Stats{Events: a.Events + b.Events, Swept: a.Swept + b.Swept, Rules: map[string]*engine.RuleStats{}}
	for _, m := range []map[string]*engine.RuleStats{a.Rules, b.Rules} {
		for id, s := range m {
			t := out.Rules[id]
			if t == nil {
				t = &engine.RuleStats{}
				out.Rules[id] = t
			}
			t.Matched += s.Matched
			t.Alerts += s.Alerts
			t.Dropped += s.Dropped
			t.Suppressed += s.Suppressed
			t.Late += s.Late
			t.Errors += s.Errors
			t.Grouped += s.Grouped
			t.Updates += s.Updates
		}
	}
	return out
}
