package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

// memoryTestRows is the size of TestAggregateBoundedMemory; the environment
// variable KLINECAST_TEST_ROWS overrides it (e.g. 100000000 by hand).
const memoryTestRows = 10_000_000

// maxHeapInUse is the bound of TestAggregateBoundedMemory. The bars of the
// default intervals over ~8 days take a few MB; the rest is buffers and
// garbage between collections.
const maxHeapInUse = 200 << 20

// TestAggregateBoundedMemory aggregates 10M rows streamed from the
// generator through an io.Pipe (never held in memory or written to disk)
// and checks that the heap stays far below what the rows would need
// (10M rows are ~750 MB of CSV): memory is bounded by the bars. It takes
// ~20 s of CPU on one core, so -short skips it.
func TestAggregateBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 10M rows; skipped with -short")
	}
	rows := int64(memoryTestRows)
	if s := os.Getenv("KLINECAST_TEST_ROWS"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			t.Fatalf("KLINECAST_TEST_ROWS=%q: want a positive number", s)
		}
		rows = n
	}
	g, err := gen.New(gen.Config{Symbols: []string{"BTCUSDT"}, Trades: rows, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}

	// The writer samples the heap as it goes; the reader runs concurrently,
	// so the samples see the aggregator at every stage of the run.
	pr, pw := io.Pipe()
	var written int64
	peak := make(chan uint64, 1)
	go func() {
		var ms runtime.MemStats
		var maxInUse uint64
		bw := bufio.NewWriterSize(pw, 1<<20)
		var tr messages.Trade
		row := make([]byte, 0, 128)
		var err error
		for g.Next(&tr) && err == nil {
			row = messages.AppendAggTradeCSV(row[:0], &tr)
			_, err = bw.Write(row)
			written += int64(len(row))
			if tr.AggID%500_000 == 0 {
				runtime.ReadMemStats(&ms)
				maxInUse = max(maxInUse, ms.HeapInuse)
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		peak <- maxInUse
	}()

	o := aggregateOptions{symbol: "BTCUSDT", intervals: messages.DefaultIntervals(), maxBars: defaultMaxBars, nowMs: time.Now().UnixMilli()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	began := time.Now()
	off, st, err := aggregateInputs(context.Background(), o, []aggInput{{name: "pipe", r: pr}}, newProgress(io.Discard, false, 0, time.Now), log)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(began)
	maxInUse := <-peak
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	maxInUse = max(maxInUse, ms.HeapInuse)

	o.outDir = t.TempDir()
	files, err := writeKlines(o, off, st)
	if err != nil {
		t.Fatal(err)
	}
	if st.rows != rows {
		t.Fatalf("aggregated %d rows, want %d", st.rows, rows)
	}
	bars := 0
	for _, f := range files {
		bars += f.bars
	}
	t.Logf("%d rows (%d MB of CSV) in %s (%.0f rows/s), %d bars, peak HeapInuse %d MB",
		st.rows, written>>20, elapsed.Round(time.Millisecond), float64(st.rows)/elapsed.Seconds(), bars, maxInUse>>20)
	if maxInUse > maxHeapInUse {
		t.Fatalf("peak HeapInuse %d MB, want < %d MB", maxInUse>>20, maxHeapInUse>>20)
	}
}

// BenchmarkAggregateCSV measures reading, validating and aggregating
// aggTrades CSV rows held in memory, with the default intervals.
func BenchmarkAggregateCSV(b *testing.B) {
	const rows = 200_000
	g, err := gen.New(gen.Config{Symbols: []string{"BTCUSDT"}, Trades: rows, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	var tr messages.Trade
	for g.Next(&tr) {
		buf = messages.AppendAggTradeCSV(buf, &tr)
	}
	o := aggregateOptions{symbol: "BTCUSDT", intervals: messages.DefaultIntervals(), maxBars: defaultMaxBars, nowMs: time.Now().UnixMilli()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		in := []aggInput{{name: "mem", r: bytes.NewReader(buf)}}
		if _, _, err := aggregateInputs(context.Background(), o, in, newProgress(io.Discard, false, 0, time.Now), log); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
