package actors

import (
	"log/slog"
	"testing"
	"time"
)

// BenchmarkIngestGrouping measures the producer's side of Ingest alone:
// validation, hashing and grouping 50,000 trades into shard parts (the
// router and shards are not involved: the request is never sent).
func BenchmarkIngestGrouping(b *testing.B) {
	trades := genTrades(b, 1000, 50_000, time.Hour, 1)
	n := &Node{cfg: Config{Shards: 64, Now: time.Now, Logger: slog.New(slog.DiscardHandler)}, shards: make([]*shardHandle, 64)}
	n.cfg.setDefaults()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if parts, _, rejected := n.groupTrades(trades, time.Now().UnixMilli()); parts == nil || len(rejected) > 0 {
			b.Fatalf("%d rejected", len(rejected))
		}
	}
	b.ReportMetric(float64(b.N*len(trades))/b.Elapsed().Seconds(), "trades/s")
}
