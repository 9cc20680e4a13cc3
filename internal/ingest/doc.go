// Package ingest turns audit-log inputs into canonical events.
//
// A Reader frames its input (files, directories, gzip, standard input,
// HTTP bodies) into records — one JSON value each, normally one line — and
// hands every record to the Format that recognises it. Formats live in
// subpackages (k8saudit, ecs, eks, aks, gke, panther); each decodes a record
// into one or more event.Event values, filling only the fields of the
// FieldSet it is given.
//
// Bad input never stops a read: a record that is not valid JSON, has the
// wrong shape, holds a duplicate key or is over the size limit is reported
// as a BadRecord naming file:line and the reason, and the read goes on
// (unless Strict is set). Events are handed to the caller's function one at
// a time and are valid only during that call (they alias the reader's
// buffers); Clone them to keep them.
package ingest
