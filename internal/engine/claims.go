package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/state"
)

// Decisions shared by replicas.
//
// Engines that share one store as replicas (Options.Replica and
// Options.Shared set: kanon serve replicas on one Redis) may see events
// that decide the same thing at the same time: two events of one new term,
// two alerts of one dedup group, one event sent again to another replica.
// One engine alone decides from its own reads; replicas must not, since
// each would read the store before the other's commit and both would
// decide alike. So in replica mode every decision is taken in a
// transaction on the shared store, which is serialisable across its
// clients (state/redis: optimistic, run again on conflict):
//
//   - an alert is raised if its id is not marked raised, and marking it
//     is part of the decision (AlertIDs.MarkAtTx);
//   - a new term raises its alert only if the transaction finds the term
//     new (Terms.ObserveAtTx): of two replicas, one records it first and
//     the other finds it known;
//   - an alert of a rule with a dedup key opens or joins its group in the
//     transaction (Groups.AddAtTx), so a group opens once and counts each
//     member once; the delivery of a group's count is decided in a
//     transaction too (Groups.DeliveredTx), so one replica delivers it;
//   - an ES|QL run shared by replicas is closed by the transaction that
//     writes its closed mark (replicas.go): one replica raises its alerts.
//
// Each alert so decided is written to the outbox (state.NSOutbox) in the
// same transaction, under this replica's name and the wall time, and
// delivered after it commits; its entry is deleted through the write
// overlay (Options.Store), whose commit follows the flush of the outputs.
// A replica that dies between the decision and that commit leaves its
// entries: Redeliver, which the driver calls when it starts and every few
// seconds, delivers the entries of a run of this replica's that ended
// (owned by its name, claimed before this engine was built) at once, and
// those of any replica once they are OutboxLease old, taking each over in
// a transaction first. An alert is therefore decided once and delivered
// at least once, always under the same id (twice only when its replica
// died or stalled past the lease around its delivery).
//
// The decisions of the events of a batch are queued as the events are
// processed, and taken in one transaction when the caller settles them
// (Settle, after each batch; Checkpoint, Advance when something closes,
// Sweep and Close settle first). The transaction reads the keys of every
// queued decision in one round trip (state.Prefetch), so a batch's
// decisions cost two round trips whatever their number, plus one more
// pair per conflict. Within the transaction the decisions run in the
// order of their events, each at its event's time (the views' ...AtTx
// forms), seeing the ones before it: two events of one new term in a
// batch raise one alert, as they would alone. Their alerts are delivered
// when the batch settles, after the alerts no decision gates (alerts of
// events without a time): in replica mode the output's order within a
// batch is that of settling. The deliveries of groups and the closing of
// runs are rarer and take a transaction each.
//
// The hits of scheduled KQL and new_terms rules take their max_signals
// slot in the same transaction, from run counts shared by the replicas
// (counts.go): together they raise at most max_signals alerts per run.
//
// What is not shared: the max_signals counts of scheduled ES|QL rules
// without STATS (each replica counts its own hits), and the choice of the
// event that raises a new term, or of the hits a full run raises, when
// replicas see events out of order (the one whose transaction commits
// first wins).

// DefaultOutboxLease is how long an outbox entry belongs to the replica
// that wrote it before another may deliver it (Options.OutboxLease).
const DefaultOutboxLease = time.Minute

// claimer queues and takes the decisions of a replica.
type claimer struct {
	e       *Engine
	shared  state.Store
	replica string
	now     func() time.Time
	lease   time.Duration
	started time.Time // wall time the engine was built

	queue []claim
	keys  [][]byte      // the keys the queued decisions read, to prefetch
	res   []claimResult // per queued decision, reset at each attempt
	gone  [][]byte      // outbox keys of alerts delivered, to delete
	byID  map[string]*base
}

// claim is one queued decision. decide runs inside the shared
// transaction and may run more than once (on conflicts): it must write
// only to tx and res. done runs once after the commit, with the result of
// the attempt that committed.
type claim struct {
	decide func(tx state.Tx, wall time.Time, res *claimResult) error
	done   func(ctx context.Context, res *claimResult) error
}

// claimResult is what a decision decided.
type claimResult struct {
	deliver []outboxed // alerts to deliver, in order
	// suppressed: the alert was raised before; known: the term was not
	// new after all; joined: the alert joined an open group.
	suppressed, known, joined bool
	// dropped: the hit found every run that reads it full (max_signals,
	// shared: counts.go); run is the end of the run it counts in, or of
	// the first that reads it when dropped.
	dropped bool
	run     int64
	updates int64     // group updates among deliver
	end     time.Time // the group's end (dedup)
	id      string    // the group's id (dedup)
	at      time.Time // the alert's event time (dedup)
}

