// Package k8saudit reads Kubernetes audit events (audit.k8s.io/v1 Event) as
// the API server's log backend writes them (JSON lines) and as its webhook
// backend sends them (EventList, or a JSON array of events whose items may
// lack kind and apiVersion).
//
// Decoding is the per-event hot path: it walks the record once with
// internal/jsonx, validating all of it (duplicate keys included), and
// materialises only the fields of the reader's FieldSet; strings alias the
// record unless they hold escapes.
package k8saudit
