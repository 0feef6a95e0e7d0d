package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// Bench is the `klinecast bench` subcommand.
func (commands) Bench() command {
	return command{summary: "reproducible benchmarks (bench pipeline|recovery|ingest|scale)", run: runBench}
}

const benchHelp = `
Usage: klinecast bench pipeline|recovery|ingest|scale [flags]

pipeline measures, in one run and on the same generated trades, the bare
aggregation core on one goroutine and the whole actor pipeline (ingest
router → shards on pinned workers → deltas), and prints the trade rates
(the medians of --rounds runs of each), the allocations per trade of the
pipeline (the median of its runs; every run's count and the largest are
in the JSON too) and the number of cores. Both first run --warmup trades
untimed (creating the symbols, bar series and buffers, as on a node that
has been running); the allocations of that warm-up are reported apart
(warmup_allocs). Before the measured rounds,
--warmup-rounds whole rounds run and are discarded: a process's first
run builds the Go runtime's own caches (its thread pool, its cache of
blocked-goroutine records, the type-switch caches of the actor library),
once per process, as Go benchmarks discard their first run.

--durable MODES (a comma-separated list of sync, batch, none; sync is the
storage default and serve's) also runs, in each round right after the
memory-only one, the pipeline of a durable node: a badger store in a new
temporary directory per run with that durability, every request in the
WAL before it is answered. Its median rate is reported next to the
memory-only one, as a ratio to the bare loop and to the memory-only
pipeline.

recovery writes a WAL tail of generated trades (no snapshot) into a
temporary data directory, then measures a node start that replays it, the
node's RSS afterwards, and a start from the snapshots of that state. The
tail is written as a node writes it: --request trades per ingest request
(default 1,000, as HTTP clients send them), one record per shard per
request (~16 trades a record over 64 shards).

ingest measures HTTP ingest into a node on a temporary data dir, once per
durability mode (klinecast bench ingest -h).

scale measures the storage at market scale as a user runs it: two nodes of
this binary as child processes (serve), a durable one (--durability batch)
and a memory-only one, fed the same generated trades over HTTP one after
the other (--scenario day: 2,000 symbols, 1M trades over 24h; quarter: the
same over 90 days). It reports each node's trades/s and RSS, the data
dir's size per closed bar, the time from a kill -9 and restart of the
durable node to its exact answer, and klines query latency; progress and a
table on stderr, JSON on stdout (klinecast bench scale -h).

Examples:
  klinecast bench pipeline --json
  klinecast bench pipeline --trades 10000000 --symbols 1000 --batch 50000
  klinecast bench pipeline --durable sync --json
  klinecast bench recovery --trades 10000000 --symbols 2000 --json
  klinecast bench recovery --request 50000   # large records (~780 trades each)
  klinecast bench scale --scenario day > day.json
`

type benchOptions struct {
	trades    int64
	symbols   int
	intervals []messages.Interval
	batch     int
	producers int
	shards    int
	cores     int
	json      bool
	seed      uint64
	rounds    int
	// warmup trades, generated before the measured ones, go through the
	// bare loop and the pipeline untimed first: symbols, bar series and
	// buffers are created there, as a node that has run for a while has
	// them.
	warmup  int64
	span    time.Duration
	profile io.Writer
	// memProfile, when set, is the file the pipeline run's allocation
	// profile is written to.
	memProfile string
	// warmupRounds whole rounds run first and are discarded.
	warmupRounds int
	// durable lists the durabilities of the durable pipelines run in
	// each round after the memory-only one (none: memory-only alone).
	durable []storage.Durability
}

// writeAllocProfile writes the allocation profile so far to path, after
// the GCs that publish the latest allocations in it (the runtime publishes
// a cycle's allocations two cycles later).
func writeAllocProfile(path string) error {
	runtime.GC()
	runtime.GC()
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: memory profile: %w", err)
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("bench: allocation profile: %w", err)
	}
	return f.Close()
}

