package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/state"
)

// Alert grouping (Panther's dedup). A rule with `dedup: {key, period}`
// groups its alerts by the rendered key: the first alert of a key opens a
// group that takes every alert with that key until its event time plus the
// period; the next alert after that opens a new group.
//
// Delivery is always under the id of the alert that opened the group, as
// that alert (title, fields, event) with its group (count, first and last
// event times, samples). When it happens depends on Options.GroupUpdates:
//
//   - false, the default (kanon scan, rule tests): a group is delivered
//     once, when it closes, with its final count. A scan's output has one
//     line per group; nothing is sent twice.
//   - true (a long-running serve): the opening alert is delivered at once
//     with group.count = 1, so the person on call is told without delay
//     and once; when the group closes, if more alerts joined it, it is
//     delivered again as an update with the new count, last_seen and
//     samples. A downstream SIEM upserts by id; the table shows "(xN)".
//     With Options.GroupUpdateEvery, an open group that grew is also
//     delivered as it grows, at most once per that much event time since
//     its last delivery (checked as the watermark moves): "60 requests from
//     zgrab in 2 minutes" while the burst goes on, not only when its period
//     is over.
//
// A group closes when event time passes its end: at Advance (the caller's
// watermark: internal/run's driver moves it as event time moves on when a
// lateness is set, and by the wall clock when an input is idle), when an
// alert with its key arrives after the end, and at Close, which delivers
// every group whose count grew since its last delivery, closed or not (the
// end of a scan, the shutdown of serve). A group still open at Close may
// grow in a later scan with the same state store and is then delivered
// again with the larger count. Alerts joining a group are counted in
// RuleStats.Grouped, deliveries of a group delivered before in
// RuleStats.Updates; a group counts once in RuleStats.Alerts, when it opens.
//
// State. Groups live in the store (state.Groups): count, first and last
// event times, the count last delivered and a few samples (the member
// alerts as JSON: the first DefaultMaxSamples-1 and the latest). An entry
// expires one period after its group ends. Once the samples of a group
// this engine holds open are full, an alert that joins it is counted
// without being encoded, and the newest such alert of each group is
// written as its latest sample at each Checkpoint and before the group is read for
// delivery (the one place the samples are read): once per group per
// commit rather than once per alert, with the same samples delivered. A
// latest alert larger than the sample limit is not kept, and the group
// keeps the latest sample written before it (per alert, it kept the
// newest one under the limit). Those alerts are added to their group's
// count at the same time, once per group (Groups.JoinManyTx): a burst
// rewrites its group once per commit, not once per alert. Every member
// alert's id is marked raised as it is counted, and the driver checkpoints
// before it commits, so a mark and its count reach the store in the same
// commit, and a re-run over the same input never counts an event twice.
// Replicas count each alert in its group at once (Groups.JoinTx).
//
// Crashes. Opening alerts follow emitWith's order (write, then commit); an
// update is written, then its count recorded as delivered. A re-run after
// a crash therefore repeats at most the last opening alert or update, with
// the same id and count, which the alerts file drops.
//
// Alerts built from an event (KQL rules of every firing, non-aggregating
// ES|QL) are grouped; aggregating ES|QL alerts, already one per group of
// rows, are not. What reaches the groups depends on the rule's firing: a
// per-event rule (Panther's) has no runs, so every matching event joins
// its group and a group's count is exact however many events arrive; a
// scheduled rule (Elastic's semantics) counts its alerts against each
// run's max_signals first, and the alerts over it never reach a group.
// An event without a time is delivered alone, ungrouped: a group's period
// is event time.
type dedup struct {
	b      *base
	groups *state.Groups
	max    int // the samples a group keeps
	// open are the groups this engine opened or joined, by key, so that
	// Advance can close them without scanning the store, and so that an
	// alert joining a group whose samples are full needs no read.
	open map[string]openGroup
	// latest are the newest alerts of full groups, not yet written as
	// their groups' latest samples: written once per group at each
	// Checkpoint and before a group is read for delivery, instead of once
	// per alert.
	latest map[string]latestAlert
	// joins are the alerts tryJoin counted in full groups this engine
	// holds open, not yet added to their groups' counts: written with
	// the latest samples (flushLatest), once per group per commit rather
	// than once per alert. Each alert's id is marked raised as it comes.
	joins map[string]pendingJoins
	// spare is the storage of an event copy no latest alert refers to.
	spare *heldEvent
	// mark is the transaction of tryJoin's marks, made once.
	mark joinMark
	// nextUpdate is the earliest watermark at which a grown group is due
	// for an update (GroupUpdateEvery), the zero time if none is.
	nextUpdate time.Time
}

