package aggregate

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// benchTrades returns n trades over nsym symbols in time order, 1 ms apart
// per symbol group, with per-symbol increasing ids.
func benchTrades(nsym, n int, seed uint64) []messages.Trade {
	rng := rand.New(rand.NewPCG(seed, 1))
	syms := make([]string, nsym)
	for i := range syms {
		syms[i] = fmt.Sprintf("SYM%05dUSDT", i)
	}
	agg := make([]int64, nsym)
	price := make([]int64, nsym)
	for i := range price {
		price[i] = 100_000_000 * int64(1+rng.IntN(1000))
	}
	out := make([]messages.Trade, n)
	t0 := ms("2024-03-01T00:00:00Z")
	for i := range out {
		s := rng.IntN(nsym)
		price[s] += int64(rng.IntN(2001)-1000) * 1_000_000
		if price[s] < 1_000_000 {
			price[s] = 1_000_000
		}
		agg[s]++
		out[i] = messages.Trade{
			Symbol: syms[s], AggID: agg[s], Price: messages.Decimal(price[s]),
			Quantity: messages.Decimal(1 + rng.Uint64N(10_000_000_000)),
			FirstID:  agg[s] * 3, LastID: agg[s]*3 + int64(rng.IntN(3)),
			Time: t0 + int64(i)/4, BuyerMaker: rng.IntN(2) == 0,
		}
	}
	return out
}

// warm returns a core that has seen every symbol in trades[:nsym*4], and
// the rest of the stream, which continues after the warm-up.
func warm(tb testing.TB, nsym int, all []messages.Trade) (*Core, []messages.Trade) {
	tb.Helper()
	c, err := New(Config{Intervals: messages.DefaultIntervals()})
	if err != nil {
		tb.Fatal(err)
	}
	warmup := nsym * 4
	for i := range all[:warmup] {
		c.Apply(&all[i])
	}
	c.Release(c.Ready())
	c.Release(c.Ready()) // both buffers exist and have been sized once
	return c, all[warmup:]
}

func TestCoreApplyAllocatesNothing(t *testing.T) {
	c, trades := warm(t, 100, benchTrades(100, 20_400, 7))
	i := 0
	testkit.RequireNoAllocs(t, "Apply", 10_000, func() {
		c.Apply(&trades[i])
		i++
	})
}

func TestCoreFlushAllocatesNothing(t *testing.T) {
	c, trades := warm(t, 100, benchTrades(100, 200_400, 7))
	i := 0
	testkit.RequireNoAllocs(t, "Apply+Ready+Release", 200, func() {
		for range 500 {
			c.Apply(&trades[i])
			i++
		}
		d := c.Ready()
		c.Release(d)
	})
}

// BenchmarkCoreApply measures the bare core: trades/s on one goroutine for
// 1, 100, 1,000 and 10,000 symbols × the 8 default intervals, with a flush every
// 1,000 trades (as a shard does per batch). Trades are generated before the
// clock starts; when b.N exceeds them the core restarts on the same stream.
func BenchmarkCoreApply(b *testing.B) {
	for _, nsym := range []int{1, 100, 1000, 10_000} {
		b.Run(fmt.Sprintf("symbols=%d", nsym), func(b *testing.B) {
			all := benchTrades(nsym, nsym*4+1<<21, 7)
			c, trades := warm(b, nsym, all)
			b.ReportAllocs()
			b.ResetTimer()
			for i, j := 0, 0; i < b.N; i, j = i+1, j+1 {
				if j == len(trades) {
					b.StopTimer()
					c, trades = warm(b, nsym, all)
					j = 0
					b.StartTimer()
				}
				c.Apply(&trades[j])
				if j%1000 == 999 {
					c.Release(c.Ready())
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "trades/s")
		})
	}
}
