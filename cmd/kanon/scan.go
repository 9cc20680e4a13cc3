package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/spf13/cobra"
)

// scanParams are the flags of kanon scan.
type scanParams struct {
	rules     ruleFlags
	output    string
	format    string
	strict    bool
	stateDir  string
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
	// alertsFile, if set, is the durable alert output (see alertsFile).
	alertsFile string
	// windows is what becomes of the ES|QL runs stored by an earlier scan
	// (engine.ParseWindowMode): rebuild (the default) or restore.
	windows string
}

// scanCheckpointEvery is how often (wall clock, checked every 4096
// events) a scan with a state directory checkpoints its open ES|QL runs.
const scanCheckpointEvery = time.Second

func newScanParams() *scanParams {
	return &scanParams{output: "auto", format: "auto", maxRecord: ingest.DefaultMaxRecordBytes, lateness: -1, progress: "auto", showBad: 10, dedup: 1 << 18, windows: engine.WindowsRebuild.String()}
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
A summary goes to stderr. Exit status: 0 no alerts, 2 alerts raised, 1 error.`,
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
	return cmd
}

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

type scanSummary struct {
	dupes    func() int64
	start    time.Time
	reader   *ingest.Reader
	engine   *engine.Engine
	store    string
	badShown int
}

func runScan(ctx context.Context, io *streams, p *scanParams, paths []string, stateDirSet bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	compiled, err := p.rules.load()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	bundled := len(paths) == 0
	noState := p.noState || bundled && !stateDirSet
	store, where, err := openStore(p.stateDir, noState)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer store.Close()

	var sink alert.Sink
	var flusher interface{ Flush() error }
	switch p.output {
	case "json", "ndjson":
		js := alert.NewJSONSink(io.out)
		sink, flusher = js, js
	case "table":
		sink = alert.NewTableSink(io.out, p.verbose)
	case "auto":
		if io.outTTY {
			sink = alert.NewTableSink(io.out, p.verbose)
		} else {
			js := alert.NewJSONSink(io.out)
			sink, flusher = js, js
		}
	default:
		return &exitError{code: 1, err: fmt.Errorf("unknown output %q (table, json or auto)", p.output)}
	}
	if p.alertsFile != "" {
		af, err := openAlertsFile(p.alertsFile)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		sink = alert.Multi{sink, af}
	}
	reg := registry()
	var ruleErrs []string
	windows, err := engine.ParseWindowMode(p.windows)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	if noState {
		windows = engine.WindowsInMemory
	}
	eng, err := engine.New(compiled, engine.Options{
		Sink: sink, Store: store, Materialize: reg.Materialize, Lateness: p.lateness, LearnOnly: p.learnOnly, Windows: windows,
		SweepEvery: time.Hour,
		OnError: func(id string, err error) {
			ruleErrs = append(ruleErrs, err.Error())
			fmt.Fprintf(io.err, "kanon: rule %s: %v\n", id, err)
		},
	})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	sum := &scanSummary{start: time.Now(), engine: eng, store: where}
	var done atomic.Int64
	var total int64
	var bar *progressBar
	opts := ingest.Options{
		Format: p.format, Fields: eng.Fields(), MaxRecordBytes: p.maxRecord, Strict: p.strict,
		OnBad: func(b ingest.BadRecord) {
			if sum.badShown < p.showBad {
				sum.badShown++
				bar.clear()
				fmt.Fprintf(io.err, "kanon: bad record: %v\n", b)
			}
		},
	}
	if !bundled {
		total = inputSize(paths)
	}
	var dedup *ingest.Dedup
	if p.dedup > 0 {
		if dedup, err = ingest.NewDedup(p.dedup); err != nil {
			return &exitError{code: 1, err: err}
		}
		opts.Dedup = dedup.Duplicate
		sum.dupes = dedup.Dropped
	}
	if p.progress == "always" || p.progress == "auto" && io.errTTY && total > 64<<20 {
		bar = newProgressBar(io.err, total, &done)
		opts.OnProgress = func(n int64) { done.Add(n) }
		bar.run()
	}
	rd, err := ingest.NewReader(reg, opts)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	sum.reader = rd
	var nev int
	lastCheckpoint := time.Now()
	process := func(e *event.Event) error {
		if err := eng.Process(ctx, e); err != nil {
			return err
		}
		if nev++; nev%4096 == 0 && time.Since(lastCheckpoint) >= scanCheckpointEvery {
			lastCheckpoint = time.Now()
			return eng.Checkpoint(ctx)
		}
		return nil
	}
	if bundled {
		err = scanBundled(ctx, rd, process)
	} else {
		err = rd.ReadPaths(ctx, paths, io.in, process)
	}
	if err == nil {
		err = eng.Close(ctx)
	}
	if err == nil {
		err = eng.Checkpoint(ctx) // deletes the runs Close closed
	}
	bar.stop()
	if flusher != nil {
		if ferr := flusher.Flush(); ferr != nil && err == nil {
			err = ferr
		}
	}
	sink.Close()
	if !p.quiet {
		sum.print(io.err, bundled)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 1, err: errors.New("interrupted")}
		}
		return &exitError{code: 1, err: err}
	}
	var alerts int64
	for _, st := range eng.Stats().Rules {
		alerts += st.Alerts
	}
	if alerts > 0 && !p.exitZero {
		return &exitError{code: findings}
	}
	return nil
}

func scanBundled(ctx context.Context, rd *ingest.Reader, fn func(*event.Event) error) error {
	names, err := fs.Glob(examples.FS, "logs/*")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := examples.FS.Open(n)
		if err != nil {
			return err
		}
		err = rd.ReadStream(ctx, "examples/"+n, f, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func inputSize(paths []string) int64 {
	var n int64
	for _, p := range paths {
		if p == "-" {
			continue
		}
		files, err := ingest.ListFiles(p)
		if err != nil {
			continue
		}
		for _, f := range files {
			if st, err := os.Stat(f); err == nil {
				n += st.Size()
			}
		}
	}
	return n
}

func (s *scanSummary) print(w io.Writer, bundled bool) {
	el := time.Since(s.start)
	st := s.reader.Stats()
	es := s.engine.Stats()
	secs := el.Seconds()
	if secs <= 0 {
		secs = 1e-9
	}
	src := fmt.Sprintf("%d files", st.Files)
	if bundled {
		src = "the bundled example logs"
	}
	fmt.Fprintf(w, "\nscanned %s events (%s) from %s in %s (%s/s, %s events/s)\n",
		humanCount(st.Events), humanBytes(st.Bytes), src, el.Round(time.Millisecond),
		humanBytes(int64(float64(st.Bytes)/secs)), humanCount(int64(float64(st.Events)/secs)))
	if st.Bad > 0 {
		more := ""
		if st.Bad > int64(s.badShown) {
			more = fmt.Sprintf(" (%d shown; --show-bad N shows more)", s.badShown)
		}
		fmt.Fprintf(w, "bad records: %s%s\n", humanCount(st.Bad), more)
	}
	if s.dupes != nil && s.dupes() > 0 {
		fmt.Fprintf(w, "repeated deliveries dropped (same auditID and stage): %s\n", humanCount(s.dupes()))
	}
	if st.Skipped > 0 {
		fmt.Fprintf(w, "skipped records (not audit events, e.g. other AKS log categories): %s\n", humanCount(st.Skipped))
	}
	ids := make([]string, 0, len(es.Rules))
	for id := range es.Rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var total, suppressed int64
	width := 0
	for _, id := range ids {
		width = max(width, len(id))
	}
	fmt.Fprintf(w, "alerts by rule:\n")
	for _, id := range ids {
		r := es.Rules[id]
		total += r.Alerts
		suppressed += r.Suppressed
		line := fmt.Sprintf("  %-*s %6d", width, id, r.Alerts)
		var extra []string
		if r.Dropped > 0 {
			extra = append(extra, fmt.Sprintf("%d dropped at max_signals", r.Dropped))
		}
		if r.Suppressed > 0 {
			extra = append(extra, fmt.Sprintf("%d already raised", r.Suppressed))
		}
		if r.Grouped > 0 {
			extra = append(extra, fmt.Sprintf("%d grouped into earlier alerts", r.Grouped))
		}
		if r.Late > 0 {
			extra = append(extra, fmt.Sprintf("%d late events", r.Late))
		}
		if r.Errors > 0 {
			extra = append(extra, fmt.Sprintf("%d errors", r.Errors))
		}
		if len(extra) > 0 {
			line += "  (" + strings.Join(extra, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "total alerts: %d", total)
	if suppressed > 0 {
		fmt.Fprintf(w, "; %d not raised again: already raised by an earlier scan (state: %s; --no-state scans afresh)", suppressed, s.store)
	}
	fmt.Fprintln(w)
}

// alertsFile is the durable alert output of --alerts-file: JSON lines
// appended to a file, each synced to disk before Write returns, so that the
// engine marks an alert raised in the state store only once it is on disk.
// When it opens, it reads the file: a last line cut short by a crash is cut
// off, and the delivery key of every alert in the file (its id, and for a
// group its count) is kept. An alert a re-run writes again, because the
// crash came between writing it and marking it, is therefore not appended
// twice: with the same state directory and alerts file, a scan killed at
// any point and run again over the same input leaves in the file exactly
// the alerts of one uninterrupted scan, each once.
type alertsFile struct {
	mu   sync.Mutex
	path string
	f    *os.File
	have map[string]bool
}

func openAlertsFile(path string) (*alertsFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open alerts file: %w", err)
	}
	s := &alertsFile{path: path, f: f, have: map[string]bool{}}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load indexes the complete lines of the file and cuts off a partial last
// line.
func (s *alertsFile) load() error {
	data, err := io.ReadAll(s.f)
	if err != nil {
		return fmt.Errorf("cannot read alerts file: %w", err)
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	for i, line := range bytes.Split(data[:end], []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var a struct {
			ID    string       `json:"id"`
			Group *alert.Group `json:"group"`
		}
		if err := json.Unmarshal(line, &a); err != nil || a.ID == "" {
			return fmt.Errorf("%s:%d: not an alert written by kanon (use another --alerts-file)", s.path, i+1)
		}
		s.have[deliveryKey(a.ID, a.Group)] = true
	}
	if end < len(data) {
		if err := s.f.Truncate(int64(end)); err != nil {
			return fmt.Errorf("cannot cut the partial last line of %s: %w", s.path, err)
		}
	}
	if _, err := s.f.Seek(int64(end), io.SeekStart); err != nil {
		return fmt.Errorf("cannot append to %s: %w", s.path, err)
	}
	return nil
}

// deliveryKey identifies one delivery of an alert: its id, and for a group
// the count it was delivered with (a group is delivered again when it grows).
func deliveryKey(id string, g *alert.Group) string {
	if g == nil {
		return id
	}
	return id + "#" + strconv.FormatInt(g.Count, 10)
}

// Write implements alert.Sink: it appends the alert unless the file holds
// it, and returns once it is synced to disk.
func (s *alertsFile) Write(_ context.Context, a *alert.Alert) error {
	key := deliveryKey(a.ID, a.Group)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.have[key] {
		return nil
	}
	b, err := alert.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := s.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("cannot write alerts file: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("cannot sync alerts file: %w", err)
	}
	s.have[key] = true
	return nil
}

// Close implements alert.Sink.
func (s *alertsFile) Close() error { return s.f.Close() }
