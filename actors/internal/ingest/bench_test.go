package ingest

import (
	"testing"
	"time"
)

// BenchmarkIngestClassify measures a router partition's per-trade work
// alone: reading 50,000 trades, validating them and grouping them by shard
// (nothing is sent: the shards are not involved). Each trade is classified
// by one partition, the owner of its chunk.
func BenchmarkIngestClassify(b *testing.B) {
	trades := genTrades(b, 1000, 50_000, time.Hour, 1)
	n := testIngest(b, 64, 2)
	a := &partition{h: n.partitions[0]}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := n.newCall(trades)
		c.now = time.Now().UnixMilli()
		c.sizeChunks()
		for k := range c.chunks {
			a.classify(c, k)
		}
		if len(c.rejected[0]) > 0 {
			b.Fatalf("%d rejected", len(c.rejected[0]))
		}
		n.recycle(c)
	}
	b.ReportMetric(float64(b.N*len(trades))/b.Elapsed().Seconds(), "trades/s")
}
