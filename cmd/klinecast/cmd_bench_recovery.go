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
	Trades            int64   `json:"trades"`
	Symbols           int     `json:"symbols"`
	Intervals         int     `json:"intervals"`
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
	span := fs.Duration("span", time.Hour, "trade time the generated trades cover (shorter: denser bars)")
	dir := fs.String("dir", "", "data directory to use (default: a new temporary one, removed afterwards)")
	asJSON := fs.Bool("json", false, "print one JSON line")
	lvl := logFlag(fs)
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	intervals, err := messages.ParseIntervals(*ivs)
	if err != nil {
		return usageErrorf("bench: --intervals: %v", err)
	}
	log := newLogger(stderr, *lvl)
	if *dir == "" {
		d, err := os.MkdirTemp("", "klinecast-bench-recovery-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	res, err := benchRecovery(ctx, *dir, *trades, *symbols, *span, intervals, *shards, log)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "WAL tail:    %d trades, %d symbols × %d intervals (written in %.1f s)\n", res.Trades, res.Symbols, res.Intervals, res.WriteSeconds)
	fmt.Fprintf(stdout, "replay:      %.2f s (%.0f trades/s)\n", res.ReplaySeconds, res.ReplayTradesPerS)
	fmt.Fprintf(stdout, "RSS after:   %.0f MB (anonymous %.0f MB, Go heap in use %.0f MB; the rest is badger's mmapped files)\n",
		res.RSSAfterReplayMB, res.AnonAfterReplayMB, res.HeapAfterReplayMB)
	fmt.Fprintf(stdout, "snapshots:   saved in %.2f s, loaded in %.3f s (%d symbols)\n", res.SnapshotSeconds, res.SnapshotLoadS, res.SnapshotSymbols)
	return nil
}

// benchRecovery writes the WAL as a node would (one record per shard per
// request) without ever snapshotting, then times a node start over it.
func benchRecovery(ctx context.Context, dir string, n int64, nsym int, span time.Duration, intervals []messages.Interval, shards int, log *slog.Logger) (RecoveryResult, error) {
	res := RecoveryResult{Trades: n, Symbols: nsym, Intervals: len(intervals)}
	quiet := slog.New(slog.DiscardHandler)
	open := func(d storage.Durability) (*storage.Store, error) {
		cfg := storage.DefaultConfig(dir)
		cfg.Durability = d
		cfg.Logger = quiet
		return storage.Open(ctx, cfg)
	}
	st, err := open(storage.DurabilityNone)
	if err != nil {
		return res, err
	}
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(nsym), Trades: n, Seed: 11, Span: span})
	if err != nil {
		return res, err
	}
	log.Info("writing WAL tail", "trades", n, "dir", dir)
	began := time.Now()
	const batch = 50_000
	parts := make([][]messages.Trade, shards)
	var t messages.Trade
	flush := func() error {
		for sh, p := range parts {
			if len(p) == 0 {
				continue
			}
			if _, err := st.AppendBatch(ctx, sh, &messages.TradeBatch{Trades: p}); err != nil {
				return err
			}
			parts[sh] = p[:0]
		}
		return nil
	}
	for i := 0; g.Next(&t); i++ {
		sh := actors.ShardOf(t.Symbol, shards)
		parts[sh] = append(parts[sh], t)
		if i%batch == batch-1 {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := st.Close(); err != nil {
		return res, err
	}
	res.WriteSeconds = time.Since(began).Seconds()
	parts = nil
	runtime.GC()

	// Recovery: a node start replays every shard's WAL.
	if st, err = open(storage.DurabilitySync); err != nil {
		return res, err
	}
	cfg := actors.Config{Store: st, Intervals: intervals, Shards: shards, Clock: actors.ClockEvent, Logger: log, CheckpointInterval: time.Hour}
	began = time.Now()
	node, err := actors.Start(ctx, cfg)
	if err != nil {
		st.Close()
		return res, err
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

	// Snapshots of that state: save at shutdown, then time a start that
	// loads them (the WAL is truncated behind them).
	began = time.Now()
	if err := node.Close(ctx); err != nil {
		st.Close()
		return res, err
	}
	res.SnapshotSeconds = time.Since(began).Seconds()
	if err := st.Close(); err != nil {
		return res, err
	}
	if st, err = open(storage.DurabilitySync); err != nil {
		return res, err
	}
	defer st.Close()
	cfg.Store = st
	began = time.Now()
	node, err = actors.Start(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.SnapshotLoadS = time.Since(began).Seconds()
	res.SnapshotSymbols = node.Recovery().Symbols
	return res, node.Close(ctx)
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
