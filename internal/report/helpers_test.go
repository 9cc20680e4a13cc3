package report_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/report"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/rules"
)

// repoRoot is the repository's root (the examples and the CLI's test logs
// are read from it).
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// realLogs are the real-shaped logs: the bundled example and the serve
// replay with its enumeration burst.
func realLogs(t testing.TB) []string {
	root := repoRoot(t)
	return []string{filepath.Join(root, "examples", "logs", "audit.log"), filepath.Join(root, "cmd", "kanon", "testdata", "serve", "replay.log")}
}

// generatedLog writes a log of n events from the load generator, at rate
// events per second from start (zero: the generator's default), and
// returns its path.
func generatedLog(t testing.TB, n int, rate float64, start ...time.Time) string {
	t.Helper()
	opts := loadgen.DefaultOptions(n, 7)
	opts.Rate = rate
	if len(start) > 0 {
		opts.Start = start[0]
	}
	var buf bytes.Buffer
	if _, err := loadgen.Generate(&buf, opts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "generated.log")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scan runs the built-in rules over paths, as kanon scan does, with a
// collector attached, and returns the report and the alerts.
func scan(t testing.TB, opts report.Options, paths ...string) (*report.Report, []*alert.Alert) {
	t.Helper()
	rs, err := rule.LoadFSNamed(rules.FS, ".", "builtin:")
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := rule.CompileAll(rs)
	if err != nil {
		t.Fatal(err)
	}
	sink := &alert.Collector{}
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }
	}
	c := report.New(opts)
	pol := run.BatchPolicy()
	pol.Windows = engine.WindowsInMemory
	cfg := run.Config{Rules: compiled, Registry: formats.Registry(), Sink: sink, Policy: pol, Dedup: run.DefaultDedup, Decoders: 2,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c.Attach(&cfg)
	d, err := run.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(context.Background(), &run.Files{Paths: paths})
	if cerr := d.Close(context.Background()); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return c.Report(d.Stats()), sink.Alerts
}
