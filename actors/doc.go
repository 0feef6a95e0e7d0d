// Package actors is the running node's facade: Config, Start and Close,
// Ingest and IngestAsync, Klines, Symbols, Health, Actors, and the wiring of
// the protoactor-go supervision tree. The work is done by its internal
// packages; actors/httpapi puts HTTP in front of it.
//
// # Structure
//
//	klinecast (root guardian)
//	├── ingest      router (actors/internal/ingest): numbers requests,
//	│               hands them to the router partitions, moves the event
//	│               clock
//	├── shards      supervisor; its children shard-00 … shard-NN
//	│               (actors/internal/shard) run on pinned workers
//	│               (actors/internal/pinned; shard i on worker i mod N),
//	│               with router-0 … router-W, one router partition per
//	│               worker; each shard has a storage writer (a goroutine
//	│               that waits for the disk on its behalf)
//	├── clock       wall clock: ticks after each boundary of the smallest
//	│               interval
//	└── health      heartbeats every shard and partition each second;
//	                the store is a health component too
//
// actors/internal/lifecycle holds what they share about the node's life
// (closing, broken, halted) and each actor's counters.
//
// # Ingest, durability, recovery
//
// Node.Ingest hands a request to the router, which orders it behind every
// earlier request and passes it to every router partition. The partitions
// split the request into chunks: whichever is free claims the next chunk,
// validates it and groups its trades by shard, and tells the others; each
// hands every chunk, in order, to the shards of its worker, which apply it
// while it is in cache. A memory-only node's shards read the trades in
// place, so the caller keeps them unchanged until Ingest returns; a durable
// node's shards copy their part into its WAL record first. Requests are
// recycled, so the memory-only path allocates nothing per request in steady
// state.
//
// A durable shard queues its part's WAL append (storage) and applies the
// part only once its storage writer reports the append durable; Ingest
// answers once every part is applied. A WAL record stores the clock before
// and after its trades, so a replay makes exactly the decisions the live
// shard made. Closed bars go to the shard's bar series in memory
// (storage.ShardBars, chunked, runs of gap fills as one entry); a snapshot
// is written the same way as an append: the shard hands it to its storage
// writer, which first stores the chunks the shard sealed or changed, and
// learns the outcome as a message, so a shard never waits for the disk and
// a query never waits for a write. On start, and after a panic, a shard loads its snapshot and
// replays its WAL. A memory-only node keeps the same guarantees against
// panics with an in-memory checkpoint and an input log.
//
// What an acknowledgement guarantees depends on the store's durability
// mode: sync, nothing acknowledged is lost even on power loss; batch, a
// process crash loses nothing but a power cut may lose what was
// acknowledged in the last sync interval; none, a crash may lose unflushed
// writes.
//
// # Failures
//
// Every actor restarts up to 10 times in 10 s (one-for-one). A shard that
// fails while applying a part rebuilds and applies the part again; a
// memory-only shard that fails 3 times in a row on the same part gives it
// up instead (ErrPartFailed). An actor that still exceeds its limit is
// stopped by its supervisor; then the node breaks visibly: waits and new
// requests fail with ErrActorStopped (a wait returns only once no healthy
// shard still reads the caller's trades), and the health report names the
// actor and its last failure.
//
// # Bounded queues
//
// Every queue in front of a shard is bounded, with back-pressure to the
// caller (ErrBusy after Config.BusyTimeout, HTTP 503): requests in flight
// (Config.MailboxSize), their trades (Config.MaxInFlightTrades), queries
// (Config.MaxQueries), embedding programs' TradeBatch messages (as many as
// requests in flight). A shard's mailbox therefore holds at most the chunk
// messages of the requests in flight, one tick per request, the queries in
// flight, one heartbeat, the checkpoint requests (one per Checkpoint call)
// and its storage writer's reports, whose queue is itself bounded.
//
// # Concurrency
//
// Node's methods are safe for concurrent use. A shard's state is touched
// only by its actor (one message at a time); the only state shared across
// shards is counters (typed atomics); each shard's bar series has a lock
// of its own, shared only with the queries that read it.
//
// # Imports
//
// actors may import actors/aggregate, its internal packages, storage and
// messages; it must not import cluster, httpapi or cmd (enforced by
// internal/layout).
package actors
