package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestBenchPipelineJSON runs a small `bench pipeline --json` (memory-only
// and durable) and checks the line it prints against what is known about
// the run without the bench's own formulas: the trades generated (the
// flags), the node's and the WAL's own counts of what they took in, and
// relations that hold between independently reported fields (a run's rate
// times its seconds is the trades measured; a median of three runs is one
// of them with at most one run on either side). Rates and allocation
// counts depend on the machine and are not asserted; the formulas are
// table-tested on fixed inputs below.
func TestBenchPipelineJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	profile := filepath.Join(t.TempDir(), "mem.prof")
	const trades, warmup, rounds = 30000, 6000, 3
	args := []string{"bench", "pipeline", "--json", "--trades", "30000", "--warmup", "6000", "--symbols", "25",
		"--batch", "1000", "--rounds", "3", "--warmup-rounds", "1", "--shards", "8", "--intervals", "1m,5m,1h", "--log-level", "error",
		"--memprofile", profile, "--durable", "sync,none"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
	}
	var res PipelineResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if res.Trades != trades || res.WarmupTrades != warmup || res.Symbols != 25 || res.Intervals != 3 {
		t.Errorf("trades %d, warm-up %d, symbols %d, intervals %d; want 30000, 6000, 25, 3",
			res.Trades, res.WarmupTrades, res.Symbols, res.Intervals)
	}
	// The node's own counter: every generated trade went in.
	if res.Accepted != trades+warmup || res.Dropped != 0 {
		t.Errorf("node accepted %d, dropped %d; want %d, 0", res.Accepted, res.Dropped, trades+warmup)
	}
	if res.Rounds != rounds || res.WarmupRounds != 1 {
		t.Errorf("rounds %d (warm-up %d), want 3 after 1 discarded", res.Rounds, res.WarmupRounds)
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("--memprofile: %v, %v", fi, err)
	}
	if res.Cores < 1 || res.Deltas == 0 || res.WarmupAllocs == 0 {
		t.Errorf("cores %d, deltas %d, warm-up allocs %d: want all positive (creating 25 symbols allocates)",
			res.Cores, res.Deltas, res.WarmupAllocs)
	}
	checkRuns(t, "bare", res.BareRuns, res.BareSeconds, trades, res.BareLoopTradesPerSec)
	checkRuns(t, "pipeline", res.PipelineRuns, res.PipelineSeconds, trades, res.PipelineTradesPerSec)
	checkRatios(t, "pipeline", res.Ratio, res.BestRatio, res.RoundRatios,
		res.PipelineTradesPerSec, res.BareLoopTradesPerSec, res.PipelineRuns, res.BareRuns)
	checkAllocs(t, "pipeline", res.Allocs, res.AllocsPerTrade, res.AllocsMax, res.RoundAllocs, trades)

	if len(res.Durable) != 2 || res.Durable[0].Durability != "sync" || res.Durable[1].Durability != "none" {
		t.Fatalf("durable results %+v, want sync then none", res.Durable)
	}
	for _, d := range res.Durable {
		name := "durable " + d.Durability
		// A fresh store per run: its WAL holds exactly the run's trades.
		if d.Accepted != trades+warmup || d.WALTrades != trades+warmup || d.Dropped != 0 {
			t.Errorf("%s: node accepted %d, WAL holds %d, dropped %d; want %d, %d, 0",
				name, d.Accepted, d.WALTrades, d.Dropped, trades+warmup, trades+warmup)
		}
		// 36 requests, each one record per shard it touches (8 shards).
		if d.WALRecords < 36 || d.WALRecords > 36*8 {
			t.Errorf("%s: %d WAL records, want between 36 and 288", name, d.WALRecords)
		}
		if d.Deltas == 0 || len(d.RoundFsyncs) != rounds {
			t.Errorf("%s: deltas %d, fsyncs per round %v", name, d.Deltas, d.RoundFsyncs)
		}
		if d.Durability == "sync" && slices.Contains(d.RoundFsyncs, 0) {
			t.Errorf("%s: a round without fsyncs: %v", name, d.RoundFsyncs)
		}
		checkRuns(t, name, d.Runs, d.Seconds, trades, d.TradesPerSec)
		checkRatios(t, name, d.Ratio, d.BestRatio, d.RoundRatios, d.TradesPerSec, res.BareLoopTradesPerSec, d.Runs, res.BareRuns)
		if !near(d.RatioToMemory*res.PipelineTradesPerSec, d.TradesPerSec) {
			t.Errorf("%s: ratio to memory %v × memory-only %v ≠ %v", name, d.RatioToMemory, res.PipelineTradesPerSec, d.TradesPerSec)
		}
		checkAllocs(t, name, d.Allocs, d.AllocsPerTrade, d.AllocsMax, d.RoundAllocs, trades)
	}
}

