// Package statetest is the conformance suite of the state package: the one
// contract that every state.Store implementation (mem, bolt, redis) passes.
//
// An implementation's test calls Run with a function that returns a new,
// empty store, and, for a durable store, WithReopen with a function that
// closes a store and opens the same storage again:
//
//	func TestConformance(t *testing.T) {
//		statetest.Run(t, func(t *testing.T) state.Store { return mem.New() })
//	}
//
// The suite covers get, put and delete; empty values versus missing keys;
// ownership of slices; size limits and large values; atomic updates (a
// failing or panicking update function leaves nothing); read-your-writes and
// serialisable isolation; concurrent updates from many goroutines without
// lost updates (run it with -race); expiry in event time (expired entries
// invisible, swept and counted); prefix scans in byte order; Stats; Close
// and ErrClosed; persistence across reopening; and the typed Terms and
// AlertIDs views. Benchmarks with the same shape for every implementation
// are in Bench.
package statetest
