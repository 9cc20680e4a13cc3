package main

import (
	"encoding/json"
	"fmt"

	"github.com/kanon-dev/kanon/internal/lint"
	"github.com/spf13/cobra"
)

func init() { extraRulesCommands = append(extraRulesCommands, newRulesLintCmd) }

// lintParams are the flags of `kanon rules lint`.
type lintParams struct {
	rules  ruleFlags
	output string
	strict bool
}

func newLintParams() *lintParams { return &lintParams{output: "text", rules: ruleFlags{noLint: true}} }

func newRulesLintCmd(io *streams) *cobra.Command {
	p := newLintParams()
	cmd := &cobra.Command{
		Use:   "lint [DIR|FILE...]",
		Short: "Check rules against the Kubernetes audit schema and warn about what can never match",
		Long: `Check every rule (built-in and --rules, or only the DIR/FILE arguments) against
the Kubernetes audit schema and kanon's canonical document, and print warnings
as file:line:col:

  unknown-field             a field no reader produces (always missing)
  impossible-value          a comparison with a value the field never takes:
                            audit levels, stages, verbs, status codes,
                            authorization decisions, event.outcome, ES|QL == ""
  impossible-range          a status-code range outside 100-599
  never-matching-exclusion  an impossible value under NOT: it excludes nothing
  non-resource-resource     objectRef.resource compared with a non-resource
                            path such as healthz (those requests have no objectRef)

Warnings do not stop rules from loading. Exit status: 0, or 2 with --strict
when there are warnings; 1 when the rules do not load.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if p.output != "text" && p.output != "json" {
				return &exitError{code: 1, err: fmt.Errorf("unknown output %q (text or json)", p.output)}
			}
			if len(args) > 0 {
				p.rules.dirs = append(p.rules.dirs, args...)
				p.rules.noBuiltin = true
			}
			rs, err := p.rules.load()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			ws := lint.CompiledRules(rs)
			if err := p.write(io, ws, len(rs)); err != nil {
				return &exitError{code: 1, err: err}
			}
			if p.strict && len(ws) > 0 {
				return &exitError{code: findings}
			}
			return nil
		},
	}
	p.rules.register(cmd.Flags())
	cmd.Flags().StringVarP(&p.output, "output", "o", p.output, "text or json")
	cmd.Flags().BoolVar(&p.strict, "strict", false, "exit 2 when there are warnings")
	return cmd
}

func (p *lintParams) write(io *streams, ws []lint.Warning, nrules int) error {
	if p.output == "json" {
		if ws == nil {
			ws = []lint.Warning{}
		}
		enc := json.NewEncoder(io.out)
		enc.SetIndent("", "  ")
		return enc.Encode(ws)
	}
	for _, w := range ws {
		if _, err := fmt.Fprintln(io.out, "warning: "+w.Pretty()); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(io.err, "%d rule(s) checked, %d warning(s)\n", nrules, len(ws))
	return err
}
