// Package jsonx is kanon's hand-written JSON scanner for the per-event hot
// path. It validates while it skips, detects duplicate object keys (a record
// with a duplicate key is refused: parsers disagree on which duplicate wins),
// unescapes strings into caller-owned scratch space, and walks paths in raw
// JSON without building trees.
//
// Every function takes the input and an offset and returns the offset after
// what it read; errors are *SyntaxError values carrying the byte offset.
// Returned byte slices alias the input unless they had to be unescaped, in
// which case they alias the scratch buffer passed in. Nothing here keeps a
// reference to its arguments after returning.
//
// The package uses the standard library only.
package jsonx
