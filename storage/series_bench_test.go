package storage

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// sparseSeries returns n 1m bars of a quiet symbol from base: a traded bar
// (one trade, or a few) about one minute in three, gap runs between, as
// the core emits them.
func sparseSeries(sym string, base int64, n int, seed uint64) []messages.Kline {
	r := rand.New(rand.NewPCG(seed, 1))
	iv := messages.Interval1m
	var out []messages.Kline
	price := messages.Decimal(2_000_000_000)
	id := int64(1)
	for t, i := base, 0; i < n; {
		if r.IntN(3) == 0 {
			var k messages.Kline
			if r.IntN(2) == 0 {
				k = oneTradeBar(sym, iv, t, price, messages.Decimal(1+r.IntN(100_000)), id)
				id++
			} else {
				k = tradedBar(sym, iv, t, r.Uint64())
				k.FirstTradeID, k.LastTradeID = id, id+int64(r.IntN(5))
				id = k.LastTradeID + 1
			}
			price = k.Close
			out = append(out, k)
			t, i = iv.Next(t), i+1
			continue
		}
		run := min(int64(r.IntN(6)), int64(n-i-1))
		out = append(out, emptyRun(sym, iv, t, price, run))
		t, i = iv.Advance(t, run+1), i+int(run)+1
	}
	return out
}

// BenchmarkWriteSealedChunk: the bars of one sealed chunk (a quiet 1m
// series: traded bars and gap runs) put into a ShardBars and written to
// badger by WriteDirty, one chunk per op. Reports bars per chunk and
// bytes per bar (approximate: a chunk is sealed at ChunkTargetBytes).
func BenchmarkWriteSealedChunk(b *testing.B) {
	cfg := DefaultConfig(b.TempDir())
	cfg.Durability = DurabilityNone // the chunk's encoding and write, not the disk's fsync
	cfg.GCInterval = -1
	s, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bars := NewShardBars(s, 0)
	base := messages.Interval1m.Align(t0)
	series := sparseSeries("BENCHUSDT", base, 1<<16, 1)
	ctx := context.Background()
	next, barsIn := 0, int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sealed := bars.Stats().Sealed
		for bars.Stats().Sealed == sealed {
			if next == len(series) {
				b.StopTimer()
				base = series[len(series)-1].LastOpenTime() + messages.Minute
				series = sparseSeries("BENCHUSDT", base, 1<<16, uint64(barsIn))
				next = 0
				b.StartTimer()
			}
			if err := bars.Put(series[next : next+1]); err != nil {
				b.Fatal(err)
			}
			barsIn += series[next].Bars()
			next++
		}
		if _, err := bars.WriteDirty(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(barsIn)/float64(b.N), "bars/chunk")
	b.ReportMetric(float64(ChunkTargetBytes*b.N)/float64(barsIn), "bytes/bar")
}

// BenchmarkKlines1000: a 1,000-bar query at a random place in a month of
// a quiet symbol's 1m bars, from chunks in badger and from memory.
func BenchmarkKlines1000(b *testing.B) {
	for _, mode := range []string{"badger", "memory"} {
		b.Run(mode, func(b *testing.B) {
			var s *Store
			if mode == "badger" {
				cfg := DefaultConfig(b.TempDir())
				cfg.GCInterval = -1
				var err error
				if s, err = Open(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
				defer s.Close()
			}
			bars := NewShardBars(s, 0)
			base := messages.Interval1m.Align(t0)
			const n = 30 * 1440
			if err := bars.Put(sparseSeries("BENCHUSDT", base, n, 2)); err != nil {
				b.Fatal(err)
			}
			if _, err := bars.WriteDirty(context.Background()); err != nil {
				b.Fatal(err)
			}
			r := rand.New(rand.NewPCG(3, 4))
			dst := make([]messages.Kline, 0, 1000)
			took := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := base + int64(r.IntN(n-1000))*messages.Minute
				t0 := time.Now()
				var err error
				if dst, err = bars.Klines("BENCHUSDT", messages.Interval1m, start, start+1000*messages.Minute, 1000, dst[:0]); err != nil || len(dst) != 1000 {
					b.Fatalf("%d bars, %v", len(dst), err)
				}
				took = append(took, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}
