package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klinecast/klinecast/messages"
)

func fillForSummary(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for i := range 9 {
		if _, err := s.AppendBatch(ctx, i%3, mkBatch("Q", i, 4)); err != nil { // seqs 1..9, shards 0,1,2
			t.Fatal(err)
		}
	}
	var bars []messages.Kline
	for i := range 5 {
		bars = append(bars, mkBar("ETHUSDT", messages.Interval1m, int64(i)*messages.Minute))
	}
	// Ten empty bars: one run entry.
	bars = append(bars, emptyRun("ETHUSDT", messages.Interval1m, 5*messages.Minute, bars[4].Close, 9))
	bars = append(bars, mkBar("ETHUSDT", messages.Interval1h, 0), mkBar("ADA", messages.Interval1m, messages.Minute))
	storeBars(t, s, bars...)
	if err := s.SaveSnapshot(ctx, 1, 4, []byte("snap")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TruncateWAL(ctx, 1, 4); err != nil { // shard 1 holds seqs 2, 5, 8: drops 2
		t.Fatal(err)
	}
	if err := s.PutCheckpoint(ctx, "ws-dash", 7); err != nil {
		t.Fatal(err)
	}
}

func checkSummary(t *testing.T, sum Summary) {
	t.Helper()
	if sum.FormatVersion != formatVersion || sum.LastSeq != 9 {
		t.Fatalf("version %d, last seq %d", sum.FormatVersion, sum.LastSeq)
	}
	var bytes [3]int64
	for i, se := range []*SeriesSummary{&sum.Symbols[0].Series[0], &sum.Symbols[1].Series[0], &sum.Symbols[1].Series[1]} {
		if se.Bytes <= headerLen {
			t.Fatalf("series %d: %d bytes", i, se.Bytes)
		}
		bytes[i], se.Bytes = se.Bytes, 0
	}
	// Bars, runs, chunks, bytes, first and last open, corrupt chunks.
	if got := fmt.Sprint(sum.Symbols); got != "[{ADA [{1m 1 0 1 0 60000 60000 0}]} {ETHUSDT [{1m 15 1 1 0 0 840000 0} {1h 1 0 1 0 0 0 0}]}]" {
		t.Fatalf("symbols: %s", got)
	}
	if len(sum.Intervals) != 2 {
		t.Fatalf("intervals: %+v", sum.Intervals)
	}
	m1, h1 := sum.Intervals[0], sum.Intervals[1]
	if m1.Interval != messages.Interval1m || m1.Series != 2 || m1.Chunks != 2 || m1.Bars != 16 || m1.Runs != 1 || m1.Bytes != bytes[0]+bytes[1] ||
		m1.BytesPerBar != float64(m1.Bytes)/16 {
		t.Fatalf("1m totals: %+v", m1)
	}
	if h1.Interval != messages.Interval1h || h1.Series != 1 || h1.Bars != 1 || h1.Bytes != bytes[2] || h1.BytesPerBar != float64(bytes[2]) {
		t.Fatalf("1h totals: %+v", h1)
	}
	if sum.LegacyKlines != 0 {
		t.Fatalf("legacy klines: %d", sum.LegacyKlines)
	}
	want := []ShardWAL{
		{Shard: 0, Records: 3, Trades: 12, FirstSeq: 1, LastSeq: 7},
		{Shard: 1, Records: 2, Trades: 8, FirstSeq: 5, LastSeq: 8},
		{Shard: 2, Records: 3, Trades: 12, FirstSeq: 3, LastSeq: 9},
	}
	if len(sum.WAL) != len(want) {
		t.Fatalf("WAL: %+v", sum.WAL)
	}
	for i, w := range want {
		got := sum.WAL[i]
		if got.Bytes <= 0 {
			t.Fatalf("shard %d: %d bytes", got.Shard, got.Bytes)
		}
		got.Bytes = 0
		if got != w {
			t.Fatalf("WAL[%d] = %+v, want %+v", i, got, w)
		}
	}
	if len(sum.Snapshots) != 1 || sum.Snapshots[0].Shard != 1 || sum.Snapshots[0].CoveredSeq != 4 || sum.Snapshots[0].Bytes != 4 || sum.Snapshots[0].SavedAt.IsZero() {
		t.Fatalf("snapshots: %+v", sum.Snapshots)
	}
	if fmt.Sprint(sum.Checkpoints) != "[{ws-dash 7}]" {
		t.Fatalf("checkpoints: %v", sum.Checkpoints)
	}
}

func TestInspectSummary(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		fillForSummary(t, s)
		sum, err := s.Summary(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		checkSummary(t, sum)
	})
}

func TestInspectClosedDir(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	s := openStore(t, cfg)
	fillForSummary(t, s)
	corruptRecord(t, s, 2, 6) // replay would refuse it; inspect reports it
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	sum, err := Inspect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Recovered || sum.Dir != cfg.Dir || sum.DurableSeq != 9 {
		t.Fatalf("clean directory: %+v", sum)
	}
	if sum.WAL[2].Corrupt != 1 || sum.WAL[2].Trades != 8 {
		t.Fatalf("corrupt record not counted: %+v", sum.WAL[2])
	}
	sum.WAL[2].Corrupt, sum.WAL[2].Trades = 0, 12
	checkSummary(t, sum)
	// Inspect changed nothing: a store opens and replays as before.
	s = openStore(t, cfg)
	if n := len(replayShard(t, s, 1, 0)); n != 2 {
		t.Fatalf("after inspect: %d records", n)
	}
}

func TestInspectNotADataDir(t *testing.T) {
	cfg := testConfig(t, onBadger, filepath.Join(t.TempDir(), "nothing"))
	if _, err := Inspect(context.Background(), cfg); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Inspect of a missing directory: %v", err)
	}
}
