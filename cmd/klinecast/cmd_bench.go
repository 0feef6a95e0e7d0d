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
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

// Bench is the `klinecast bench` subcommand.
func (commands) Bench() command {
	return command{summary: "reproducible benchmarks (bench pipeline)", run: runBench}
}

const benchHelp = `
Usage: klinecast bench pipeline|recovery|ingest [flags]

pipeline measures, in one run and on the same generated trades, the bare
aggregation core on one goroutine and the whole actor pipeline (ingest
router → shards on pinned workers → deltas), and prints the trade rates,
the allocations per trade of the pipeline and the number of cores.

recovery writes a WAL tail of generated trades (no snapshot) into a
temporary data directory, then measures a node start that replays it, the
node's RSS afterwards, and a start from the snapshots of that state.

ingest measures HTTP ingest into a node on a temporary data dir, once per
durability mode (klinecast bench ingest -h).

Examples:
  klinecast bench pipeline --json
  klinecast bench pipeline --trades 10000000 --symbols 1000 --batch 50000
  klinecast bench recovery --trades 10000000 --symbols 2000 --json
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
	span      time.Duration
	profile   io.Writer
	// memProfile, when set, is the file the pipeline run's allocation
	// profile is written to.
	memProfile string
}

func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PipelineResult is what `bench pipeline` measures.
type PipelineResult struct {
	BareLoopTradesPerSec float64 `json:"bare_loop_trades_per_sec"`
	PipelineTradesPerSec float64 `json:"pipeline_trades_per_sec"`
	AllocsPerTrade       float64 `json:"allocs_per_trade"`
	Cores                int     `json:"cores"`
	Ratio                float64 `json:"ratio"`
	Trades               int64   `json:"trades"`
	Symbols              int     `json:"symbols"`
	Intervals            int     `json:"intervals"`
	Deltas               uint64  `json:"deltas"`
	Dropped              int64   `json:"dropped"`
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
		case "-h", "--help", "-help":
			fmt.Fprint(stdout, benchHelp)
			return flag.ErrHelp
		}
	}
	return usageErrorf("bench: want a benchmark name: pipeline, recovery or ingest")
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
	fs.DurationVar(&o.span, "span", time.Hour, "trade time the generated trades cover")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the pipeline run to this file")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a profile of every allocation of the pipeline run to this file")
	lvl := logFlag(fs)
	if _, err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	var err error
	if o.intervals, err = messages.ParseIntervals(*ivs); err != nil {
		return usageErrorf("bench: --intervals: %v", err)
	}
	if o.trades < 1 || o.symbols < 1 || o.batch < 1 || o.producers < 1 {
		return usageErrorf("bench: --trades, --symbols, --batch and --producers must be ≥ 1")
	}
	log := newLogger(stderr, *lvl)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
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
	fmt.Fprintf(stdout, "bare loop:  %12.0f trades/s (1 goroutine)\npipeline:   %12.0f trades/s (%d cores)\nratio:      %12.2f\nallocs:     %12.4f per trade\n",
		res.BareLoopTradesPerSec, res.PipelineTradesPerSec, res.Cores, res.Ratio, res.AllocsPerTrade)
	return nil
}

// benchPipeline generates the trades once, runs the bare core over them,
// then the actor pipeline.
func benchPipeline(ctx context.Context, o benchOptions, log *slog.Logger) (PipelineResult, error) {
	log.Info("generating trades", "trades", o.trades, "symbols", o.symbols)
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(o.symbols), Trades: o.trades, Seed: o.seed, Span: o.span})
	if err != nil {
		return PipelineResult{}, err
	}
	trades := make([]messages.Trade, 0, o.trades)
	var t messages.Trade
	for g.Next(&t) {
		trades = append(trades, t)
	}
	res := PipelineResult{Trades: int64(len(trades)), Symbols: o.symbols, Intervals: len(o.intervals)}

	// Bare loop: one core, one flush per batch of trades: the same output
	// the shards produce (each flushes once per request).
	core, err := aggregate.New(aggregate.Config{Intervals: o.intervals})
	if err != nil {
		return res, err
	}
	runtime.GC()
	start := time.Now()
	for i := range trades {
		core.Apply(&trades[i])
		if i%o.batch == o.batch-1 {
			core.Release(core.Ready())
		}
	}
	core.Release(core.Ready())
	res.BareLoopTradesPerSec = float64(len(trades)) / time.Since(start).Seconds()
	log.Info("bare loop done", "trades_per_sec", int64(res.BareLoopTradesPerSec))

	// Pipeline: event clock (results depend only on the input), memory
	// only; the sink counts deltas.
	var deltas atomic.Uint64
	node, err := actors.Start(ctx, actors.Config{
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
		return res, err
	}
	defer node.Close(context.Background())
	res.Cores = node.Workers()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if o.profile != nil {
		if err := pprof.StartCPUProfile(o.profile); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		// Every allocation of the pipeline run, by call site.
		runtime.MemProfileRate = 1
		defer func() {
			runtime.MemProfileRate = 512 * 1024
			runtime.GC() // publish the run's allocations in the profile
			if werr := writeAllocProfile(o.memProfile); werr != nil {
				log.Error("memprofile", "err", werr)
			}
		}()
	}
	start = time.Now()
	// One producer keeps several requests in flight (IngestAsync keeps
	// them in order, as a feed handler would), so grouping overlaps with
	// the shards' work and per-symbol order holds.
	var accepted int64
	inflight := make([]*actors.IngestCall, 0, o.producers)
	wait := func(c *actors.IngestCall) error {
		r, err := c.Wait(ctx)
		accepted += int64(r.Accepted)
		return err
	}
	for i := 0; i < len(trades); i += o.batch {
		if len(inflight) == o.producers {
			if err := wait(inflight[0]); err != nil {
				return res, fmt.Errorf("bench: ingest: %w", err)
			}
			inflight = inflight[1:]
		}
		inflight = append(inflight, node.IngestAsync(ctx, trades[i:min(i+o.batch, len(trades))]))
	}
	for _, c := range inflight {
		if err := wait(c); err != nil {
			return res, fmt.Errorf("bench: ingest: %w", err)
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	res.PipelineTradesPerSec = float64(len(trades)) / elapsed.Seconds()
	res.AllocsPerTrade = float64(after.Mallocs-before.Mallocs) / float64(len(trades))
	res.Ratio = res.PipelineTradesPerSec / res.BareLoopTradesPerSec
	res.Deltas = deltas.Load()
	res.Dropped = int64(len(trades)) - accepted
	return res, nil
}
