// Package bolt is kanon's default state.Store: embedded, on disk, in one
// bbolt file (FileName) under a state directory.
//
// Layout. Three buckets: "data" maps each key to its entry (an 8-byte expiry
// header, then the value; see state.AppendEntry); "expiry" holds, for every
// entry that expires, the key expiry||key (state.AppendExpiryIndexKey), so
// that DeleteExpired walks only what it removes; "meta" holds the format
// marker ("format": "kanon state store"), the schema version and the entry
// and byte counters behind Stats, updated in the same transaction as the
// data.
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
// Locking. Open takes an exclusive lock on the file (flock, on Unix) and
// waits at most Options.LockTimeout for it; when another process holds it,
// Open fails with an error wrapping state.ErrLocked that names the
// directory. Repair and Discard take the same lock. A file written with
// another schema version fails to open with state.ErrSchema.
//
// # Damaged files
//
// bbolt trusts its file: it maps it into memory and follows page numbers,
// offsets and lengths as written, so a damaged file makes it panic (a
// freelist or page that is not what the meta page says, slice bounds out
// of range) or fault (a page beyond the end of a truncated file), at open
// or at any later read or commit. This package therefore never hands bbolt a
// file it has not verified, and never lets a panic of bbolt's out.
//
// At Open, before bbolt reads the file, and again in Check, a reader of this
// package's own (file.go, verify.go: ReadAt, never a memory map, every
// offset checked before use) verifies what bbolt will read: that a meta page
// is valid (magic number, version, checksum; bbolt uses the valid one of
// higher transaction id, as here), that the file size is a multiple of the
// page size and holds every page below that meta page's high-water mark,
// that the root and freelist pages are below it, that the freelist lists
// each page at most once and only pages 2 and up below the mark, and that
// every page of every bucket, reached from the root, lies below the mark,
// identifies itself by its own number, is a branch or leaf page (inline
// buckets: a leaf), is reached once and is not free, holds its elements and
// their keys and values inside its bytes, has no empty keys and no unknown
// flags, and keeps its keys in order, within the page and within the range
// its parent gives it, as bbolt's Tx.Check requires. This reads every page
// in use once, about a tenth of a second for 200 MiB from the page cache,
// so Open always does it. Check adds what is harmless to bbolt: the meta
// page not in use must be valid too, and every page below the mark must be
// in use or free; then it runs bbolt's Tx.Check and checks the expiry index
// and the counters against the data.
//
// A file that fails verification, an empty file, a file that is not a bbolt
// file, and a bbolt file that is not kanon's (it has another format marker,
// or neither the marker nor kanon's three buckets and schema version;
// stores written before kanon added the marker are recognised by those and
// given it) are refused with an error wrapping state.ErrCorrupt that names
// the file and says what to do; none is ever reinitialised. A missing file
// is a new store: it is made complete (buckets, marker) in a temporary file
// and linked into place, so that a crash never leaves an empty or half-made
// store behind.
//
// After Open, every method that calls bbolt runs with the goroutine's
// memory faults turned into panics (runtime/debug.SetPanicOnFault) and
// recovers a panic of bbolt's at the package boundary: the call returns an
// error wrapping state.ErrCorrupt ("state store file PATH is damaged:
// ..."), the store is marked damaged, and every later call returns that
// error. This covers a file damaged while open. A panic of the function the
// caller gives Update or Scan is the caller's and is not recovered.
//
// Repair (`kanon state repair`) salvages a damaged store: it copies the file
// aside (FileName + ".damaged-" + UTC time, synced), reads every entry it can
// (through the tree of the current meta page, skipping pages that do not
// verify; if anything was lost, through the tree of the other meta page,
// which is the store one commit earlier; then from every leaf page below the
// high-water mark that no tree reached and the freelist does not list),
// keeps the entries state.CheckEntry accepts, the best version of each key
// (current tree, previous tree, then the orphan that expires last), writes
// them with a fresh expiry index and counters into a new store, and renames
// it over the file. Discard (`kanon state reset --yes` on a damaged store)
// copies the file aside and puts an empty store in its place.
package bolt
