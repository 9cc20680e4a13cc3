package esql

import "errors"

// Error categories. Every error returned by Parse wraps exactly one of them;
// test with errors.Is.
var (
	// ErrSyntax marks text that is not valid ES|QL: an unexpected token, a
	// missing operand, an unknown command.
	ErrSyntax = errors.New("esql syntax error")
	// ErrLiteral marks a malformed literal: an unterminated string, an invalid
	// escape sequence, a number out of range, an unknown time unit.
	ErrLiteral = errors.New("esql invalid literal")
	// ErrUnsupported marks valid ES|QL that kanon does not implement.
	ErrUnsupported = errors.New("esql construct not supported")
	// ErrParserBug marks an internal failure of the parser (a recovered
	// panic). It is always a bug in kanon, never in the query.
	ErrParserBug = errors.New("esql parser bug")
)
