package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// damageError is the error for a state file that cannot be used as it is.
// It wraps state.ErrCorrupt and the cause, and tells the operator what to do.
type damageError struct {
	path, dir string
	foreign   bool // the file is not a damaged kanon store but no kanon store at all
	err       error
}

func (e *damageError) Error() string {
	if e.foreign {
		return fmt.Sprintf("state store file %s is not a kanon state store: %v; "+
			"move it away, or run `kanon state repair --state-dir %s` to set it aside and start an empty store",
			e.path, e.err, e.dir)
	}
	return fmt.Sprintf("state store file %s is damaged: %v; "+
		"run `kanon state repair --state-dir %s` to salvage what it holds into a new store (the damaged file is kept beside it), "+
		"or move the file away to start an empty store", e.path, e.err, e.dir)
}

func (e *damageError) Unwrap() []error { return []error{state.ErrCorrupt, e.err} }

// fileError is the error for the damaged file of the store in dir. The
// reader's errEmpty and errNotBolt mean a file that is no kanon store.
func fileError(dir string, err error) error {
	foreign := errors.Is(err, errEmpty) || errors.Is(err, errNotBolt)
	return &damageError{path: filepath.Join(dir, FileName), dir: dir, foreign: foreign, err: err}
}

// notKanonError is the error for a sound bbolt file that is not kanon's.
func notKanonError(dir, what string) error {
	return &damageError{path: filepath.Join(dir, FileName), dir: dir, foreign: true, err: fmt.Errorf("%s", what)}
}

// lockedError is the error for a store held by another process.
func lockedError(dir string, timeout time.Duration) error {
	return fmt.Errorf("state directory %s is in use by another kanon process (no lock within %s): %w", dir, timeout, state.ErrLocked)
}

// recoverBolt is deferred by every method that calls into bbolt, as
//
//	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, user)
//
// so that the goroutine turns memory faults into panics while the method
// runs (bbolt reads the file through a memory map: a page damaged after
// Open is a fault) and restores the old setting after. It turns a panic of
// bbolt's into an error in *err: the store is then marked damaged, and
// every later call returns that error. A panic raised while *user is true
// (in the function the caller gave Update or Scan) is the caller's own and
// is not recovered. No panic of bbolt's leaves the package.
func (s *Store) recoverBolt(oldFault bool, err *error, user *bool) {
	debug.SetPanicOnFault(oldFault)
	if user != nil && *user {
		return
	}
	if r := recover(); r != nil {
		*err = s.damage(r)
	}
}

// damage marks the store damaged by the bbolt panic r and returns the error.
func (s *Store) damage(r any) error {
	err := fileError(s.dir, fmt.Errorf("bbolt failed reading it: %v", r))
	s.broken.CompareAndSwap(nil, &err)
	return *s.broken.Load()
}

// recoverBolt is deferred by the methods of tx: a panic of bbolt's inside the
// update function fails the transaction and marks the store damaged, and
// does not pass through the caller's function as if it were its own.
func (t *tx) recoverBolt(err *error) {
	if r := recover(); r != nil {
		*err = t.fail(t.s.damage(r))
	}
}