// joinMark marks an alert id raised unless it was (tryJoin): update is
// its transaction, run, as a function made once rather than a closure per
// alert; first is set to whether it marked id.
type joinMark struct {
	ids    *state.AlertIDs
	id     string
	first  bool
	update func(tx state.Tx) error
}

func (m *joinMark) run(tx state.Tx) (err error) {
	m.first, err = m.ids.MarkUnlessLiveTx(tx, []byte(m.id))
	return err
}

// pendingJoins are alerts counted in a group and not yet written: how
// many, the earliest and latest of their event times.
type pendingJoins struct {
	n           int64
	first, last time.Time
}

// latestAlert is the newest alert of a full group: built, or to be built
// from a copy of its event when it is written (tryJoin).
type latestAlert struct {
	a     *alert.Alert
	build joinedAlerts // builds the alert id of held's event, if a is nil
	b     *base
	id    string
	held  *heldEvent // the copy of the event build reads, if any
}

// joinedAlerts builds the alert with id of an event whose alert joined a
// group unbuilt (tryJoin), from a copy of the event: the per-event
// runners, passed as themselves so that a join allocates no closure.
type joinedAlerts interface {
	joinedAlert(e *event.Event, id string) *alert.Alert
}

// heldEvent is a copy of an event that outlives its batch, in storage of
// its own, reused (dedup.spare) once the alert it was kept for is replaced
// by a newer one: a burst joining a full group copies each event without
// allocating.
type heldEvent struct {
	ev    event.Event
	arena []byte
}

func (l latestAlert) alert() *alert.Alert {
	if l.a == nil {
		keyOf, k := l.b.keyOf, l.b.key
		l.a = l.build.joinedAlert(&l.held.ev, l.id)
		l.b.keyOf, l.b.key = keyOf, k
	}
	return l.a
}

// openGroup is what an engine knows of a group it opened or joined.
type openGroup struct {
	id      string
	end     time.Time
	samples int // the samples it holds
	// grown: alerts joined it (here) since sent, the event time of its
	// last delivery here (or of its opening).
	grown bool
	sent  time.Time
}

func newDedup(b *base) (*dedup, error) {
	if b.eng.opts.Store == nil {
		return nil, fmt.Errorf("engine: rule %s groups alerts (dedup) and needs a state store", b.rule.ID)
	}
	gs, err := state.NewGroups(b.eng.decisions(), state.GroupsConfig{Rule: b.rule.ID, Period: b.rule.Dedup.Period.D()})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return &dedup{b: b, groups: gs, max: gs.Config().MaxSamples, open: map[string]openGroup{}, latest: map[string]latestAlert{},
		joins: map[string]pendingJoins{}}, nil
}

// restoreOpen takes the groups stored for the rule as this engine's open
// groups, so that the watermark (also the idle clock) closes and delivers
// them as it would have before a restart, without waiting for a sweep.
func (d *dedup) restoreOpen(ctx context.Context) error {
	err := d.groups.Scan(ctx, time.Time{}, func(key []byte, g state.Group) error {
		d.open[string(key)] = openGroup{id: g.ID, end: g.End, samples: len(g.Samples), sent: g.LastSeen, grown: g.Delivered < g.Count}
		return nil
	})
	if err != nil {
		return fmt.Errorf("engine: rule %s: cannot read its alert groups: %w", d.b.rule.ID, err)
	}
	return nil
}

