package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/kanon-dev/kanon/internal/state"
)

// SchemaVersion is the version of the layout this package reads and
// writes, kept in the store's meta hash. A store with another version is
// refused with state.ErrSchema.
const SchemaVersion = 1

// Defaults for Options.
const (
	DefaultPrefix      = "kanon"
	DefaultMaxAttempts = 100
	DefaultSweepBatch  = 1000
	DefaultScanPage    = 256
)

// Options configures Open. Addr is required; the zero value of every other
// field gives its default.
type Options struct {
	// Addr is the server's host:port.
	Addr string
	// Username and Password authenticate (Redis ACL, or the password of
	// requirepass when Username is empty).
	Username, Password string
	// DB is the logical database number.
	DB int
	// Prefix names the store: all its Redis keys start with "{Prefix}",
	// so several kanon deployments (or tests) share one server without
	// seeing each other's state, and a store's keys share one Cluster
	// hash slot. Empty means DefaultPrefix. It may not contain '{' or '}'.
	Prefix string
	// TLS, when not nil, connects with TLS (rediss://).
	TLS *tls.Config
	// MaxAttempts bounds how many times Update runs its function when
	// concurrent commits keep changing what it read; then Update fails
	// with state.ErrConflict. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// SweepBatch is how many expired entries DeleteExpired removes per
	// script call. Zero means DefaultSweepBatch.
	SweepBatch int
	// ScanPage is how many entries Scan reads per round trip pair. Zero
	// means DefaultScanPage.
	ScanPage int
	// PoolSize is the client's connection pool size (0: go-redis's
	// default, ten per CPU).
	PoolSize int
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	switch {
	case o.Addr == "":
		return errors.New("invalid redis state options: no server address")
	case o.DB < 0:
		return fmt.Errorf("invalid redis state options: database %d is negative", o.DB)
	case o.MaxAttempts < 0, o.SweepBatch < 0, o.ScanPage < 0, o.PoolSize < 0:
		return errors.New("invalid redis state options: a negative attempt, batch, page or pool size")
	}
	for _, c := range o.Prefix {
		if c == '{' || c == '}' {
			return fmt.Errorf("invalid redis state options: prefix %q contains a brace", o.Prefix)
		}
	}
	return nil
}

// Store is a state.Store in a Redis server. It is safe for concurrent use,
// and several Stores (in one process or many) with the same server and
// prefix share one state, with serialisable updates.
type Store struct {
	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool
	c      *goredis.Client
	opts   Options

	// Redis keys: the entries are data+key; index is the sorted set of
	// store keys (score 0, for ordered prefix scans); expiry the sorted
	// set of expiring store keys scored by expiry in milliseconds; meta
	// the hash of the schema version and the counters.
	data, index, expiry, meta string
}

var _ state.Store = (*Store)(nil)

