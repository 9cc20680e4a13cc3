package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"golang.org/x/term"
)

// outputFlags choose how kanon scan prints its alerts.
type outputFlags struct {
	output      string
	width       int
	color       string
	verbose     bool
	ruleDetails bool
	droppedHits bool
	alertsFile  string
}

// outputNames are the values of -o.
const outputNames = "auto, table, wide, json, jsonl (ndjson), yaml or csv"

// scanOutput is the alert output of a scan: out prints on stdout; sink is
// what the driver writes to (out and the alerts file).
type scanOutput struct {
	out  alert.Sink
	sink alert.Sink
	file alert.Sink // the alerts file, or nil
}

// width is the table's width: --width, else the terminal's, else
// $COLUMNS; 0 (no limit) when none says.
func (f *outputFlags) tableWidth(io *streams) int {
	if f.width > 0 {
		return f.width
	}
	return terminalWidth(io)
}

// terminalWidth is the width of the terminal io.out writes to, else
// $COLUMNS; 0 when neither says.
func terminalWidth(io *streams) int {
	if file, ok := io.out.(*os.File); ok && io.outTTY {
		if w, _, err := term.GetSize(int(file.Fd())); err == nil && w > 0 {
			return w
		}
	}
	if w, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && w > 0 {
		return w
	}
	return 0
}

// useColor says whether the table is coloured: --color always or never,
// else on a terminal unless NO_COLOR is set (https://no-color.org) or
// TERM is dumb.
func (f *outputFlags) useColor(io *streams) (bool, error) {
	switch f.color {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		return io.outTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb", nil
	}
	return false, fmt.Errorf("unknown --color %q (auto, always or never)", f.color)
}

// open opens the output the flags ask for.
func (f *outputFlags) open(io *streams) (*scanOutput, error) {
	color, err := f.useColor(io)
	if err != nil {
		return nil, err
	}
	table := func(wide bool) alert.Sink {
		return alert.NewTableSink(io.out, alert.TableOptions{Width: f.tableWidth(io), Color: color, Wide: wide, Verbose: f.verbose})
	}
	var out alert.Sink
	switch f.output {
	case "auto":
		if io.outTTY {
			out = table(false)
		} else {
			out = alert.NewJSONLinesSink(io.out, f.ruleDetails)
		}
	case "table":
		out = table(false)
	case "wide":
		out = table(true)
	case "json":
		out = alert.NewJSONDocumentSink(io.out, f.ruleDetails)
	case "jsonl", "ndjson":
		out = alert.NewJSONLinesSink(io.out, f.ruleDetails)
	case "yaml":
		out = alert.NewYAMLDocumentSink(io.out, f.ruleDetails)
	case "csv":
		out = alert.NewCSVSink(io.out)
	default:
		return nil, fmt.Errorf("unknown output %q (%s)", f.output, outputNames)
	}
	o := &scanOutput{out: out, sink: out}
	if f.alertsFile != "" {
		af, err := alert.NewFileSink(alert.FileConfig{Path: f.alertsFile, MaxSize: -1, SyncWrites: true, OnlyAlerts: true, Mode: 0o600})
		if errors.Is(err, alert.ErrNotAlert) {
			return nil, fmt.Errorf("%w (use another --alerts-file)", err)
		}
		if err != nil {
			return nil, err
		}
		o.sink, o.file = flushMulti{out, af}, af
	}
	return o, nil
}

// abort releases the output of a scan that did not start, printing
// nothing.
func (o *scanOutput) abort() {
	if o.file != nil {
		o.file.Close()
	}
}

// dropped is where the hits dropped at max_signals go: the stdout output
// with --dropped-hits (never the alerts file: they were not raised).
func (o *scanOutput) dropped(f *outputFlags) alert.Sink {
	if f.droppedHits {
		return o.out
	}
	return nil
}

// finish tells an output that holds its alerts until the end how many
// hits each run dropped, then closes everything (a table prints then).
func (o *scanOutput) finish(counts *engine.HuntCounts) error {
	if t, ok := o.out.(alert.Tallied); ok {
		t.SetTally(counts.Dropped)
	}
	return o.sink.Close()
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