// near reports whether a and b agree to 1e-9 relative.
func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// checkRuns checks one rate per round, each the trades over its own
// measured seconds, and that med is a median of them by its definition:
// one of the runs, with no more runs above it than below it plus one,
// and vice versa (for an odd count: at most (n-1)/2 on either side).
func checkRuns(t *testing.T, name string, runs, seconds []float64, trades int, med float64) {
	t.Helper()
	if len(runs) != 3 || len(seconds) != 3 {
		t.Errorf("%s: runs %v, seconds %v: want 3 of each", name, runs, seconds)
		return
	}
	for i := range runs {
		if seconds[i] <= 0 || !near(runs[i]*seconds[i], float64(trades)) {
			t.Errorf("%s: run %d: %v trades/s × %v s ≠ %d trades", name, i, runs[i], seconds[i], trades)
		}
	}
	var below, above int
	for _, r := range runs {
		if r < med {
			below++
		} else if r > med {
			above++
		}
	}
	if !slices.Contains(runs, med) || below > 1 || above > 1 {
		t.Errorf("%s: %v is not the median of %v", name, med, runs)
	}
}

// checkRatios checks the reported ratios against the rates they relate
// (multiplied back, not divided again) and the best ratio against the
// largest runs found here.
func checkRatios(t *testing.T, name string, ratio, best float64, rounds []float64, med, baseMed float64, runs, base []float64) {
	t.Helper()
	if !near(ratio*baseMed, med) {
		t.Errorf("%s: ratio %v × bare median %v ≠ median %v", name, ratio, baseMed, med)
	}
	if len(rounds) != len(runs) || len(runs) != len(base) {
		t.Errorf("%s: round ratios %v for runs %v and %v", name, rounds, runs, base)
		return
	}
	top, baseTop := 0.0, 0.0
	for i := range runs {
		if !near(rounds[i]*base[i], runs[i]) {
			t.Errorf("%s: round %d: ratio %v × bare %v ≠ %v", name, i, rounds[i], base[i], runs[i])
		}
		top, baseTop = math.Max(top, runs[i]), math.Max(baseTop, base[i])
	}
	if !near(best*baseTop, top) {
		t.Errorf("%s: best ratio %v × best bare %v ≠ best run %v", name, best, baseTop, top)
	}
}

// checkAllocs checks the allocation summary against the rounds' counts.
func checkAllocs(t *testing.T, name string, allocs, perTrade float64, largest uint64, rounds []uint64, trades int) {
	t.Helper()
	if len(rounds) != 3 {
		t.Errorf("%s: allocations of rounds %v, want 3", name, rounds)
		return
	}
	var below, above int
	found := false
	for _, a := range rounds {
		found = found || float64(a) == allocs
		if float64(a) < allocs {
			below++
		}
		if float64(a) > allocs {
			above++
		}
		if a > largest {
			t.Errorf("%s: round allocations %d above the largest %d", name, a, largest)
		}
	}
	if !found || below > 1 || above > 1 || !slices.Contains(rounds, largest) {
		t.Errorf("%s: median %v, largest %d of rounds %v", name, allocs, largest, rounds)
	}
	if !near(perTrade*float64(trades), allocs) && !(allocs == 0 && perTrade == 0) {
		t.Errorf("%s: %v per trade × %d trades ≠ %v", name, perTrade, trades, allocs)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1}, 3},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{2, 2, 7, 1, 2}, 2},
		{[]float64{10, 40, 30, 20, 1000, 0.5}, 25},
	}
	for _, tc := range tests {
		in := slices.Clone(tc.in)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median reordered its input: %v, was %v", in, tc.in)
		}
	}
}

