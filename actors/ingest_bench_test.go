package actors

import (
	"log/slog"
	"testing"
	"time"
)

// BenchmarkIngestGrouping measures the producer's side of Ingest alone:
// validating 50,000 trades and listing each one's index in its shard's part
// (the router and shards are not involved: the request is never sent).
func BenchmarkIngestGrouping(b *testing.B) {
	trades := genTrades(b, 1000, 50_000, time.Hour, 1)
	n := &Node{cfg: Config{Shards: 64, Now: time.Now, Logger: slog.New(slog.DiscardHandler)}, shards: make([]*shardHandle, 64)}
	n.cfg.setDefaults()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := n.newCall(trades)
		c.classify(time.Now().UnixMilli())
		if len(c.touched) == 0 || len(c.res.Rejected) > 0 {
			b.Fatalf("%d rejected", len(c.res.Rejected))
		}
		n.recycle(c)
	}
	b.ReportMetric(float64(b.N*len(trades))/b.Elapsed().Seconds(), "trades/s")
}
