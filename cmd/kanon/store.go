package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/open"
)

// defaultStateDir is $XDG_STATE_HOME/kanon, else ~/.local/state/kanon.
func defaultStateDir() string {
	if d := os.Getenv("KANON_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "kanon")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "kanon")
	}
	return ".kanon-state"
}

// storeFlagUsage is the help of --store, the same for scan, serve and state.
const storeFlagUsage = "shared state store `URL`: redis://HOST:PORT/DB?prefix=NAME or rediss://... (password from ?password_file=FILE or $KANON_REDIS_PASSWORD); default: the file under --state-dir"

// openStore opens the state store the flags ask for: the Redis server of
// url, else the bbolt file in dir, or memory with noState.
func openStore(ctx context.Context, url, dir string, noState bool) (state.Store, string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	return open.Store(ctx, open.Config{URL: url, Dir: dir, Memory: noState})
}
