// Package redis is kanon's shared state.Store: the state of several
// `kanon serve` replicas (or of scans and `kanon state`) in one Redis
// server, through github.com/redis/go-redis/v9. It passes the contract
// suite, state/statetest, against a real redis-server; see the package
// state for the contract and its "Mapping onto Redis".
//
// # Layout
//
// Every Redis key of a store starts with "{PREFIX}:" (Options.Prefix,
// default "kanon"): deployments with different prefixes share a server
// without seeing each other, and the hash tag puts all of a store's keys in
// one slot, as MULTI/EXEC and scripts on Redis Cluster require (this
// package connects to one server, not to a Cluster, today).
//
//	{P}:d:KEY  a string per entry: the 8-byte expiry header of
//	           state.AppendEntry, then the value (binary safe)
//	{P}:k      a sorted set of every KEY, all with score 0: Redis orders
//	           equal-score members bytewise (ZRANGEBYLEX), which is the
//	           order Scan must give; SCAN itself is unordered
//	{P}:x      a sorted set of the KEYs that expire, scored by expiry in
//	           milliseconds (rounded down; a float64 score holds every
//	           millisecond of state.UnixNano's range exactly)
//	{P}:m      a hash: schema (SchemaVersion), entries and bytes (Stats)
//
// Both indexes and the counters change in the same server-side script as
// the entries (applyScript, sweepScript in scripts.go), so they never
// disagree with the entries, whoever writes.
//
// # Update: optimistic, with one script per commit
//
// Update runs its function on a connection of its own. The first Tx.Get
// of a key sends WATCH and GET in one pipeline; later reads of the key,
// and reads of keys the transaction wrote, cost nothing. Puts and Deletes
// are buffered. At commit, one script applies every write with its index
// and counter changes: inside MULTI/EXEC when the function read anything,
// so that EXEC refuses to run it if a read key changed since it was read
// (another replica committed), or alone when it read nothing, since a
// script runs atomically by itself. A refused EXEC runs the function again
// on fresh reads, up to Options.MaxAttempts times with a short random pause
// that doubles each time; then Update fails with an error wrapping
// state.ErrConflict, and nothing was written. So Update is serialisable
// across every client of the store: of two replicas marking one alert id
// (AlertIDs.MarkTx), observing one new term (Terms.ObserveTx) or adding to
// one group (Groups.AddTx), one commits first and the other reads its write
// and does its own again. This was chosen over a script that re-reads and
// decides on the server because the read-decide logic (the views) would
// have to be written twice, in Go and in Lua; the Go functions run as they
// do on bolt and mem, and only the write set is shipped. An error returned
// by the function is returned only after an empty MULTI/EXEC has shown that
// what it read was consistent; otherwise it is run again, so a function
// never fails for having read half of a concurrent commit.
//
// # Time and expiry
//
// Expiry is event time, not wall time: an entry's expiry is stored in its
// header and judged against the now each call is given, exactly as bolt
// does; Redis's own TTLs are not used. A TTL (PEXPIREAT) counts wall time:
// a replay of last month's logs would write entries that Redis deletes at
// once, and keys deleted by Redis would leave their members in both
// indexes and their sizes in the counters, which a script cannot fix since
// Redis runs none on expiry. DeleteExpired(now), which the engine calls
// with its event-time watermark, is what bounds the store's size: it reads
// the candidates from the expiry index (ZRANGEBYSCORE up to now's
// millisecond) in batches of Options.SweepBatch and runs sweepScript on
// each batch, which removes the entries whose exact expiry is not after now
// (those of the same millisecond that are still live stay). Its cost is
// proportional to what it removes, as bolt's expiry bucket makes it there.
//
// # Durability
//
// Update returns nil once EXEC (or the script) has run on the server. The
// write survives the server's crash only as the server's persistence
// allows: appendonly yes with appendfsync always makes it as durable as
// bolt's fsync; the default (everysec) may lose the last second. That is
// the deployment's choice; kanon does not change the server's
// configuration.
//
// # Round trips
//
// One round trip is one request and its reply, a pipeline or a MULTI/EXEC
// block counting once; TestRoundTrips checks these numbers and
// BenchmarkRoundTrips reports them (rt/op).
//
//	Get                          1 (GET)
//	Update, nothing read         1 (the script), whatever the number of writes
//	Update, k keys read          k (WATCH+GET each) + 1 (MULTI, script, EXEC),
//	                             again on each conflict
//	Scan                         2 per Options.ScanPage entries (ZRANGEBYLEX,
//	                             MGET), + 1 when the last page is full
//	DeleteExpired                2 per Options.SweepBatch entries removed
//	                             (ZRANGEBYSCORE, the script)
//	Stats                        1 (HMGET)
//	AlertIDs.Raised, Terms.Seen  1
//	AlertIDs.Mark                2
//	Terms.Observe                1 for a term seen within the slack,
//	                             3 for a new term or a refresh
//
// What kanon's hot path costs: the driver (internal/run) evaluates each
// group of batches against the write overlay (state/overlay), whose commit
// is one Update without reads, so a commit costs 1 round trip whatever its
// size (the group's alert ids, terms, groups, positions and ES|QL runs).
// Per event, the engine reads the store only for keys the overlay does not
// hold yet: nothing for events no rule matches, nothing for KQL and ES|QL
// rules (ES|QL runs are in memory and checkpointed with the commit); one
// GET per matching event of a new_terms rule (its term's history) and one
// per alert (its id; its dedup group), for keys not written in the current
// group. On the generated log of BenchmarkScanRedis (50,000 events, ~2 %
// anonymous, every built-in rule) that is 0.02 round trips per event, all
// told. A commit of n writes is one script that runs on the server for
// about 10 µs per write (measured here), during which the server serves no
// other client: the driver's groups keep n in the thousands.
// Replicas (engine.Options.Replica and Shared, kanon serve --replica) take
// every decision that two of them could take alike in a transaction here
// instead (engine/claims.go): the decisions of a batch's events (alerts
// raised, new terms, dedup groups joined, the max_signals slots of their
// runs: one key per rule, engine/counts.go) in one Update that prefetches
// every key they read (Prefetch: WATCH and MGET in one round trip), so 2
// round trips per batch that decides anything, whatever the number of its
// alerts, plus 2 more per conflict with another replica; nothing for a
// batch that decides nothing. A known term read outside a transaction
// costs its GET as above. The delivery of a group's count and the close of
// a shared ES|QL run take one Update each (2-3 round trips), once per group
// or run. Per run closed, one Scan of that run's slots, and per rule, one
// Scan of its windows each time its closed-run watermark moves (once per
// interval of event time); every 5 seconds, one Scan of the outbox.
// BenchmarkReplicaRoundTrips (internal/run: two replica drivers, a
// generated stream of 20,000 events, 2 % anonymous, in webhook batches of
// 400) measures 0.012 round trips per event, about 5 per batch, all told;
// TestReplicaDrivers logs 1.6 per event on the bundled log, whose 40
// minutes of event time in 200 events make a sweep every few events.
package redis