// errNotJoined aborts the transaction of a join that found no open group.
var errNotJoined = errors.New("engine: no open group to join")

// join counts alert a at event time at in its open group under key
// without encoding it: the group's samples are full, so a is only its
// latest sample, written later (flushLatest). It reports false, having
// written nothing, if the store holds no group open at at under key.
func (d *dedup) join(ctx context.Context, a *alert.Alert, key string, og openGroup, at time.Time, commit func(tx state.Tx) error) (bool, error) {
	return d.joinAs(ctx, a.ID, latestAlert{a: a}, key, og, at, commit)
}

// joinAs is join for the alert with id, latest its latest-sample form.
func (d *dedup) joinAs(ctx context.Context, id string, latest latestAlert, key string, og openGroup, at time.Time, commit func(tx state.Tx) error) (bool, error) {
	err := d.b.commit(ctx, id, at, func(tx state.Tx) error {
		if commit != nil {
			if err := commit(tx); err != nil {
				return err
			}
		}
		_, n, joined, err := d.groups.JoinTx(tx, []byte(key), at)
		if err == nil && !joined {
			err = errNotJoined
		}
		og.samples = n
		return err
	})
	if errors.Is(err, errNotJoined) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d.grew(key, og)
	d.latest[key] = latest
	d.b.stats.Grouped++
	return true, nil
}

// joinLater counts an alert at event time at, which tryJoin has just
// marked raised, in the group under key, which this engine holds open
// (og, open at at) with its samples full: it is added to the group's
// count with the latest sample (flushLatest). Only this engine writes the
// group until then, and every read of it comes after a flushLatest.
func (d *dedup) joinLater(latest latestAlert, key string, og openGroup, at time.Time) {
	pj, ok := d.joins[key]
	switch {
	case !ok:
		pj.first, pj.last = at, at
	case at.Before(pj.first):
		pj.first = at
	case at.After(pj.last):
		pj.last = at
	}
	pj.n++
	d.joins[key] = pj
	d.grew(key, og)
	d.latest[key] = latest
	d.b.stats.Grouped++
}

// tryJoin counts the alert with id of event e at time at in its group
// without building it, when the group is one this engine holds open and
// its samples are full: the common case of a burst. build makes the
// alert from an event; it is called, on a copy of e, only if the alert
// becomes the latest sample written. It reports whether the alert was
// counted (or was raised before: suppressed); if not, the caller builds
// the alert and emits it as usual. Events whose repeated keys read two
// ways, and replicas deciding on a shared store, take the usual path.
func (b *base) tryJoin(ctx context.Context, e *event.Event, id string, at time.Time, build joinedAlerts) (bool, error) {
	d := b.dedup
	if d == nil || b.ids == nil || b.eng.claims != nil || at.IsZero() || e.Alt != nil || len(e.Ambiguous) > 0 {
		return false, nil
	}
	var kb [128]byte
	k := b.rule.DedupTmpl.AppendRender(kb[:0], e) // the template's fields are the rule's: e holds them
	og, ok := d.open[string(k)]
	if !ok || !og.end.After(at) || og.samples < d.max {
		return false, nil
	}
	key := string(k)
	replica := b.eng.opts.Replica != ""
	if replica {
		if _, raised, err := b.ids.Raised(ctx, []byte(id), at); err != nil {
			return false, fmt.Errorf("rule %s: cannot look up alert %s: %w", b.rule.ID, id, err)
		} else if raised {
			b.stats.Suppressed++
			return true, nil
		}
	} else {
		// The alert is marked raised now, in the look-up that finds
		// whether it was (one transaction instead of a read and then a
		// write), and counted in its group later (joinLater).
		d.mark.id, d.mark.first = id, false
		if d.mark.update == nil {
			d.mark.ids = b.ids
			d.mark.update = d.mark.run
		}
		if err := b.eng.opts.Store.Update(ctx, at, d.mark.update); err != nil {
			return false, fmt.Errorf("rule %s: cannot record alert %s: %w", b.rule.ID, id, err)
		}
		if !d.mark.first {
			b.stats.Suppressed++
			return true, nil
		}
	}
	h := d.spare
	if h == nil {
		h = &heldEvent{}
	}
	d.spare = nil
	h.arena = h.arena[:0]
	e.CopyTo(&h.ev, nil, &h.arena)
	prev := d.latest[key]
	latest := latestAlert{held: h, build: build, b: b, id: id}
	joined := true
	var err error
	if !replica {
		d.joinLater(latest, key, og, at)
	} else {
		// Replicas may change the group between commits: count in it
		// now.
		joined, err = d.joinAs(ctx, id, latest, key, og, at, nil)
	}
	switch {
	case !joined:
		d.spare = h
	case prev.held != nil:
		// Replaced: its alert, if built, was encoded and let go
		// (flushLatest), so nothing refers to its event any more.
		d.spare = prev.held
	}
	return joined, err
}

