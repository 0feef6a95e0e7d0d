// Package actors owns the running node: the protoactor-go actor system with
// its supervision tree, the shard actors (each owning the aggregation core
// of its symbols, actors/aggregate), the pinned dispatcher they run on, the
// clocks, ingest and queries. Node is its public face; actors/httpapi puts
// HTTP in front of it.
//
// # Structure
//
//	klinecast (root guardian)
//	├── ingest      router: numbers requests, fans parts out to shards,
//	│               moves the event clock
//	├── shards      supervisor; its children shard-00 … shard-NN run on
//	│               PinnedPool workers (shard i on worker i mod N), and
//	│               router-0 … router-W, one router partition per worker
//	├── clock       wall clock: ticks after each boundary of the smallest
//	│               interval
//	└── health      heartbeats every shard and partition each second
//
// # Ingest, durability, recovery
//
// Node.Ingest hands a request to the router, which orders it behind every
// earlier request and passes it to every router partition (one per pinned
// worker, running on it). The partitions split the request into chunks:
// whichever is free claims the next chunk, validates it and groups its
// trades by shard, and tells the others; each hands every chunk, in order,
// to the shards of its worker, which apply it while it is in cache (see
// partition.go). No trade is copied: shards read them in place, so the
// caller keeps them unchanged until Ingest returns. Requests are recycled
// (IngestCall), so the path allocates nothing per request in
// steady state. Each shard queues its part's WAL append (storage) and
// applies the part only once the append is durable; Ingest answers once
// every part is applied. A WAL record stores the clock before and after its
// trades, so a replay of the WAL makes exactly the decisions the live shard
// made. Shards snapshot periodically and at shutdown; on start, and after a
// panic, a shard loads its snapshot and replays its WAL. A memory-only node
// keeps the same guarantees against panics with an in-memory checkpoint
// (aggregate.Checkpoint) and an input log: after each part, a shard either
// saves its core into the checkpoint or copies the part's trades into the
// log, whichever copies less, and answers only then.
//
// # Failures
//
// Every actor restarts up to 10 times in 10 s (one-for-one). A shard that
// fails while applying a part rebuilds and applies the part again; a
// memory-only shard that fails 3 times in a row on the same part gives it
// up instead (ErrPartFailed: none of the part applied, the request fails,
// the shard serves on). An actor that still exceeds its limit is stopped
// by its supervisor; then nothing it was asked will be answered, so the
// node breaks visibly: waits and new requests fail with ErrActorStopped,
// the health report names the actor and its last failure.
//
// # Concurrency
//
// Node's methods are safe for concurrent use. A shard's state is touched
// only by its actor (one message at a time) and by nothing else; the only
// state shared across shards is counters (typed atomics) and the kline
// store (which is safe for concurrent use). Every queue is bounded: the
// node's ingest gate (Config.MailboxSize requests in flight, so as many
// parts per shard; producers wait up to Config.BusyTimeout, then get
// ErrBusy), a shard's WAL waiter queue (sized to the gate), and its pending
// closed-bar writes (waited for beyond 64).
//
// # Imports
//
// actors may import actors/aggregate, storage and messages; it must not
// import cluster or cmd (enforced by internal/layout).
package actors
