package main

import (
	"fmt"

	"github.com/kanon-dev/kanon/internal/explain"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/spf13/cobra"
)

func init() { extraRulesCommands = append(extraRulesCommands, newRulesExplainCmd) }

// explainParams are the flags of `kanon rules explain`.
type explainParams struct {
	rules  ruleFlags
	output string
}

func newExplainParams() *explainParams { return &explainParams{output: "text"} }

func newRulesExplainCmd(io *streams) *cobra.Command {
	p := newExplainParams()
	cmd := &cobra.Command{
		Use:   "explain ID",
		Short: "Explain a rule: its conditions, exclusions, indicators and output fields",
		Long: `Explain what a rule looks for, from its compiled query (KQL, or the WHERE
commands of an ES|QL query):

  detection logic  the top-level conditions, all of which must hold
  exclusions       the negated top-level conditions: field, kind of match
                   (eq, starts_with, ends_with, contains, wildcard, exists,
                   range, regex, cidr) and values; "not (a or b)" gives a row
                   per disjunct
  indicators       the positive field/kind/value predicates, each with the
                   other loaded rules (built-in and --rules) that use it too
  output fields    what an alert carries

-o json prints the same for tools.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if p.output != "text" && p.output != "json" {
				return &exitError{code: 1, err: fmt.Errorf("unknown output %q (text or json)", p.output)}
			}
			x, err := p.explain(args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if p.output == "json" {
				err = x.WriteJSON(io.out)
			} else {
				err = x.WriteText(io.out)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	p.rules.register(cmd.Flags())
	cmd.Flags().StringVarP(&p.output, "output", "o", p.output, "text or json")
	return cmd
}

// explain loads the rules and explains the one with id, counting the
// other loaded rules' indicators.
func (p *explainParams) explain(id string) (*explain.Explanation, error) {
	all := p.rules
	all.ids = nil
	loaded, err := all.load()
	if err != nil {
		return nil, err
	}
	var target *rule.Compiled
	for _, r := range loaded {
		if r.ID == id {
			target = r
		}
	}
	if target == nil {
		// A disabled rule, or no such rule (load says which).
		one := p.rules
		one.ids = []string{id}
		rs, err := one.load()
		if err != nil {
			return nil, err
		}
		target = rs[0]
	}
	return explain.Explain(target, loaded), nil
}
