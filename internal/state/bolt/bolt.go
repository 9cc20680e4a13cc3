package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/kanon-dev/kanon/internal/state"
)

// FileName is the name of the database file in the state directory.
const FileName = "kanon.db"

// SchemaVersion is the version of the file layout this package reads and
// writes. A file with another version is refused with state.ErrSchema.
const SchemaVersion = 1

var (
	bucketMeta   = []byte("meta")
	bucketData   = []byte("data")
	bucketExpiry = []byte("expiry")

	metaSchema  = []byte("schema")
	metaFormat  = []byte("format")
	metaEntries = []byte("entries")
	metaBytes   = []byte("bytes")

	// formatMarker, under metaFormat, tells kanon's files from other
	// programs' bbolt files.
	formatMarker = []byte("kanon state store")
)

// Options configures Open. The zero value gives the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the state directory. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// NoSync skips fsync on commit: faster, but a machine crash may lose
	// or corrupt recent writes. For benchmarks and throwaway scans only.
	NoSync bool
	// SweepBatch is how many expired entries DeleteExpired removes per
	// transaction. Zero means DefaultSweepBatch.
	SweepBatch int
}

// Defaults for Options.
const (
	DefaultLockTimeout = time.Second
	DefaultSweepBatch  = 10000
)

// closeTimeout bounds how long Close waits for bbolt to close a damaged file.
const closeTimeout = 5 * time.Second

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.LockTimeout < 0 {
		return fmt.Errorf("invalid state options: lock timeout %s is negative", o.LockTimeout)
	}
	if o.SweepBatch < 0 {
		return fmt.Errorf("invalid state options: sweep batch %d is negative", o.SweepBatch)
	}
	return nil
}

// Store is a state.Store in a bbolt file. It is safe for concurrent use.
type Store struct {
	mu     sync.RWMutex // held for reading by every call, for writing by Close and Check
	closed bool
	db     *bbolt.DB
	file   *os.File // the file bbolt reads, opened and locked by Open
	dir    string
	batch  int
	broken atomic.Pointer[error] // set when bbolt failed on the file
}

var _ state.Store = (*Store)(nil)

// Open opens the store in directory dir, creating the directory and a new
// store if there is none. Before bbolt reads an existing file, Open locks it
// and verifies it (see the package documentation); a file that is damaged,
// empty, not a bbolt file or not kanon's is refused with an error wrapping
// state.ErrCorrupt that names the file and says what to do, and is never
// reinitialised.
func Open(dir string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.SweepBatch == 0 {
		opts.SweepBatch = DefaultSweepBatch
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	f, err := openLocked(dir, opts.LockTimeout, true)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot open state file %s: %w", path, err)
	}
	if _, err := verify(f, st.Size()); err != nil {
		f.Close()
		return nil, fileError(dir, err)
	}
	s := &Store{file: f, dir: dir, batch: opts.SweepBatch}
	if err := s.openBolt(opts); err != nil {
		return nil, err
	}
	err = s.update(func(btx *bbolt.Tx) error { return checkSchema(btx, dir) })
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openBolt hands the verified, locked file to bbolt.
func (s *Store) openBolt(opts Options) (err error) {
	path := s.Path()
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			s.file.Close() // bbolt did not get to close it
			err = fileError(s.dir, fmt.Errorf("bbolt failed opening it: %v", r))
		}
	}()
	s.db, err = bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout: opts.LockTimeout,
		NoSync:  opts.NoSync,
		// bbolt locks the file again; on Unix this process holds the lock
		// already, on the same descriptor, so it succeeds at once.
		OpenFile: func(string, int, os.FileMode) (*os.File, error) { return s.file, nil },
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return lockedError(s.dir, opts.LockTimeout)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return fileError(s.dir, err)
	case err != nil:
		return fmt.Errorf("cannot open state file %s: %w", path, err)
	}
	return nil
}

// update runs fn in a bbolt read-write transaction, a panic of bbolt's recovered.
func (s *Store) update(fn func(btx *bbolt.Tx) error) (err error) {
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, nil)
	return s.db.Update(fn)
}

// createSchema creates the buckets of a new file.
func createSchema(btx *bbolt.Tx) error {
	meta, err := btx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(metaSchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
		return err
	}
	if err := meta.Put(metaFormat, formatMarker); err != nil {
		return err
	}
	if _, err := btx.CreateBucket(bucketData); err != nil {
		return err
	}
	_, err = btx.CreateBucket(bucketExpiry)
	return err
}

