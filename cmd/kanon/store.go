package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
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

// openStore opens the state store the flags ask for.
func openStore(dir string, noState bool) (state.Store, string, error) {
	if noState {
		return mem.New(), "memory", nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("cannot create state directory: %w", err)
	}
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		return nil, "", err
	}
	return s, dir, nil
}
