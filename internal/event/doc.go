// Package event defines kanon's canonical audit event: the ECS document that
// Elastic's Kubernetes integration (data stream kubernetes.audit_logs) makes
// of a Kubernetes audit Event, whatever format it was read from.
//
// The representation is built for the per-event hot path: the fields rules
// commonly read are typed struct fields, filled by the readers only when a
// loaded rule needs them (see FieldSet); everything else (request and
// response bodies, user.extra, unknown keys) stays raw JSON and is read
// lazily by path. Rules address every field by its ECS name through Field,
// resolved once when a rule is compiled.
//
// Mapping facts (Elastic's ingest pipeline for kubernetes.audit_logs):
//   - every field of the audit Event is kept under kubernetes.audit.<name>;
//   - annotation keys have every "." replaced by "_" ("/" stays);
//   - user.name, user.id, user_agent.original, event.action, source.ip and
//     client.ip copy user.username, user.uid, userAgent, verb and sourceIPs;
//   - event.outcome is success/failure for the decision allow/forbid;
//   - nulls, empty strings, {} and [] are dropped, so an empty username is
//     a missing username;
//   - requestObject.metadata and responseObject.metadata are removed.
//
// Strings in an Event may alias the buffer of the reader that produced it
// and are valid until the reader reads the next record. Clone copies an
// Event so that it can be kept.
//
// The package uses the standard library and internal/jsonx only.
package event
