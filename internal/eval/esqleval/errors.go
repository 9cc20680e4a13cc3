package esqleval

import "errors"

// Error categories. Compile errors are positioned *pos.Error values in a
// *pos.ErrorList, each wrapping one of the compile categories; runtime and
// state errors wrap the others. Test with errors.Is.
var (
	// ErrUnknownColumn marks a reference to a column that does not exist at
	// that point of the query (dropped, renamed, or not produced by STATS).
	ErrUnknownColumn = errors.New("unknown column")
	// ErrUnknownFunction marks a call to a function kanon does not implement.
	ErrUnknownFunction = errors.New("unknown function")
	// ErrType marks an operand or argument of the wrong type.
	ErrType = errors.New("type error")
	// ErrInvalid marks any other invalid use: a wrong number of arguments, a
	// non-constant argument that must be constant, an aggregation outside
	// STATS, KQL outside the per-event prefix, a bad pattern.
	ErrInvalid = errors.New("invalid query")
	// ErrBudgetExceeded is returned when a program's state outgrows its
	// memory budget.
	ErrBudgetExceeded = errors.New("memory budget exceeded")
	// ErrBadState is returned by Import and Merge for state that is corrupt
	// or was exported by a different program.
	ErrBadState = errors.New("invalid aggregation state")
)
