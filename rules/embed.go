// Package rules embeds kanon's built-in rule pack: the rules of the
// project's specification, in kanon's YAML rule format, with their queries
// quoted verbatim from their authors (Elastic, Panther) and their tests.
//
// Layout: one directory per vendor (elastic/, panther/), one file per rule.
package rules

import "embed"

// FS holds the built-in rules.
//
//go:embed elastic panther
var FS embed.FS
