// Package pinned runs protoactor actors on pinned workers: a Pool of worker
// goroutines, each locked to its own OS thread and, where the kernel allows,
// to one CPU, with a protoactor Dispatcher per worker (pool.go), and a
// Mailbox that allocates nothing per message in steady state (mailbox.go).
// It is generic: it knows nothing of shards, trades or bars.
//
// # Imports
//
// pinned imports protoactor-go and golang.org/x/sys only; it must not import
// any klinecast package (enforced by internal/layout).
package pinned
