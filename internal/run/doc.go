// Package run is kanon's one driver between its inputs and its engine.
//
// Every way kanon reads audit events — `kanon scan` over files,
// directories, standard input and the bundled examples; `kanon serve`'s
// webhook, followed files and standard input; `kanon rules test` — is a
// Source that hands a Driver batches of framed records (ingest.Record).
// The Driver does the rest, the same way for all of them, in one goroutine:
//
//   - decoding, through one ingest.Reader per input (format detection,
//     envelopes, bad records reported with their origin);
//   - redelivery dedup: an event whose auditID and stage were seen among
//     the last Config.Dedup events is dropped, whatever input it came from;
//   - evaluation by the engine;
//   - the event-time watermark: runs close Policy.Lateness after their end
//     as the newest event time moves on, or, on an idle live input, as the
//     wall clock moves on (the driver's clock, Config.Now, is the only
//     wall clock that judging events ever reads);
//   - sweeping expired state, through engine.Sweep, every
//     Policy.SweepEvery of event time and at Close;
//   - commits in groups: the engine writes to a write overlay
//     (state/overlay); a commit checkpoints the open ES|QL runs, flushes
//     the sink, writes the overlay to the store in one transaction and
//     only then acknowledges the group's batches (Batch.Done).
//
// What tells a scan from serve is the Policy: BatchPolicy keeps runs open
// to the end of the input and commits once a second; LivePolicy closes
// runs by the watermark, commits as soon as the queue is empty (the
// webhook's senders wait for their answer) and runs the idle clock.
//
// Sources in this package: Files (files, directories, "-", an fs.FS) and
// Tail (a followed file, whose position is committed with the state of
// each batch). The webhook (internal/server) and rule tests
// (internal/ruletest) build their batches themselves and Submit them.
package run
