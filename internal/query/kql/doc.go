// Package kql parses the Kibana Query Language (KQL, "kuery") as used in
// Elastic detection rules: a hand-written lexer and recursive-descent parser
// that follow Kibana's grammar (packages/kbn-es-query, grammar.peggy)
// character for character, an AST, and a canonical printer.
//
// Grammar, in precedence order (loosest first):
//
//	query      = or
//	or         = and { SPACE+ "or" SPACE+ and }        (keywords are case-insensitive)
//	and        = not { SPACE+ "and" SPACE+ not }
//	not        = "not" SPACE+ sub | sub
//	sub        = "(" query ")" | field ":" "{" query "}" | expression
//	expression = field ("<" | "<=" | ">" | ">=") literal
//	           | field ":" values
//	           | literal                                 (a bare value: no field)
//	values     = "(" vor ")" | literal
//	vor, vand, vnot: as or, and, not, over values
//	literal    = quoted | unquoted
//
// Facts of Kibana's grammar that this parser reproduces (each has a test):
//
//   - "or" and "and" are keywords only with whitespace on both sides; "not"
//     is a keyword when whitespace follows it, even inside a word: "cannot x"
//     stops the literal "can" and then fails to parse.
//   - Unquoted literals may contain spaces ("hello world" is one value); they
//     end before a keyword or a special character \ ( ) : < > " * { } and are
//     trimmed of whitespace.
//   - In unquoted literals "\" escapes a special character, a keyword
//     (\or, \AND, \not), \t \r \n and \uXXXX; any other escape is an error.
//     "*" is a wildcard unless escaped. There is no "?" wildcard.
//   - Quoted strings ("...") have no wildcards; \" \\ \t \r \n and \uXXXX are
//     escapes, a backslash before anything else is a backslash. They may span
//     lines.
//   - "not(x)" is not a negation (the keyword needs a following space) and so
//     is a syntax error; "field:not x" is an error, "field:(not x)" is not.
//   - The empty query (only whitespace) matches everything (MatchAllExpr).
//
// Parse takes a pos.Source, so a query embedded in a YAML rule reports
// errors at its position in the rule file. Errors are *pos.Error values whose
// Code is one of the exported sentinels (ErrUnexpected, ErrMissingValue,
// ErrUnclosed, ErrEscape, ErrTooDeep, ErrInternal). Parse never panics.
//
// The package imports internal/pos only; it knows nothing about events or
// evaluation (see internal/eval/kqleval).
package kql
