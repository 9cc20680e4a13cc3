// Package lint checks rules against the Kubernetes audit schema and kanon's
// canonical document, and reports what the query says that can never
// happen. Its findings are warnings: a rule with warnings still loads and
// runs (`kanon rules lint` prints them; --strict makes them fail).
//
// Checks, on KQL queries and on the WHERE, EVAL and STATS expressions of
// ES|QL queries (as reduced by internal/explain):
//
//   - unknown-field: a field no reader produces, neither in the canonical
//     document (event.Schema) nor a raw part of the audit event
//     (requestObject, responseObject, annotations, user.extra, ...); such a
//     field is always missing.
//   - impossible-value: a comparison with a value the field never takes:
//     audit levels (None, Metadata, Request, RequestResponse), stages
//     (RequestReceived, ResponseStarted, ResponseComplete, Panic), verbs
//     (get, list, watch, create, update, patch, delete, deletecollection,
//     proxy for resource requests; the lower-cased HTTP method for
//     non-resource requests), HTTP status codes (100-599), the
//     authorization decision (allow, forbid), event.outcome; resources
//     that are non-resource paths (/healthz has no objectRef) or
//     subresources; ES|QL comparisons with "" (empty strings are missing).
//   - never-matching-exclusion: an impossible value under a NOT: the
//     exclusion removes nothing.
//
// Every warning is positioned in the rule file (the query's spans are in
// rule-file coordinates through Rule.QuerySrc).
package lint
