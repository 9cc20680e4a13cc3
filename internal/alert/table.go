package alert

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// TableOptions are the choices of a TableSink.
type TableOptions struct {
	// Width is the terminal's width in columns: the table is fitted to it
	// (cells cut, then the columns a responder reads last left out). 0:
	// no limit.
	Width int
	// Color colours the severity (and dims dropped hits) with ANSI codes.
	Color bool
	// Wide shows every column, uncut, whatever Width says.
	Wide bool
	// Verbose adds the alert's title, id and origin under each row, and
	// the events an aggregate counts.
	Verbose bool
}

// TableSink prints alerts as a table for people: it holds them until
// Close and prints them in time order (an alert of an aggregating rule at
// its run's end). It keeps only what it shows of each alert. It is safe
// for concurrent use.
type TableSink struct {
	mu    sync.Mutex
	w     io.Writer
	opts  TableOptions
	views []view
	notes [][]string // per view, the verbose lines
	tally Tally
}

// NewTableSink prints a table to w.
func NewTableSink(w io.Writer, opts TableOptions) *TableSink {
	return &TableSink{w: w, opts: opts}
}

// Write implements Sink.
func (s *TableSink) Write(_ context.Context, a *Alert) error {
	v := newView(a)
	var notes []string
	if s.opts.Verbose {
		if v.title != "" {
			notes = append(notes, "title:  "+v.title)
		}
		notes = append(notes, "id:     "+v.id+"  origin: "+dash(v.origin))
		if a.Evidence != nil {
			refs := make([]string, len(a.Evidence.Events))
			for i, r := range a.Evidence.Events {
				refs[i] = clean(r.AuditID + " (" + r.Origin + ")")
			}
			more := ""
			if n := a.Evidence.Total - int64(len(refs)); n > 0 {
				more = fmt.Sprintf(" and %d more", n)
			}
			notes = append(notes, "events: "+strings.Join(refs, ", ")+more)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.views = append(s.views, v)
	s.notes = append(s.notes, notes)
	return nil
}

// SetTally implements Tallied.
func (s *TableSink) SetTally(t Tally) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tally = t
}

// Close prints the table.
func (s *TableSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.views) == 0 {
		return nil
	}
	for i := range s.views {
		s.views[i].applyTally(s.tally)
	}
	var b strings.Builder
	renderTable(&b, s.views, orderOf(s.views), s.notes, s.opts)
	s.views, s.notes = nil, nil
	_, err := io.WriteString(s.w, b.String())
	return err
}

// timeFormat picks how times are written: the time of day when every
// alert is of one UTC day (said in a caption), else the date too.
func timeFormat(vs []view) (layout, caption string) {
	day := ""
	for i := range vs {
		d := vs[i].at.UTC().Format(time.DateOnly)
		if day != "" && d != day {
			return "2006-01-02 15:04:05", ""
		}
		day = d
	}
	return "15:04:05", day + " (UTC)"
}

// commonPrefix returns the words all distinct rule names begin with, when
// there are several names (e.g. "Kubernetes "), so the table can leave
// them out.
func commonPrefix(vs []view) string {
	names := map[string]bool{}
	for i := range vs {
		names[vs[i].rule] = true
	}
	if len(names) < 2 {
		return ""
	}
	var prefix string
	first := true
	for n := range names {
		if first {
			prefix, first = n, false
			continue
		}
		for !strings.HasPrefix(n, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	// Whole words only, and never a whole name.
	if i := strings.LastIndexByte(prefix, ' '); i >= 0 {
		prefix = prefix[:i+1]
	} else {
		prefix = ""
	}
	for n := range names {
		if n == strings.TrimSpace(prefix) || len(n) == len(prefix) {
			return ""
		}
	}
	return prefix
}
