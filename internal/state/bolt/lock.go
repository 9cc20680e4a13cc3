package bolt

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// lockPoll is how often a locked file is tried again.
const lockPoll = 50 * time.Millisecond

// openLocked opens the store file of dir read-write and takes its exclusive
// lock, waiting at most timeout. If the file is missing and create is set, it
// first creates a new store (see createStore). After the lock is taken, the
// path must still name the file locked: a repair may have replaced it while
// this waited.
func openLocked(dir string, timeout time.Duration, create bool) (*os.File, error) {
	path := filepath.Join(dir, FileName)
	deadline := time.Now().Add(timeout)
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) && create && attempt < 3 {
			if err := createStore(dir); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot open state file %s: %w", path, err)
		}
		if err := waitLock(f, deadline); err != nil {
			f.Close()
			if err == errLockTimeout {
				return nil, lockedError(dir, timeout)
			}
			return nil, fmt.Errorf("cannot lock state file %s: %w", path, err)
		}
		held, _ := f.Stat()
		now, err := os.Stat(path)
		if err == nil && os.SameFile(held, now) {
			return f, nil
		}
		f.Close() // replaced or removed: lock what the path names now
		if time.Now().After(deadline) || attempt >= 3 {
			return nil, fmt.Errorf("cannot open state file %s: it was replaced again and again while kanon waited for its lock", path)
		}
	}
}

var errLockTimeout = errors.New("lock timeout")

// waitLock takes the lock of f, trying until deadline.
func waitLock(f *os.File, deadline time.Time) error {
	for {
		ok, err := tryLock(f)
		if err != nil || ok {
			return err
		}
		if time.Now().Add(lockPoll).After(deadline) {
			return errLockTimeout
		}
		time.Sleep(lockPoll)
	}
}

// createStore creates a new, complete store file in dir: a temporary file
// with kanon's buckets, synced, then linked to FileName, so that no process
// ever sees a half-made store there, and a crash leaves no empty file that
// would be refused. If another process created FileName meanwhile, its file
// stays and this one is dropped.
func createStore(dir string) error {
	path := filepath.Join(dir, FileName)
	tmp, err := os.CreateTemp(dir, FileName+".new-*")
	if err != nil {
		return fmt.Errorf("cannot create state file %s: %w", path, err)
	}
	name := tmp.Name()
	tmp.Close()
	defer os.Remove(name)
	if err := writeEmptyStore(name); err != nil {
		return fmt.Errorf("cannot create state file %s: %w", path, err)
	}
	if err := os.Link(name, path); err != nil && !errors.Is(err, fs.ErrExist) {
		// No hard links on this file system: rename, unless the file
		// appeared meanwhile.
		if _, serr := os.Lstat(path); !errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
		if err := os.Rename(name, path); err != nil {
			return fmt.Errorf("cannot create state file %s: %w", path, err)
		}
	}
	return syncDir(dir)
}

// writeEmptyStore makes the empty bbolt file at path (new, or of 0 bytes)
// a store with kanon's buckets, synced to disk.
func writeEmptyStore(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	err = db.Update(createSchema)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot sync state directory %s: %w", dir, err)
	}
	return nil
}