// PipelineResult is what `bench pipeline` measures.
type PipelineResult struct {
	BareLoopTradesPerSec float64 `json:"bare_loop_trades_per_sec"`
	PipelineTradesPerSec float64 `json:"pipeline_trades_per_sec"`
	// AllocsPerTrade counts every allocation of the process from a
	// round's first measured request to its last answer, divided by the
	// measured trades: the median over the rounds, as for the rates (and
	// as benchstat summarises allocs/op).
	AllocsPerTrade float64 `json:"allocs_per_trade"`
	// Allocs is that median count itself; RoundAllocs each round's and
	// AllocsMax the largest (the Go runtime filling its own caches now
	// and then: see BENCHMARKS.md).
	Allocs      float64  `json:"allocs"`
	AllocsMax   uint64   `json:"allocs_max"`
	RoundAllocs []uint64 `json:"round_allocs"`
	Cores       int      `json:"cores"`
	Ratio       float64  `json:"ratio"`
	Trades      int64    `json:"trades"`
	// WarmupTrades went through both first, untimed; WarmupAllocs is what
	// the pipeline allocated for them (starting the node not included):
	// the cost of creating the symbols, their bar series and buffers.
	WarmupTrades int64  `json:"warmup_trades"`
	WarmupAllocs uint64 `json:"warmup_allocs"`
	Symbols      int    `json:"symbols"`
	Intervals    int    `json:"intervals"`
	Deltas       uint64 `json:"deltas"`
	Dropped      int64  `json:"dropped"`
	// Rounds is how many times each was run; the rates above are the
	// medians of them, the runs below every one. WarmupRounds more ran
	// first and are in nothing here. BestRatio is the ratio of the best
	// pipeline run to the best bare run; RoundRatios each round's.
	Rounds       int       `json:"rounds"`
	WarmupRounds int       `json:"warmup_rounds"`
	BareRuns     []float64 `json:"bare_runs"`
	PipelineRuns []float64 `json:"pipeline_runs"`
	BestRatio    float64   `json:"best_ratio"`
	RoundRatios  []float64 `json:"round_ratios"`
	// BareSeconds and PipelineSeconds are each run's measured time: run
	// i's rate is Trades / its seconds.
	BareSeconds     []float64 `json:"bare_seconds"`
	PipelineSeconds []float64 `json:"pipeline_seconds"`
	// Accepted is the node's own count of accepted trades (warm-up and
	// measured) in the last pipeline run.
	Accepted uint64 `json:"accepted"`
	// Durable has one entry per --durable mode: the same pipeline on a
	// durable node, run in the same rounds.
	Durable []DurablePipelineResult `json:"durable,omitempty"`
}

