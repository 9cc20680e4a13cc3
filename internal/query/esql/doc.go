// Package esql is a hand-written lexer, recursive-descent parser, AST and
// canonical printer for the subset of Elasticsearch's ES|QL that kanon's
// rules use.
//
// A query is a source command (FROM) followed by processing commands
// separated by "|": WHERE, EVAL, STATS ... BY, KEEP, DROP, RENAME, SORT,
// LIMIT, MV_EXPAND, GROK and DISSECT. Keywords, command and function names
// are case-insensitive. Every AST node carries the byte span of the text it
// was parsed from, in the *pos.Source given to Parse, so that queries embedded
// in YAML rule files report rule-file positions.
//
// Commands form the sealed sum type Cmd (types named ...Cmd, one file per
// command) and expressions the sealed sum type Expr (types named ...Expr).
// String renders the canonical form: upper-case keywords and function names,
// minimal parentheses and double-quoted strings, such that
// String(Parse(String(q))) == String(q).
//
// Parse never panics: syntax errors are positioned *pos.Error values
// collected in a *pos.ErrorList and categorised by the exported sentinels
// (ErrSyntax, ErrLiteral, ErrUnsupported, ErrParserBug).
//
// The package knows nothing about events or evaluation; it imports pos only.
package esql
