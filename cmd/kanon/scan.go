package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/spf13/cobra"
)

// scanParams are the flags of kanon scan.
type scanParams struct {
	rules     ruleFlags
	output    string
	format    string
	strict    bool
	stateDir  string
	store     string
	noState   bool
	maxRecord int
	lateness  time.Duration
	learnOnly bool
	quiet     bool
	progress  string
	showBad   int
	verbose   bool
	exitZero  bool
	// dedup is the number of recent (auditID, stage) keys remembered to
	// drop repeated deliveries.
	dedup int
	// alertsFile, if set, is the durable alert output: each alert synced
	// before it counts as raised, none written twice across re-runs.
	alertsFile string
	// windows is what becomes of the ES|QL runs stored by an earlier scan
	// (engine.ParseWindowMode): rebuild (the default) or restore.
	windows string
	// report, if set, is the incident report written beside the scan
	// (report.go).
	report string
}

func newScanParams() *scanParams {
	return &scanParams{output: "auto", format: "auto", maxRecord: ingest.DefaultMaxRecordBytes, lateness: -1, progress: "auto",
		showBad: 10, dedup: run.DefaultDedup, windows: engine.WindowsRebuild.String()}
}

func newScanCmd(io *streams) *cobra.Command {
	p := newScanParams()
	cmd := &cobra.Command{
		Use:   "scan [PATH...]",
		Short: "Run the rules over audit logs (files, directories, - for stdin)",
		Long: `Run the rules over audit logs and print the alerts.

PATH is a file (plain or gzip), a directory (read recursively, in name order)
or - for standard input. Every record's format is detected (Kubernetes audit
events and EventLists, ECS documents, EKS, AKS and GKE exports); --format
forces one. Without PATH, kanon scans its bundled example logs.

Alerts go to stdout: a table on a terminal, NDJSON otherwise (-o json).
A summary goes to stderr. Exit status: 0 no alerts and every record read,
2 alerts raised, 3 no alert but some records could not be read (the scan
did not see everything), 1 an error; --exit-zero makes 2 and 3 exit 0.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), io, p, args, cmd.Flags().Changed("state-dir"))
		},
	}
	fs := cmd.Flags()
	p.rules.register(fs)
	fs.StringVarP(&p.output, "output", "o", p.output, "alert output: table, json or auto (table on a terminal)")
	fs.StringVar(&p.format, "format", p.format, "input format: auto, "+strings.Join(registry().Names(), ", "))
	fs.BoolVar(&p.strict, "strict", false, "stop at the first bad record (exit 1)")
	fs.StringVar(&p.stateDir, "state-dir", defaultStateDir(), "directory of the state store (alerts raised, new-terms history)")
	fs.StringVar(&p.store, "store", "", storeFlagUsage)
	fs.BoolVar(&p.noState, "no-state", false, "keep state in memory only: remember nothing between scans")
	fs.IntVar(&p.maxRecord, "max-record-bytes", p.maxRecord, "size limit of one record")
	fs.DurationVar(&p.lateness, "lateness", p.lateness, "close windowed rule runs once event time passes their end by this much (negative: at the end of the input)")
	fs.BoolVar(&p.learnOnly, "learn-only", false, "learn new-terms history without alerting (warm-up)")
	fs.BoolVarP(&p.quiet, "quiet", "q", false, "no summary on stderr")
	fs.StringVar(&p.progress, "progress", p.progress, "progress bar on stderr: auto, always or never")
	fs.IntVar(&p.showBad, "show-bad", p.showBad, "print at most this many bad records on stderr (all are counted)")
	fs.BoolVarP(&p.verbose, "verbose", "v", false, "table output: add the alert title, id and origin")
	fs.BoolVar(&p.exitZero, "exit-zero", false, "exit 0 even when alerts are raised")
	fs.IntVar(&p.dedup, "dedup", p.dedup, "drop repeated deliveries of an event (same auditID and stage) among the last N events seen (0: keep all)")
	fs.StringVar(&p.alertsFile, "alerts-file", "", "also append alerts as JSON lines to `FILE`, synced before they count as raised; a re-run after a crash appends none twice")
	fs.StringVar(&p.windows, "windows", p.windows, "ES|QL runs left open in the state directory by a scan that was killed: rebuild (delete them; for a re-run over the same input, which rebuilds them) or restore (go on with them; for an input that starts after the killed scan's)")
	fs.StringVar(&p.report, "report", "", "also write an incident report to `FILE`: .html (one self-contained page) or .md (for a ticket); see kanon report")
	return cmd
}

// scanSink is the alert output the flags ask for.
func scanSink(io *streams, p *scanParams) (alert.Sink, error) {
	var sink alert.Sink
	switch p.output {
	case "json", "ndjson":
		sink = alert.NewJSONSink(io.out)
	case "table":
		sink = alert.NewTableSink(io.out, p.verbose)
	case "auto":
		if io.outTTY {
			sink = alert.NewTableSink(io.out, p.verbose)
		} else {
			sink = alert.NewJSONSink(io.out)
		}
	default:
		return nil, fmt.Errorf("unknown output %q (table, json or auto)", p.output)
	}
	if p.alertsFile != "" {
		af, err := alert.NewFileSink(alert.FileConfig{Path: p.alertsFile, MaxSize: -1, SyncWrites: true, OnlyAlerts: true, Mode: 0o600})
		if errors.Is(err, alert.ErrNotAlert) {
			return nil, fmt.Errorf("%w (use another --alerts-file)", err)
		}
		if err != nil {
			return nil, err
		}
		sink = flushMulti{sink, af}
	}
	return sink, nil
}

// flushMulti writes to every sink and flushes those that flush.
type flushMulti alert.Multi

func (m flushMulti) Write(ctx context.Context, a *alert.Alert) error {
	return alert.Multi(m).Write(ctx, a)
}
func (m flushMulti) Close() error { return alert.Multi(m).Close() }
func (m flushMulti) Flush() error {
	for _, s := range m {
		if f, ok := s.(interface{ Flush() error }); ok {
			if err := f.Flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func runScan(ctx context.Context, io *streams, p *scanParams, paths []string, stateDirSet bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(err error) error { return &exitError{code: 1, err: err} }
	compiled, err := p.rules.load()
	if err != nil {
		return fail(err)
	}
	bundled := len(paths) == 0
	noState := p.noState || bundled && !stateDirSet
	store, where, err := openStore(ctx, p.store, p.stateDir, noState)
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	sink, err := scanSink(io, p)
	if err != nil {
		return fail(err)
	}
	defer sink.Close()
	pol := run.BatchPolicy()
	pol.Lateness = p.lateness
	if pol.Windows, err = engine.ParseWindowMode(p.windows); err != nil {
		return fail(err)
	}
	if noState {
		pol.Windows = engine.WindowsInMemory
	}
	rep, err := newScanReport(p.report, "", "")
	if err != nil {
		return fail(err)
	}
	sum := &scanSummary{start: time.Now(), store: where, bundled: bundled}
	var bar *progressBar
	d, err := run.New(rep.attach(run.Config{
		Rules: compiled, Registry: registry(), Store: store, Sink: sink, Policy: pol,
		Format: p.format, MaxRecordBytes: p.maxRecord, Dedup: p.dedup, Strict: p.strict, LearnOnly: p.learnOnly,
		Decoders: run.DefaultDecoders(),
		OnBad: func(_ string, b ingest.BadRecord) {
			if sum.badShown < p.showBad {
				sum.badShown++
				bar.clear()
				fmt.Fprintf(io.err, "kanon: bad record: %v\n", b)
			}
		},
		OnWarn: func(_ string, b ingest.BadRecord) {
			if sum.badShown < p.showBad {
				sum.badShown++
				bar.clear()
				fmt.Fprintf(io.err, "kanon: warning: %v\n", b)
			}
		},
		OnRuleError: func(id string, err error) { fmt.Fprintf(io.err, "kanon: rule %s: %v\n", id, err) },
	}))
	if err != nil {
		return fail(err)
	}
	src := &run.Files{Paths: paths, Stdin: io.in, MaxRecordBytes: p.maxRecord}
	if err := src.List(); err != nil {
		return fail(err) // a missing input is an error before anything is read
	}
	sum.skipped = src.Skipped
	if bundled {
		if src.Paths, err = fs.Glob(examples.FS, "logs/*"); err != nil {
			return fail(err)
		}
		sort.Strings(src.Paths)
		src.FS, src.Prefix = examples.FS, "examples/"
	} else if total := src.Size(); p.progress == "always" || p.progress == "auto" && io.errTTY && total > 64<<20 {
		var done atomic.Int64
		bar = newProgressBar(io.err, total, &done)
		src.OnProgress = func(n int64) { done.Add(n) }
		bar.run()
	}
	err = d.Run(ctx, src)
	if ctx.Err() != nil {
		// Interrupted: keep what was read (open runs checkpointed, not
		// closed on part of the input), and say so.
		d.Stop(context.Background())
		bar.stop()
		return fail(errors.New("interrupted"))
	}
	if cerr := d.Close(context.Background()); err == nil {
		err = cerr
	}
	bar.stop()
	if !p.quiet {
		sum.print(io.err, d.Stats())
	}
	if err == nil {
		err = rep.write(io, d.Stats(), src.Skipped, p.quiet)
	}
	if err != nil {
		return fail(err)
	}
	switch st := d.Stats(); {
	case p.exitZero:
	case alertsRaised(st) > 0:
		return &exitError{code: findings}
	case st.Bad > 0:
		return &exitError{code: unread}
	}
	return nil
}
