package alert

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
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
	mu   sync.Mutex
	w    *bufio.Writer
	slim bool
}

// NewJSONSink writes NDJSON to w, each alert whole (the outputs of kanon
// serve).
func NewJSONSink(w io.Writer) *JSONSink {
	return &JSONSink{w: bufio.NewWriterSize(w, 64<<10)}
}

// NewJSONLinesSink writes NDJSON to w for kanon scan: unless ruleDetails,
// each alert carries its rule's id, name, severity and risk score only
// (SlimRule), not the rest of its static description.
func NewJSONLinesSink(w io.Writer, ruleDetails bool) *JSONSink {
	s := NewJSONSink(w)
	s.slim = !ruleDetails
	return s
}

// SlimRule is what an alert says of its rule when the rule's static
// description is given once elsewhere (the rules section of -o json):
// its id, name, severity and risk score.
func SlimRule(r Rule) Rule {
	return Rule{ID: r.ID, Name: r.Name, Severity: r.Severity, RiskScore: r.RiskScore}
}

// Write implements Sink.
func (s *JSONSink) Write(_ context.Context, a *Alert) error {
	if s.slim {
		c := *a
		c.Rule = SlimRule(a.Rule)
		a = &c
	}
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
