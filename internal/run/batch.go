package run

import (
	"time"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/state"
)

// Batch is what a source hands the driver: framed records of one input,
// and what to do once they are evaluated and once they are durable.
//
// The driver reads Records, in order, in its own goroutine, until it calls
// Release; the source must not change them before that. Done is called
// once, after Release, when the batch's alerts have been handed to the
// outputs and flushed and the state its events produced (with Commit's
// writes) has been committed to the store — or with the error that
// prevented it. A source that acknowledges to a sender (the webhook's
// answer, a broker's offset) does so in Done, never before.
type Batch struct {
	// Input names the input in metrics, logs and statistics ("file",
	// "stdin", "tail", "webhook", "test"). Records of one input are
	// decoded by one reader: formats that keep context between records
	// see them in order.
	Input string
	// Cluster is stamped on the events that do not name their cluster.
	Cluster string
	// Records are the batch's records, framed by the source.
	Records []ingest.Record
	// Bytes is the number of input bytes the batch covers, and Files the
	// number of input files it starts, for the statistics.
	Bytes int64
	Files int
	// Received is when the batch arrived (alert latency); zero is when
	// the driver took it.
	Received time.Time
	// Commit, if set, runs in the driver's goroutine after the batch is
	// evaluated, in a transaction on the driver's store: writes that must
	// be durable together with the state of the batch's events (a
	// followed file's position). Its error fails the batch.
	Commit func(tx state.Tx) error
	// Release, if set, is called once the driver no longer reads Records.
	Release func()
	// Done, if set, is called once with the batch's result.
	Done func(Result)
}

// Result is what became of one batch.
type Result struct {
	// Events is the number of events read from the batch and evaluated.
	Events int
	// Duplicates is the number of events dropped as repeated deliveries.
	Duplicates int
	// Bad is the number of records (or parts of records) that could not
	// be read; Errors holds the first few reasons.
	Bad    int
	Errors []string
	// Err is set when the batch could not be evaluated or committed: its
	// sender should send it again.
	Err error
}

// maxResultErrors bounds Result.Errors.
const maxResultErrors = 5
