// Package eks reads the Kubernetes audit logs of Amazon EKS as CloudWatch
// Logs delivers them. EKS writes one audit event per CloudWatch log event
// to the log group /aws/eks/<cluster>/cluster, in streams named
// kube-apiserver-audit-<hash>. The format reads:
//
//   - subscription-filter payloads ({"messageType", "owner", "logGroup",
//     "logStream", "logEvents": [{"id", "timestamp", "message"}]}), plain
//     or in a gzip file;
//   - the envelope a Lambda function receives, {"awslogs": {"data":
//     base64(gzip(payload))}};
//   - the JSON printed by `aws logs filter-log-events` and `aws logs
//     get-log-events` ({"events": [{"logStreamName", "message", ...}]});
//   - plain message lines (one audit Event per line) when the format is
//     forced with --format eks; detected automatically they are read by
//     the k8s format, without the cloud context.
//
// Every event gets cloud.provider "aws", kanon.reader "eks" (or the reader
// of an enclosing envelope, such as "panther/eks") and, when the log group
// is known, orchestrator.cluster.name from the group's name. The log group
// and stream are kept as aws.cloudwatch.log_group, aws.cloudwatch.log_stream
// and aws.cloudwatch.owner, and the log event id as event.id, when the
// reader keeps untyped fields (FieldSet.Lazy).
//
// What is not an event:
//   - CONTROL_MESSAGE payloads (sent when a subscription is created) and
//     log events of other streams of the group (kube-apiserver-*,
//     authenticator-*, kube-scheduler-* ...: text, not audit events) are
//     skipped: errors wrapping ingest.ErrSkipped, counted apart from bad
//     records;
//   - a message that CloudWatch cut at 256 KB ends with "[Truncated...]" and
//     is not valid JSON: it is a bad record wrapping ingest.ErrTruncated
//     that names the log event id and, when it can be found, the auditID;
//   - a bad log event (not JSON, wrong shape) is a bad record naming its
//     index and id; the other log events of the payload are read.
//
// CloudWatch delivers at least once, so the same audit event can arrive
// twice: ingest.Dedup, a bounded set of recently seen (auditID, stage)
// pairs, drops the repeats (kanon's driver runs it for every input).
package eks
