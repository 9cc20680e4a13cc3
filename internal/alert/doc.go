// Package alert defines kanon's alerts and the outputs that deliver them.
//
// An Alert carries a deterministic id (the same input gives the same id, so
// a re-scan or an overlapping window never duplicates an alert), the rule
// that raised it (id, name, type, severity, risk score, MITRE ATT&CK,
// references, runbook), the event time, the output fields, where the event
// came from, and the matching event in its canonical ECS form. In JSON an
// alert is one line.
//
// A Sink delivers alerts. The package has the outputs of `kanon scan`:
//
//   - TableSink: a table for people, in time order, fitted to a width
//     (cut by display width, never splitting a character, the columns a
//     responder reads first kept longest), or every column (-o wide);
//   - JSONSink: NDJSON as alerts are raised (NewJSONLinesSink: with a slim
//     rule, SlimRule);
//   - DocumentSink: one JSON or YAML document with a rules section;
//   - CSVSink: CSV rows;
//
// the sinks that hold their alerts to the end (Tallied) say in each how
// many hits its run dropped at max_signals. Collector keeps alerts in
// memory. And the outputs of `kanon serve`:
//
//   - stdout: NDJSON on a writer (JSONSink);
//   - file: appending NDJSON, rotated by size and age, deduplicated by
//     delivery key (FileSink); without rotation and with SyncWrites and
//     OnlyAlerts, an exactly-once alerts file (kanon scan --alerts-file);
//   - webhook: a JSON POST per alert with retries, backoff and a disk spool
//     (WebhookSink, Spool);
//   - slack: readable incoming-webhook messages on the same sender
//     (NewSlackSink).
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
// file output, the webhook and Slack outputs and their spools all drop
// repeats by it.
//
// # Delivery policy
//
// Each output has a bounded in-memory queue drained by its own goroutine.
//
//   - Webhook and Slack outputs never block Write. An alert goes to the
//     queue while the spool is empty and the queue has room; otherwise it
//     is appended to the spool (so the order is kept: queue before spool).
//     When a delivery fails, the queue is moved to the spool and the sender
//     retries the head with exponential backoff and jitter until it
//     succeeds; alerts are delivered in order, once per success (receivers
//     deduplicate retried requests by the Idempotency-Key header, which is
//     the alert's delivery key). A full spool drops the alert, counts it in Dropped and
//     returns an error wrapping ErrSpoolFull.
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
// the same directory delivers it after a restart.
package alert
