package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	metaEntries = []byte("entries")
	metaBytes   = []byte("bytes")
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
	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool
	db     *bbolt.DB
	dir    string
	batch  int
}

var _ state.Store = (*Store)(nil)

// Open opens or creates the store in directory dir, creating the directory
// if needed.
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
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("state directory %s is in use by another kanon process (no lock within %s): %w", dir, opts.LockTimeout, state.ErrLocked)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, fmt.Errorf("cannot open state file %s: %w: %w", path, state.ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("cannot open state file %s: %w", path, err)
	}
	if err := db.Update(func(btx *bbolt.Tx) error { return initSchema(btx, path) }); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, dir: dir, batch: opts.SweepBatch}, nil
}

// initSchema creates the buckets of a new file, or checks the schema version
// of an existing one.
func initSchema(btx *bbolt.Tx, path string) error {
	meta := btx.Bucket(bucketMeta)
	if meta == nil {
		if btx.Bucket(bucketData) != nil {
			return fmt.Errorf("state file %s has data but no schema version: %w", path, state.ErrCorrupt)
		}
		var err error
		if meta, err = btx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := meta.Put(metaSchema, binary.BigEndian.AppendUint32(nil, SchemaVersion)); err != nil {
			return err
		}
		if _, err := btx.CreateBucket(bucketData); err != nil {
			return err
		}
		_, err = btx.CreateBucket(bucketExpiry)
		return err
	}
	v := meta.Get(metaSchema)
	if len(v) != 4 {
		return fmt.Errorf("state file %s has a malformed schema version %x: %w", path, v, state.ErrCorrupt)
	}
	if got := binary.BigEndian.Uint32(v); got != SchemaVersion {
		return fmt.Errorf("state file %s has schema version %d, this kanon reads version %d: %w", path, got, SchemaVersion, state.ErrSchema)
	}
	if btx.Bucket(bucketData) == nil || btx.Bucket(bucketExpiry) == nil {
		return fmt.Errorf("state file %s lacks its data or expiry bucket: %w", path, state.ErrCorrupt)
	}
	return nil
}

// Path returns the path of the database file.
func (s *Store) Path() string { return filepath.Join(s.dir, FileName) }

// acquire takes the read lock and reports ErrClosed after Close. The caller
// must call s.mu.RUnlock when it returns nil.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return state.ErrClosed
	}
	return nil
}

// Get implements state.Store.
func (s *Store) Get(ctx context.Context, key []byte, now time.Time) ([]byte, error) {
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
	var out []byte
	err := s.db.View(func(btx *bbolt.Tx) error {
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
func (s *Store) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	return s.db.Update(func(btx *bbolt.Tx) error {
		t := &tx{
			now:  now,
			nowN: state.UnixNano(now),
			data: btx.Bucket(bucketData),
			exp:  btx.Bucket(bucketExpiry),
		}
		defer func() { t.done = true }()
		if err := fn(t); err != nil {
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
func (s *Store) Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e state.Entry) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
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
			if err := fn(state.Entry{Key: k, Value: v, Expiry: state.FromUnixNano(exp)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteExpired implements state.Store. It walks the expiry index from the
// earliest expiry and commits every Options.SweepBatch removals.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	nowN := state.UnixNano(now)
	if nowN == 0 {
		return 0, nil
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n := 0
		err := s.db.Update(func(btx *bbolt.Tx) error {
			n = 0
			var idx [][]byte
			c := btx.Bucket(bucketExpiry).Cursor()
			for k, _ := c.First(); k != nil && len(idx) < s.batch; k, _ = c.Next() {
				exp, _, err := state.DecodeExpiryIndexKey(k)
				if err != nil {
					return err
				}
				if state.Live(exp, nowN) {
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
		if err != nil {
			return total, fmt.Errorf("cannot delete expired state: %w", err)
		}
		total += n
		if n < s.batch {
			return total, nil
		}
	}
}

// Stats implements state.Store. DiskBytes is the size of the pages in use,
// which is at most the size of the file.
func (s *Store) Stats(ctx context.Context) (state.Stats, error) {
	if err := s.acquire(); err != nil {
		return state.Stats{}, err
	}
	defer s.mu.RUnlock()
	var st state.Stats
	err := s.db.View(func(btx *bbolt.Tx) error {
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
// the file and releases its lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("cannot close state file %s: %w", s.Path(), err)
	}
	return nil
}

// Check verifies the file: bbolt's page consistency check, then that the
// expiry index matches the data and the counters match the entries. It
// returns an error wrapping state.ErrCorrupt describing the first problems
// found.
func (s *Store) Check(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
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
			return fmt.Errorf("state file %s: %w", s.Path(), err)
		}
		if n := int64(expB.Stats().KeyN); n != expiring {
			return fmt.Errorf("state file %s: %w: expiry index has %d keys for %d expiring entries", s.Path(), state.ErrCorrupt, n, expiring)
		}
		meta := btx.Bucket(bucketMeta)
		if e, b := readCounter(meta, metaEntries), readCounter(meta, metaBytes); e != entries || b != size {
			return fmt.Errorf("state file %s: %w: counters say %d entries of %d bytes, found %d of %d", s.Path(), state.ErrCorrupt, e, b, entries, size)
		}
		return nil
	})
}

// tx implements state.Tx over a bbolt read-write transaction.
type tx struct {
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

func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return nil, err
	}
	return get(t.data, key, t.nowN)
}

func (t *tx) Put(key, value []byte, expiry time.Time) error {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
	if err := state.ValidateValue(value); err != nil {
		return err
	}
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

func (t *tx) Delete(key []byte) error {
	if t.done {
		return state.ErrTxDone
	}
	if err := state.ValidateKey(key); err != nil {
		return err
	}
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
