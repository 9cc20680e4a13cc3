// Package source holds what kanon's sources of cloud deliveries share, and
// its subpackages are the sources that need a provider's SDK (kept out of
// internal/run so that the driver builds without them):
//
//   - cloudwatch polls an EKS cluster's audit log streams in CloudWatch
//     Logs, with a position per stream committed with the state;
//   - pubsub pulls a Pub/Sub subscription of GKE's Cloud Audit Logs.
//
// The HTTP deliveries (Kinesis Data Firehose, Pub/Sub push) are endpoints
// of internal/server beside the audit webhook.
//
// # Redeliveries
//
// Firehose and Pub/Sub deliver at least once: a delivery whose answer was
// lost, or that was not answered in time, comes again, with the id the
// provider gave it (Firehose's request id, which stays the same across the
// attempts of one request; Pub/Sub's messageId). The driver drops the
// events of a redelivery that it has seen recently (ingest.Dedup, keyed by
// auditID and stage: the LogEntry's insertId on GKE), but only in the
// memory of one process. A Ledger makes a redelivery harmless across
// restarts and replicas: the delivery's id is written to the state store
// in the same commit as the state its events produced, so once a delivery
// was acknowledged — or was durable, its answer lost — a later copy is
// acknowledged at once without being evaluated again, by any replica that
// shares the store.
package source
