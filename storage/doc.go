// Package storage owns everything klinecast keeps on disk: the trade WAL,
// the closed-kline store, shard snapshots and consumer checkpoints, on badger.
//
// storage may import messages only; it must never import actors, cluster or cmd.
package storage
