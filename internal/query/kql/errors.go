package kql

import "errors"

// Error categories. A parse error is a *pos.Error whose Code is one of these;
// test with errors.Is.
var (
	// ErrUnexpected: a character or token that cannot appear where it does.
	ErrUnexpected = errors.New("kql: unexpected input")
	// ErrMissingValue: a value, field or operand is missing.
	ErrMissingValue = errors.New("kql: missing value")
	// ErrUnclosed: an unclosed "(", "{" or quoted string.
	ErrUnclosed = errors.New("kql: unclosed group or string")
	// ErrEscape: a backslash escape that KQL does not define.
	ErrEscape = errors.New("kql: invalid escape")
	// ErrTooDeep: groups nested deeper than MaxDepth.
	ErrTooDeep = errors.New("kql: nesting too deep")
	// ErrInternal: a bug in the parser (a recovered runtime panic).
	ErrInternal = errors.New("kql: parser bug")
)

// MaxDepth is the deepest nesting of parentheses, braces and "not" that
// Parse accepts; deeper queries fail with ErrTooDeep instead of exhausting
// the stack.
const MaxDepth = 256
