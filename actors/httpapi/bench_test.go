package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/messages"
)

// benchBatch returns batch number i of 1000 trades over 50 symbols, with
// fresh aggregate ids (no duplicates) and times stepping 100 ms per trade
// when step is set (bars roll over as in a live feed), else all at t0.
func benchBatch(i int64, step bool) []messages.Trade {
	const t0 = int64(1_717_171_200_000)
	trades := make([]messages.Trade, 1000)
	for j := range trades {
		n := i*1000 + int64(j)
		tm := t0
		if step {
			tm += n * 100
		}
		trades[j] = messages.Trade{Symbol: fmt.Sprintf("SYM%02dUSDT", j%50), AggID: n, Price: messages.Decimal(100_00000000 + n%1000*1_000_000),
			Quantity: messages.Decimal(1_000_000 + n%7*100_000), FirstID: 2 * n, LastID: 2*n + 1, Time: tm, BuyerMaker: n%3 == 0}
	}
	return trades
}

func benchNodeConfig() actors.Config {
	return actors.Config{Clock: actors.ClockEvent} // 64 shards, all cores, default intervals
}

// BenchmarkHTTPIngest posts 1000-trade NDJSON batches, one client at a
// time. Compare with BenchmarkNodeIngest (the same batches without HTTP).
func BenchmarkHTTPIngest(b *testing.B) {
	a := startAPI(b, benchNodeConfig(), Config{})
	bodies := make([][]byte, 0, 64)
	var i int64
	b.SetBytes(int64(len(ndjson(benchBatch(0, true)))))
	b.ResetTimer()
	for range b.N {
		if len(bodies) == 0 {
			b.StopTimer()
			for range 64 {
				bodies = append(bodies, ndjson(benchBatch(i, true)))
				i++
			}
			b.StartTimer()
		}
		body := bodies[0]
		bodies = bodies[1:]
		resp, err := a.client.Post(a.srv.URL+"/api/v1/trades", "application/x-ndjson", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "trades/s")
	if st := a.node.Stats(); st.Accepted != uint64(b.N)*1000 {
		b.Fatalf("accepted %d of %d", st.Accepted, b.N*1000)
	}
}

// BenchmarkHTTPIngestParallel posts from GOMAXPROCS clients at once (all
// trades at one time, so no interleaving makes one late).
func BenchmarkHTTPIngestParallel(b *testing.B) {
	a := startAPI(b, benchNodeConfig(), Config{})
	var seq atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := ndjson(benchBatch(seq.Add(1), false))
			resp, err := a.client.Post(a.srv.URL+"/api/v1/trades", "application/x-ndjson", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "trades/s")
}

// BenchmarkNodeIngest is BenchmarkHTTPIngest's batches given to Node.Ingest
// directly: the cost HTTP and JSON add is the difference.
func BenchmarkNodeIngest(b *testing.B) {
	a := startAPI(b, benchNodeConfig(), Config{})
	batches := make([][]messages.Trade, 0, 64)
	var i int64
	b.ResetTimer()
	for range b.N {
		if len(batches) == 0 {
			b.StopTimer()
			for range 64 {
				batches = append(batches, benchBatch(i, true))
				i++
			}
			b.StartTimer()
		}
		if _, err := a.node.Ingest(context.Background(), batches[0]); err != nil {
			b.Fatal(err)
		}
		batches = batches[1:]
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "trades/s")
}

// BenchmarkDecodeNDJSON is the decoding step alone.
func BenchmarkDecodeNDJSON(b *testing.B) {
	body := ndjson(benchBatch(0, true))
	cache := messages.NewSymbolCache(0)
	trades := make([]messages.Trade, 0, 1000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		trades = trades[:0]
		err := messages.DecodeAggTradeBatch(body, cache, func(_ int, t *messages.Trade, err error) error {
			if err != nil {
				return err
			}
			trades = append(trades, *t)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "trades/s")
}

// BenchmarkHTTPKlines1000: GET /api/v3/klines with limit=1000 at random
// start times over a week of 1m bars of 200 symbols, one client at a time
// (in-process server, loopback). Reports the P99 latency; compare with the
// bar read alone (storage BenchmarkKlines1000).
func BenchmarkHTTPKlines1000(b *testing.B) {
	cfg := benchNodeConfig()
	cfg.MemoryRetention = -1
	a := startAPI(b, cfg, Config{})
	trades := genTrades(b, 200, 400_000, 7*24*time.Hour, 5)
	for i := 0; i < len(trades); i += 5000 {
		if _, err := a.node.Ingest(context.Background(), trades[i:min(i+5000, len(trades))]); err != nil {
			b.Fatal(err)
		}
	}
	syms, err := a.node.Symbols(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	first := trades[0].Time
	r := rand.New(rand.NewPCG(1, 2))
	took := make([]time.Duration, 0, b.N)
	buf := make([]byte, 0, 256<<10)
	b.ResetTimer()
	for range b.N {
		url := fmt.Sprintf("%s/api/v3/klines?symbol=%s&interval=1m&limit=1000&startTime=%d", a.srv.URL,
			syms[r.IntN(len(syms))], first+int64(r.IntN(5*24*60))*messages.Minute)
		t0 := time.Now()
		resp, err := a.client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		buf, err = readAll(resp.Body, buf[:0])
		resp.Body.Close()
		took = append(took, time.Since(t0))
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// readAll reads r into buf, growing it as needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 64<<10)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