// outboxed is an alert decided and written to the outbox under key.
type outboxed struct {
	a   *alert.Alert
	key []byte
}

func newClaimer(e *Engine) (*claimer, error) {
	o := e.opts
	if o.Now == nil {
		return nil, errors.New("engine: a replica sharing its store needs a wall clock (Options.Now)")
	}
	lease := o.OutboxLease
	if lease <= 0 {
		lease = DefaultOutboxLease
	}
	return &claimer{e: e, shared: o.Shared, replica: o.Replica, now: o.Now, lease: lease,
		started: o.Now(), byID: map[string]*base{}}, nil
}

// add queues a decision reading keys.
func (c *claimer) add(cl claim, keys ...[]byte) {
	c.queue = append(c.queue, cl)
	c.keys = append(c.keys, keys...)
}

// settle takes the queued decisions in one transaction on the shared
// store, then runs their done functions in order and queues the deletion
// of the delivered alerts' outbox entries in the overlay. If the
// transaction fails, the decisions are dropped and nothing is delivered:
// the events are evaluated again when their batch is sent again.
func (c *claimer) settle(ctx context.Context) error {
	if len(c.queue) == 0 {
		return nil
	}
	q := c.queue
	c.queue = nil
	defer func() { c.keys = c.keys[:0] }()
	if cap(c.res) < len(q) {
		c.res = make([]claimResult, len(q))
	}
	res := c.res[:len(q)]
	err := c.shared.Update(ctx, time.Time{}, func(tx state.Tx) error {
		if err := state.Prefetch(tx, c.keys); err != nil {
			return err
		}
		wall := c.now()
		for i := range q {
			res[i] = claimResult{}
			if err := q[i].decide(tx, wall, &res[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		clear(res)
		return fmt.Errorf("engine: cannot take the decisions of %d events on the shared store: %w", len(q), err)
	}
	for i := range q {
		if err := q[i].done(ctx, &res[i]); err != nil {
			clear(res)
			return err
		}
	}
	clear(res)
	return c.forget(ctx)
}

// now1 takes one decision at once, in a transaction of its own.
func (c *claimer) now1(ctx context.Context, cl claim) error {
	if err := c.settle(ctx); err != nil {
		return err
	}
	var res claimResult
	err := c.shared.Update(ctx, time.Time{}, func(tx state.Tx) error {
		res = claimResult{}
		return cl.decide(tx, c.now(), &res)
	})
	if err != nil {
		return fmt.Errorf("engine: cannot take a decision on the shared store: %w", err)
	}
	if err := cl.done(ctx, &res); err != nil {
		return err
	}
	return c.forget(ctx)
}

// outbox writes alert a, decided at event time at, to the outbox as
// delivery seq and adds it to res's deliveries.
func (c *claimer) outbox(tx state.Tx, b *base, a *alert.Alert, seq uint64, at, wall time.Time, res *claimResult) error {
	enc, err := alert.Marshal(a)
	if err != nil {
		return fmt.Errorf("rule %s: cannot encode alert %s: %w", b.rule.ID, a.ID, err)
	}
	key := state.AppendOutboxKey(nil, b.rule.ID, a.ID, seq)
	val := state.AppendOutboxValue(nil, state.OutboxEntry{Owner: c.replica, ClaimedAt: wall, Alert: enc})
	if err := tx.Put(key, val, at.Add(AlertRetention)); err != nil {
		return err
	}
	res.deliver = append(res.deliver, outboxed{a: a, key: key})
	return nil
}

// deliver writes res's alerts to the sink and notes their outbox entries
// for deletion.
func (c *claimer) deliver(ctx context.Context, b *base, res *claimResult) error {
	for _, o := range res.deliver {
		if err := b.write(ctx, o.a); err != nil {
			return err
		}
		c.gone = append(c.gone, o.key)
	}
	return nil
}

// forget deletes, through the overlay, the outbox entries of the alerts
// delivered: the overlay commits the deletions after the outputs flushed.
func (c *claimer) forget(ctx context.Context) error {
	if len(c.gone) == 0 {
		return nil
	}
	err := c.e.opts.Store.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for _, k := range c.gone {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: cannot note alerts delivered: %w", err)
	}
	c.gone = c.gone[:0]
	return nil
}

// Settle takes the decisions queued by the events processed since the
// last Settle and delivers their alerts (see claims.go). It does nothing
// unless the engine is a replica sharing its store (Options.Shared). The
// driver calls it after each batch, before acknowledging it.
func (e *Engine) Settle(ctx context.Context) error {
	if e.claims == nil {
		return nil
	}
	return e.claims.settle(ctx)
}

// Redeliver delivers the alerts that replicas decided to raise and did not
// see delivered: those of an earlier run of this replica at once, those of
// other replicas once they are Options.OutboxLease old. It returns how
// many it delivered. It does nothing unless the engine is a replica
// sharing its store. Alerts of rules this engine does not run are left
// for a replica that runs them (or until they expire).
func (e *Engine) Redeliver(ctx context.Context) (int, error) {
	c := e.claims
	if c == nil {
		return 0, nil
	}
	if err := c.settle(ctx); err != nil {
		return 0, err
	}
	wall := c.now()
	type pending struct {
		key []byte
		oe  state.OutboxEntry
	}
	var todo []pending
	// Through the overlay: an entry whose deletion is pending there was
	// delivered.
	err := state.ScanOutbox(ctx, e.opts.Store, func(key []byte, oe state.OutboxEntry) error {
		if c.byID[oe.Rule] == nil {
			return nil
		}
		mine := oe.Owner == c.replica && oe.ClaimedAt.Before(c.started)
		if mine || !oe.ClaimedAt.Add(c.lease).After(wall) {
			todo = append(todo, pending{bytes.Clone(key), oe})
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("engine: cannot read the outbox: %w", err)
	}
	n := 0
	for _, p := range todo {
		took := false
		err := c.shared.Update(ctx, time.Time{}, func(tx state.Tx) (err error) {
			took, err = state.TakeOutboxTx(tx, p.key, p.oe, c.replica, wall)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("engine: cannot take over an alert of the outbox: %w", err)
		}
		if !took {
			continue // delivered, or taken over, meanwhile
		}
		b := c.byID[p.oe.Rule]
		a := &alert.Alert{}
		if err := json.Unmarshal(p.oe.Alert, a); err != nil {
			b.ruleError(fmt.Errorf("rule %s: the outbox holds an alert that does not decode (%v): dropped", b.rule.ID, err))
			c.gone = append(c.gone, p.key)
			continue
		}
		if err := b.write(ctx, a); err != nil {
			return n, err
		}
		c.gone = append(c.gone, p.key)
		n++
	}
	return n, c.forget(ctx)
}

// claimHit queues the decision of alert a, the hit at event time at of a
// rule whose runs count max_signals on the shared store (sharesSignals):
// unless it was raised before, it takes a slot in a run that reads it,
// then is raised or joins its group; with every such run full it is
// dropped.
func (b *base) claimHit(a *alert.Alert, at time.Time) error {
	if b.dedup != nil && b.keyOf == a {
		return b.dedup.claimGroup(a, b.key, at, true)
	}
	b.claimAlert(a, at, true)
	return nil
}

// takeSlot is the part of a hit's decision that takes its run's slot
// (sharedSlot): it sets res.run, and res.dropped when every run is full,
// else a's window.
func (b *base) takeSlot(tx state.Tx, a *alert.Alert, at time.Time, res *claimResult) error {
	end, ok, err := sharedSlot(tx, b, at)
	if err != nil {
		return err
	}
	res.run, res.dropped = end, !ok
	a.Window = nil
	if ok {
		a.Window = b.window(end)
	}
	return nil
}

// dropped is done's part for a hit that found its runs full.
func (b *base) dropped(ctx context.Context, a *alert.Alert, res *claimResult) error {
	return b.drop(ctx, res.run, 1, func() []*alert.Alert { return []*alert.Alert{a} })
}

// claimAlert queues the decision to raise a, an alert at event time at of
// a rule without a dedup key: raised unless its id is marked, and, if
// slot, only when a run that reads it has room (claimHit).
func (b *base) claimAlert(a *alert.Alert, at time.Time, slot bool) {
	c := b.eng.claims
	keys := [][]byte{b.ids.AppendKey(nil, []byte(a.ID))}
	if slot {
		keys = append(keys, sharedCountsKey(b))
	}
	c.add(claim{
		decide: func(tx state.Tx, wall time.Time, res *claimResult) error {
			if slot {
				if _, raised, err := b.ids.RaisedTx(tx, []byte(a.ID), at); err != nil || raised {
					res.suppressed = raised
					return err
				}
				if err := b.takeSlot(tx, a, at, res); err != nil || res.dropped {
					return err
				}
			}
			first, err := b.ids.MarkAtTx(tx, []byte(a.ID), at)
			if err != nil || !first {
				res.suppressed = !first
				return err
			}
			return c.outbox(tx, b, a, 0, at, wall, res)
		},
		done: func(ctx context.Context, res *claimResult) error {
			switch {
			case res.suppressed:
				b.stats.Suppressed++
				return nil
			case res.dropped:
				return b.dropped(ctx, a, res)
			}
			b.stats.Alerts++
			return c.deliver(ctx, b, res)
		},
	}, keys...)
}

// claimGroup queues the decision of alert a at event time at, of a rule
// with a dedup key: what dedup.add does alone, in the shared transaction;
// if slot, only when a run that reads it has room (claimHit).
func (d *dedup) claimGroup(a *alert.Alert, key string, at time.Time, slot bool) error {
	b := d.b
	c := b.eng.claims
	var sample []byte // with slot, encoded in the decision, with its window
	keys := [][]byte{b.ids.AppendKey(nil, []byte(a.ID)), d.groups.AppendKey(nil, []byte(key))}
	if slot {
		keys = append(keys, sharedCountsKey(b))
	} else {
		var err error
		if sample, err = alert.Marshal(a); err != nil {
			return fmt.Errorf("rule %s: cannot encode alert %s: %w", b.rule.ID, a.ID, err)
		}
	}
	c.add(claim{
		decide: func(tx state.Tx, wall time.Time, res *claimResult) error {
			if _, raised, err := b.ids.RaisedTx(tx, []byte(a.ID), at); err != nil || raised {
				res.suppressed = raised
				return err
			}
			sample := sample
			if slot {
				if err := b.takeSlot(tx, a, at, res); err != nil || res.dropped {
					return err
				}
				var err error
				if sample, err = alert.Marshal(a); err != nil { // with its window
					return fmt.Errorf("rule %s: cannot encode alert %s: %w", b.rule.ID, a.ID, err)
				}
			}
			return d.decideGroup(tx, a, key, sample, at, wall, res)
		},
		done: func(ctx context.Context, res *claimResult) error {
			switch {
			case res.suppressed:
				b.stats.Suppressed++
				return nil
			case res.dropped:
				return b.dropped(ctx, a, res)
			}
			return d.grouped(ctx, key, res)
		},
	}, keys...)
	return nil
}

// decideGroup adds alert a (sample: its encoding) at event time at to its
// group under key in tx, marks it raised, and decides what to deliver:
// the group stored there if it ended and grew since its last delivery,
// and a itself if it opens a group and groups are delivered as they open
// (Options.GroupUpdates).
func (d *dedup) decideGroup(tx state.Tx, a *alert.Alert, key string, sample []byte, at, wall time.Time, res *claimResult) error {
	b := d.b
	k := []byte(key)
	// The group stored under the key, whatever its expiry (the
	// transaction is judged at the zero time): one that ended and grew
	// since its last delivery is delivered first.
	g, found, err := d.groups.GetTx(tx, k)
	if err != nil {
		return err
	}
	res.joined = found && g.OpenAt(at)
	if found && !res.joined && g.Delivered < g.Count {
		if err := d.claimUpdate(tx, k, g, at, wall, res); err != nil {
			return err
		}
	}
	ng, opened, err := d.groups.AddAtTx(tx, k, a.ID, sample, at)
	if err != nil {
		return err
	}
	res.end, res.id, res.at = ng.End, ng.ID, at
	if _, err := b.ids.MarkAtTx(tx, []byte(a.ID), at); err != nil {
		return err
	}
	if opened && b.eng.opts.GroupUpdates {
		a.Group = &alert.Group{Key: key, Count: 1, FirstSeen: at, LastSeen: at}
		if _, err := d.groups.DeliveredTx(tx, k, a.ID, 1); err != nil {
			return err
		}
		return b.eng.claims.outbox(tx, b, a, 1, at, wall, res)
	}
	return nil
}

// grouped is done's part for an alert decided by decideGroup.
func (d *dedup) grouped(ctx context.Context, key string, res *claimResult) error {
	b := d.b
	if err := b.eng.claims.deliver(ctx, b, res); err != nil {
		return err
	}
	b.stats.Updates += res.updates
	og := openGroup{id: res.id, end: res.end, sent: res.at}
	if prev, ok := d.open[key]; ok && prev.id == res.id {
		og.sent = prev.sent
	}
	if res.joined {
		d.grew(key, og)
		b.stats.Grouped++
	} else {
		d.open[key] = og
		b.stats.Alerts++
	}
	return nil
}

// claimUpdate decides, in tx, the delivery of group g under key with its
// current count.
func (d *dedup) claimUpdate(tx state.Tx, key []byte, g state.Group, at, wall time.Time, res *claimResult) error {
	if _, err := d.groups.DeliveredTx(tx, key, g.ID, g.Count); err != nil {
		return err
	}
	if g.Delivered > 0 {
		res.updates++
	}
	return d.b.eng.claims.outbox(tx, d.b, d.update(key, g), uint64(g.Count), at, wall, res)
}

// claimDeliver delivers the group under key, if it is still the group
// with id and grew since its last delivery, deciding so in a transaction
// of its own: of the replicas that hold the group open, one delivers it.
func (d *dedup) claimDeliver(ctx context.Context, key []byte, id string) error {
	b := d.b
	c := b.eng.claims
	return c.now1(ctx, claim{
		decide: func(tx state.Tx, wall time.Time, res *claimResult) error {
			g, found, err := d.groups.GetTx(tx, key)
			if err != nil || !found || g.ID != id || g.Delivered >= g.Count {
				return err
			}
			return d.claimUpdate(tx, key, g, g.LastSeen, wall, res)
		},
		done: func(ctx context.Context, res *claimResult) error {
			b.stats.Updates += res.updates
			return c.deliver(ctx, b, res)
		},
	})
}

// claimTerm queues the decision of the term term of the event at event
// time at: it is recorded, and alert a (nil: nothing to raise, the term is
// only learned) is raised if the transaction finds the term new and the
// alert not raised. undo, if not nil, gives back the run's max_signals
// slot of an alert not raised; without it (sharesSignals) the alert takes
// its slot in the transaction, once the term is found new.
func (r *newTermsRunner) claimTerm(term []byte, at time.Time, a *alert.Alert, undo func()) error {
	c := r.eng.claims
	term = bytes.Clone(term)
	keys := [][]byte{r.terms.AppendKey(nil, term)}
	var group string
	var sample []byte
	grouped := a != nil && r.dedup != nil && r.keyOf == a
	if a != nil {
		keys = append(keys, r.ids.AppendKey(nil, []byte(a.ID)))
	}
	if grouped {
		group = r.base.key
		var err error
		if sample, err = alert.Marshal(a); err != nil {
			return fmt.Errorf("rule %s: cannot encode alert %s: %w", r.rule.ID, a.ID, err)
		}
		keys = append(keys, r.dedup.groups.AppendKey(nil, []byte(group)))
	}
	slot := a != nil && undo == nil
	if slot {
		keys = append(keys, sharedCountsKey(r.base))
	}
	c.add(claim{
		decide: func(tx state.Tx, wall time.Time, res *claimResult) error {
			raised := false
			if a != nil {
				var err error
				if _, raised, err = r.ids.RaisedTx(tx, []byte(a.ID), at); err != nil {
					return err
				}
			}
			_, isNew, err := r.terms.ObserveAtTx(tx, term, at)
			if err != nil || a == nil {
				return err
			}
			switch {
			case raised:
				res.suppressed = true
				return nil
			case !isNew:
				res.known = true
				return nil
			}
			sample := sample
			if slot {
				if err := r.takeSlot(tx, a, at, res); err != nil || res.dropped {
					return err
				}
				if grouped {
					if sample, err = alert.Marshal(a); err != nil { // with its window
						return fmt.Errorf("rule %s: cannot encode alert %s: %w", r.rule.ID, a.ID, err)
					}
				}
			}
			if grouped {
				return r.dedup.decideGroup(tx, a, group, sample, at, wall, res)
			}
			if _, err := r.ids.MarkAtTx(tx, []byte(a.ID), at); err != nil {
				return err
			}
			return c.outbox(tx, r.base, a, 0, at, wall, res)
		},
		done: func(ctx context.Context, res *claimResult) error {
			if a == nil {
				return nil
			}
			switch {
			case res.suppressed:
				r.stats.Suppressed++ // a slot it took locally stays taken, as alone
			case res.known:
				if undo != nil {
					undo() // another replica, or an earlier event of the batch, saw it first
				}
			case res.dropped:
				return r.dropped(ctx, a, res)
			case grouped:
				return r.dedup.grouped(ctx, group, res)
			default:
				r.stats.Alerts++
				return c.deliver(ctx, r.base, res)
			}
			return nil
		},
	}, keys...)
	return nil
}
