// Package pos holds source positions for everything kanon parses: byte-offset
// spans, sources with a line index, and positioned errors that render as
// file:line:col with the offending line and a caret.
//
// Positions are byte offsets while parsing; line and column are computed only
// when an error is printed. Queries embedded in YAML rule files are parsed
// against a Source whose Base places them at their line and column in the file,
// so that errors name the rule file, not the query string.
//
// The package uses the standard library only.
package pos