// checkSchema checks that an existing file is a kanon state store of this
// schema version: it has the format marker, or, written before kanon added
// the marker, kanon's three buckets and a schema version (it is given the
// marker then).
func checkSchema(btx *bbolt.Tx, dir string) error {
	meta := btx.Bucket(bucketMeta)
	if meta == nil {
		var names []string
		btx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			names = append(names, fmt.Sprintf("%q", name))
			return nil
		})
		if len(names) == 0 {
			return notKanonError(dir, "it is a bbolt file with no buckets")
		}
		return notKanonError(dir, "it is a bbolt file with the buckets "+strings.Join(names, ", ")+" and no kanon format marker")
	}
	format := meta.Get(metaFormat)
	if format != nil && !bytes.Equal(format, formatMarker) {
		return notKanonError(dir, fmt.Sprintf("it is a bbolt file of format %q", format))
	}
	v := meta.Get(metaSchema)
	switch {
	case len(v) != 4 && format == nil:
		return notKanonError(dir, "it is a bbolt file with a meta bucket but no kanon format marker or schema version")
	case len(v) != 4:
		return fileError(dir, fmt.Errorf("malformed schema version %x", v))
	}
	if got := binary.BigEndian.Uint32(v); got != SchemaVersion {
		return fmt.Errorf("state file %s has schema version %d, this kanon reads version %d: %w", filepath.Join(dir, FileName), got, SchemaVersion, state.ErrSchema)
	}
	if btx.Bucket(bucketData) == nil || btx.Bucket(bucketExpiry) == nil {
		return fileError(dir, errors.New("it lacks its data or expiry bucket"))
	}
	if format == nil {
		return meta.Put(metaFormat, formatMarker)
	}
	return nil
}

// Path returns the path of the database file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// acquire takes the read lock and reports ErrClosed after Close, or the
// damage found earlier. The caller must call s.mu.RUnlock when it returns
// nil.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return state.ErrClosed
	}
	if e := s.broken.Load(); e != nil {
		s.mu.RUnlock()
		return *e
	}
	return nil
}

// Get implements state.Store.
func (s *Store) Get(ctx context.Context, key []byte, now time.Time) (out []byte, err error) {
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, nil)
	err = s.db.View(func(btx *bbolt.Tx) error {
		v, err := get(btx.Bucket(bucketData), key, state.UnixNano(now))
		if err != nil {
			return err
		}
		out = append(make([]byte, 0, len(v)), v...)
		return nil
	})
	return out, err
}

// get returns the live value of key in the data bucket; it aliases the page.
func get(data *bbolt.Bucket, key []byte, now int64) ([]byte, error) {
	raw := data.Get(key)
	if raw == nil {
		return nil, state.ErrNotFound
	}
	exp, v, err := state.DecodeEntry(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot read key %q: %w", key, err)
	}
	if !state.Live(exp, now) {
		return nil, state.ErrNotFound
	}
	return v, nil
}

// Update implements state.Store: one bbolt read-write transaction, synced to
// disk before it returns unless the store was opened with NoSync.
func (s *Store) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	inFn := false // a panic of fn's own is not recovered
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, &inFn)
	return s.db.Update(func(btx *bbolt.Tx) error {
		t := &tx{
			s:    s,
			now:  now,
			nowN: state.UnixNano(now),
			data: btx.Bucket(bucketData),
			exp:  btx.Bucket(bucketExpiry),
		}
		defer func() { t.done = true }()
		inFn = true
		err := fn(t)
		inFn = false
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if t.err != nil {
			return t.err
		}
		return addCounters(btx.Bucket(bucketMeta), t.dEntries, t.dBytes)
	})
}

