package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// RecoveryResult is what `bench recovery` measures.
type RecoveryResult struct {
	Trades    int64 `json:"trades"`
	Symbols   int   `json:"symbols"`
	Intervals int   `json:"intervals"`
	Shards    int   `json:"shards"`
	// Request is the trades per ingest request the WAL was written as
	// (each request one record per shard it touches); WALRecords how many
	// records that made, TradesPerRecord their mean size.
	Request           int     `json:"request_trades"`
	WALRecords        uint64  `json:"wal_records"`
	TradesPerRecord   float64 `json:"trades_per_record"`
	WriteSeconds      float64 `json:"wal_write_seconds"`
	ReplaySeconds     float64 `json:"wal_replay_seconds"`
	ReplayTradesPerS  float64 `json:"wal_replay_trades_per_sec"`
	ReplayedTrades    int64   `json:"wal_replayed_trades"`
	RSSAfterReplayMB  float64 `json:"rss_after_replay_mb"`
	AnonAfterReplayMB float64 `json:"rss_anon_after_replay_mb"` // RSS minus file-backed pages (badger's mmapped files)
	HeapAfterReplayMB float64 `json:"heap_inuse_after_replay_mb"`
	SnapshotSeconds   float64 `json:"snapshot_save_seconds"`
	SnapshotLoadS     float64 `json:"snapshot_load_seconds"`
	SnapshotSymbols   int     `json:"snapshot_symbols"`
}

