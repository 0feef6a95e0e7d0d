// Package shard owns the shard actors: each holds the aggregation core
// (actors/aggregate) of the symbols hashed to it, applies the parts of
// ingest requests handed to it, moves its clock, flushes closed bars to
// its bar series (storage.ShardBars) and Deltas to the sink, checkpoints, and recovers (a durable
// node's shard from its snapshot and WAL, a memory-only node's from its
// in-memory checkpoint and input log). A Handle is what outlives the
// actor's incarnations; Env is what a node's shards share.
//
// The contract with ingest is Request, Part and Chunk (part.go): a
// request's trades are read in place through the Part's indices, and each
// part is answered exactly once, however often the shard restarts.
//
// # Imports
//
// shard imports actors/aggregate, actors/internal/lifecycle, storage and
// messages; never ingest, the facade, HTTP or cluster code (enforced by
// internal/layout).
package shard
