// Package alert defines kanon's alerts and the outputs that deliver them.
//
// An Alert carries a deterministic id (the same input gives the same id, so
// a re-scan or an overlapping window never duplicates an alert), the rule
// that raised it (id, name, type, severity, risk score, MITRE ATT&CK,
// references, runbook), the event time, the output fields, where the event
// came from, and the matching event in its canonical ECS form. In JSON an
// alert is one line.
//
// A Sink delivers alerts. The package has sinks for people and tools
// (JSONSink, TableSink, Collector) and the outputs of `kanon serve`:
//
//   - stdout: NDJSON on a writer (JSONSink);
//   - file: appending NDJSON, rotated by size and age, deduplicated by
//     delivery key (FileSink); without rotation and with SyncWrites and
//     OnlyAlerts, an exactly-once alerts file (kanon scan --alerts-file);
//   - the outputs that deliver over the network, each a transport on one
//     delivery machinery (SpooledSink: a bounded queue, a disk spool,
//     batches, retries with backoff, delivery metrics):
//   - webhook: a JSON POST per alert (NewWebhookSink);
//   - slack: readable incoming-webhook messages with a bar in the
//     severity's colour (NewSlackSink, SlackMessage);
//   - elasticsearch and opensearch: the _bulk API, create actions whose
//     _id is the delivery key, ECS documents for Kibana (BulkCreate,
//     ECSDocument);
//   - splunk: HTTP Event Collector events (SplunkEvent);
//   - alertmanager: Alertmanager's /api/v2/alerts (AlertmanagerAlert);
//   - loki: Loki's push API (LokiStream);
//   - syslog: RFC 5424 over TCP or TLS with RFC 6587 octet counting
//     (SyslogMessage);
//   - kafka: records keyed by alert id, idempotent producer, acks=all
//     (franz-go);
//   - nats: JetStream publish with the delivery key as Nats-Msg-Id.
//
// The HTTP outputs are a body encoder and an endpoint on one HTTP
// transport; syslog, Kafka and NATS have transports of their own. Every
// credential, header value and secret URL may be given as env:NAME or
// file:PATH (ResolveSecret), so that no secret sits in a configuration
// file; a file is read again when it changes.
//
// Outputs (built by NewOutputs from []OutputConfig) fans alerts out to
// several of them, each behind a severity and rule filter and its own
// bounded queue, so a slow output never blocks evaluation.
//
// # Delivery keys
//
// One delivery of an alert is known by its delivery key (Alert.DeliveryKey,
// and LineDeliveryKey for an alert read back as JSON): the alert id, and
// for a dedup group also its count, "<id>#<count>", since a group is
// delivered first with count 1 and later updated under the same id. The
// file output and the spooled outputs drop repeats by it, and receivers
// are given it to drop theirs: the Idempotency-Key header (webhook,
// Slack), the document _id (Elasticsearch: a repeat is a 409), the
// Nats-Msg-Id header (JetStream), the kanon-delivery-key record header
// (Kafka), the key parameter of the structured data (syslog).
//
// # Delivery policy
//
// Each output has a bounded in-memory queue drained by its own goroutine.
//
//   - Outputs that deliver over the network never block Write. An alert
//     goes to the queue while the spool is empty and the queue has room;
//     otherwise it is appended to the spool (so the order is kept: queue
//     before spool). One goroutine delivers in order, in batches for the
//     outputs that batch (Elasticsearch, OpenSearch, Splunk,
//     Alertmanager, Loki, syslog, Kafka, NATS; batch_size, default 100).
//     When a delivery fails, the queue is moved to the spool and the
//     alerts of the batch that failed are retried with exponential
//     backoff and jitter until they succeed (Retry-After is honoured); an
//     answer that retrying cannot change (a 4xx other than 401, 403, 408,
//     425 and 429, an Elasticsearch item refused with a 400, a Kafka
//     record too large) gives the alert up and counts it in Failed; a
//     batch refused whole is sent again alert by alert first. A full
//     spool drops the alert, counts it in Dropped and returns an error
//     wrapping ErrSpoolFull.
//   - Stdout and file outputs have no spool: Write waits for room in the
//     queue at most BlockTimeout (default 100ms), then drops the alert,
//     counts it in Dropped and returns an error wrapping ErrDropped.
//
// Outputs.Write does not return these refusals (the engine must go on
// evaluating): it counts them in the output's stats and passes them to
// Options.OnError.
//
// Flush makes every alert written before it durable: delivered, or written
// to a file or spool and fsync'd. Shutdown delivers what it can before its
// context ends and leaves the rest in the spools, from where a new sink on
// the same directory delivers it after a restart. Delivery is at least
// once: an alert whose acknowledgement was lost is sent again, with its
// delivery key.
package alert
