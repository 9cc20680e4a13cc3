// Package rule defines kanon's rule files — one YAML document per rule,
// with metadata, a query, the query's language (kuery or esql), when the
// rule fires (per_event, scheduled or new_terms), and embedded tests — and
// loads them strictly: an unknown key, a value of the wrong type or a
// query that does not parse is refused with file:line:col, and nothing of a
// rule set starts unless all of it loads. Every error of every file is
// reported at once.
//
// Language and firing are two axes. Elastic's type (query, esql,
// new_terms) declares both, with Elastic's semantics (runs on a schedule,
// max_signals per run); a rule with neither type nor firing fires per
// event, as Panther's rules do. Each firing is validated on its own.
//
// Loading keeps positions: queries are parsed against sources placed at
// their line and column in the rule file, so a KQL or ES|QL error points
// into the YAML file.
package rule
