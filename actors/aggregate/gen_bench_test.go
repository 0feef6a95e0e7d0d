package aggregate

import (
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

// BenchmarkCoreGenerated runs the core over realistic generated trades
// (1,000 symbols, bursts and idle gaps over two days), flushing every
// 50,000 trades: unlike BenchmarkCoreApply, rollovers and gap fills are a
// large part of the work here.
func BenchmarkCoreGenerated(b *testing.B) {
	const n = 2_000_000
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(1000), Trades: n, Seed: 1, Span: 48 * time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	trades := make([]messages.Trade, 0, n)
	var t messages.Trade
	for g.Next(&t) {
		trades = append(trades, t)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var c *Core
	for i, j := 0, len(trades); i < b.N; i, j = i+1, j+1 {
		if j == len(trades) {
			b.StopTimer()
			c, _ = New(Config{Intervals: messages.DefaultIntervals()})
			j = 0
			b.StartTimer()
		}
		c.Apply(&trades[j])
		if j%50_000 == 49_999 {
			c.Release(c.Ready())
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trades/s")
}
