package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestBenchPipelineJSON runs a small `bench pipeline --json` and checks
// that the line it prints is consistent: every generated trade measured
// or warmed up, none dropped, one run per round of each. (Rates and
// allocation counts depend on the machine and are not asserted here.)
func TestBenchPipelineJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	profile := filepath.Join(t.TempDir(), "mem.prof")
	args := []string{"bench", "pipeline", "--json", "--trades", "30000", "--warmup", "6000", "--symbols", "25",
		"--batch", "1000", "--rounds", "2", "--warmup-rounds", "1", "--shards", "8", "--intervals", "1m,5m,1h", "--log-level", "error",
		"--memprofile", profile}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
	}
	var res PipelineResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if res.Trades != 30000 || res.WarmupTrades != 6000 || res.Symbols != 25 || res.Intervals != 3 {
		t.Errorf("trades %d, warm-up %d, symbols %d, intervals %d; want 30000, 6000, 25, 3",
			res.Trades, res.WarmupTrades, res.Symbols, res.Intervals)
	}
	if res.Dropped != 0 {
		t.Errorf("%d trades not accepted", res.Dropped)
	}
	if res.Rounds != 2 || res.WarmupRounds != 1 || len(res.BareRuns) != 2 || len(res.PipelineRuns) != 2 {
		t.Errorf("rounds %d (warm-up %d), bare runs %v, pipeline runs %v; want 2 of each after 1 discarded",
			res.Rounds, res.WarmupRounds, res.BareRuns, res.PipelineRuns)
	}
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("--memprofile: %v, %v", fi, err)
	}
	if res.BareLoopTradesPerSec <= 0 || res.PipelineTradesPerSec <= 0 || res.Cores < 1 || res.Deltas == 0 {
		t.Errorf("bare %v/s, pipeline %v/s, cores %d, deltas %d: want all positive",
			res.BareLoopTradesPerSec, res.PipelineTradesPerSec, res.Cores, res.Deltas)
	}
	if res.WarmupAllocs == 0 {
		t.Errorf("no allocations counted in the warm-up: creating 25 symbols allocates")
	}
	if got := res.PipelineTradesPerSec / res.BareLoopTradesPerSec; got != res.Ratio {
		t.Errorf("ratio %v, want pipeline/bare = %v", res.Ratio, got)
	}
	if res.BareLoopTradesPerSec != median(res.BareRuns) || res.PipelineTradesPerSec != median(res.PipelineRuns) {
		t.Errorf("rates %v, %v: want the medians of the runs %v, %v",
			res.BareLoopTradesPerSec, res.PipelineTradesPerSec, res.BareRuns, res.PipelineRuns)
	}
	if len(res.RoundRatios) != 2 || res.RoundRatios[1] != res.PipelineRuns[1]/res.BareRuns[1] {
		t.Errorf("round ratios %v for runs %v, %v", res.RoundRatios, res.BareRuns, res.PipelineRuns)
	}
	if want := max(res.PipelineRuns[0], res.PipelineRuns[1]) / max(res.BareRuns[0], res.BareRuns[1]); res.BestRatio != want {
		t.Errorf("best ratio %v, want %v", res.BestRatio, want)
	}
	if len(res.RoundAllocs) != 2 || res.AllocsMax != max(res.RoundAllocs[0], res.RoundAllocs[1]) ||
		res.Allocs != median([]float64{float64(res.RoundAllocs[0]), float64(res.RoundAllocs[1])}) ||
		res.AllocsPerTrade != res.Allocs/float64(res.Trades) {
		t.Errorf("allocs %v (per trade %v), largest %d, rounds' %v: want the median, its share of %d trades and the largest",
			res.Allocs, res.AllocsPerTrade, res.AllocsMax, res.RoundAllocs, res.Trades)
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