func TestCompareRuns(t *testing.T) {
	tests := []struct {
		name       string
		runs, base []float64
		want       comparison
	}{
		{"none", nil, nil, comparison{}},
		{"mismatched", []float64{1, 2}, []float64{1}, comparison{}},
		{"one round", []float64{30}, []float64{20}, comparison{median: 30, ratio: 1.5, bestRatio: 1.5, roundRatios: []float64{1.5}}},
		// Medians 20 and 10 (ratio 2); bests 30 and 20 (1.5); rounds
		// 30/10, 10/20, 20/5.
		{"three rounds", []float64{30, 10, 20}, []float64{10, 20, 5},
			comparison{median: 20, ratio: 2, bestRatio: 1.5, roundRatios: []float64{3, 0.5, 4}}},
		// Medians (12+16)/2 = 14 and (8+10)/2 = 9; bests 16 and 16.
		{"four rounds", []float64{16, 12, 8, 16}, []float64{8, 16, 10, 4},
			comparison{median: 14, ratio: 14.0 / 9, bestRatio: 1, roundRatios: []float64{2, 0.75, 0.8, 4}}},
	}
	for _, tc := range tests {
		got := compareRuns(tc.runs, tc.base)
		if got.median != tc.want.median || got.ratio != tc.want.ratio || got.bestRatio != tc.want.bestRatio ||
			!slices.Equal(got.roundRatios, tc.want.roundRatios) {
			t.Errorf("%s: compareRuns(%v, %v) = %+v, want %+v", tc.name, tc.runs, tc.base, got, tc.want)
		}
	}
}

func TestSummarizeAllocs(t *testing.T) {
	tests := []struct {
		rounds        []uint64
		trades        int64
		med, perTrade float64
		largest       uint64
	}{
		{nil, 1000, 0, 0, 0},
		{[]uint64{0, 0, 0}, 1000, 0, 0, 0},
		{[]uint64{1, 0, 0, 0, 7, 0, 0, 0, 0}, 5_000_000, 0, 0, 7},
		{[]uint64{0, 7, 1, 0}, 1000, 0.5, 0.0005, 7},
		{[]uint64{3, 50, 4}, 2, 4, 2, 50},
		{[]uint64{3, 50, 4}, 0, 4, 0, 50},
	}
	for _, tc := range tests {
		med, perTrade, largest := summarizeAllocs(tc.rounds, tc.trades)
		if med != tc.med || perTrade != tc.perTrade || largest != tc.largest {
			t.Errorf("summarizeAllocs(%v, %d) = %v, %v, %d; want %v, %v, %d",
				tc.rounds, tc.trades, med, perTrade, largest, tc.med, tc.perTrade, tc.largest)
		}
	}
}

func TestTradeRate(t *testing.T) {
	tests := []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{5_000_000, 250 * time.Millisecond, 20_000_000},
		{30000, 2 * time.Second, 15000},
		{1, time.Microsecond, 1_000_000},
		{100, 0, 0},
		{100, -time.Second, 0},
	}
	for _, tc := range tests {
		if got := tradeRate(tc.n, tc.d); got != tc.want {
			t.Errorf("tradeRate(%d, %v) = %v, want %v", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestParseDurabilities(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"sync", []string{"sync"}, true},
		{"sync, batch,none", []string{"sync", "batch", "none"}, true},
		{"sync,,", []string{"sync"}, true},
		{"fast", nil, false},
	} {
		ds, err := parseDurabilities(tc.in)
		var got []string
		for _, d := range ds {
			got = append(got, d.String())
		}
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("parseDurabilities(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestBenchRecoveryJSON runs a small `bench recovery --json` with
// 1,000-trade requests over 8 shards and checks what is known without the
// bench's formulas: every generated trade replayed, every symbol
// recovered from the snapshots, and the records those requests make (at
// most one per shard per request, at least one per request).
func TestBenchRecoveryJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "recovery", "--json", "--trades", "20000", "--symbols", "40", "--shards", "8",
		"--request", "1000", "--intervals", "1m,1h", "--log-level", "error"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
	}
	var res RecoveryResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if res.Trades != 20000 || res.ReplayedTrades != 20000 || res.Shards != 8 || res.Request != 1000 || res.Intervals != 2 {
		t.Errorf("trades %d, replayed %d, shards %d, request %d, intervals %d; want 20000, 20000, 8, 1000, 2",
			res.Trades, res.ReplayedTrades, res.Shards, res.Request, res.Intervals)
	}
	if res.WALRecords < 20 || res.WALRecords > 20*8 {
		t.Errorf("%d WAL records for 20 requests over 8 shards, want 20–160", res.WALRecords)
	}
	if !near(res.TradesPerRecord*float64(res.WALRecords), 20000) {
		t.Errorf("%v trades a record × %d records ≠ 20000", res.TradesPerRecord, res.WALRecords)
	}
	if res.SnapshotSymbols != 40 {
		t.Errorf("%d symbols loaded from the snapshots, want 40", res.SnapshotSymbols)
	}
}
