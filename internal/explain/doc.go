// Package explain describes what a compiled rule looks for, from its query
// AST: the detection logic (the top-level conditions), the exclusions (the
// top-level negated conjuncts, as field / kind of match / values), the
// indicators (the positive field / kind / value predicates, with how many
// other loaded rules use the same one) and the output fields. It is the
// catalogue view behind `kanon rules explain`.
//
// KQL queries and the WHERE commands of ES|QL queries are both reduced to
// one boolean tree (Node) of AND, OR, NOT and atomic predicates
// (Predicate): a field, an optional function applied to it first
// (MV_FIRST, MV_COUNT, TO_LOWER ...), a kind of match and literal values.
// Parts that are not such predicates (arithmetic, NOW(), comparisons of
// two fields) are kept as opaque nodes with their canonical text. The
// tree is also what `kanon rules lint` (internal/lint) checks.
//
// The columns of an ES|QL query are not tracked here: what each column
// reference stands for (an event field, possibly renamed or expanded; an
// EVAL of a field or of a function of one; a GROK or DISSECT capture; a
// STATS column) is the compiler's lineage (esqleval.Lineage), and wildcard
// patterns are classified by internal/eval/wildcard, as the evaluators
// classify them.
//
// Everything here is pure and works on parsed rules; nothing runs events.
package explain
