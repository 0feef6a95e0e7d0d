// Package aggregate is klinecast's pure aggregation core: trades and clock
// ticks in, batches of changed bars (Delta) out. Core serves the live node
// (one per shard actor); Offline serves `klinecast aggregate` on files whose
// rows may come in any order.
//
// Like etcd's raft RawNode it is a state machine with no goroutines, no
// clock (time only moves through Core.Tick and trade timestamps), no I/O and
// no locks: the shard actor around it schedules and does I/O. That keeps
// replays deterministic and the hot path allocation-free.
//
// aggregate imports only messages and the standard library; it must not
// import storage, cluster, protoactor, badger or anything that does I/O.
package aggregate
