// Package lifecycle holds what every actor of a node shares about the node's
// life: whether it is closing, whether it broke (an actor exceeded its
// restart limit), when its actor tree halted, and each actor's counters
// (Stats: mailbox depth, restarts, last failure, heartbeat). The node's
// sentinel errors for these states live here, so the shard, ingest and
// facade packages return the same values (package actors re-exports them).
//
// # Imports
//
// lifecycle imports no klinecast package and no actor library (enforced by
// internal/layout): it is state, not behaviour.
package lifecycle