func addCounters(meta *bbolt.Bucket, dEntries, dBytes int64) error {
	if dEntries == 0 && dBytes == 0 {
		return nil
	}
	for _, c := range []struct {
		key []byte
		d   int64
	}{{metaEntries, dEntries}, {metaBytes, dBytes}} {
		if c.d == 0 {
			continue
		}
		n := readCounter(meta, c.key) + c.d
		if err := meta.Put(c.key, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
	}
	return nil
}

func readCounter(meta *bbolt.Bucket, key []byte) int64 {
	v := meta.Get(key)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// Scan implements state.Store. It runs in one read-only transaction, so it
// sees a snapshot.
func (s *Store) Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e state.Entry) error) (err error) {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	inFn := false
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, &inFn)
	nowN := state.UnixNano(now)
	return s.db.View(func(btx *bbolt.Tx) error {
		c := btx.Bucket(bucketData).Cursor()
		for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			exp, v, err := state.DecodeEntry(raw)
			if err != nil {
				return fmt.Errorf("cannot read key %q: %w", k, err)
			}
			if !state.Live(exp, nowN) {
				continue
			}
			inFn = true
			err = fn(state.Entry{Key: k, Value: v, Expiry: state.FromUnixNano(exp)})
			inFn = false
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteExpired implements state.Store. It walks the expiry index from the
// earliest expiry and commits every Options.SweepBatch removals.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (total int, err error) {
	nowN := state.UnixNano(now)
	if nowN == 0 {
		return 0, nil
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, nil)
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := s.sweep(nowN)
		if err != nil {
			return total, fmt.Errorf("cannot delete expired state: %w", err)
		}
		total += n
		if n < s.batch {
			return total, nil
		}
	}
}

// sweep removes at most s.batch entries expired at now in one transaction.
func (s *Store) sweep(now int64) (n int, err error) {
	err = s.db.Update(func(btx *bbolt.Tx) error {
		n = 0
		var idx [][]byte
		c := btx.Bucket(bucketExpiry).Cursor()
		for k, _ := c.First(); k != nil && len(idx) < s.batch; k, _ = c.Next() {
			exp, _, err := state.DecodeExpiryIndexKey(k)
			if err != nil {
				return err
			}
			if state.Live(exp, now) {
				break
			}
			idx = append(idx, bytes.Clone(k))
		}
		data, expB := btx.Bucket(bucketData), btx.Bucket(bucketExpiry)
		var dEntries, dBytes int64
		for _, ik := range idx {
			exp, key, _ := state.DecodeExpiryIndexKey(ik)
			if err := expB.Delete(ik); err != nil {
				return err
			}
			raw := data.Get(key)
			if raw == nil {
				continue // a stale index entry: nothing to remove
			}
			dexp, v, err := state.DecodeEntry(raw)
			if err != nil {
				return fmt.Errorf("cannot read key %q: %w", key, err)
			}
			if dexp != exp {
				continue // a stale index entry: the key was rewritten
			}
			dEntries--
			dBytes -= int64(len(key) + len(v))
			if err := data.Delete(key); err != nil {
				return err
			}
			n++
		}
		if len(idx) == 0 {
			return nil
		}
		return addCounters(btx.Bucket(bucketMeta), dEntries, dBytes)
	})
	return n, err
}

// Stats implements state.Store. DiskBytes is the size of the pages in use,
// which is at most the size of the file.
func (s *Store) Stats(ctx context.Context) (st state.Stats, err error) {
	if err := s.acquire(); err != nil {
		return state.Stats{}, err
	}
	defer s.mu.RUnlock()
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, nil)
	err = s.db.View(func(btx *bbolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		st = state.Stats{
			Entries:   readCounter(meta, metaEntries),
			Bytes:     readCounter(meta, metaBytes),
			DiskBytes: btx.Size(),
		}
		return nil
	})
	return st, err
}

// Close implements state.Store. It waits for calls in progress, then closes
// the file and releases its lock. After bbolt failed on a damaged file, its
// locks may be held by the call that failed: Close then waits at most
// closeTimeout for bbolt to close, and otherwise leaves the file open (and
// locked) until the process exits, and says so.
func (s *Store) Close() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.broken.Load() != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { recover() }() // damaged: only the lock matters now
			s.db.Close()
		}()
		select {
		case <-done:
			return nil
		case <-time.After(closeTimeout):
			return fmt.Errorf("cannot close damaged state file %s: bbolt did not release it within %s; it stays locked until kanon exits", s.Path(), closeTimeout)
		}
	}
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, nil)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("cannot close state file %s: %w", s.Path(), err)
	}
	return nil
}

