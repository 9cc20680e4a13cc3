// Package wildcard classifies wildcard patterns and compiles them to
// literal matchers. It is the one place where kanon decides whether a
// pattern is an exact value, a prefix, a suffix, an infix or a general
// pattern: the KQL evaluator (kqleval), ES|QL's LIKE and KEEP/DROP name
// patterns (esqleval), and the catalogue and lint views (explain, lint)
// all build their patterns here.
//
// Each language keeps its own syntax and parses it into a Pattern with a
// Builder (or Parts, for patterns whose only wildcard is "*"): KQL's lexer
// splits unquoted values at unescaped "*" (kql.Literal.Parts; "?" is a
// literal character there), ES|QL's LIKE has "*", "?" and backslash
// escapes (esqleval.LikePattern). A Pattern knows only literal runs and
// two wildcards: Star ("*", any run of characters, also none) and One
// ("?", exactly one character, a UTF-8 code point; an invalid byte counts
// as one character, as in Go's regexp).
//
// Building a Pattern classifies it (Kind) and precomputes its matcher:
// Match and MatchBytes never allocate and never use regexp. Exact, Prefix,
// Suffix and Contains are single string checks; Glob (stars only) is a
// greedy leftmost search of its middle parts, exact for star-only
// patterns; General (with "?") is a linear-space backtracking match that
// only ever returns to the last star.
//
// The package imports only the standard library: it sits under
// internal/eval, so that both evaluators and internal/explain (which may
// import eval) share it, while the query ASTs (internal/query/*), which
// know nothing about matching, stay free of it.
package wildcard