func runBenchRecovery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench recovery", benchHelp)
	trades := fs.Int64("trades", 10_000_000, "trades in the WAL tail")
	symbols := fs.Int("symbols", 2000, "symbols")
	ivs := fs.String("intervals", messages.FormatIntervals(messages.DefaultIntervals()), "intervals")
	shards := fs.Int("shards", 64, "shards")
	request := fs.Int("request", 1000, "trades per ingest request the WAL is written as: one record per shard per request, as a node writes them (1,000: bench ingest's and a typical HTTP request; 1,000 over 64 shards is ~16 trades a record)")
	span := fs.Duration("span", time.Hour, "trade time the generated trades cover (shorter: denser bars)")
	dir := fs.String("dir", "", "data directory to use (default: a new temporary one, removed afterwards)")
	asJSON := fs.Bool("json", false, "print one JSON line")
	heapProfile := fs.String("heapprofile", "", "write a heap profile of the node just after the replay to this file")
	lvl := logFlag(fs)
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	intervals, err := messages.ParseIntervals(*ivs)
	if err != nil {
		return usageErrorf("bench: --intervals: %w", err)
	}
	if *trades < 1 || *symbols < 1 || *shards < 1 || *request < 1 {
		return usageErrorf("bench recovery: --trades, --symbols, --shards and --request must be ≥ 1")
	}
	log := newLogger(stderr, *lvl)
	if *dir == "" {
		d, err := os.MkdirTemp("", "klinecast-bench-recovery-")
		if err != nil {
			return fmt.Errorf("bench recovery: %w", err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	res, err := benchRecovery(ctx, *dir, *trades, *symbols, *span, intervals, *shards, *request, *heapProfile, log)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "WAL tail:    %d trades, %d symbols × %d intervals (written in %.1f s)\n", res.Trades, res.Symbols, res.Intervals, res.WriteSeconds)
	fmt.Fprintf(stdout, "records:     %d (%d-trade requests over %d shards: %.1f trades a record)\n", res.WALRecords, res.Request, res.Shards, res.TradesPerRecord)
	fmt.Fprintf(stdout, "replay:      %.2f s (%.0f trades/s)\n", res.ReplaySeconds, res.ReplayTradesPerS)
	fmt.Fprintf(stdout, "RSS after:   %.0f MB (anonymous %.0f MB, Go heap in use %.0f MB; the rest is badger's mmapped files)\n",
		res.RSSAfterReplayMB, res.AnonAfterReplayMB, res.HeapAfterReplayMB)
	fmt.Fprintf(stdout, "snapshots:   saved in %.2f s, loaded in %.3f s (%d symbols)\n", res.SnapshotSeconds, res.SnapshotLoadS, res.SnapshotSymbols)
	return nil
}

// benchRecovery writes the WAL as a node would (one record per shard per
// request of request trades, the request's records queued together)
// without ever snapshotting, then times a node start over it.
func benchRecovery(ctx context.Context, dir string, n int64, nsym int, span time.Duration, intervals []messages.Interval, shards, request int, heapProfile string, log *slog.Logger) (RecoveryResult, error) {
	res := RecoveryResult{Trades: n, Symbols: nsym, Intervals: len(intervals), Shards: shards, Request: request}
	quiet := slog.New(slog.DiscardHandler)
	open := func(d storage.Durability) (*storage.Store, error) {
		cfg := storage.DefaultConfig(dir)
		cfg.Durability = d
		cfg.Logger = quiet
		return storage.Open(ctx, cfg)
	}
	st, err := open(storage.DurabilityNone)
	if err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	// The data dir's layout first, as a node writes it before its WAL.
	if err := st.CheckLayout(ctx, storage.Layout{Shards: shards, Intervals: intervals}); err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(nsym), Trades: n, Seed: 11, Span: span})
	if err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	log.Info("writing WAL tail", "trades", n, "request", request, "dir", dir)
	began := time.Now()
	parts := make([][]messages.Trade, shards)
	appends := make([]*storage.Append, 0, shards)
	var t messages.Trade
	// flush writes one request: a record per shard it touches, queued
	// together (so they share group commits, as the router's do) and
	// then waited for.
	flush := func() error {
		appends = appends[:0]
		for sh, p := range parts {
			if len(p) == 0 {
				continue
			}
			a, err := st.AppendBatchAsync(ctx, sh, &messages.TradeBatch{Trades: p})
			if err != nil {
				return fmt.Errorf("bench recovery: writing the WAL: %w", err)
			}
			appends = append(appends, a)
			parts[sh] = p[:0]
		}
		for _, a := range appends {
			if _, err := a.Wait(); err != nil {
				return fmt.Errorf("bench recovery: writing the WAL: %w", err)
			}
		}
		return nil
	}
	for i := 0; g.Next(&t); i++ {
		sh := actors.ShardOf(t.Symbol, shards)
		parts[sh] = append(parts[sh], t)
		if i%request == request-1 {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.WALRecords = st.Stats().Appends
	res.TradesPerRecord = float64(n) / float64(max(res.WALRecords, 1))
	if err := st.Close(); err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	res.WriteSeconds = time.Since(began).Seconds()
	parts = nil
	runtime.GC()

	// Recovery: a node start replays every shard's WAL.
	if st, err = open(storage.DurabilitySync); err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	cfg := actors.Config{Store: st, Intervals: intervals, Shards: shards, Clock: actors.ClockEvent, Logger: log, CheckpointInterval: time.Hour}
	began = time.Now()
	node, err := actors.Start(ctx, cfg)
	if err != nil {
		st.Close()
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	res.ReplaySeconds = time.Since(began).Seconds()
	rec := node.Recovery()
	res.ReplayedTrades = rec.WALTrades
	res.ReplayTradesPerS = float64(rec.WALTrades) / res.ReplaySeconds
	debug.FreeOSMemory() // the write phase's garbage is not the node's
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapAfterReplayMB = float64(ms.HeapInuse) / (1 << 20)
	res.RSSAfterReplayMB = procStatusMB("VmRSS")
	res.AnonAfterReplayMB = procStatusMB("RssAnon")
	if heapProfile != "" {
		if err := writeHeapProfile(heapProfile); err != nil {
			node.Close(ctx)
			st.Close()
			return res, err
		}
	}

	// Snapshots of that state: save at shutdown, then time a start that
	// loads them (the WAL is truncated behind them).
	began = time.Now()
	if err := node.Close(ctx); err != nil {
		st.Close()
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	res.SnapshotSeconds = time.Since(began).Seconds()
	if err := st.Close(); err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	if st, err = open(storage.DurabilitySync); err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	defer st.Close()
	cfg.Store = st
	began = time.Now()
	node, err = actors.Start(ctx, cfg)
	if err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	res.SnapshotLoadS = time.Since(began).Seconds()
	res.SnapshotSymbols = node.Recovery().Symbols
	if err := node.Close(ctx); err != nil {
		return res, fmt.Errorf("bench recovery: %w", err)
	}
	return res, nil
}

// writeHeapProfile writes the heap profile (what is live after a GC) to
// path.
func writeHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: heap profile: %w", err)
	}
	return nil
}

// procStatusMB reads a memory field (kB) of /proc/self/status in MB (0
// where there is no /proc).
func procStatusMB(field string) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
