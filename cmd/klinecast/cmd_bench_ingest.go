package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/httpapi"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// IngestBenchResult is what `bench ingest` measures for one durability mode.
type IngestBenchResult struct {
	Durability     string  `json:"durability"`
	Clients        int     `json:"clients"`
	Batch          int     `json:"batch"`
	Trades         int     `json:"trades"`
	Accepted       int     `json:"accepted"`
	TradesPerSec   float64 `json:"trades_per_sec"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	FsyncsPerSec   float64 `json:"fsyncs_per_sec"`
	P50Millis      float64 `json:"p50_ms"`
	P99Millis      float64 `json:"p99_ms"`
}

const benchIngestHelp = `
Usage: klinecast bench ingest [flags]

Measures HTTP ingest (POST /api/v1/trades, NDJSON) into a node on a
temporary data dir, once per durability mode: trades/s acknowledged, fsyncs/s
and request latency. Each client owns a disjoint set of symbols and sends
them in time order, as independent feed handlers would.

Examples:
  klinecast bench ingest
  klinecast bench ingest --modes sync --clients 32 --trades 2000000 --json
`

func runBenchIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench ingest", benchIngestHelp)
	trades := fs.Int("trades", 1_000_000, "trades per mode")
	symbols := fs.Int("symbols", 256, "symbols")
	clients := fs.Int("clients", 8, "concurrent HTTP clients")
	batch := fs.Int("batch", 1000, "trades per request")
	modes := fs.String("modes", "sync,batch,none", "durability modes to measure")
	asJSON := fs.Bool("json", false, "print one JSON line per mode")
	lvl := logFlag(fs)
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *trades < 1 || *symbols < 1 || *clients < 1 || *batch < 1 {
		return usageErrorf("bench ingest: --trades, --symbols, --clients and --batch must be ≥ 1")
	}
	log := newLogger(stderr, *lvl)
	bodies, sizes, err := ingestBodies(*trades, *symbols, *clients, *batch)
	if err != nil {
		return err
	}
	for _, m := range strings.Split(*modes, ",") {
		d, err := storage.ParseDurability(strings.TrimSpace(m))
		if err != nil {
			return usageErrorf("bench ingest: --modes: %v", err)
		}
		res, err := benchIngest(ctx, d, bodies, sizes, *batch, log)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := json.NewEncoder(stdout).Encode(res); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%-5s  %2d clients × %d-trade batches: %10.0f trades/s  %7.0f req/s  %6.0f fsyncs/s  p50 %.1f ms  p99 %.1f ms\n",
			res.Durability, res.Clients, res.Batch, res.TradesPerSec, res.RequestsPerSec, res.FsyncsPerSec, res.P50Millis, res.P99Millis)
	}
	return nil
}

// ingestBodies generates the trades and encodes them as NDJSON request
// bodies, per client: client c gets the symbols at positions ≡ c mod
// clients, in time order.
func ingestBodies(n, nsym, clients, batch int) ([][][]byte, [][]int, error) {
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(nsym), Trades: int64(n), Seed: 5, Span: time.Hour})
	if err != nil {
		return nil, nil, err
	}
	owner := map[string]int{}
	for i, s := range gen.Symbols(nsym) {
		owner[s] = i % clients
	}
	bodies := make([][][]byte, clients)
	sizes := make([][]int, clients)
	cur := make([][]byte, clients)
	cnt := make([]int, clients)
	for t := (messages.Trade{}); g.Next(&t); {
		c := owner[t.Symbol]
		cur[c] = append(messages.AppendAggTradeJSON(cur[c], &t), '\n')
		if cnt[c]++; cnt[c] == batch {
			bodies[c], sizes[c] = append(bodies[c], cur[c]), append(sizes[c], cnt[c])
			cur[c], cnt[c] = nil, 0
		}
	}
	for c := range cur {
		if cnt[c] > 0 {
			bodies[c], sizes[c] = append(bodies[c], cur[c]), append(sizes[c], cnt[c])
		}
	}
	return bodies, sizes, nil
}

func benchIngest(ctx context.Context, d storage.Durability, bodies [][][]byte, sizes [][]int, batch int, log *slog.Logger) (IngestBenchResult, error) {
	res := IngestBenchResult{Durability: d.String(), Clients: len(bodies), Batch: batch}
	dir, err := os.MkdirTemp("", "klinecast-bench-ingest-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	scfg := storage.DefaultConfig(dir)
	scfg.Durability = d
	scfg.Logger = slog.New(slog.DiscardHandler)
	st, err := storage.Open(ctx, scfg)
	if err != nil {
		return res, err
	}
	defer st.Close()
	// Event clock; clients advance through trade time at about the same
	// pace, and the lateness absorbs their drift.
	node, err := actors.Start(ctx, actors.Config{Store: st, Clock: actors.ClockEvent, AllowedLateness: 10 * time.Minute, Logger: log})
	if err != nil {
		return res, err
	}
	defer node.Close(context.Background())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: httpapi.New(node, httpapi.Config{Logger: log})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/api/v1/trades"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(bodies)}}

	before := st.Stats()
	began := time.Now()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		accepted  int
		firstErr  error
	)
	var wg sync.WaitGroup
	for c := range bodies {
		wg.Go(func() {
			for i, body := range bodies[c] {
				t0 := time.Now()
				resp, err := client.Post(url, "application/x-ndjson", bytes.NewReader(body))
				var r actors.IngestResult
				if err == nil {
					err = json.NewDecoder(resp.Body).Decode(&r)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("HTTP %d", resp.StatusCode)
					}
				}
				mu.Lock()
				latencies = append(latencies, time.Since(t0))
				accepted += r.Accepted
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("client %d batch %d of %d trades: %w", c, i, sizes[c][i], err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began).Seconds()
	if firstErr != nil {
		return res, firstErr
	}
	after := st.Stats()
	for c := range sizes {
		for _, n := range sizes[c] {
			res.Trades += n
		}
	}
	res.Accepted = accepted
	res.TradesPerSec = float64(res.Trades) / elapsed
	res.RequestsPerSec = float64(len(latencies)) / elapsed
	res.FsyncsPerSec = float64(after.Fsyncs-before.Fsyncs) / elapsed
	slices.Sort(latencies)
	res.P50Millis = float64(latencies[len(latencies)/2]) / 1e6
	res.P99Millis = float64(latencies[len(latencies)*99/100]) / 1e6
	return res, nil
}
