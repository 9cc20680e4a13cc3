// Package state is kanon's state layer: everything that outlives one event
// lives behind the Store interface defined here. That is the new-terms
// history (per rule: term → first and last seen), dedup and alert groups (per
// rule and group key), windows of ES|QL runs in progress (serialised
// aggregation state per rule and window), the positions of inputs (path and
// inode → offset), and the ids of alerts already raised, so that a re-scan
// never raises an alert twice.
//
// The package holds the contract, the encoding of every key and value kanon
// stores (key.go and the view_*.go files: each codec is defined here once,
// and used by the writers and the readers alike), the typed views the engine
// works through, and the inspection behind `kanon state` (Summarize, Each,
// Reset); it uses the standard library only. Implementations live in
// subpackages: state/mem (in memory, for tests and `kanon rules test`),
// state/bolt (embedded on disk, the default) and state/redis (shared by
// several `kanon serve` replicas); state/open opens the one a command line
// names. state/overlay buffers the writes of
// its transactions over another store and commits them in groups. The
// package state/statetest holds the conformance suite every implementation
// passes.
//
// # Keys and values
//
// Keys and values are opaque byte strings; the store holds no Go pointers,
// so any value can live in another process. Keys built with AppendPrefix and
// AppendPart are deterministic, length-prefixed encodings of (namespace, rule
// id, key parts): the prefix of one rule in one namespace is a byte prefix of
// all its keys and of no other rule's keys, so Scan by prefix lists exactly
// one rule's state. Keys are at most MaxKeySize bytes and values at most
// MaxValueSize bytes. An empty value is a value: Get returns it with a nil
// error, whereas a missing key gives ErrNotFound.
//
// # Time and expiry
//
// Every entry carries an expiry time; the zero time.Time means the entry never
// expires. Expiry is measured in event time, not wall time: the store never
// reads a clock. Each read and each transaction is given a time now by the
// caller (the engine passes the time of the event it is evaluating), and an
// entry whose expiry is not after now (expiry <= now) is invisible: Get and
// Tx.Get report ErrNotFound, Scan skips it, and Tx.Put over it behaves as an
// insertion. Passing the zero time as now shows every entry not yet swept
// (`kanon state show`). Replaying old logs therefore sees exactly the history
// it would have seen live, and out-of-order events are judged by their own
// time.
//
// Expired entries still occupy space until DeleteExpired(ctx, now) removes
// every entry whose expiry is not after now, and reports how many it removed.
// The engine calls it periodically with its event-time watermark (less any
// allowed lateness), so the size of the store follows the history window and
// the dedup period, not the age of the deployment. Implementations keep an
// index by expiry so that a sweep costs time proportional to what it removes.
//
// Times are stored as Unix nanoseconds (see UnixNano), so they are exact
// between the years 1678 and 2262 and times outside that range are clamped.
//
// # Atomicity and isolation
//
// Update runs a function with a Tx. If the function returns nil, all its Puts
// and Deletes are committed atomically: after Update returns nil every reader
// sees all of them, and no reader ever sees some of them only. If the
// function returns an error, or panics, or ctx is done before the commit,
// nothing is written and Update returns that error (a panic is propagated).
// Transactions are serialisable: reads inside a Tx see the store as of the
// start of the transaction plus the transaction's own writes, and a
// transaction whose reads were changed by a concurrent commit does not
// commit. An implementation either runs update functions one at a time (mem,
// bolt) or optimistically, calling the function again when a conflicting
// commit is detected (redis). So the function may be called more than once
// and must not have effects outside the Tx; when the implementation gives up
// retrying, Update returns an error that wraps ErrConflict.
//
// Get, Scan, DeleteExpired and Stats run outside any transaction. Scan is
// not necessarily a snapshot: an entry committed while a scan runs may or may
// not be seen, but every entry seen carries a committed value.
//
// # Durability
//
// When Update (or DeleteExpired) returns nil, its writes are as durable as
// the implementation promises, and the engine reports an alert as raised only
// after that. state/bolt syncs the file to disk before returning (unless it
// was opened with NoSync, which is for benchmarks and throwaway scans);
// state/mem keeps nothing after the process exits. A crash never leaves a
// durable store unreadable, and a crash during Update leaves either all or
// none of its writes.
//
// # Concurrency and ownership
//
// A Store is safe for concurrent use by many goroutines. A Tx is valid only
// while its update function runs, and only in that goroutine; using it
// afterwards gives ErrTxDone. Stores never retain the key and value slices
// passed to them, so callers may reuse their buffers once a call returns.
// Values returned by Store.Get are copies owned by the caller; values
// returned by Tx.Get and passed to a Scan callback are valid only until the
// transaction ends or the callback returns, and must not be modified.
//
// # Errors
//
// Errors are tested with errors.Is against the exported sentinels ErrNotFound,
// ErrClosed, ErrConflict, ErrTxDone, ErrInvalidKey, ErrValueTooLarge,
// ErrLocked, ErrSchema and ErrCorrupt. After Close every method returns an
// error wrapping ErrClosed; Close itself is idempotent.
//
// # Mapping onto Redis
//
// Nothing in the contract requires shared memory; state/redis maps each
// guarantee as follows (its package documentation has the details and the
// cost of each operation in round trips). All keys of one store share a
// hash tag ("{PREFIX}"), so that MULTI and scripts could work on Redis
// Cluster too.
//
//   - Entries: one Redis string per key (binary safe), holding the 8-byte
//     expiry header of AppendEntry followed by the value. Redis's own TTL is
//     wall time and is not used; the header is compared with the caller's
//     now.
//   - Ordered prefix Scan: a sorted set of all keys with score 0, read with
//     ZRANGEBYLEX from [prefix to (PrefixEnd(prefix) in pages; Redis compares
//     members bytewise, which is the order of this package.
//   - Expiry index: a sorted set scored by expiry in milliseconds (a float
//     score cannot hold nanoseconds). DeleteExpired takes candidates with
//     score up to now's and a script re-checks the exact expiry in each
//     header before deleting the entry and both index members, in batches.
//   - Update: Tx.Get is WATCH key + GET, pipelined; Puts and Deletes are
//     buffered and applied at commit by one script (the entries, both
//     indexes and the counters), inside MULTI/EXEC when the function read
//     anything. A nil EXEC reply means a watched key changed: the function
//     is run again, and after a bounded number of attempts Update returns
//     ErrConflict.
//   - Durability: Update returns nil once EXEC succeeded; the server's
//     persistence (appendonly yes, appendfsync always) decides whether that
//     survives its crash, a documented choice of the deployment.
//   - Stats: counters kept in a hash and updated by the same scripts.
//   - Close closes the client only; it does not affect other replicas.
//   - Locking: none is needed; serve replicas share one store by design.
package state
