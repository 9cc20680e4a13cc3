// Package esqleval compiles ES|QL queries (internal/query/esql) into
// programs over audit events (internal/event), built for streaming:
//
//   - Compile splits a query into a per-event prefix (the commands before
//     the first STATS, SORT or LIMIT) and the rest. Program.Fields reports
//     the event fields the query reads.
//   - Evaluator.Eval runs the prefix on one event and returns the rows it
//     produces (none when a WHERE rejects it).
//   - State collects those rows for a window: when the rest starts with
//     STATS it aggregates them at once into groups whose keys are
//     deterministic byte encodings; otherwise it keeps the rows. States can
//     be exported to bytes, imported and merged, so that replicas can share
//     them through a store, and are bounded by a memory budget.
//   - State.Result runs the rest at the end of the window and returns the
//     output table.
//   - Program.Lineage (or Analyze, which also works on a query with
//     errors) is what the compiler derived about the columns: which column
//     each field reference resolves to and where its values come from
//     (an event field, EVAL, GROK and DISSECT captures, STATS, through
//     RENAME, MV_EXPAND and KEEP). `kanon rules explain` and `kanon rules
//     lint` read it instead of tracking columns themselves.
//
// LIKE patterns (LikePattern) and RLIKE expressions that are wildcard
// patterns in disguise are matched with the literal matchers of
// internal/eval/wildcard; other RLIKE expressions with regexp.
//
// Values are event.Value; a cell holds any number of them (ES|QL values
// can be multi-valued; none is null). Semantics follow Elasticsearch's
// ES|QL reference; the points where kanon must choose are documented in
// testdata/README.md, and testdata/*.test is the conformance suite that
// specifies them (run: go test ./internal/eval/esqleval -run TestConformance).
//
// Evaluation is pure: no I/O and no clock (NOW() reads Env.Now).
package esqleval