// Check verifies the file while no other call runs: first as Open does,
// and also the meta page bbolt does not use and that every page below the
// high-water mark is in use or free; then bbolt's Tx.Check; then that the
// expiry index matches the data and the counters match the entries. It
// returns an error wrapping state.ErrCorrupt describing the first problems
// found.
func (s *Store) Check(ctx context.Context) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return state.ErrClosed
	}
	if e := s.broken.Load(); e != nil {
		return *e
	}
	st, err := s.file.Stat()
	if err != nil {
		return fmt.Errorf("cannot check state file %s: %w", s.Path(), err)
	}
	rep, err := verify(s.file, st.Size())
	if err == nil {
		err = rep.err()
	}
	if err != nil {
		return fileError(s.dir, err)
	}
	defer s.recoverBolt(debug.SetPanicOnFault(true), &err, nil)
	return s.db.View(func(btx *bbolt.Tx) error {
		var errs []error
		for err := range btx.Check() {
			errs = append(errs, err)
			if len(errs) == 10 {
				break
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("state file %s: %w: %w", s.Path(), state.ErrCorrupt, errors.Join(errs...))
		}
		return checkEntries(ctx, btx, s.Path())
	})
}

// checkEntries checks that the expiry index matches the data and the
// counters match the entries.
func checkEntries(ctx context.Context, btx *bbolt.Tx, path string) error {
	expB := btx.Bucket(bucketExpiry)
	var entries, size, expiring int64
	var ik []byte
	err := btx.Bucket(bucketData).ForEach(func(k, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		exp, v, err := state.DecodeEntry(raw)
		if err != nil {
			return fmt.Errorf("key %q: %w", k, err)
		}
		entries++
		size += int64(len(k) + len(v))
		if exp != 0 {
			expiring++
			ik = state.AppendExpiryIndexKey(ik[:0], exp, k)
			if expB.Get(ik) == nil {
				return fmt.Errorf("%w: key %q expiring at %v is missing from the expiry index", state.ErrCorrupt, k, state.FromUnixNano(exp))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if n := int64(expB.Stats().KeyN); n != expiring {
		return fmt.Errorf("state file %s: %w: expiry index has %d keys for %d expiring entries", path, state.ErrCorrupt, n, expiring)
	}
	meta := btx.Bucket(bucketMeta)
	if e, b := readCounter(meta, metaEntries), readCounter(meta, metaBytes); e != entries || b != size {
		return fmt.Errorf("state file %s: %w: counters say %d entries of %d bytes, found %d of %d", path, state.ErrCorrupt, e, b, entries, size)
	}
	return nil
}

// tx implements state.Tx over a bbolt read-write transaction.
type tx struct {
	s        *Store
	now      time.Time
	nowN     int64
	data     *bbolt.Bucket
	exp      *bbolt.Bucket
	done     bool
	err      error // the first write error, which fails the commit
	dEntries int64
	dBytes   int64
}

func (t *tx) Now() time.Time { return t.now }

func (t *tx) Get(key []byte) (v []byte, err error) {
	if t.done {
		return nil, state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	defer t.recoverBolt(&err)
	return get(t.data, key, t.nowN)
}

func (t *tx) Put(key, value []byte, expiry time.Time) (err error) {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
	if err := state.ValidateValue(value); err != nil {
		return err
	}
	defer t.recoverBolt(&err)
	if err := t.remove(key); err != nil {
		return t.fail(err)
	}
	// bbolt keeps the slices until commit: give it copies.
	key = bytes.Clone(key)
	exp := state.UnixNano(expiry)
	if err := t.data.Put(key, state.AppendEntry(make([]byte, 0, state.EntryHeaderSize+len(value)), exp, value)); err != nil {
		return t.fail(err)
	}
	if exp != 0 {
		if err := t.exp.Put(state.AppendExpiryIndexKey(nil, exp, key), []byte{}); err != nil {
			return t.fail(err)
		}
	}
	t.dEntries++
	t.dBytes += int64(len(key) + len(value))
	return nil
}

func (t *tx) Delete(key []byte) (err error) {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
	defer t.recoverBolt(&err)
	if err := t.remove(key); err != nil {
		return t.fail(err)
	}
	return nil
}

// remove deletes key and its expiry index entry, if it exists.
func (t *tx) remove(key []byte) error {
	raw := t.data.Get(key)
	if raw == nil {
		return nil
	}
	exp, v, err := state.DecodeEntry(raw)
	if err != nil {
		return fmt.Errorf("cannot read key %q: %w", key, err)
	}
	n := int64(len(key) + len(v))
	if exp != 0 {
		if err := t.exp.Delete(state.AppendExpiryIndexKey(nil, exp, key)); err != nil {
			return err
		}
	}
	if err := t.data.Delete(key); err != nil {
		return err
	}
	t.dEntries--
	t.dBytes -= n
	return nil
}

// fail records the first write error: a transaction whose write failed half
// way must not commit even if the update function ignores the error.
func (t *tx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}