// Open connects to the server described by opts, checks the store's schema
// version (writing it if the store is new) and loads the scripts. The
// Store owns its client: Close closes it.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	quietOnce.Do(func() { goredis.SetLogger(quiet{}) })
	c := goredis.NewClient(&goredis.Options{
		Addr:                  opts.Addr,
		Username:              opts.Username,
		Password:              opts.Password,
		DB:                    opts.DB,
		TLSConfig:             opts.TLS,
		PoolSize:              opts.PoolSize,
		Protocol:              2,
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
	s, err := newStore(ctx, c, opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func newStore(ctx context.Context, c *goredis.Client, opts Options) (*Store, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.SweepBatch == 0 {
		opts.SweepBatch = DefaultSweepBatch
	}
	if opts.ScanPage == 0 {
		opts.ScanPage = DefaultScanPage
	}
	base := "{" + opts.Prefix + "}:"
	s := &Store{c: c, opts: opts, data: base + "d:", index: base + "k", expiry: base + "x", meta: base + "m"}
	if err := s.init(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// init writes the schema version of a new store, or checks an existing
// one's, and loads the scripts.
func (s *Store) init(ctx context.Context) error {
	var ver *goredis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.HSetNX(ctx, s.meta, "schema", SchemaVersion)
		ver = p.HGet(ctx, s.meta, "schema")
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot open redis state store %s at %s: %w", s.opts.Prefix, s.opts.Addr, err)
	}
	switch v, err := strconv.Atoi(ver.Val()); {
	case err != nil:
		return fmt.Errorf("redis state store %s at %s has a malformed schema version %q: %w", s.opts.Prefix, s.opts.Addr, ver.Val(), state.ErrCorrupt)
	case v != SchemaVersion:
		return fmt.Errorf("redis state store %s at %s has schema version %d, this kanon reads version %d: %w", s.opts.Prefix, s.opts.Addr, v, SchemaVersion, state.ErrSchema)
	}
	return s.loadScripts(ctx)
}

func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range scripts {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return fmt.Errorf("cannot load the scripts of redis state store %s at %s: %w", s.opts.Prefix, s.opts.Addr, err)
		}
	}
	return nil
}

// quiet drops go-redis's own log lines (printed to stderr, unstructured):
// every failure they tell of reaches the store's caller as an error, which
// kanon logs its way.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

// Client returns the store's go-redis client, for metrics and for hooks
// that count round trips (AddHook). Commands sent through it bypass the
// store's guarantees.
func (s *Store) Client() *goredis.Client { return s.c }

// Prefix returns the store's prefix.
func (s *Store) Prefix() string { return s.opts.Prefix }

// String describes the store for logs: the server, database and prefix.
func (s *Store) String() string {
	return fmt.Sprintf("redis %s db %d prefix %s", s.opts.Addr, s.opts.DB, s.opts.Prefix)
}

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

// dataKey returns the Redis key of the entry of key.
func (s *Store) dataKey(key []byte) string { return s.data + string(key) }

// decode judges a stored entry at now (state.UnixNano): its value, or
// ErrNotFound if it is expired.
func decode(key []byte, raw []byte, now int64) ([]byte, error) {
	exp, v, err := state.DecodeEntry(raw)
	if err != nil {
		return nil, fmt.Errorf("cannot read key %q: %w", key, err)
	}
	if !state.Live(exp, now) {
		return nil, state.ErrNotFound
	}
	return v, nil
}

// Get implements state.Store: one GET.
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
	raw, err := s.c.Get(ctx, s.dataKey(key)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, state.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read key %q from redis: %w", key, err)
	}
	v, err := decode(key, raw, state.UnixNano(now))
	if err != nil {
		return nil, err
	}
	return v[:len(v):len(v)], nil
}

// Scan implements state.Store. It pages through the key index with
// ZRANGEBYLEX from the prefix, and reads each page's entries with MGET:
// two round trips per Options.ScanPage entries. It is not a snapshot: an
// entry deleted between the two is skipped.
func (s *Store) Scan(ctx context.Context, prefix []byte, now time.Time, fn func(e state.Entry) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	lo, hi := "-", "+"
	if len(prefix) > 0 {
		lo = "[" + string(prefix)
		if end := state.PrefixEnd(prefix); end != nil {
			hi = "(" + string(end)
		}
	}
	nowN := state.UnixNano(now)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		keys, err := s.c.ZRangeByLex(ctx, s.index, &goredis.ZRangeBy{Min: lo, Max: hi, Count: int64(s.opts.ScanPage)}).Result()
		if err != nil {
			return fmt.Errorf("cannot scan redis state store %s: %w", s.opts.Prefix, err)
		}
		if len(keys) == 0 {
			return nil
		}
		dks := make([]string, len(keys))
		for i, k := range keys {
			dks[i] = s.data + k
		}
		vals, err := s.c.MGet(ctx, dks...).Result()
		if err != nil {
			return fmt.Errorf("cannot scan redis state store %s: %w", s.opts.Prefix, err)
		}
		for i, k := range keys {
			raw, ok := vals[i].(string)
			if !ok {
				continue // deleted since the index was read
			}
			exp, v, err := state.DecodeEntry([]byte(raw))
			if err != nil {
				return fmt.Errorf("cannot read key %q: %w", k, err)
			}
			if !state.Live(exp, nowN) {
				continue
			}
			if err := fn(state.Entry{Key: []byte(k), Value: v, Expiry: state.FromUnixNano(exp)}); err != nil {
				return err
			}
		}
		if len(keys) < s.opts.ScanPage {
			return nil
		}
		lo = "(" + keys[len(keys)-1]
	}
}

// Stats implements state.Store: one HMGET of the counters. DiskBytes is 0:
// the server's memory is its own to report.
func (s *Store) Stats(ctx context.Context) (state.Stats, error) {
	if err := s.acquire(); err != nil {
		return state.Stats{}, err
	}
	defer s.mu.RUnlock()
	vals, err := s.c.HMGet(ctx, s.meta, "entries", "bytes").Result()
	if err != nil {
		return state.Stats{}, fmt.Errorf("cannot read the counters of redis state store %s: %w", s.opts.Prefix, err)
	}
	var n [2]int64
	for i, v := range vals {
		if str, ok := v.(string); ok {
			if n[i], err = strconv.ParseInt(str, 10, 64); err != nil {
				return state.Stats{}, fmt.Errorf("redis state store %s has a malformed counter %q: %w", s.opts.Prefix, str, state.ErrCorrupt)
			}
		}
	}
	return state.Stats{Entries: n[0], Bytes: n[1]}, nil
}

// Close implements state.Store. It waits for calls in progress, then closes
// the client; the state stays on the server for other replicas and for the
// next Open.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.c.Close(); err != nil {
		return fmt.Errorf("cannot close redis state store %s: %w", s.opts.Prefix, err)
	}
	return nil
}

// expiryScore is the expiry index's score of an expiry (state.UnixNano):
// milliseconds, rounded down, which a float64 holds exactly over the whole
// range of UnixNano. Entries whose score is below the score of now are
// expired; those with the same score are judged on their header.
func expiryScore(exp int64) int64 {
	q := exp / 1e6
	if exp%1e6 < 0 {
		q--
	}
	return q
}

// healthTimeout bounds Healthy's PING.
const healthTimeout = 2 * time.Second

// Healthy reports whether the server answers a PING now (run.Health:
// kanon serve's /readyz fails while it does not).
func (s *Store) Healthy() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis %s does not answer: %w", s.opts.Addr, err)
	}
	return nil
}
