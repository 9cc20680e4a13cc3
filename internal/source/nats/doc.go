// Package nats is the source of audit logs in a NATS JetStream stream
// (kanon serve --source nats://HOST:PORT/STREAM), read through a durable
// pull consumer that all the replicas of kanon share, with
// github.com/nats-io/nats.go's jetstream API:
//
//	nats://HOST:PORT[,HOST:PORT...]/STREAM[?consumer=NAME][&subject=FILTER]
//	    [&creds=FILE | &token=SECRET | &user=NAME&password=SECRET]
//	    [&tls=true][&ca_file=FILE][&cluster=NAME]
//	    [&batch=N][&max_wait=DURATION][&ack_wait=DURATION][&max_ack_pending=N]
//
// consumer names the durable consumer (default kanon); it is created if
// the stream has none of that name, with explicit acknowledgement, the
// ack wait and, if given, the subject filter; an existing one is used as
// it is (its filter must then agree with subject). Each replica fetches up
// to batch messages (default 256) at a time, waiting at most max_wait
// (default 1s) for them, and the stream hands each message to one
// replica. A secret (token, password) is a value, env:NAME or file:PATH
// (read again when the file changes: a rotated Kubernetes Secret);
// creds is a NATS credentials file (user JWT and NKey seed). cluster
// names the cluster of events that do not name theirs. Unknown
// parameters are errors.
//
// # Order
//
// The replicas fetch at once, so the stream's messages are evaluated in
// parallel and not in the stream's order: a replica may evaluate a message
// before another replica has evaluated an older one. The alerts of single
// events, the alerts each dedup key counts, and the ES|QL alerts of the
// events that arrive within the lateness (a later one is counted late by
// its replica, engine/replicas_close.go) are the same whatever the order;
// what the first to arrive decides is not (which event raises a new term,
// engine/claims.go), and for dedup groups: a
// dedup group is opened by the first alert of its key to arrive and takes
// the alerts of one period after it (internal/engine), so when an older
// alert of the key arrives later it opens a group of its own, with
// another id, where kanon scan of the stream would have made one (its
// count split between the two). For kanon scan's groups exactly, create
// the consumer with max_ack_pending=1: one message is then outstanding in
// the whole stream at a time, handed to whichever replica asks, and
// evaluated, committed and acknowledged before the next is delivered —
// failover without parallel evaluation (a replica that dies holds it for
// ack_wait, after which it is delivered again, first). Set batch=1 with
// it: a fetch of more messages waits out max_wait for those that cannot
// come while one is outstanding, so every message costs a replica a
// max_wait (three replicas, max_wait=200ms, 100 events a message: 1,500
// events/s instead of 13,000 in cmd/kanon TestServeNATSReplicasLoad). max_ack_pending
// equal to batch is not enough: each acknowledgement frees a slot at
// once, and the next messages go one by one to the replicas waiting. A
// consumer per cluster (subject=audit.CLUSTER), each with
// max_ack_pending=1 and replicas of its own, keeps the order per cluster
// and spreads the clusters.
//
// A message's data is what kanon scan reads from a file: audit events one
// per line, EventList bodies, the EKS, AKS and GKE wrappings, gzip; it is
// framed the same way (ingest.Stream). Each fetch is one batch of the
// driver, and its messages are acknowledged only once the batch is
// durable (its alerts flushed to the outputs, its state committed to the
// store); a batch that failed is nacked, and JetStream delivers its
// messages again. A message whose acknowledgement was lost is delivered
// again after ack_wait (default 5m: it must exceed the time a batch takes
// to become durable, or messages are delivered twice for nothing): the
// stream sequence of every message of a durable batch is written to the
// delivery ledger (internal/source) in the batch's commit, and a message
// JetStream delivers again (its delivery count above 1) is looked up
// there and acknowledged without being evaluated if it was durable — by
// any replica on the same store, after a restart too. A first delivery
// costs no lookup. Alert ids are deterministic besides, so no redelivery
// raises an alert twice.
//
// The source is healthy (run.Health) while its connection to the server
// is up: kanon serve's /readyz fails while it is not.
package nats
