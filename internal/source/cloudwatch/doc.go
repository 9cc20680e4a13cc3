// Package cloudwatch is the source of an EKS cluster's audit log read from
// CloudWatch Logs directly, with the AWS SDK for Go v2 (kanon serve
// --source cloudwatch://REGION/LOG_GROUP):
//
//	cloudwatch://REGION/LOG_GROUP[?stream_prefix=PREFIX][&poll=DURATION]
//	  [&since=DURATION][&endpoint=URL]
//
// LOG_GROUP is the path after the region: cloudwatch://eu-west-1/aws/eks/prod/cluster
// reads /aws/eks/prod/cluster (no log group may start with "aws/", so the
// leading slash of EKS groups can be left out; two slashes write it).
// stream_prefix selects the streams (default kube-apiserver-audit, EKS's
// audit streams); poll is how often each stream is read at its end
// (default 5s); since is how far back a stream that has no position yet
// is read the first time kanon reads the group (default 0: from then on);
// endpoint replaces the service's endpoint (a VPC endpoint, or a test
// server). Credentials and the retry of throttled calls are the SDK's:
// the standard credential chain (environment, shared files, web identity
// — IRSA and EKS Pod Identity — and the instance's role), and its
// standard retryer with more attempts and no retry quota, so that a
// ThrottlingException waits and tries again instead of failing.
//
// # Reading
//
// The source lists the group's streams with the prefix (DescribeLogStreams,
// once a minute) and reads each active one with GetLogEvents from its
// head, page after page, following the forward token. Each page becomes
// one batch: a CloudWatch Logs subscription payload of the page's events
// (the ingest/eks format reads it, naming the cluster from the log group
// as for every other EKS delivery), whose stream position is written by
// the batch's Commit, in the same transaction as the state its events
// produced. The next page of a stream is read once the batch before it is
// durable, so a restart resumes after the last committed page — neither
// skipping nor repeating an event.
//
// A stream's position is kept in the driver's store as an input position
// (input cloudwatch:REGION/GROUP, path the stream's name): Offset is the
// timestamp (milliseconds) of the last event read, Dev the number of
// events with that timestamp already read (skipped on resume, which asks
// for the events from that timestamp on), and Line the number of events
// read from the stream. The time kanon first read the group, before which
// streams without a position are not read, is kept under the path
// ":start" (no stream name holds a colon).
//
// A stream is read while its last event (DescribeLogStreams'
// lastEventTimestamp, which CloudWatch updates within an hour) is after
// its position (the group's start for a stream not read yet) or less than
// an hour old: a stream that was read to its end and is no longer written
// costs one call per poll for an hour at most.
// Errors of the service (after the retryer's attempts) are logged and the
// stream is read again at the next poll from its last durable position.
package cloudwatch
