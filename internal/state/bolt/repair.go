package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// RepairOptions configures Repair and Discard. The zero value gives the
// defaults.
type RepairOptions struct {
	// LockTimeout is how long to wait for another process to release the
	// store. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// Now gives the time in the name of the copy of the old file; nil
	// means time.Now.
	Now func() time.Time
}

// RepairReport says what Repair or Discard found and did.
type RepairReport struct {
	// Path is the store's file.
	Path string
	// Damage is what was wrong with the file; nil if it was sound, and
	// then Repair did nothing.
	Damage error
	// Copy is the copy of the old file kept beside the new one, named
	// FileName + ".damaged-" + the UTC time; "" if nothing was done.
	Copy string
	// Kept is the number of entries in the new store; FromPrevious of
	// them were read through the tree of the commit before the last, and
	// Orphaned from pages no tree reached any more (the rest through the
	// tree of the last commit).
	Kept, FromPrevious, Orphaned int64
	// Dropped is the number of entries read through a tree but not kept
	// because they did not decode.
	Dropped int64
	// LostPages is the number of pages of the last commit's tree that
	// could not be read.
	LostPages int
	// Counted is the number of entries the old store's counter gave, or
	// -1 if it could not be read.
	Counted int64
	// Problems are the first problems met while salvaging.
	Problems []error
}

func (o *RepairOptions) defaults() {
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Repair salvages the store in dir. A store that opens and passes Check is
// left alone (Damage is nil). Otherwise, holding the store's lock, Repair
// copies the file aside (synced), reads every entry it can (see the package
// documentation), keeps those that state.CheckEntry accepts in a new store
// with a fresh expiry index and counters, and renames the new file over the
// old one. It fails with state.ErrLocked while another process holds the
// store, and with state.ErrSchema for a store of another schema version,
// which it does not touch.
func Repair(ctx context.Context, dir string, opts RepairOptions) (*RepairReport, error) {
	opts.defaults()
	path := filepath.Join(dir, FileName)
	if _, err := os.Lstat(path); err != nil {
		return nil, fmt.Errorf("cannot repair the state store in %s: %w", dir, err)
	}
	rep := &RepairReport{Path: path, Counted: -1}
	s, err := Open(dir, Options{LockTimeout: opts.LockTimeout})
	switch {
	case err == nil:
		rep.Damage = s.Check(ctx)
		s.Close()
		if rep.Damage == nil {
			return rep, nil
		}
	case errors.Is(err, state.ErrCorrupt):
		rep.Damage = err
	default:
		return nil, err
	}
	var de *damageError
	if errors.As(rep.Damage, &de) {
		rep.Damage = de.err
	}
	f, size, err := lockExisting(dir, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if rep.Copy, err = keepCopy(f, size, dir, opts.Now()); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(dir, ".repair-*")
	if err != nil {
		return nil, fmt.Errorf("cannot repair state file %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	ns, err := Open(tmp, Options{NoSync: true})
	if err != nil {
		return nil, err
	}
	w := &batchWriter{ctx: ctx, s: ns}
	sv, err := salvage(f, size, w.add)
	if err == nil {
		err = w.flush()
	}
	if cerr := ns.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("cannot repair state file %s (the old file is unchanged): %w", path, err)
	}
	for _, k := range sv.kept {
		rep.Kept++
		switch k.from {
		case fromPrevious:
			rep.FromPrevious++
		case fromOrphan:
			rep.Orphaned++
		}
	}
	for k := range sv.dropped {
		if _, ok := sv.kept[k]; !ok {
			rep.Dropped++
		}
	}
	rep.LostPages, rep.Counted, rep.Problems = sv.lost, sv.counted, sv.problems
	return rep, replaceFile(dir, filepath.Join(tmp, FileName))
}

// Discard replaces the store file in dir, sound or not, with an empty
// store, after copying it aside (synced); it is `kanon state reset` for a
// file that cannot be opened. It fails with state.ErrLocked while another
// process holds the store.
func Discard(dir string, opts RepairOptions) (*RepairReport, error) {
	opts.defaults()
	rep := &RepairReport{Path: filepath.Join(dir, FileName), Counted: -1}
	f, size, err := lockExisting(dir, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := verify(f, size); err != nil {
		rep.Damage = err
	}
	if rep.Copy, err = keepCopy(f, size, dir, opts.Now()); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, FileName+".new-*")
	if err != nil {
		return nil, fmt.Errorf("cannot reset state file %s: %w", rep.Path, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := writeEmptyStore(tmp.Name()); err != nil {
		return nil, fmt.Errorf("cannot reset state file %s: %w", rep.Path, err)
	}
	return rep, replaceFile(dir, tmp.Name())
}

// lockExisting opens and locks the existing store file of dir.
func lockExisting(dir string, timeout time.Duration) (*os.File, int64, error) {
	f, err := openLocked(dir, timeout, false)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("cannot read state file %s: %w", f.Name(), err)
	}
	return f, st.Size(), nil
}

// keepCopy copies the first size bytes of f to a new file beside it named
// after the time now, synced, and returns its path.
func keepCopy(f *os.File, size int64, dir string, now time.Time) (string, error) {
	base := filepath.Join(dir, FileName+".damaged-"+now.UTC().Format("20060102T150405Z"))
	name := base
	var dst *os.File
	for i := 2; ; i++ {
		var err error
		if dst, err = os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("cannot keep a copy of state file %s: %w", f.Name(), err)
		}
		name = base + "-" + strconv.Itoa(i)
	}
	_, err := io.Copy(dst, io.NewSectionReader(f, 0, size))
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(name)
		return "", fmt.Errorf("cannot keep a copy of state file %s in %s: %w", f.Name(), name, err)
	}
	return name, nil
}

// replaceFile syncs the new store file at from and renames it over the
// store file of dir, atomically.
func replaceFile(dir, from string) error {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(from, os.O_RDWR, 0)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(from, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("cannot replace state file %s: %w", path, err)
	}
	return nil
}

// batchWriter writes salvaged entries into a store in transactions of
// batchSize entries.
type batchWriter struct {
	ctx  context.Context
	s    *Store
	keys [][]byte
	raws [][]byte
}

const batchSize = 1000

func (w *batchWriter) add(key, raw []byte) error {
	w.keys = append(w.keys, append([]byte(nil), key...))
	w.raws = append(w.raws, append([]byte(nil), raw...))
	if len(w.keys) == batchSize {
		return w.flush()
	}
	return nil
}

func (w *batchWriter) flush() error {
	err := w.s.Update(w.ctx, time.Time{}, func(tx state.Tx) error {
		for i, k := range w.keys {
			exp, v, _ := state.DecodeEntry(w.raws[i])
			if err := tx.Put(k, v, state.FromUnixNano(exp)); err != nil {
				return err
			}
		}
		return nil
	})
	w.keys, w.raws = w.keys[:0], w.raws[:0]
	return err
}
