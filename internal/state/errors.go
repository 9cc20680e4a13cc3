package state

import "errors"

// Sentinel errors. Implementations wrap them with context (the key, the
// path, the limit) and callers test them with errors.Is.
var (
	// ErrNotFound means the key has no entry live at the time of the read:
	// it was never written, was deleted, or has expired.
	ErrNotFound = errors.New("state: key not found")

	// ErrClosed means the Store was closed before or during the call.
	ErrClosed = errors.New("state: store is closed")

	// ErrConflict means an Update could not commit because concurrent
	// commits kept changing what it read, and the store gave up retrying.
	// Nothing was written; the caller may try again.
	ErrConflict = errors.New("state: transaction conflict")

	// ErrTxDone means a Tx was used after its update function returned.
	ErrTxDone = errors.New("state: transaction already finished")

	// ErrInvalidKey means a key is empty or longer than MaxKeySize, or a
	// key does not decode with ParseKey.
	ErrInvalidKey = errors.New("state: invalid key")

	// ErrValueTooLarge means a value is longer than MaxValueSize.
	ErrValueTooLarge = errors.New("state: value too large")

	// ErrLocked means the store's storage is in use by another process.
	ErrLocked = errors.New("state: store is in use by another process")

	// ErrSchema means the stored data was written with a schema version
	// this build does not read.
	ErrSchema = errors.New("state: unsupported schema version")

	// ErrCorrupt means stored data does not decode.
	ErrCorrupt = errors.New("state: corrupt data")
)
