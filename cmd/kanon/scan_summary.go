package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
)

// scanSummary is what kanon scan prints on stderr once it ends.
type scanSummary struct {
	start    time.Time
	store    string // where the state is: a directory, or "memory"
	bundled  bool
	badShown int
	skipped  []ingest.SkippedPath
}

func (s *scanSummary) print(w io.Writer, st run.Stats) {
	el := time.Since(s.start)
	es := st.Engine
	secs := max(el.Seconds(), 1e-9)
	src := fmt.Sprintf("%d inputs", st.Files)
	if st.Files == 1 {
		src = "1 input"
	}
	if s.bundled {
		src = "the bundled example logs"
	}
	fmt.Fprintf(w, "\nscanned %s events (%s) from %s in %s (%s/s, %s events/s)\n",
		humanCount(st.Events), humanBytes(st.Bytes), src, el.Round(time.Millisecond),
		humanBytes(int64(float64(st.Bytes)/secs)), humanCount(int64(float64(st.Events)/secs)))
	if n := len(s.skipped); n > 0 {
		fmt.Fprintf(w, "not read: %d paths under the directories given:\n", n)
		for i, sk := range s.skipped {
			if i == 5 {
				fmt.Fprintf(w, "  … %d more\n", n-5)
				break
			}
			fmt.Fprintf(w, "  %s: %s\n", sk.Path, sk.Why)
		}
	}
	if st.Bad > 0 {
		more := ""
		if st.Bad > int64(s.badShown) {
			more = fmt.Sprintf(" (%d shown; --show-bad N shows more)", s.badShown)
		}
		fmt.Fprintf(w, "bad records: %s%s\n", humanCount(st.Bad), more)
	}
	if st.Warnings > 0 {
		fmt.Fprintf(w, "records with repeated keys read two ways (alerts raised on either say so): %s\n", humanCount(st.Warnings))
	}
	if st.Duplicates > 0 {
		fmt.Fprintf(w, "repeated deliveries dropped (same auditID and stage): %s\n", humanCount(st.Duplicates))
	}
	if st.Skipped > 0 {
		fmt.Fprintf(w, "skipped records (not audit events, e.g. other AKS log categories): %s\n", humanCount(st.Skipped))
	}
	ids := make([]string, 0, len(es.Rules))
	width := 0
	for id := range es.Rules {
		ids = append(ids, id)
		width = max(width, len(id))
	}
	sort.Strings(ids)
	var total, suppressed int64
	fmt.Fprintf(w, "alerts by rule:\n")
	for _, id := range ids {
		r := es.Rules[id]
		total += r.Alerts
		suppressed += r.Suppressed
		line := fmt.Sprintf("  %-*s %6d", width, id, r.Alerts)
		var extra []string
		for _, c := range []struct {
			n    int64
			what string
		}{
			{r.Dropped, "dropped at max_signals"}, {r.Suppressed, "already raised"},
			{r.Grouped, "grouped into earlier alerts"}, {r.Late, "late events"}, {r.Errors, "errors"},
		} {
			if c.n > 0 {
				extra = append(extra, fmt.Sprintf("%d %s", c.n, c.what))
			}
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

// alertsRaised is the number of alerts the run raised.
func alertsRaised(st run.Stats) int64 {
	var n int64
	for _, r := range st.Engine.Rules {
		n += r.Alerts
	}
	return n
}
