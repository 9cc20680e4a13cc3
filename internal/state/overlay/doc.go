// Package overlay is a state.Store that buffers the writes of its
// transactions in memory over a base store and writes them to the base in
// groups, one base transaction per group. It is how kanon commits state in
// groups: the engine's writes for a group of batches (alert ids raised, new
// terms, input positions, open ES|QL runs) reach the disk in one fsync,
// after the group's alerts were handed to the outputs (the beforeCommit
// hook given to New) and before the batches are acknowledged. A crash
// before the commit loses the group's writes; the unacknowledged batches
// are sent again and evaluated again, and their alerts carry the same ids,
// which the outputs deduplicate.
//
// # Layers
//
// Writes live in up to three layers, newest first: the pending writes (of
// the transactions since the last Freeze), one frozen layer (being written
// to the base by CommitLayer), and the base store. Reads see the newest
// layer that holds a key. Freeze and CommitLayer are split so that the
// engine can go on evaluating, with its writes going to a new pending
// layer, while the frozen layer's commit (output flush, fsync) runs in
// another goroutine. At most one layer is frozen at a time: Freeze takes
// the store's commit slot and CommitLayer gives it back, so a second
// Freeze (or a Commit, or Close) waits for the first layer's commit.
//
// # Expiry
//
// DeleteExpired never commits pending writes: the engine may sweep at any
// moment, and a sweep must not write a group's state ahead of its batches.
// It sweeps the base and turns each pending write expired at the sweep's
// time into a pending deletion; see Store.DeleteExpired for why that is
// safe while a layer is being committed.
//
// # Replicas
//
// Over a base shared by replicas (state/redis), each commit is one base
// transaction: atomic, never seen in part. But the overlay's transactions
// read the base outside any base transaction, and a commit writes the
// layer's values without checking that what they were computed from is
// still there. So decisions taken on reads through an overlay are exact
// within one replica and not across replicas: two replicas that both read
// a key before either commits may both mark one alert id first, both find
// one term new, or both count a group from the same base. Replicas
// therefore take those decisions in transactions on the base itself
// (engine.Options.Shared, engine/claims.go) and write through the overlay
// only what does not collide: their own slots of ES|QL runs, and the
// deletion of alerts from the outbox once delivered.
//
// The package imports state only; like every Store it passes
// state/statetest.Run.
package overlay
