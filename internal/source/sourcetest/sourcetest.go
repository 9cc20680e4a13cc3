// Package sourcetest holds what tests of the sources in internal/source
// share: the built-in rules, kanon scan of an input to compare a source's
// alerts with, a state store whose commits fail on demand, and a live
// driver running one source.
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

// BuiltinRules are the enabled rules of the built-in pack, compiled.
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

// Distinct returns the distinct ids of alerts, sorted.
func Distinct(as []*alert.Alert) []string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ScanIDs is kanon scan of input (a file's content): the distinct alert
// ids, sorted.
func ScanIDs(t testing.TB, input []byte) []string {
	t.Helper()
	var col alert.Collector
	d, err := run.New(run.Config{Rules: BuiltinRules(t), Registry: formats.Registry(), Sink: &col, Policy: run.TestPolicy(), Dedup: run.DefaultDedup})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Run(ctx, &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(input)}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return Distinct(col.Alerts)
}

// FailingStore fails its commits while Fail is set.
type FailingStore struct {
	state.Store
	Fail atomic.Bool
	// Failed counts the commits failed.
	Failed atomic.Int64
}

// Update implements state.Store.
func (s *FailingStore) Update(ctx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if s.Fail.Load() {
		s.Failed.Add(1)
		return errors.New("disk full (injected)")
	}
	return s.Store.Update(ctx, now, fn)
}

// Live is a live driver (serve's policy) running one source.
type Live struct {
	D      *run.Driver
	Col    *alert.Collector
	cancel context.CancelFunc
	done   chan error
}

// StartLive starts a driver on store with the built-in rules and runs src
// on it.
func StartLive(t testing.TB, store state.Store, src run.Source) *Live {
	t.Helper()
	return StartReplica(t, store, "", src)
}

// StartReplica is StartLive for a driver that shares store with others as
// replica (run.Config.Replica).
func StartReplica(t testing.TB, store state.Store, replica string, src run.Source) *Live {
	t.Helper()
	pol := run.LivePolicy(time.Hour)
	pol.IdleCheck = time.Hour
	l := &Live{Col: &alert.Collector{}, done: make(chan error, 1)}
	d, err := run.New(run.Config{Rules: BuiltinRules(t), Registry: formats.Registry(), Store: store, Sink: l.Col, Policy: pol,
		Dedup: run.DefaultDedup, Replica: replica, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	l.D = d
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() { l.done <- src.Run(ctx, d) }()
	return l
}

// Done is the source's result, once it has returned.
func (l *Live) Done() <-chan error { return l.done }

// Stop stops the source, then the driver: Close (the end of the input:
// the open runs close) if end, else Stop (they are handed over).
func (l *Live) Stop(t testing.TB, end bool) {
	t.Helper()
	l.cancel()
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
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
