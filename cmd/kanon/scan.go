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
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/spf13/cobra"
)

// scanParams are the flags of kanon scan.
type scanParams struct {
	rules  ruleFlags
	narrow narrowFlags
	out    outputFlags
	format string
	strict bool
	// stateDir, resume (the default directory) or store (a shared
	// store's URL) makes the scan incremental: it remembers what it
	// raised and learned. Without them a scan starts afresh, in memory.
	stateDir     string
	resume       bool
	store        string
	noState      bool // deprecated: the default
	maxRecord    int
	lateness     time.Duration
	learnOnly    bool
	noMaxSignals bool
	quiet        bool
	progress     string
	showBad      int
	exitZero     bool
	// dedup is the number of recent (auditID, stage) keys remembered to
	// drop repeated deliveries.
	dedup int
	// windows is what becomes of the ES|QL runs stored by an earlier scan
	// (engine.ParseWindowMode): rebuild (the default) or restore.
	windows string
	// report, if set, is the incident report written beside the scan
	// (report.go).
	report string
	tuning tuningFlags
}

func newScanParams() *scanParams {
	return &scanParams{out: outputFlags{output: "auto", color: "auto"}, format: "auto", maxRecord: ingest.DefaultMaxRecordBytes,
		lateness: -1, progress: "auto", showBad: 10, dedup: run.DefaultDedup, windows: engine.WindowsRebuild.String()}
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

A scan is stateless: it judges what it reads and remembers nothing, so the
same logs always give the same alerts. --state-dir DIR (or --resume, for
` + defaultStateDir() + `) makes it incremental: it remembers the alerts it
raised, so they are not raised again, and what new-terms rules learned.

Alerts go to stdout, in time order: a table fitted to the terminal (-o
table; -o wide for every column, uncut), NDJSON when stdout is not a
terminal (-o jsonl), one JSON or YAML document with the rules described
once (-o json, -o yaml), or CSV (-o csv). A summary goes to stderr.

Elastic's scheduled rules raise at most max_signals alerts per run, as in
Elastic; the summary counts the hits over it, the table and -o json say in
each alert how many its run dropped, --dropped-hits outputs them too (marked
"dropped", never counted as raised), and --no-max-signals raises them all,
which departs from Elastic's run semantics on purpose.

Exit status: 0 no alerts and every record read, 2 alerts raised, 3 no alert
but some records could not be read (the scan did not see everything), 1 an
error; --exit-zero makes 2 and 3 exit 0.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), io, p, args)
		},
	}
	fs := cmd.Flags()
	p.rules.register(fs)
	fs.StringArrayVar(&p.narrow.disabled, "disable-rule", nil, "do not run the rule with this `ID` (repeatable)")
	fs.StringVar(&p.narrow.minSeverity, "min-severity", "", "run only the rules of this severity or above: info, low, medium, high, critical")
	fs.StringVar(&p.narrow.since, "since", "", "judge only events at or after `TIME`: RFC 3339, a date, or a duration before now (1h, 2d)")
	fs.StringVar(&p.narrow.until, "until", "", "judge only events before `TIME` (as --since)")
	fs.StringVar(&p.narrow.cluster, "cluster", "", "cluster `NAME` of events that carry none (a kube-apiserver log file)")
	fs.StringVarP(&p.out.output, "output", "o", p.out.output, "alert output: "+outputNames)
	fs.IntVar(&p.out.width, "width", 0, "fit the table to `N` columns (default: the terminal's, else $COLUMNS, else no limit)")
	fs.StringVar(&p.out.color, "color", p.out.color, "colour the table's severities: auto (on a terminal, unless NO_COLOR is set), always or never")
	fs.BoolVarP(&p.out.verbose, "verbose", "v", false, "table output: add the alert title, id, origin and the events an aggregate counts")
	fs.BoolVar(&p.out.ruleDetails, "rule-details", false, "JSON output: repeat the rule's whole description in every alert (default: id, name, severity, risk score)")
	fs.BoolVar(&p.out.droppedHits, "dropped-hits", false, "also output the hits dropped at max_signals, marked \"dropped\" (not counted as raised)")
	fs.BoolVar(&p.noMaxSignals, "no-max-signals", false, "lift max_signals: raise every hit of every run (departs from Elastic's run semantics)")
	fs.StringVar(&p.format, "format", p.format, "input format: auto, "+strings.Join(registry().Names(), ", "))
	fs.BoolVar(&p.strict, "strict", false, "stop at the first bad record (exit 1)")
	fs.StringVar(&p.stateDir, "state-dir", "", "incremental scan: keep state (alerts raised, new-terms history) in `DIR` and read what earlier scans left there")
	fs.BoolVar(&p.resume, "resume", false, "incremental scan with the state directory "+defaultStateDir()+" ($KANON_STATE_DIR)")
	fs.StringVar(&p.store, "store", "", "incremental scan with a "+storeFlagUsage)
	fs.BoolVar(&p.noState, "no-state", false, "deprecated: keeping no state is the default")
	fs.IntVar(&p.maxRecord, "max-record-bytes", p.maxRecord, "size limit of one record")
	fs.DurationVar(&p.lateness, "lateness", p.lateness, "close windowed rule runs once event time passes their end by this much (negative: at the end of the input)")
	fs.BoolVar(&p.learnOnly, "learn-only", false, "learn new-terms history without alerting (warm-up; with --state-dir)")
	fs.BoolVarP(&p.quiet, "quiet", "q", false, "no summary on stderr")
	fs.StringVar(&p.progress, "progress", p.progress, "progress bar on stderr: auto, always or never")
	fs.IntVar(&p.showBad, "show-bad", p.showBad, "print at most this many bad records on stderr (all are counted)")
	fs.BoolVar(&p.exitZero, "exit-zero", false, "exit 0 even when alerts are raised")
	fs.IntVar(&p.dedup, "dedup", p.dedup, "drop repeated deliveries of an event (same auditID and stage) among the last N events seen (0: keep all)")
	fs.StringVar(&p.out.alertsFile, "alerts-file", "", "also append alerts as JSON lines to `FILE`, synced before they count as raised; a re-run after a crash appends none twice")
	fs.StringVar(&p.windows, "windows", p.windows, "with --state-dir, ES|QL runs left open by a scan that was killed: rebuild (delete them; for a re-run over the same input, which rebuilds them) or restore (go on with them; for an input that starts after the killed scan's)")
	p.tuning.register(fs)
	fs.StringVar(&p.report, "report", "", "also write an incident report to `FILE`: .html (one self-contained page) or .md (for a ticket); see kanon report")
	return cmd
}

