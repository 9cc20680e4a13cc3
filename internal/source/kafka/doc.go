// Package kafka is the source of audit logs consumed from a Kafka topic
// with franz-go, in a consumer group that kanon serve's replicas share
// (kanon serve --source kafka://...), and from Azure Event Hubs through
// its Kafka endpoint (--source eventhubs://...):
//
//	kafka://BROKER[,BROKER]/TOPIC?group=NAME[&tls=true][&ca_file=PATH][&insecure_skip_verify=true]
//	    [&sasl=plain|scram-sha-256|scram-sha-512&username=USER&password_file=PATH|password_env=NAME]
//	    [&cluster=NAME][&start=earliest|latest][&max_records=N][&session_timeout=DURATION]
//	eventhubs://NAMESPACE/HUB?group=NAME&connection_string_file=PATH|connection_string_env=NAME
//	    [&cluster=NAME][&start=...][&max_records=N][&session_timeout=DURATION][&broker=HOST:PORT][&ca_file=PATH]
//
// An eventhubs:// URL is the kafka:// URL of the namespace's Kafka
// endpoint: broker NAMESPACE.servicebus.windows.net:9093, TLS, SASL PLAIN
// with the user $ConnectionString and the namespace's (or the hub's)
// connection string as the password; broker= replaces the endpoint (a
// private endpoint; tests). The connection options (brokers, TLS, SASL)
// are internal/kafkaopt's, shared with the Kafka alert output. A password
// file is read again at each connection, so a rotated secret is used
// without a restart. An unknown parameter is an error that names it.
//
// # Records
//
// Each record's value is one input, framed as kanon scan frames a file
// (ingest.FrameMessage: in place for plain text; gzip is read, a byte
// order mark skipped): a line, or several (JSON lines), a pretty-printed
// value, an EventList body, a top-level array; each framed record is read
// by whatever format reads it (audit events, EventLists, EKS, GKE and
// AKS wrappings — the {"records":[...]} envelopes of Event Hubs), so a
// topic's alerts are those of kanon scan of its values written one after
// the other. A value that cannot be read costs only itself (a bad record).
// cluster= names the cluster of events that do not name theirs.
//
// # Delivery
//
// Auto-commit is off. Each poll (at most max_records records, 5000 by
// default) becomes a batch per partition; a partition's offset is
// committed once its batches up to it are durable (run.Batch.Done without
// error: the alerts handed to the outputs and flushed, the state
// committed). A batch that failed is not committed: its partition is read
// again from the batch's first record, and the outcome of the batches
// after it is ignored (they are read again too). After a crash the
// records after the last commit are read again: the driver drops events
// it has seen (auditID and stage), alert ids are deterministic and the
// shared store holds the ids raised, so no alert is raised twice.
//
// The client blocks rebalances while a poll's records are being handed
// over (kgo.BlockRebalanceOnPoll). When partitions are revoked (another
// replica joined, or this one is leaving), the revocation waits for the
// batches of those partitions in flight and commits what became durable
// before the partitions go, so that the next owner starts after them; a
// partition lost (the session expired) is dropped with its uncommitted
// work, which its next owner reads again. session_timeout (franz-go's
// default 45s) is how long the partitions of a replica that died stay
// unread.
//
// # Health
//
// The source pings the brokers every five seconds; Healthy (run.Health)
// is an error until a broker first answers and while none does, and kanon
// serve's /readyz fails with it. Credentials the brokers refuse end the
// source with ErrAuth: retrying cannot help.
//
// The tests run against kfake, franz-go's in-process implementation of
// the Kafka protocol (no Kafka broker can run here), with TLS and SASL
// PLAIN for Event Hubs' endpoint.
package kafka
