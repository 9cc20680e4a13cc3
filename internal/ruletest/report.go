package ruletest

import (
	"encoding/json"
	"fmt"
	"io"
)

// Summary counts results.
func Summary(results []Result) (passed, failed int) {
	for _, r := range results {
		if r.Pass {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

// WritePretty prints one line per test, the problems of failed tests under
// them, and a closing line "N passed, N failed".
func WritePretty(w io.Writer, results []Result, verbose bool) {
	last := ""
	for _, r := range results {
		if r.Rule != last {
			fmt.Fprintf(w, "%s (%s)\n", r.Rule, r.File)
			last = r.Rule
		}
		status := "PASS"
		if !r.Pass {
			status = "FAIL"
		}
		if r.Pass && !verbose {
			fmt.Fprintf(w, "  %s  %s\n", status, r.Test)
			continue
		}
		fmt.Fprintf(w, "  %s  %s  (%s:%d)\n", status, r.Test, r.File, r.Line)
		if !r.Pass {
			fmt.Fprintf(w, "        expected: %s\n        got:      %s\n", r.Expected, r.Got)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "        - %s\n", p)
		}
	}
	p, f := Summary(results)
	fmt.Fprintf(w, "%d passed, %d failed\n", p, f)
}

// WriteJSON writes the results as one JSON document.
func WriteJSON(w io.Writer, results []Result) error {
	p, f := Summary(results)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	for i := range results {
		results[i].Alerts = nil
	}
	return enc.Encode(map[string]any{"passed": p, "failed": f, "results": results})
}
