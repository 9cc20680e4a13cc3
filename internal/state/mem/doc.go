// Package mem is the in-memory implementation of state.Store, used by
// `kanon rules test` and by unit tests. It keeps nothing after the process
// exits, so it is not durable; every other guarantee of the state package
// holds. Update functions run one at a time under a mutex, so Update never
// returns state.ErrConflict. Scan and DeleteExpired visit every entry, which
// suits test-sized state.
package mem
