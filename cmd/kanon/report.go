package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/report"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newReportCmd) }

// reportParams are the flags of kanon report.
type reportParams struct {
	rules     ruleFlags
	out       string
	kind      string
	title     string
	format    string
	strict    bool
	maxRecord int
	dedup     int
	showBad   int
	quiet     bool
}

func newReportParams() *reportParams {
	return &reportParams{out: "kanon-report.html", format: "auto", maxRecord: ingest.DefaultMaxRecordBytes,
		dedup: run.DefaultDedup, showBad: 10}
}

func newReportCmd(io *streams) *cobra.Command {
	p := newReportParams()
	cmd := &cobra.Command{
		Use:   "report [PATH...]",
		Short: "Write an incident report of anonymous access (one HTML file, or Markdown for a ticket)",
		Long: `Scan audit logs as kanon scan does and write an incident report for the people
handling the incident: a timeline of anonymous requests per minute by
authorization decision with the alerts marked, the top source IPs and user
agents with first and last seen and allowed/forbidden counts, what they
reached (resources, verbs, request URIs, response codes), each alert with its
rule, severity, MITRE ATT&CK technique, runbook and the event behind it, the
rules that ran and what they dropped, and the inputs (files, formats, bad
records).

The HTML report is one self-contained file: its style is inline, its charts
are SVG drawn by kanon, it has no script and loads nothing (open it offline,
attach it to the incident). -o FILE.md writes Markdown for a ticket instead.
State is kept in memory: the report is of the input alone. kanon scan
--report FILE writes the same report beside a scan.

PATH is a file (plain or gzip), a directory or - for standard input, as for
kanon scan; without PATH, the bundled example logs. Exit status: 0 the report
was written (whatever it found), 1 an error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(cmd.Context(), io, p, args)
		},
	}
	fs := cmd.Flags()
	p.rules.register(fs)
	fs.StringVarP(&p.out, "output", "o", p.out, "write the report to `FILE`: .html, or .md for Markdown; - for stdout")
	fs.StringVar(&p.kind, "type", "", "report type, instead of the file name's: html or markdown")
	fs.StringVar(&p.title, "title", "", "the report's title (default \"Anonymous access to the Kubernetes API\")")
	fs.StringVar(&p.format, "format", p.format, "input format: auto, "+joinNames())
	fs.BoolVar(&p.strict, "strict", false, "stop at the first bad record (exit 1)")
	fs.IntVar(&p.maxRecord, "max-record-bytes", p.maxRecord, "size limit of one record")
	fs.IntVar(&p.dedup, "dedup", p.dedup, "drop repeated deliveries of an event (same auditID and stage) among the last N events seen (0: keep all)")
	fs.IntVar(&p.showBad, "show-bad", p.showBad, "print at most this many bad records on stderr (all are counted, and listed in the report)")
	fs.BoolVarP(&p.quiet, "quiet", "q", false, "say nothing on stderr once the report is written")
	return cmd
}

// reportKind is the type of the report at path: "html" or "markdown",
// from kind if given, else from the file's extension.
func reportKind(path, kind string) (string, error) {
	switch strings.ToLower(kind) {
	case "html":
		return "html", nil
	case "markdown", "md":
		return "markdown", nil
	case "":
	default:
		return "", fmt.Errorf("unknown report type %q (html or markdown)", kind)
	}
	if path == "-" {
		return "html", nil
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return "html", nil
	case ".md", ".markdown":
		return "markdown", nil
	}
	return "", fmt.Errorf("cannot tell the report type of %s: name it .html or .md, or give --type", path)
}

// discardAlerts is the sink of kanon report: the alerts are in the report.
type discardAlerts struct{}

func (discardAlerts) Write(context.Context, *alert.Alert) error { return nil }
func (discardAlerts) Close() error                              { return nil }

func runReport(ctx context.Context, io *streams, p *reportParams, paths []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fail := func(err error) error { return &exitError{code: 1, err: err} }
	rep, err := newScanReport(p.out, p.kind, p.title)
	if err != nil {
		return fail(err)
	}
	compiled, err := p.rules.load()
	if err != nil {
		return fail(err)
	}
	pol := run.BatchPolicy()
	pol.Windows = engine.WindowsInMemory
	var shown int
	cfg := rep.attach(run.Config{
		Rules: compiled, Registry: registry(), Sink: discardAlerts{}, Policy: pol,
		Format: p.format, MaxRecordBytes: p.maxRecord, Dedup: p.dedup, Strict: p.strict, Decoders: run.DefaultDecoders(),
		OnBad: func(_ string, b ingest.BadRecord) {
			if shown < p.showBad {
				shown++
				fmt.Fprintf(io.err, "kanon: bad record: %v\n", b)
			}
		},
		OnRuleError: func(id string, err error) { fmt.Fprintf(io.err, "kanon: rule %s: %v\n", id, err) },
	})
	d, err := run.New(cfg)
	if err != nil {
		return fail(err)
	}
	src := &run.Files{Paths: paths, Stdin: io.in, MaxRecordBytes: p.maxRecord}
	if err := src.List(); err != nil {
		return fail(err)
	}
	if len(paths) == 0 {
		if src.Paths, err = fs.Glob(examples.FS, "logs/*"); err != nil {
			return fail(err)
		}
		sort.Strings(src.Paths)
		src.FS, src.Prefix = examples.FS, "examples/"
	}
	err = d.Run(ctx, src)
	if ctx.Err() != nil {
		d.Stop(context.Background())
		return fail(errors.New("interrupted: no report written"))
	}
	if cerr := d.Close(context.Background()); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	if err := rep.write(io, d.Stats(), src.Skipped, p.quiet); err != nil {
		return fail(err)
	}
	return nil
}

// scanReport is an incident report written beside a run: kanon report,
// and kanon scan --report FILE. A nil *scanReport (no report asked for)
// does nothing.
type scanReport struct {
	path, kind string
	c          *report.Collector
}

// newScanReport checks that a report can be written to path (its type
// known, its directory there) before anything is scanned; "" asks for no
// report (nil).
func newScanReport(path, kind, title string) (*scanReport, error) {
	if path == "" {
		return nil, nil
	}
	k, err := reportKind(path, kind)
	if err != nil {
		return nil, err
	}
	if path != "-" {
		if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("cannot write the report %s: no directory %s", path, filepath.Dir(path))
		}
	}
	return &scanReport{path: path, kind: k, c: report.New(report.Options{Title: title, Generator: "kanon " + readBuildInfo().short()})}, nil
}

// attach adds the report's collector to cfg (run.Config.Observers,
// OnAlert, OnBad) and returns it.
func (s *scanReport) attach(cfg run.Config) run.Config {
	if s != nil {
		s.c.Attach(&cfg)
	}
	return cfg
}

// write writes the report once the driver is closed (st is its Stats;
// skipped what the directories held that was not read), through a
// temporary file renamed into place, and says so on ios.err unless quiet.
func (s *scanReport) write(ios *streams, st run.Stats, skipped []ingest.SkippedPath, quiet bool) error {
	if s == nil {
		return nil
	}
	r := s.c.Report(st)
	r.Skipped = skipped
	render := report.WriteHTML
	if s.kind == "markdown" {
		render = report.WriteMarkdown
	}
	if s.path == "-" {
		return render(ios.out, r)
	}
	n, err := writeFileAtomic(s.path, func(w io.Writer) error { return render(w, r) })
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(ios.err, "kanon: wrote the %s report %s (%s): %s anonymous requests of %s events, %s alerts\n",
			s.kind, s.path, humanBytes(n), humanCount(r.Anonymous.Requests), humanCount(r.Events), humanCount(r.AlertsTotal))
	}
	return nil
}

// writeFileAtomic writes path through a temporary file in its directory,
// renamed over it once complete, and returns the bytes written.
func writeFileAtomic(path string, fill func(io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return 0, fmt.Errorf("cannot write the report %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	cw := &countingWriter{w: tmp}
	bw := bufio.NewWriterSize(cw, 64<<10)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot write the report %s: %w", path, err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
