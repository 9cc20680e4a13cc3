package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ruletest"
	"github.com/spf13/cobra"
)

func joinNames() string { return strings.Join(registry().Names(), ", ") }

func newRulesCmd(io *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "List, show and test rules",
	}
	cmd.AddCommand(newRulesListCmd(io), newRulesShowCmd(io), newRulesTestCmd(io))
	for _, c := range extraRulesCommands {
		cmd.AddCommand(c(io))
	}
	return cmd
}

func newRulesListCmd(io *streams) *cobra.Command {
	var rf ruleFlags
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the rules (built-in and --rules)",
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := rf.load()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			sort.Slice(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
			if output == "json" {
				var out []map[string]any
				for _, r := range rs {
					out = append(out, map[string]any{"id": r.ID, "name": r.Name, "type": r.Type, "language": r.Language, "firing": r.Firing, "severity": r.Severity, "risk_score": r.RiskScore, "file": r.File, "tests": len(r.Tests)})
				}
				enc := json.NewEncoder(io.out)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			fmt.Fprintf(io.out, "%-50s %-9s %-9s %-8s %4s  %s\n", "ID", "FIRING", "LANGUAGE", "SEVERITY", "RISK", "NAME")
			for _, r := range rs {
				fmt.Fprintf(io.out, "%-50s %-9s %-9s %-8s %4d  %s\n", r.ID, r.Firing, r.Language, r.Severity, r.RiskScore, r.Name)
			}
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func newRulesShowCmd(io *streams) *cobra.Command {
	var rf ruleFlags
	var output string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a rule: metadata, query, schedule, MITRE ATT&CK, runbook and fields read",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rf.ids = []string{args[0]}
			rs, err := rf.load()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			r := rs[0]
			if output == "json" {
				enc := json.NewEncoder(io.out)
				enc.SetIndent("", "  ")
				info := engine.RuleInfo(r)
				out := map[string]any{"rule": info, "query": r.Query, "language": r.Language, "firing": r.Firing, "file": r.File,
					"fields_read": r.Fields.Names(), "tests": len(r.Tests), "notes": r.Notes}
				if r.HasRuns() {
					out["schedule"] = map[string]any{"interval": r.Interval().String(), "from": r.Schedule.From, "max_signals": r.Schedule.MaxSignals}
				}
				return enc.Encode(out)
			}
			w := io.out
			fmt.Fprintf(w, "%s\n%s\n\n", r.Name, strings.Repeat("=", len(r.Name)))
			fmt.Fprintf(w, "id:          %s\nfile:        %s\nlanguage:    %s\nfiring:      %s\n", r.ID, r.File, r.Language, r.Firing)
			if r.Type != "" {
				fmt.Fprintf(w, "type:        %s (Elastic's semantics)\n", r.Type)
			}
			fmt.Fprintf(w, "severity:    %s (risk score %d)\n", r.Severity, r.RiskScore)
			if r.HasRuns() {
				fmt.Fprintf(w, "schedule:    every %s, looking back %s (%s), at most %d alerts per run\n", r.Interval(), r.Lookback(), r.Schedule.From, r.Schedule.MaxSignals)
			} else {
				fmt.Fprintf(w, "schedule:    none: every matching event alerts when it is read\n")
			}
			if r.NewTerms != nil {
				fmt.Fprintf(w, "new terms:   %s over %s\n", strings.Join(r.NewTerms.Fields, ", "), r.NewTerms.HistoryWindowStart)
			}
			if r.Dedup != nil {
				fmt.Fprintf(w, "dedup:       %q over %s\n", r.Dedup.Key, r.Dedup.Period.D())
			}
			if r.Source != nil {
				fmt.Fprintf(w, "source:      %s %s (version %s)\n", r.Source.Vendor, r.Source.RuleID, r.Source.Version)
			}
			for _, t := range r.Threat {
				fmt.Fprintf(w, "mitre:       %s %s", t.Tactic.ID, t.Tactic.Name)
				for _, tech := range t.Technique {
					fmt.Fprintf(w, " / %s %s", tech.ID, tech.Name)
					for _, s := range tech.Subtechnique {
						fmt.Fprintf(w, " / %s %s", s.ID, s.Name)
					}
				}
				fmt.Fprintln(w)
			}
			if len(r.Tags) > 0 {
				fmt.Fprintf(w, "tags:        %s\n", strings.Join(r.Tags, ", "))
			}
			fmt.Fprintf(w, "fields read: %s\n", strings.Join(r.Fields.Names(), ", "))
			fmt.Fprintf(w, "tests:       %d\n\n%s\n\nquery:\n%s\n", len(r.Tests), strings.TrimSpace(r.Description), indent(r.Query))
			for _, ref := range r.References {
				fmt.Fprintf(w, "reference: %s\n", ref)
			}
			if r.Runbook != "" {
				fmt.Fprintf(w, "\nrunbook:\n%s\n", indent(r.Runbook))
			}
			if r.Note != "" {
				fmt.Fprintf(w, "\ninvestigation guide:\n%s\n", indent(r.Note))
			}
			if r.Notes != "" {
				fmt.Fprintf(w, "\nnotes:\n%s\n", indent(r.Notes))
			}
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

func newRulesTestCmd(io *streams) *cobra.Command {
	var rf ruleFlags
	var output, junit string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [DIR|FILE...]",
		Short: "Run the tests embedded in rule files (all built-in rules, or those given)",
		Long: `Run every rule's embedded tests and print PASS/FAIL per test, with what was
expected and what happened for each failure. With DIR or FILE arguments, only
the rules there are tested (the built-in pack is not). --junit FILE also
writes the results as JUnit XML for CI. Exit status: 0 all passed, 1 a test
failed or the rules do not load (as promtool test rules and opa test).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				rf.dirs = append(rf.dirs, args...)
				rf.noBuiltin = true
			}
			rs, err := rf.load()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			results := ruletest.Run(ctx, rs, registry())
			if junit != "" {
				if err := writeJUnit(junit, results); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			if output == "json" {
				if err := ruletest.WriteJSON(io.out, results); err != nil {
					return &exitError{code: 1, err: err}
				}
			} else {
				ruletest.WritePretty(io.out, results, verbose)
			}
			if _, failed := ruletest.Summary(results); failed > 0 {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show file positions of passing tests too")
	cmd.Flags().StringVar(&junit, "junit", "", "also write the results as JUnit XML to `FILE`")
	return cmd
}

// writeJUnit writes the JUnit XML of results to path (rules test --junit).
func writeJUnit(path string, results []ruletest.Result) error {
	_, err := writeFileAtomic(path, func(w io.Writer) error { return ruletest.WriteJUnit(w, results) })
	return err
}
