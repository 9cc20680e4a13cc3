// Package server is the audit webhook of kube-apiserver (Server): it
// hands each request's body to internal/run's driver as a batch and
// answers once the batch is durable.
//
// The webhook takes what kube-apiserver's webhook backend sends: a POST of
// an audit.k8s.io/v1 EventList (application/json) to /audit or
// /audit/<cluster>. It authenticates the request by a client certificate
// verified against the configured CA (mutual TLS) or a bearer token,
// limits the body size and the requests in flight, and answers 200 only
// once the batch's events are evaluated, their alerts handed to the
// outputs and flushed, and the state written. A body from which no event
// can be read gets 400 with the reason; bad records inside a good batch
// are counted, reported in the answer and logged, and the rest is
// evaluated. When kanon cannot keep up it answers 429 (too many requests
// in flight, or a full engine queue) or 503 (shutting down, or the batch
// not committed in time) with Retry-After, rather than queueing without
// bound. Request slots are shared per client (the subject of its verified
// certificate, its bearer token, or its IP address): one client holds at
// most Config.MaxInFlightPerClient of them, and a body must arrive within
// Config.BodyTimeout (else 408), so one slow or noisy cluster cannot
// starve the others. kube-apiserver retries every failed request with
// exponential backoff (it ignores Retry-After); whatever it stops retrying
// is lost on its side, so the limits should be sized to its batch rate.
//
// Credentials (Certificate, TokenSet) are read from files and read again
// on SIGHUP and, through Credentials.Watch, whenever a file in their
// directories changes (a Kubernetes Secret volume's "..data" swap
// included); a file that does not load keeps the credential loaded before.
//
// Beside the webhook, the same listeners serve the deliveries of managed
// clusters, whose API server the provider runs: the Kinesis Data Firehose
// HTTP endpoint destination (/firehose, firehose.go: EKS audit logs from a
// CloudWatch Logs subscription, checked by access key) and the Pub/Sub
// push endpoint (/pubsub, pubsub.go: GKE audit entries from a log sink,
// checked by the push's OIDC token, oidc.go). Both answer as their
// provider expects, acknowledge only what is durable, and commit the
// delivery's id with its state (internal/source's Ledger), so that a
// delivery sent again is acknowledged without being evaluated again.
//
// Event time drives windowed rules: a run closes when the newest event
// time passes its end plus the allowed lateness; when no event arrives,
// event time is taken to go on at the wall clock's pace, so an idle input
// still closes its runs. For the same events in the same order, serve and
// kanon scan raise the same alerts with the same ids.
//
// The driver commits in groups (see run.Driver): the state store is
// written once per group of batches, after the outputs are flushed and
// before the batches are acknowledged. A crash loses nothing acknowledged;
// unacknowledged batches are sent again and their alerts, raised again
// with the same ids, are deduplicated by the outputs.
package server
