package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// TestInspectSummarizesDataDir runs a durable node on a temp dir, stops it
// gracefully (final snapshots), then checks that inspect reports its
// symbols, bars and snapshots.
func TestInspectSummarizesDataDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	scfg := storage.DefaultLocalConfig(dir)
	scfg.Logger = slog.New(slog.DiscardHandler)
	st, err := storage.Open(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	node, err := actors.Start(ctx, actors.Config{Store: st, Clock: actors.ClockEvent, Shards: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gen.Config{Symbols: []string{"BTCUSDT", "ETHUSDT"}, Trades: 2000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var trades []messages.Trade
	var tr messages.Trade
	for g.Next(&tr) {
		trades = append(trades, tr)
	}
	if _, err := node.Ingest(ctx, trades); err != nil {
		t.Fatal(err)
	}
	if err := node.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"inspect", "--data-dir", dir}, &out, &errOut); code != exitOK {
		t.Fatalf("inspect exited %d: %s", code, errOut.String())
	}
	for _, want := range []string{"BTCUSDT", "ETHUSDT", "1m", "SNAPSHOT SHARD", "2 symbols", "RUNS", "CHUNKS", "BYTES/BAR"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(ctx, []string{"inspect", "--data-dir", dir, "--json"}, &out, &errOut); code != exitOK {
		t.Fatalf("inspect --json exited %d: %s", code, errOut.String())
	}
	var sum storage.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Symbols) != 2 || len(sum.Snapshots) == 0 {
		t.Fatalf("summary: %d symbols, %d snapshots", len(sum.Symbols), len(sum.Snapshots))
	}
	// Per interval: both series, their chunks, bars, runs and bytes.
	if len(sum.Intervals) != len(messages.DefaultIntervals()) {
		t.Fatalf("summary: %d intervals: %+v", len(sum.Intervals), sum.Intervals)
	}
	for i, iv := range sum.Intervals {
		var bars, runs int64
		for _, sym := range sum.Symbols {
			bars += sym.Series[i].Bars
			runs += sym.Series[i].Runs
		}
		if iv.Interval != messages.DefaultIntervals()[i] || iv.Series != 2 || iv.Chunks < 2 || iv.Bars != bars || iv.Runs != runs ||
			iv.Bytes <= 0 || iv.BytesPerBar != float64(iv.Bytes)/float64(iv.Bars) || iv.Corrupt != 0 {
			t.Fatalf("interval %d: %+v (series bars %d, runs %d)", i, iv, bars, runs)
		}
	}
	if m := sum.Intervals[0]; m.Runs == 0 || m.Bars < 100 {
		t.Fatalf("1m: %+v: expected runs of empty bars between the trades", m)
	}
	for _, field := range []string{`"BytesPerBar"`, `"Runs"`, `"Chunks"`, `"LegacyKlines"`} {
		if !bytes.Contains(out.Bytes(), []byte(field)) {
			t.Errorf("JSON lacks %s", field)
		}
	}
	// A directory that is not a data dir is a clear error, exit 1.
	if code := run(ctx, []string{"inspect", "--data-dir", t.TempDir()}, &out, &errOut); code != exitFailure {
		t.Fatalf("inspect of an empty dir exited %d", code)
	}
}
