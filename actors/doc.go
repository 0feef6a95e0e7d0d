// Package actors owns the running node: shard actors (each owning the
// aggregation core of its symbols), the pinned dispatcher, clocks, the
// supervision tree, ingest and the HTTP API glue.
//
// actors may import storage and messages; it must not import cluster or cmd.
package actors
