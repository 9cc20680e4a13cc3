// Package engine runs compiled rules over events and raises alerts.
//
// A rule's runner is chosen by its firing and its language (rule.Compiled's
// Firing and Language), never by Elastic's type, which only declares them.
// Per-event rules (Panther's, and rules that declare neither type nor
// firing), in KQL or non-aggregating ES|QL, alert on each matching event
// as it is read: no runs, no MaxSignals, and a dedup key groups every
// matching event. Scheduled rules (Elastic's query and esql) and new_terms
// rules (whose history lives in the state store) follow Elastic's schedule
// on event time: a rule runs every Interval over the look-back From, so
// runs overlap (5m every 5m looking back 6m: one minute), and a run raises
// at most MaxSignals alerts, counted before any grouping. A scheduled KQL
// rule matches each event as it is read, within its runs' MaxSignals; a
// scheduled ES|QL rule aggregates over each run. In a scan the runs are
// laid over the input's time span, aligned to the interval (run ends are
// multiples of the interval since the Unix epoch).
//
// The caller moves the watermark: the engine never closes a run by
// itself. A run closes when the caller's Advance passes its end, or at
// Close (the end of the input); the expired state of the store is removed
// when the caller calls Sweep. internal/run's driver, the only caller in
// kanon, advances to the newest event time minus its lateness as event
// time moves on (and by the wall clock when an input is idle), and sweeps
// every so much event time and after Close.
//
// Alert ids are deterministic. An alert of one event hashes the rule id
// and the event's identity (auditID and stage, or the record's bytes), so an
// event in two overlapping runs alerts once, and a re-scan gives the same
// ids. An aggregating ES|QL rule's alert id hashes the rule id, the run
// window and the output row, as Elastic's does: a burst that spans two runs
// may alert in both (each run sees part of it). With a state store, ids
// already raised are remembered and not raised again.
//
// What a store keeps grows with the alerts and the matching events of
// AlertRetention (30 days) of event time, not with the input: each raised
// alert's id (a scheduled rule: at most MaxSignals per run), and the id of
// every event counted in a dedup group (Panther's per-event rules), so
// that an event read twice, beyond the driver's redelivery dedup, is never
// counted twice. That mark is what makes a group's count exact, so it is
// kept as long as the alert ids are, and removed by Sweep once event time
// is AlertRetention past it (cmd/kanon's TestScanStateBoundedInEventTime).
// A scan of a log spanning less than that keeps one mark per matching
// event: about 115 bytes each in state/mem.
//
// Every alert of a scheduled rule names its run (Alert.Window, with its
// MaxSignals); an aggregating ES|QL alert also names the events it counts
// (Alert.Evidence, from esqleval). The hits over MaxSignals are counted
// in RuleStats.Dropped, and a hunt (Options.Hunt, kanon scan) can have
// them delivered marked as dropped, tallied per run, or raised (the cap
// lifted, departing from Elastic's semantics on purpose); it can also
// bound the events judged by event time and name the cluster of events
// that carry none. Each alert field has one shape for a rule (FieldShape):
// a list or one value whatever the event.
//
// Engines that share one store as replicas (Options.Replica) each
// checkpoint their part of an ES|QL run into a slot of their own, and the
// one that closes the run merges the others' parts into it (replicas.go).
// Each replica keeps its own watermark, so the first one past a run's end
// closes it: an event counts in the run if its replica checkpointed it
// before that close, and one that comes after is counted late by its
// replica when it finds the run closed (RuleStats.Late), never lost
// silently (replicas_close.go says how it tells which events the close
// merged). Fed in any order, replicas thus raise what one engine raises
// given the events in the order of their checkpoints.
// Given the shared store itself (Options.Shared), they take every decision
// two of them could take alike (an alert raised, a new term, a group
// opened or delivered, a run closed) in transactions on it, a batch's at
// once (Settle), with an outbox so that a replica's death between a
// decision and its delivery loses no alert (claims.go).
//
// An Engine is not safe for concurrent use: feed it from one goroutine.
package engine
