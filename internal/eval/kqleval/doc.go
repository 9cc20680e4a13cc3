// Package kqleval compiles KQL expressions (internal/query/kql) into
// matchers over events (internal/event), with the semantics Elasticsearch
// gives the queries Kibana builds from KQL for Elastic's
// kubernetes.audit_logs mapping (event.Field.Type):
//
//   - keyword and constant_keyword: exact, case-sensitive match of the whole
//     value; wildcards ("*" only; KQL has no "?") match the whole value; a
//     wildcard value holding spaces is split into alternatives, as
//     query_string does; a number is compared as a string; ranges compare
//     bytes;
//   - text: analyzed with an approximation of the standard analyzer (see
//     analyze.go and testdata/README.md): quoted values are phrases
//     (match_phrase), unquoted values match any of their tokens (match),
//     wildcards match single lowercased tokens (query_string);
//   - long: numeric equality and ranges; a decimal never equals a long;
//   - date: ISO dates (strict_date_optional_time, UTC by default) or epoch
//     milliseconds, compared at millisecond resolution; an exact date is the
//     range from its start to its end ("2024-01-02" is that whole day), and
//     gt and lte round missing time components up, as Elasticsearch does;
//   - ip: an address or a CIDR block; ranges order IPv4 as IPv4-mapped IPv6;
//   - boolean: true or false;
//   - fields outside the schema (read lazily from the raw record): numbers
//     compare numerically with numeric values, everything else as keyword.
//
// On an array any element may match, and "not" excludes a document when any
// element matches; "field:*" means the field has a value and "not field:*"
// that it has none. Field-name wildcards are expanded with event.Expand,
// skipping fields whose type cannot hold the value.
//
// Choices where kanon cannot or does not follow Elasticsearch exactly:
// bare values (no field) are a compile error (ErrBareValue) unless
// WithDefaultFields names the fields to search; nested queries, date math
// ("now-1d") and wildcards on long, date, ip and boolean fields are compile
// errors (ErrUnsupported); values a field type cannot hold are compile errors
// (ErrType), as Elasticsearch rejects them; keyword ignore_above is not
// modelled.
//
// Compile works once per rule: it resolves fields, checks and converts
// values, merges the values of one field under "or" into one set or list of
// literal matchers (equal, prefix, suffix, contains, ordered parts: the
// patterns of internal/eval/wildcard, built from kql.Literal.Parts), and
// never uses regexp. Match allocates nothing once its pooled scratch buffers
// have grown, and a Matcher is safe for concurrent use.
//
// The conformance suite in testdata/ (format and quirks in
// testdata/README.md) is the specification; run it with
//
//	go test ./internal/eval/kqleval -run TestConformance
package kqleval