func runScan(ctx context.Context, io *streams, p *scanParams, paths []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(err error) error { return &exitError{code: 1, err: err} }
	compiled, err := p.rules.load()
	if err == nil {
		compiled, err = p.narrow.narrowRules(compiled)
	}
	if err != nil {
		return fail(err)
	}
	hunt, err := p.narrow.hunt(time.Now())
	if err != nil {
		return fail(err)
	}
	dir, stateful, err := p.stateOf()
	if err != nil {
		return fail(err)
	}
	if p.noState {
		fmt.Fprintln(io.err, "kanon: --no-state is deprecated: a scan keeps no state unless --state-dir or --resume is given")
	}
	store, where, err := openStore(ctx, p.store, dir, !stateful)
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	out, err := p.out.open(io)
	if err != nil {
		return fail(err)
	}
	pol := run.BatchPolicy()
	pol.Lateness = p.lateness
	if pol.Windows, err = engine.ParseWindowMode(p.windows); err != nil {
		return fail(err)
	}
	if !stateful {
		pol.Windows = engine.WindowsInMemory
	}
	hunt.NoMaxSignals, hunt.DroppedHits, hunt.Counts = p.noMaxSignals, out.dropped(&p.out), &engine.HuntCounts{}
	rep, err := newScanReport(p.report, "", "")
	if err != nil {
		out.abort()
		return fail(err)
	}
	bundled := len(paths) == 0
	sum := &scanSummary{start: time.Now(), store: where, bundled: bundled, hunt: hunt, droppedShown: p.out.droppedHits}
	var bar *progressBar
	cfg := run.Config{
		Rules: compiled, Registry: registry(), Store: store, Sink: out.sink, Policy: pol, Hunt: hunt,
		Format: p.format, MaxRecordBytes: p.maxRecord, Dedup: p.dedup, Strict: p.strict, LearnOnly: p.learnOnly,
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
	}
	p.tuning.apply(&cfg)
	d, err := run.New(rep.attach(cfg))
	if err != nil {
		out.abort()
		return fail(err)
	}
	src := &run.Files{Paths: paths, Stdin: io.in, MaxRecordBytes: p.maxRecord}
	if err := src.List(); err != nil {
		out.abort()
		return fail(err) // a missing input is an error before anything is read
	}
	sum.skipped = src.Skipped
	if bundled {
		if src.Paths, err = fs.Glob(examples.FS, "logs/*"); err != nil {
			out.abort()
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
		// closed on part of the input), print what was raised, say so.
		d.Stop(context.Background())
		bar.stop()
		out.finish(hunt.Counts)
		return fail(errors.New("interrupted"))
	}
	if cerr := d.Close(context.Background()); err == nil {
		err = cerr
	}
	bar.stop()
	st := d.Stats()
	if cerr := out.finish(hunt.Counts); err == nil {
		err = cerr
	}
	if !p.quiet {
		sum.print(io.err, st)
	}
	if err == nil {
		err = rep.write(io, st, src.Skipped, p.quiet)
	}
	if err != nil {
		return fail(err)
	}
	switch {
	case p.exitZero:
	case alertsRaised(st) > 0:
		return &exitError{code: findings}
	case st.Bad > 0:
		return &exitError{code: unread}
	}
	return nil
}
