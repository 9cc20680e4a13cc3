// Package k8saudit reads Kubernetes audit events (audit.k8s.io/v1 Event) as
// the API server's log backend writes them (JSON lines) and as its webhook
// backend sends them (EventList, or a JSON array of events whose items may
// lack kind and apiVersion).
//
// EachItem is kanon's one reader of EventLists: it finds and validates the
// items of a body and tells the audit events from the bad items, each bad
// item on its own, so that one bad item loses no other. Decoding an
// EventList record uses it, and so can a webhook that splits a body in
// one goroutine and decodes the items in another.
//
// Decoding is the per-event hot path: it walks the record once with
// internal/jsonx, validating all of it (duplicate keys included), and
// materialises only the fields of the reader's FieldSet; strings alias the
// record unless they hold escapes.
package k8saudit
