package open

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/redis"
)

// Config says which store to open.
type Config struct {
	// URL is a redis:// or rediss:// URL; empty means the bbolt file in
	// Dir.
	URL string
	// Dir is the state directory of the bbolt store.
	Dir string
	// Memory opens an empty in-memory store (no state kept), whatever URL
	// and Dir say.
	Memory bool
	// Existing refuses to create a bbolt store: the directory must exist
	// (kanon state inspects what is there).
	Existing bool
	// Getenv reads the environment (the Redis password variable); nil
	// means os.Getenv.
	Getenv func(string) string
}

// Validate reports whether url names a store Store could open (empty: the
// bbolt default), reading what the URL points to (a password file, a CA
// file) but without connecting.
func Validate(url string) error {
	if url == "" {
		return nil
	}
	if !strings.HasPrefix(url, "redis://") && !strings.HasPrefix(url, "rediss://") {
		return unknownStore(url)
	}
	_, err := redis.ParseURL(url, os.Getenv)
	return err
}

func unknownStore(url string) error {
	return fmt.Errorf("unknown state store %s: want a redis:// or rediss:// URL, or no --store for the file under --state-dir", redis.Redact(url))
}

// Store opens the store c names, and returns it with a description of
// where it is for logs and summaries (never a password).
func Store(ctx context.Context, c Config) (state.Store, string, error) {
	switch {
	case c.Memory:
		return mem.New(), "memory", nil
	case c.URL == "":
		if c.Existing {
			if st, err := os.Stat(c.Dir); err != nil || !st.IsDir() {
				return nil, "", fmt.Errorf("no state store in %s (see --state-dir)", c.Dir)
			}
		}
		s, err := bolt.Open(c.Dir, bolt.Options{})
		if err != nil {
			return nil, "", err
		}
		return s, c.Dir, nil
	case strings.HasPrefix(c.URL, "redis://"), strings.HasPrefix(c.URL, "rediss://"):
		getenv := c.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		opts, err := redis.ParseURL(c.URL, getenv)
		if err != nil {
			return nil, "", err
		}
		s, err := redis.Open(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return s, s.String(), nil
	}
	return nil, "", unknownStore(c.URL)
}