// flushLatest writes the latest alert of each full group as its latest
// sample. A sample larger than the groups' limit is not kept, and the
// group keeps the latest sample written before it.
func (d *dedup) flushLatest(ctx context.Context, only string) error {
	if len(d.latest) == 0 && len(d.joins) == 0 {
		return nil
	}
	if _, ok := d.latest[only]; only != "" && !ok {
		if _, ok := d.joins[only]; !ok {
			return nil
		}
	}
	type join struct {
		key, id string
		pj      pendingJoins
	}
	var js []join
	for k, pj := range d.joins {
		if only == "" || k == only {
			js = append(js, join{k, d.open[k].id, pj})
		}
	}
	type write struct {
		key, sample []byte
		id          string
	}
	var ws []write
	for k, l := range d.latest {
		if only != "" && k != only {
			continue
		}
		a := l.alert()
		b, err := alert.Marshal(a)
		if err != nil {
			return fmt.Errorf("rule %s: cannot encode alert %s: %w", d.b.rule.ID, a.ID, err)
		}
		ws = append(ws, write{[]byte(k), b, d.open[k].id})
	}
	err := d.b.eng.opts.Store.Update(ctx, time.Time{}, func(tx state.Tx) error {
		for _, j := range js {
			joined, err := d.groups.JoinManyTx(tx, []byte(j.key), j.id, j.pj.n, j.pj.first, j.pj.last)
			if err != nil {
				return err
			}
			if !joined {
				return fmt.Errorf("BUG: %d alerts joined the group %s of key %q, which the store no longer holds", j.pj.n, j.id, j.key)
			}
		}
		for _, w := range ws {
			if _, err := d.groups.SetLatestTx(tx, w.key, w.id, w.sample); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rule %s: cannot record the latest alert of its groups: %w", d.b.rule.ID, err)
	}
	if only != "" {
		delete(d.latest, only)
		delete(d.joins, only)
	} else {
		clear(d.latest)
		clear(d.joins)
	}
	return nil
}

// add delivers or groups alert a with dedup key key, at event time at,
// committing commit with its mark.
func (d *dedup) add(ctx context.Context, a *alert.Alert, key string, at time.Time, commit func(tx state.Tx) error) error {
	b := d.b
	if og, ok := d.open[key]; ok && og.end.After(at) && og.samples >= d.max {
		// The common case of a burst: the alert joins a group this
		// engine holds open, whose samples are full.
		if joined, err := d.join(ctx, a, key, og, at, commit); err != nil || joined {
			return err
		}
	}
	if err := d.flushLatest(ctx, key); err != nil {
		return err
	}
	// The group stored under the key is read whatever its expiry: a group
	// whose entry expired at the time of this alert (an alert two periods
	// after it) must still be delivered with its count before the new
	// group replaces it.
	g, found, err := d.groups.Get(ctx, []byte(key), time.Time{})
	if err != nil {
		return fmt.Errorf("rule %s: %w", b.rule.ID, err)
	}
	sample, err := alert.Marshal(a)
	if err != nil {
		return fmt.Errorf("rule %s: cannot encode alert %s: %w", b.rule.ID, a.ID, err)
	}
	joins := found && g.OpenAt(at)
	if found && !joins && g.Delivered < g.Count {
		if err := d.deliver(ctx, []byte(key), g); err != nil {
			return err
		}
	}
	immediate := !joins && b.eng.opts.GroupUpdates
	if immediate {
		a.Group = &alert.Group{Key: key, Count: 1, FirstSeen: at, LastSeen: at}
		if err := b.write(ctx, a); err != nil {
			return err
		}
	}
	err = b.commit(ctx, a.ID, at, func(tx state.Tx) error {
		if commit != nil {
			if err := commit(tx); err != nil {
				return err
			}
		}
		ng, opened, err := d.groups.AddTx(tx, []byte(key), a.ID, sample)
		if err != nil {
			return err
		}
		g = ng
		if opened && immediate {
			_, err = d.groups.DeliveredTx(tx, []byte(key), a.ID, 1)
		}
		return err
	})
	if err != nil {
		return err
	}
	og := openGroup{id: g.ID, end: g.End, samples: len(g.Samples)}
	if joins {
		if prev, ok := d.open[key]; ok && prev.id == g.ID {
			og.sent = prev.sent
		} else {
			og.sent = at // first seen here: counted from now
		}
		d.grew(key, og)
	} else {
		og.sent = at
		d.open[key] = og
	}
	if joins {
		b.stats.Grouped++
	} else {
		b.stats.Alerts++
	}
	return nil
}

// deliver writes group g (key) with its current count and records the
// count as delivered.
func (d *dedup) deliver(ctx context.Context, key []byte, g state.Group) error {
	b := d.b
	if b.eng.claims != nil {
		return d.claimDeliver(ctx, key, g.ID)
	}
	a := d.update(key, g)
	if err := b.write(ctx, a); err != nil {
		return err
	}
	if err := d.groups.Delivered(ctx, key, g.ID, g.Count, time.Time{}); err != nil {
		return fmt.Errorf("rule %s: %w", b.rule.ID, err)
	}
	if g.Delivered > 0 {
		b.stats.Updates++
	}
	return nil
}

// update rebuilds the group's alert from its first sample (the opening
// alert) and brings its group up to date. If that sample was not kept (too
// large), the update carries the rule and the group only.
func (d *dedup) update(key []byte, g state.Group) *alert.Alert {
	a := &alert.Alert{}
	if len(g.Samples) == 0 || json.Unmarshal(g.Samples[0], a) != nil || a.ID != g.ID {
		a = &alert.Alert{ID: g.ID, Timestamp: g.FirstSeen, Rule: RuleInfo(d.b.rule)}
	}
	ag := &alert.Group{Key: string(key), Count: g.Count, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen}
	for _, s := range g.Samples {
		var m struct {
			Event map[string]any `json:"event"`
		}
		if json.Unmarshal(s, &m) == nil && m.Event != nil {
			ag.Samples = append(ag.Samples, m.Event)
		}
	}
	a.Group = ag
	return a
}

// grew records that an alert joined the group under key.
func (d *dedup) grew(key string, og openGroup) {
	og.grown = true
	d.open[key] = og
	if every := d.b.eng.opts.GroupUpdateEvery; every > 0 && d.b.eng.opts.GroupUpdates {
		if due := og.sent.Add(every); d.nextUpdate.IsZero() || due.Before(d.nextUpdate) {
			d.nextUpdate = due
		}
	}
}

// updateGrown delivers the open groups that grew and were last delivered
// GroupUpdateEvery or more before watermark.
func (d *dedup) updateGrown(ctx context.Context, watermark time.Time) error {
	every := d.b.eng.opts.GroupUpdateEvery
	if d.nextUpdate.IsZero() || d.nextUpdate.After(watermark) {
		return nil
	}
	var due []string
	d.nextUpdate = time.Time{}
	for k, og := range d.open {
		switch {
		case !og.grown || !og.end.After(watermark):
		case !og.sent.Add(every).After(watermark):
			due = append(due, k)
		case d.nextUpdate.IsZero() || og.sent.Add(every).Before(d.nextUpdate):
			d.nextUpdate = og.sent.Add(every)
		}
	}
	return d.deliverAll(ctx, due, func(k string) string {
		og := d.open[k]
		og.grown, og.sent = false, watermark
		d.open[k] = og
		return og.id
	})
}

// deliverAll writes the latest samples, then delivers, in key order, the
// groups under keys that grew since their last delivery; pick is called
// first for each key and returns the id its group must have ("" for any).
func (d *dedup) deliverAll(ctx context.Context, keys []string, pick func(key string) string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := d.flushLatest(ctx, ""); err != nil {
		return err
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := d.deliverGrown(ctx, k, pick(k)); err != nil {
			return err
		}
	}
	return nil
}

// deliverGrown delivers the group stored under key if it grew since its
// last delivery and, when id is not empty, is the group with that id.
func (d *dedup) deliverGrown(ctx context.Context, key, id string) error {
	g, found, err := d.groups.Get(ctx, []byte(key), time.Time{})
	if err != nil {
		return fmt.Errorf("rule %s: %w", d.b.rule.ID, err)
	}
	if !found || id != "" && g.ID != id || g.Delivered >= g.Count {
		return nil
	}
	return d.deliver(ctx, []byte(key), g)
}

// advance delivers the groups this engine touched that ended at or before
// watermark, and the open groups due for an update.
func (d *dedup) advance(ctx context.Context, watermark time.Time) error {
	if err := d.updateGrown(ctx, watermark); err != nil {
		return err
	}
	var due []string
	for k, og := range d.open {
		if !og.end.After(watermark) {
			due = append(due, k)
		}
	}
	return d.deliverAll(ctx, due, func(k string) string {
		delete(d.open, k)
		return ""
	})
}

// deliverEnded delivers the groups of the rule in the store that ended at
// or before now and whose count grew since their last delivery, whichever
// engine opened them: the sweep that follows may remove their entries.
func (d *dedup) deliverEnded(ctx context.Context, now time.Time) error {
	return d.deliverWhere(ctx, func(g state.Group) bool { return !g.End.After(now) })
}

// flush delivers every group of the rule whose count grew since its last
// delivery, including groups of earlier engines on the same store.
func (d *dedup) flush(ctx context.Context) error {
	if err := d.deliverWhere(ctx, func(state.Group) bool { return true }); err != nil {
		return err
	}
	clear(d.open)
	d.nextUpdate = time.Time{}
	return nil
}

// deliverWhere delivers the groups of the rule that pass keep and whose
// count grew since their last delivery.
func (d *dedup) deliverWhere(ctx context.Context, keep func(state.Group) bool) error {
	if err := d.flushLatest(ctx, ""); err != nil {
		return err
	}
	type pending struct {
		key []byte
		g   state.Group
	}
	var todo []pending
	err := d.groups.Scan(ctx, time.Time{}, func(key []byte, g state.Group) error {
		if g.Delivered < g.Count && keep(g) {
			todo = append(todo, pending{append([]byte(nil), key...), g})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rule %s: cannot list alert groups: %w", d.b.rule.ID, err)
	}
	for _, p := range todo {
		if err := d.deliver(ctx, p.key, p.g); err != nil {
			return err
		}
	}
	return nil
}
