// Package ingest owns the way in: the router that orders requests and
// moves the event clock, the router partitions (one per pinned worker)
// that validate requests and group their trades by shard, and the request
// itself (Call), recycled so the path allocates nothing per request.
//
// Every queue in front of the shards is bounded here: requests in flight
// (Config.MaxRequests), their trades (Config.MaxTrades), and the
// *messages.TradeBatch requests of embedding programs (as many as may be
// in flight; a full queue answers ErrBusy). A request waits up to
// Config.BusyTimeout for room, then fails with ErrBusy; nothing accepted
// is ever dropped.
//
// # Imports
//
// ingest imports actors/internal/shard, pinned, lifecycle and messages;
// never storage directly, the facade, HTTP or cluster code (enforced by
// internal/layout).
package ingest
