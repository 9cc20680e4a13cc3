// Package sourcetest holds what the tests of kanon's sources share: the
// built-in rules, kanon scan's alerts of the same records to compare with,
// a serve-like driver that runs one source on a store, and a store whose
// commits fail on demand.
package sourcetest

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/rules"
)

// BuiltinRules compiles the enabled rules of the built-in pack.
func BuiltinRules(t testing.TB) []*rule.Compiled {
	t.Helper()
	rs, err := rule.LoadFS(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	var on []*rule.Rule
	for _, r := range rs {
		if r.IsEnabled() {
			on = append(on, r)
		}
	}
	c, err := rule.CompileAll(on)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// IDs returns the distinct ids of as, sorted.
func IDs(as []*alert.Alert) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.ID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ScanIDs is kanon scan of data (what a file holding it would give): the
// distinct alert ids, sorted.
func ScanIDs(t testing.TB, data []byte) []string {
	t.Helper()
	var col alert.Collector
	d, err := run.New(run.Config{Rules: BuiltinRules(t), Registry: formats.Registry(), Sink: &col, Policy: run.TestPolicy(), Dedup: run.DefaultDedup})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Run(ctx, &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return IDs(col.Alerts)
}

// FailingStore fails the commits while Fail is set.
type FailingStore struct {
	state.Store
	Fail atomic.Bool
}

// Update fails while Fail is set.
func (s *FailingStore) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if s.Fail.Load() {
		return errors.New("disk full (injected)")
	}
	return s.Store.Update(ctx, now, fn)
}

// Live is a serve-like driver (live policy, an hour's lateness, no idle
// check) running one source on a store, its alerts collected.
type Live struct {
	D      *run.Driver
	Col    *alert.Collector
	cancel context.CancelFunc
	done   chan error
}

// StartLive starts src on a new driver on store.
func StartLive(t testing.TB, store state.Store, src run.Source) *Live {
	t.Helper()
	pol := run.LivePolicy(time.Hour)
	pol.IdleCheck = time.Hour
	l := &Live{Col: &alert.Collector{}, done: make(chan error, 1)}
	d, err := run.New(run.Config{Rules: BuiltinRules(t), Registry: formats.Registry(), Store: store, Sink: l.Col, Policy: pol,
		Dedup: run.DefaultDedup, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l.D = d
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() { l.done <- src.Run(ctx, d) }()
	return l
}

// Stop stops the source and then the driver: with end, as at the end of
// the inputs (open runs closed); otherwise as serve's SIGTERM (handed
// over).
func (l *Live) Stop(t testing.TB, end bool) {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the source did not stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := l.D.Stop
	if end {
		stop = l.D.Close
	}
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
}
