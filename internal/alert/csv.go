package alert

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// csvHeader names the columns of the CSV output.
var csvHeader = []string{"time", "severity", "rule_id", "rule", "user", "source_ips", "user_agent", "verb", "resource",
	"namespace", "request_uri", "response_code", "decision", "reason", "cluster", "count", "dropped",
	"run_start", "run_end", "max_signals", "run_dropped", "origin", "id"}

// CSVSink writes alerts as CSV (RFC 4180) with a header row, one row per
// alert in time order at Close, every value whole. A cell that a
// spreadsheet would take for a formula (it begins with =, +, -, @, a tab
// or a carriage return: an attacker controls user agents and URIs) is
// written with a leading single quote. It is safe for concurrent use.
type CSVSink struct {
	mu    sync.Mutex
	w     io.Writer
	views []view
	tally Tally
}

// NewCSVSink writes CSV to w.
func NewCSVSink(w io.Writer) *CSVSink { return &CSVSink{w: w} }

// Write implements Sink.
func (s *CSVSink) Write(_ context.Context, a *Alert) error {
	v := newView(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.views = append(s.views, v)
	return nil
}

// SetTally implements Tallied.
func (s *CSVSink) SetTally(t Tally) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tally = t
}

// Close writes the rows.
func (s *CSVSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cw := csv.NewWriter(s.w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("cannot write CSV: %w", err)
	}
	for i := range s.views {
		s.views[i].applyTally(s.tally)
	}
	for _, i := range orderOf(s.views) {
		if err := cw.Write(csvRow(&s.views[i])); err != nil {
			return fmt.Errorf("cannot write CSV: %w", err)
		}
	}
	s.views = nil
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("cannot write CSV: %w", err)
	}
	return nil
}

func csvRow(v *view) []string {
	var count, runStart, runEnd, maxSignals, runDropped string
	if v.count > 0 {
		count = fmt.Sprint(v.count)
	}
	if v.run != nil {
		runStart, runEnd = v.run.Start.UTC().Format(time.RFC3339), v.run.End.UTC().Format(time.RFC3339)
		if v.run.MaxSignals > 0 {
			maxSignals, runDropped = fmt.Sprint(v.run.MaxSignals), fmt.Sprint(v.run.Dropped)
		}
	}
	row := []string{v.at.UTC().Format(time.RFC3339Nano), v.severity, v.ruleID, v.rule, v.user, v.source, v.agent, v.verb,
		v.resource, v.namespace, v.uri, v.code, v.decision, v.reason, v.cluster, count, fmt.Sprint(v.dropped),
		runStart, runEnd, maxSignals, runDropped, v.origin, v.id}
	for i, c := range row {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			row[i] = "'" + c
		}
	}
	return row
}
