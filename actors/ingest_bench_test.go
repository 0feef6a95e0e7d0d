package actors

import (
	"testing"
	"time"
)

// BenchmarkIngestClassify measures a router partition's per-trade work
// alone: reading 50,000 trades, validating them and listing those of its
// worker's shards (no chunk is sent: the shards are not involved). Every
// partition does this for every trade.
func BenchmarkIngestClassify(b *testing.B) {
	trades := genTrades(b, 1000, 50_000, time.Hour, 1)
	n := testNode(b, Config{Shards: 64, Cores: 2})
	a := &partition{h: n.partitions[0]}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := n.newCall(trades)
		c.now = time.Now().UnixMilli()
		a.begin(c)
		a.classify(c, 0, len(trades))
		if len(c.touched[0]) == 0 || len(c.rejected[0]) > 0 {
			b.Fatalf("%d shards, %d rejected", len(c.touched[0]), len(c.rejected[0]))
		}
		n.recycle(c)
	}
	b.ReportMetric(float64(b.N*len(trades))/b.Elapsed().Seconds(), "trades/s")
}
