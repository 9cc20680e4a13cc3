// Package rule defines kanon's rule files — one YAML document per rule,
// with metadata, a query in KQL or ES|QL, a rule type, and embedded tests —
// and loads them strictly: an unknown key, a value of the wrong type or a
// query that does not parse is refused with file:line:col, and nothing of a
// rule set starts unless all of it loads.
//
// Loading keeps positions: queries are parsed against sources placed at
// their line and column in the rule file, so a KQL or ES|QL error points
// into the YAML file.
package rule