// DurablePipelineResult is the pipeline of a durable node (a badger store
// in a temporary directory) in `bench pipeline --durable`, measured in the
// same rounds as the bare loop and the memory-only pipeline.
type DurablePipelineResult struct {
	Durability string `json:"durability"`
	// TradesPerSec is the median of Runs; Ratio is it over the bare
	// loop's median, RatioToMemory over the memory-only pipeline's.
	TradesPerSec  float64 `json:"trades_per_sec"`
	Ratio         float64 `json:"ratio"`
	RatioToMemory float64 `json:"ratio_to_memory"`
	BestRatio     float64 `json:"best_ratio"`
	// RoundRatios: each round's run over that round's bare run.
	RoundRatios    []float64 `json:"round_ratios"`
	Runs           []float64 `json:"runs"`
	Seconds        []float64 `json:"seconds"`
	Allocs         float64   `json:"allocs"`
	AllocsPerTrade float64   `json:"allocs_per_trade"`
	AllocsMax      uint64    `json:"allocs_max"`
	RoundAllocs    []uint64  `json:"round_allocs"`
	WarmupAllocs   uint64    `json:"warmup_allocs"`
	// RoundFsyncs: the store's fsyncs in each round's measured part.
	RoundFsyncs []uint64 `json:"round_fsyncs"`
	// Accepted is the node's count of accepted trades, WALTrades and
	// WALRecords what its store appended (warm-up and measured), in the
	// last run.
	Accepted   uint64 `json:"accepted"`
	WALTrades  uint64 `json:"wal_trades"`
	WALRecords uint64 `json:"wal_records"`
	Deltas     uint64 `json:"deltas"`
	Dropped    int64  `json:"dropped"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "pipeline":
			return runBenchPipeline(ctx, args[1:], stdout, stderr)
		case "recovery":
			return runBenchRecovery(ctx, args[1:], stdout, stderr)
		case "ingest":
			return runBenchIngest(ctx, args[1:], stdout, stderr)
		case "scale":
			return runBenchScale(ctx, args[1:], stdout, stderr)
		case "-h", "--help", "-help":
			fmt.Fprint(stdout, benchHelp)
			return flag.ErrHelp
		}
	}
	return usageErrorf("bench: want a benchmark name: pipeline, recovery, ingest or scale")
}

func runBenchPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench pipeline", benchHelp)
	o := benchOptions{}
	fs.Int64Var(&o.trades, "trades", 5_000_000, "trades to generate (≥ 1)")
	fs.IntVar(&o.symbols, "symbols", 1000, "symbols")
	ivs := fs.String("intervals", messages.FormatIntervals(messages.DefaultIntervals()), "intervals")
	fs.IntVar(&o.batch, "batch", 100_000, "trades per ingest request")
	fs.IntVar(&o.producers, "inflight", 4, "ingest requests kept in flight")
	fs.IntVar(&o.shards, "shards", 64, "shards")
	fs.IntVar(&o.cores, "cores", 0, "pinned workers (0 = all CPUs)")
	fs.BoolVar(&o.json, "json", false, "print one JSON line")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed")
	fs.IntVar(&o.rounds, "rounds", 9, "runs of each (bare loop, pipeline), alternating; the median of each counts")
	fs.Int64Var(&o.warmup, "warmup", 500_000, "trades to run through both, untimed, before the measured ones")
	fs.IntVar(&o.warmupRounds, "warmup-rounds", 2, "whole rounds run first and discarded (the process's first run builds the runtime's caches)")
	fs.DurationVar(&o.span, "span", time.Hour, "trade time the generated trades (warm-up and measured) cover")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the last pipeline run's measured part to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a profile of every allocation in the measured parts of the pipeline runs (the rounds, not the warm-up) to this file")
	durable := fs.String("durable", "", "also run the pipeline of a durable node (badger store in a temporary directory) in each round, once per listed WAL durability: sync (the default durability), batch, none")
	lvl := logFlag(fs)
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	var err error
	if o.intervals, err = messages.ParseIntervals(*ivs); err != nil {
		return usageErrorf("bench: --intervals: %w", err)
	}
	if o.durable, err = parseDurabilities(*durable); err != nil {
		return usageErrorf("bench: --durable: %w", err)
	}
	if o.trades < 1 || o.symbols < 1 || o.batch < 1 || o.producers < 1 {
		return usageErrorf("bench: --trades, --symbols, --batch and --inflight must be ≥ 1")
	}
	if o.warmup < 0 || o.warmupRounds < 0 {
		return usageErrorf("bench: --warmup and --warmup-rounds must be ≥ 0")
	}
	if o.memProfile != "" {
		// Record no allocation but those of the measured parts
		// (benchPipelineRun turns recording on for each of them): the
		// profile is then exactly those parts, with no subtraction and
		// no GC in between to disturb the runtime's caches.
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 0
	}
	log := newLogger(stderr, *lvl)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		defer f.Close()
		o.profile = f
	}
	res, err := benchPipeline(ctx, o, log)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "bare loop:  %12.0f trades/s (1 goroutine, median of %d)\npipeline:   %12.0f trades/s (%d cores, median of %d)\nratio:      %12.2f (of the best runs: %.2f)\nallocs:     %12g (%.2g per trade, median of %d; largest %d; warm-up: %d)\n",
		res.BareLoopTradesPerSec, res.Rounds, res.PipelineTradesPerSec, res.Cores, res.Rounds, res.Ratio, res.BestRatio,
		res.Allocs, res.AllocsPerTrade, res.Rounds, res.AllocsMax, res.WarmupAllocs)
	for _, d := range res.Durable {
		fmt.Fprintf(stdout, "durable %-5s %10.0f trades/s (median of %d)\n  ratio to bare loop: %.2f (of the best runs: %.2f), to memory-only pipeline: %.2f\n  allocs: %g (%.2g per trade, median), WAL: %d trades in %d records (last run)\n",
			d.Durability, d.TradesPerSec, len(d.Runs), d.Ratio, d.BestRatio, d.RatioToMemory, d.Allocs, d.AllocsPerTrade, d.WALTrades, d.WALRecords)
	}
	return nil
}

// parseDurabilities parses a comma-separated list of WAL durabilities
// ("" is none).
func parseDurabilities(s string) ([]storage.Durability, error) {
	var out []storage.Durability
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := storage.ParseDurability(f)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// benchPipeline generates the trades once, then runs the bare core and the
// actor pipeline over them, alternating, o.rounds times each, and reports
// the median rate of each and the pipeline's median allocations per trade
// (every round's count too).
//
// Medians, as benchstat reports them, rather than the best run of each:
// this machine's speed drifts by ±20% between runs seconds apart, and the
// best of several runs favours the bare loop, which needs one quiet core,
// over the pipeline, which needs two at once. The ratio of the best runs
// and the ratio of each round (a bare run and a pipeline run back to back)
// are reported too.
func benchPipeline(ctx context.Context, o benchOptions, log *slog.Logger) (PipelineResult, error) {
	log.Info("generating trades", "warmup", o.warmup, "trades", o.trades, "symbols", o.symbols)
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(o.symbols), Trades: o.warmup + o.trades, Seed: o.seed, Span: o.span})
	if err != nil {
		return PipelineResult{}, fmt.Errorf("bench: generating trades: %w", err)
	}
	all := make([]messages.Trade, 0, o.warmup+o.trades)
	var t messages.Trade
	for g.Next(&t) {
		all = append(all, t)
	}
	warm, trades := all[:min(int(o.warmup), len(all))], all[min(int(o.warmup), len(all)):]
	res := PipelineResult{Trades: int64(len(trades)), WarmupTrades: int64(len(warm)), Symbols: o.symbols, Intervals: len(o.intervals),
		Rounds: max(o.rounds, 1), WarmupRounds: o.warmupRounds}
	durable := make([]DurablePipelineResult, len(o.durable))
	for i, d := range o.durable {
		durable[i].Durability = d.String()
	}
	var durableRuns [][]pipelineRun
	for round := range res.WarmupRounds + res.Rounds {
		discard := round < res.WarmupRounds
		bare, err := benchBareLoop(warm, trades, o)
		if err != nil {
			return res, err
		}
		last := round == res.WarmupRounds+res.Rounds-1
		run, err := benchPipelineRun(ctx, warm, trades, o, log, nil, last, discard)
		if err != nil {
			return res, err
		}
		var druns []pipelineRun
		for i := range o.durable {
			drun, err := benchPipelineRun(ctx, warm, trades, o, log, &o.durable[i], false, true)
			if err != nil {
				return res, fmt.Errorf("bench: durable (%v) pipeline: %w", o.durable[i], err)
			}
			druns = append(druns, drun)
		}
		if discard {
			log.Info("warm-up round done (discarded)", "round", round+1, "bare_trades_per_sec", int64(bare.rate),
				"pipeline_trades_per_sec", int64(run.rate), "allocs", run.mallocs)
			continue
		}
		log.Info("round done", "round", round-res.WarmupRounds+1, "bare_trades_per_sec", int64(bare.rate), "pipeline_trades_per_sec", int64(run.rate),
			"allocs", run.mallocs, "warmup_allocs", run.warmupAllocs, "cpus_busy", fmt.Sprintf("%.2f", run.cpu),
			"workers_busy", fmt.Sprintf("%.2f", run.workersBusy), "parks", run.parks)
		for i, d := range druns {
			log.Info("durable run done", "durability", o.durable[i].String(), "trades_per_sec", int64(d.rate), "allocs", d.mallocs,
				"fsyncs", d.fsyncs, "cpus_busy", fmt.Sprintf("%.2f", d.cpu))
		}
		res.RoundAllocs = append(res.RoundAllocs, run.mallocs)
		res.WarmupAllocs = max(res.WarmupAllocs, run.warmupAllocs)
		res.Cores, res.Deltas, res.Accepted = run.cores, run.deltas, run.accepted
		res.Dropped = max(res.Dropped, run.dropped)
		res.BareRuns = append(res.BareRuns, bare.rate)
		res.BareSeconds = append(res.BareSeconds, bare.seconds)
		res.PipelineRuns = append(res.PipelineRuns, run.rate)
		res.PipelineSeconds = append(res.PipelineSeconds, run.seconds)
		durableRuns = append(durableRuns, druns)
	}
	c := compareRuns(res.PipelineRuns, res.BareRuns)
	res.BareLoopTradesPerSec, res.PipelineTradesPerSec = median(res.BareRuns), c.median
	res.Ratio, res.BestRatio, res.RoundRatios = c.ratio, c.bestRatio, c.roundRatios
	res.Allocs, res.AllocsPerTrade, res.AllocsMax = summarizeAllocs(res.RoundAllocs, res.Trades)
	for i := range durable {
		d := &durable[i]
		for _, druns := range durableRuns {
			r := druns[i]
			d.Runs = append(d.Runs, r.rate)
			d.Seconds = append(d.Seconds, r.seconds)
			d.RoundAllocs = append(d.RoundAllocs, r.mallocs)
			d.RoundFsyncs = append(d.RoundFsyncs, r.fsyncs)
			d.WarmupAllocs = max(d.WarmupAllocs, r.warmupAllocs)
			d.Dropped = max(d.Dropped, r.dropped)
			d.Accepted, d.WALTrades, d.WALRecords, d.Deltas = r.accepted, r.walTrades, r.walRecords, r.deltas
		}
		c := compareRuns(d.Runs, res.BareRuns)
		d.TradesPerSec, d.Ratio, d.BestRatio, d.RoundRatios = c.median, c.ratio, c.bestRatio, c.roundRatios
		d.RatioToMemory = compareRuns(d.Runs, res.PipelineRuns).ratio
		d.Allocs, d.AllocsPerTrade, d.AllocsMax = summarizeAllocs(d.RoundAllocs, res.Trades)
	}
	res.Durable = durable
	return res, nil
}

// comparison compares a variant's runs with a baseline's, round by round.
type comparison struct {
	median      float64   // the variant's median rate
	ratio       float64   // the variant's median over the baseline's
	bestRatio   float64   // the variant's best run over the baseline's best
	roundRatios []float64 // run i over the baseline's run i
}

// compareRuns compares runs with base (the same number of runs, of the
// same rounds); with no runs every figure is 0.
func compareRuns(runs, base []float64) comparison {
	if len(runs) == 0 || len(runs) != len(base) {
		return comparison{}
	}
	c := comparison{median: median(runs)}
	c.ratio = c.median / median(base)
	c.bestRatio = slices.Max(runs) / slices.Max(base)
	for i := range runs {
		c.roundRatios = append(c.roundRatios, runs[i]/base[i])
	}
	return c
}

// summarizeAllocs returns the median of the rounds' allocation counts,
// that median per trade (of trades measured per round) and the largest.
func summarizeAllocs(rounds []uint64, trades int64) (med, perTrade float64, largest uint64) {
	if len(rounds) == 0 {
		return 0, 0, 0
	}
	fs := make([]float64, len(rounds))
	for i, a := range rounds {
		fs[i] = float64(a)
	}
	med = median(fs)
	if trades > 0 {
		perTrade = med / float64(trades)
	}
	return med, perTrade, slices.Max(rounds)
}

// tradeRate returns n trades over d in trades per second (0 for d ≤ 0).
func tradeRate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// median returns the median of xs (the mean of the middle two if their
// number is even); xs is not modified.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// benchBareLoop runs one core on this goroutine over warm, untimed, then
// over trades, one flush per batch of trades (the same output the shards
// produce: each flushes once per request), and returns its rate over
// trades and the measured time.
func benchBareLoop(warm, trades []messages.Trade, o benchOptions) (bareRun, error) {
	core, err := aggregate.New(aggregate.Config{Intervals: o.intervals})
	if err != nil {
		return bareRun{}, fmt.Errorf("bench: bare loop: %w", err)
	}
	bareLoop(core, warm, o.batch)
	runtime.GC()
	start := time.Now()
	bareLoop(core, trades, o.batch)
	elapsed := time.Since(start)
	return bareRun{rate: tradeRate(len(trades), elapsed), seconds: elapsed.Seconds()}, nil
}

type bareRun struct {
	rate    float64 // trades per second
	seconds float64 // measured time
}

func bareLoop(core *aggregate.Core, trades []messages.Trade, batch int) {
	for i := range trades {
		core.Apply(&trades[i])
		if i%batch == batch-1 {
			core.Release(core.Ready())
		}
	}
	core.Release(core.Ready())
}

type pipelineRun struct {
	rate         float64
	seconds      float64   // the measured part's time
	mallocs      uint64    // allocations in the measured part
	warmupAllocs uint64    // allocations while ingesting the warm-up trades
	cpu          float64   // process CPU time / wall time
	workersBusy  []float64 // per pinned worker: time in mailbox turns / wall time
	cores        int
	deltas       uint64
	dropped      int64
	parks        uint64
	accepted     uint64 // the node's count, warm-up and measured
	fsyncs       uint64 // the store's, in the measured part (durable)
	walTrades    uint64 // trades appended to the WAL (durable)
	walRecords   uint64 // WAL records appended (durable)
}

// benchPipelineRun ingests warm, then trades (measured), into a new node
// with the event clock (results depend only on the input); the sink
// counts deltas. The node is memory-only if durability is nil, else
// durable: a badger store (storage.DefaultConfig) with that durability
// in a new temporary directory, removed afterwards. The measured part's
// allocations are recorded for --memprofile unless discard (a warm-up
// round or a durable run); last: the last run, which writes the profiles
// (the CPU profile is of it alone).
func benchPipelineRun(ctx context.Context, warm, trades []messages.Trade, o benchOptions, log *slog.Logger, durability *storage.Durability, last, discard bool) (run pipelineRun, err error) {
	var deltas atomic.Uint64
	var st *storage.Store
	if durability != nil {
		dir, err := os.MkdirTemp("", "klinecast-bench-pipeline-")
		if err != nil {
			return run, fmt.Errorf("bench: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("bench: removing %s: %w", dir, rerr)
			}
		}()
		scfg := storage.DefaultConfig(dir)
		scfg.Durability = *durability
		scfg.Logger = slog.New(slog.DiscardHandler)
		if st, err = storage.Open(ctx, scfg); err != nil {
			return run, fmt.Errorf("bench: %w", err)
		}
		defer func() {
			if cerr := st.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("bench: closing the store: %w", cerr)
			}
		}()
	}
	// The previous runs' garbage, collected and handed back to the OS now,
	// so the runtime's background scavenger has none to hand back (and
	// no timer to set) during the measured part.
	debug.FreeOSMemory()
	node, err := actors.Start(ctx, actors.Config{
		Store:       st,
		Intervals:   o.intervals,
		Shards:      o.shards,
		Cores:       o.cores,
		Clock:       actors.ClockEvent,
		MailboxSize: 4 * o.producers,
		BusyTimeout: time.Minute,
		Logger:      log,
		Sink:        actors.DeltaSinkFunc(func(int, *aggregate.Delta) { deltas.Add(1) }),
	})
	if err != nil {
		return run, fmt.Errorf("bench: starting the node: %w", err)
	}
	defer func() {
		if cerr := node.Close(context.Background()); cerr != nil && err == nil {
			err = fmt.Errorf("bench: closing the node: %w", cerr)
		}
	}()
	run.cores = node.Workers()
	// One producer keeps several requests in flight (IngestAsync keeps
	// them in order, as a feed handler would), so validating a request
	// overlaps with the shards' work and per-symbol order holds. A ring:
	// the measurement allocates nothing itself.
	inflight := make([]*actors.IngestCall, o.producers)
	var start0, warmed, before, after runtime.MemStats
	runtime.ReadMemStats(&start0)
	accepted, err := ingestRequests(ctx, node, warm, o.batch, inflight)
	if err != nil {
		return run, err
	}
	runtime.ReadMemStats(&warmed)
	run.warmupAllocs = warmed.Mallocs - start0.Mallocs
	// Every measured round is recorded (their allocations are what the
	// result counts); the profile is written after the last.
	memProfile := o.memProfile != "" && !discard
	if last && o.profile != nil {
		if err := pprof.StartCPUProfile(o.profile); err != nil {
			return run, fmt.Errorf("bench: CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	// The measured part: from here to the last answer. (No GC just before
	// it: a GC empties the runtime's caches, and refilling them, e.g. its
	// blocked-goroutine records, counts as allocations of the run; the GC
	// comes before the warm-up instead.)
	workers0, cpu0 := node.WorkerStats(), processCPU()
	var store0 storage.Stats
	if st != nil {
		store0 = st.Stats()
	}
	runtime.ReadMemStats(&before)
	if memProfile {
		runtime.MemProfileRate = 1 // every allocation, until the end of the part
	}
	start := time.Now()
	n, err := ingestRequests(ctx, node, trades, o.batch, inflight)
	if err != nil {
		return run, err
	}
	elapsed := time.Since(start)
	if memProfile {
		runtime.MemProfileRate = 0
	}
	runtime.ReadMemStats(&after)
	if st != nil {
		store1 := st.Stats()
		run.fsyncs = store1.Fsyncs - store0.Fsyncs
		run.walTrades, run.walRecords = store1.Trades, store1.Appends
	}
	accepted += n
	run.cpu = (processCPU() - cpu0).Seconds() / elapsed.Seconds()
	for i, w := range node.WorkerStats() {
		run.parks += w.Parks - workers0[i].Parks
		run.workersBusy = append(run.workersBusy, float64(w.BusyNanos-workers0[i].BusyNanos)/float64(elapsed.Nanoseconds()))
	}
	run.rate, run.seconds = tradeRate(len(trades), elapsed), elapsed.Seconds()
	run.mallocs = after.Mallocs - before.Mallocs
	if memProfile && last {
		if err := writeAllocProfile(o.memProfile); err != nil {
			return run, err
		}
	}
	run.deltas = deltas.Load()
	run.accepted = node.Stats().Accepted
	run.dropped = int64(len(warm)+len(trades)) - accepted
	return run, nil
}

// ingestRequests ingests trades in requests of batch trades, len(inflight)
// of them in flight, and returns how many were accepted. It allocates
// nothing itself.
func ingestRequests(ctx context.Context, node *actors.Node, trades []messages.Trade, batch int, inflight []*actors.IngestCall) (int64, error) {
	var accepted int64
	requests := (len(trades) + batch - 1) / batch
	for i, k := 0, 0; i < len(trades); i, k = i+batch, k+1 {
		slot := &inflight[k%len(inflight)]
		if *slot != nil {
			r, err := (*slot).Wait()
			*slot = nil
			if err != nil {
				return accepted, fmt.Errorf("bench: ingest: %w", err)
			}
			accepted += int64(r.Accepted)
		}
		*slot = node.IngestAsync(ctx, trades[i:min(i+batch, len(trades))])
	}
	for k := range inflight {
		// The oldest first: request requests-len(inflight)+k.
		slot := &inflight[(requests+k)%len(inflight)]
		if *slot == nil {
			continue
		}
		r, err := (*slot).Wait()
		*slot = nil
		if err != nil {
			return accepted, fmt.Errorf("bench: ingest: %w", err)
		}
		accepted += int64(r.Accepted)
	}
	return accepted, nil
}

// processCPU returns the CPU time (user and system) the process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
