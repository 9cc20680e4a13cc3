// Package bolt is kanon's default state.Store: embedded, on disk, in one
// bbolt file (FileName) under a state directory.
//
// Layout. Three buckets: "data" maps each key to its entry (an 8-byte expiry
// header, then the value; see state.AppendEntry); "expiry" holds, for every
// entry that expires, the key expiry||key (state.AppendExpiryIndexKey), so
// that DeleteExpired walks only what it removes; "meta" holds the schema
// version and the entry and byte counters behind Stats, updated in the same
// transaction as the data.
//
// Guarantees. Update is one bbolt read-write transaction: bbolt runs them one
// at a time, so Update never returns state.ErrConflict, and commits them with
// fsync before returning (unless Options.NoSync), so a nil error means the
// writes are on disk. bbolt's copy-on-write pages and double meta page mean a
// crash, including SIGKILL in the middle of a commit, leaves the file at the
// last committed transaction and readable. Get and Scan are read-only
// transactions and run concurrently with each other and with Update. A long
// Scan delays writers only when the file has to grow.
//
// Locking. Open takes an exclusive lock on the file and waits at most
// Options.LockTimeout for it; when another process holds it, Open fails with
// an error wrapping state.ErrLocked that names the directory. A file written
// with another schema version fails to open with state.ErrSchema.
package bolt
