package alert

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Sink delivers alerts. Write must not keep a reference to the alert
// after it returns unless it copies it. Implementations are safe for
// concurrent use.
type Sink interface {
	// Write delivers one alert, or hands it to the sink's queue or spool
	// (see each sink). An error means the sink did not take it.
	Write(ctx context.Context, a *Alert) error
	// Close flushes and releases the sink.
	Close() error
}

// Flusher is a Sink that can make the alerts written so far durable.
type Flusher interface {
	// Flush returns when every alert written before the call is
	// delivered, or written and fsync'd to a file or spool, or ctx ended.
	Flush(ctx context.Context) error
}

// Shutdowner is a Sink whose shutdown can be bounded in time (SIGTERM).
type Shutdowner interface {
	// Shutdown stops taking alerts, delivers or saves the queued ones
	// until ctx ends, and releases the sink. It returns an error if ctx
	// ended first (saying what happened to the rest).
	Shutdown(ctx context.Context) error
}

// StatsReporter is a Sink that counts what it delivers.
type StatsReporter interface {
	// Stats returns one entry per output.
	Stats() []OutputStats
}

// JSONSink writes one JSON alert per line. It buffers: call Flush (the
// stdout output of Outputs flushes whenever its queue is empty). It is
// safe for concurrent use; lines are never interleaved.
type JSONSink struct {
	mu sync.Mutex
	w  *bufio.Writer
	c  io.Closer
}

// NewJSONSink writes NDJSON to w (closed with the sink if it is a Closer
// other than os.Stdout — callers pass nopCloser wrappers as they see fit).
func NewJSONSink(w io.Writer) *JSONSink {
	return &JSONSink{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write implements Sink.
func (s *JSONSink) Write(_ context.Context, a *Alert) error {
	b, err := Marshal(a)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(b); err != nil {
		return fmt.Errorf("cannot write alert %s: %w", a.ID, err)
	}
	if err := s.w.WriteByte('\n'); err != nil {
		return fmt.Errorf("cannot write alert %s: %w", a.ID, err)
	}
	// Written through at once: the engine records an alert as raised when
	// Write returns, so a crash must not leave it in a buffer.
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("cannot write alert %s: %w", a.ID, err)
	}
	return nil
}

// writeRaw writes one NDJSON line (ending in a newline); it drops no
// repeats.
func (s *JSONSink) writeRaw(key string, line []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(line); err != nil {
		return false, fmt.Errorf("cannot write alert %s: %w", key, err)
	}
	return true, nil
}

// Flush writes buffered alerts.
func (s *JSONSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Flush()
}

// Close implements Sink.
func (s *JSONSink) Close() error { return s.Flush() }

// TableSink prints alerts as aligned rows for people at a terminal.
type TableSink struct {
	mu      sync.Mutex
	w       io.Writer
	header  bool
	verbose bool
}

// NewTableSink prints a table to w; verbose adds the title and runbook
// link lines under each alert.
func NewTableSink(w io.Writer, verbose bool) *TableSink {
	return &TableSink{w: w, verbose: verbose}
}

func str(fs Fields, name string) string {
	v, ok := fs.Get(name)
	if !ok || v == nil {
		return "-"
	}
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// first returns the first of names that the fields hold (aggregate alerts
// carry their group's columns instead of the output fields).
func first(fs Fields, names ...string) string {
	for _, n := range names {
		if v, ok := fs.Get(n); ok && v != nil {
			return str(fs, n)
		}
	}
	return "-"
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// Write implements Sink.
func (s *TableSink) Write(_ context.Context, a *Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.header {
		fmt.Fprintf(s.w, "%-24s %-8s %-44s %-22s %-18s %-6s %s\n", "TIME", "SEVERITY", "RULE", "USER", "SOURCE", "VERB", "REQUEST / DETAILS")
		s.header = true
	}
	detail := str(a.Fields, "request_uri")
	if a.Window != nil {
		// Aggregate alerts: show the group and the counts.
		var parts []string
		for _, f := range a.Fields {
			if len(parts) >= 4 {
				break
			}
			parts = append(parts, fmt.Sprintf("%s=%s", f.Name, clip(str(Fields{f}, f.Name), 40)))
		}
		detail = strings.Join(parts, " ")
	}
	if a.Group != nil && a.Group.Count > 1 {
		detail += fmt.Sprintf(" (x%d)", a.Group.Count)
	}
	fmt.Fprintf(s.w, "%-24s %-8s %-44s %-22s %-18s %-6s %s\n",
		a.Timestamp.UTC().Format(time.RFC3339), a.Rule.Severity, clip(a.Rule.Name, 44),
		clip(first(a.Fields, "username", "kubernetes.audit.user.username", "Esql.kubernetes_audit_user_username_values"), 22),
		clip(first(a.Fields, "source_ips", "kubernetes.audit.sourceIPs", "source.ip"), 18),
		clip(str(a.Fields, "verb"), 6), detail)
	if s.verbose {
		if a.Title != "" {
			fmt.Fprintf(s.w, "    title:  %s\n", a.Title)
		}
		fmt.Fprintf(s.w, "    id:     %s  origin: %s\n", a.ID, a.Origin)
	}
	return nil
}

// Close implements Sink.
func (s *TableSink) Close() error { return nil }

// Multi writes every alert to several sinks; the first error is returned
// after all have been tried.
type Multi []Sink

// Write implements Sink.
func (m Multi) Write(ctx context.Context, a *Alert) error {
	var first error
	for _, s := range m {
		if err := s.Write(ctx, a); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close implements Sink.
func (m Multi) Close() error {
	var first error
	for _, s := range m {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Collector keeps alerts in memory (rule tests, and tools that sort them).
type Collector struct {
	mu     sync.Mutex
	Alerts []*Alert
}

// Write implements Sink.
func (c *Collector) Write(_ context.Context, a *Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Alerts = append(c.Alerts, a)
	return nil
}

// Close implements Sink.
func (c *Collector) Close() error { return nil }
