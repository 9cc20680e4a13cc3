package engine

import (
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/rule"
)

// Why the engine does not raise an alert it would otherwise raise: the
// reasons of DropReasons, as metrics and logs name them.
const (
	// DropMaxSignals: the run had raised max_signals alerts
	// (RuleStats.Dropped counts the alerts).
	DropMaxSignals = "max_signals"
	// DropBudget: the run was dropped because the rule's open runs
	// outgrew its memory budget; it raises nothing (the error reported
	// through Options.OnError wraps ErrBudgetExceeded, once per run).
	DropBudget = "budget"
	// DropLate: an event arrived after every run it belongs to had closed
	// (RuleStats.Late counts the events).
	DropLate = "late"
)

// ErrBudgetExceeded is wrapped by the error that Options.OnError reports
// when a run of an ES|QL rule is dropped for the rule's memory budget.
var ErrBudgetExceeded = esqleval.ErrBudgetExceeded

// DropReasons returns the reasons for which the engine may leave alerts of
// r unraised, in the order of the constants: max_signals for rules with
// runs (scheduled and new_terms), budget and late for scheduled ES|QL
// rules that aggregate (their runs hold state and close). Per-event rules
// drop nothing. With max_signals lifted (Hunt.NoMaxSignals) the caller
// leaves DropMaxSignals out.
func DropReasons(r *rule.Compiled) []string {
	var out []string
	if r.Firing == rule.FiringScheduled || r.Firing == rule.FiringNewTerms {
		out = append(out, DropMaxSignals)
	}
	if r.Firing == rule.FiringScheduled && r.Language == rule.LangESQL && r.Program != nil && !r.Program.PerEvent() {
		out = append(out, DropBudget, DropLate)
	}
	return out
}

// RuleKind is the kind of r as metrics label it: Elastic's type (query,
// esql, new_terms) when it has one, else its firing (per_event).
func RuleKind(r *rule.Compiled) string {
	if r.Type != "" {
		return r.Type
	}
	return r.Firing
}
