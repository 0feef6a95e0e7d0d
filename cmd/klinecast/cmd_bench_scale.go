package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

// ScaleResult is what `bench scale` measures: one JSON object on stdout.
type ScaleResult struct {
	Scenario string `json:"scenario"`
	// The load: --symbols symbols, --trades trades over --span of trade
	// time (internal/gen with --seed, from gen's default start: the same
	// trades as `klinecast gen --symbols --trades --span --seed --format
	// ndjson`), posted as Requests NDJSON bodies of --batch trades.
	Symbols   int      `json:"symbols"`
	Trades    int64    `json:"trades"`
	Span      string   `json:"span"`
	SpanHours float64  `json:"span_hours"`
	Batch     int      `json:"batch"`
	Intervals []string `json:"intervals"`
	Seed      uint64   `json:"seed"`
	Requests  int      `json:"requests"`
	BodyBytes int64    `json:"body_bytes"`
	// FirstTradeMs and LastTradeMs are the first and last generated trade
	// times; LastTradeMs is both nodes' event clock after ingest.
	FirstTradeMs    int64   `json:"first_trade_ms"`
	LastTradeMs     int64   `json:"last_trade_ms"`
	SymbolsTraded   int     `json:"symbols_traded"`
	GenerateSeconds float64 `json:"generate_seconds"`
	// ClosedBars is the number of closed bars the nodes hold after ingest
	// (gap-filled bars included), over every symbol and interval: for a
	// symbol whose first trade is at F and a node whose clock is at W (the
	// last trade time), the bars of an interval opening at
	// Align(F), Next(Align(F)), ... before Align(W); the bar at Align(W)
	// is the open one. ClosedBarsVerified: the memory node, paged through
	// with /api/v3/klines, holds exactly that many for every interval of
	// the CheckedSymbols.
	ClosedBars           int64            `json:"closed_bars"`
	ClosedBarsByInterval map[string]int64 `json:"closed_bars_by_interval"`
	ClosedBarsVerified   bool             `json:"closed_bars_verified"`
	CheckedSymbols       []string         `json:"checked_symbols"`

	Memory  ScaleNodeResult `json:"memory"`
	Durable ScaleNodeResult `json:"durable"`
	// RatioDurableToMemory is Durable.TradesPerSec / Memory.TradesPerSec.
	RatioDurableToMemory float64 `json:"ratio_durable_to_memory"`

	// The durable node's data dir: right after its ingest, after --settle,
	// and after the restart (recovered and snapshotted).
	DataDirFS        string    `json:"data_dir_fs"`
	DiskAfterIngest  ScaleDisk `json:"disk_after_ingest"`
	DiskSettled      ScaleDisk `json:"disk_settled"`
	DiskAfterRestart ScaleDisk `json:"disk_after_restart"`

	Restart ScaleRestart `json:"restart"`

	// Queries: the same random GET /api/v3/klines (1m, limit 1000, a
	// random symbol and startTime) on the durable node after its restart
	// and on the memory node; QueryMismatches counts the answers that
	// differ between them.
	Queries         int `json:"queries"`
	QueryMismatches int `json:"query_mismatches"`
	// MismatchedQueries: the first few of them.
	MismatchedQueries []string `json:"mismatched_queries,omitempty"`

	Machine      ScaleMachine `json:"machine"`
	TotalSeconds float64      `json:"total_seconds"`
}

// ScaleNodeResult is one node of `bench scale`.
type ScaleNodeResult struct {
	// Args are the node's command line after the binary.
	Args []string `json:"args"`
	// StartSeconds: process start to its "listening on" line.
	StartSeconds float64 `json:"start_seconds"`
	// Ingest: every body POSTed in order by one client, one at a time.
	PostSeconds    float64 `json:"post_seconds"`
	TradesPerSec   float64 `json:"trades_per_sec"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	PostP50Millis  float64 `json:"post_p50_ms"`
	PostP99Millis  float64 `json:"post_p99_ms"`
	PostMaxMillis  float64 `json:"post_max_ms"`
	// Retries counts 503 answers (busy), each retried after 50 ms.
	Retries int `json:"retries"`
	// Accepted, Duplicates and Rejected sum the answers; NodeAccepted is
	// the node's own counter (GET /api/v1/stats) after ingest.
	Accepted     int64  `json:"accepted"`
	Duplicates   int64  `json:"duplicates"`
	Rejected     int64  `json:"rejected"`
	NodeAccepted uint64 `json:"node_accepted"`
	// Memory of the process (/proc/PID/status): right after the last
	// answer, and after --settle of idleness (no GC is forced: the node
	// has no endpoint for it). Peak is VmHWM; anon and file split VmRSS
	// into the process's own memory and mapped files (badger's tables).
	AfterIngest ProcMem `json:"after_ingest"`
	Settled     ProcMem `json:"settled"`
	// Query latency of the random klines queries (the durable node's after
	// its restart).
	QueryP50Millis float64 `json:"query_p50_ms"`
	QueryP99Millis float64 `json:"query_p99_ms"`
	QueryMaxMillis float64 `json:"query_max_ms"`
	QueryErrors    int     `json:"query_errors"`
}

// ProcMem is a process's memory from /proc/PID/status, in MB.
type ProcMem struct {
	RSSMB  float64 `json:"rss_mb"`
	AnonMB float64 `json:"anon_mb"`
	FileMB float64 `json:"file_mb"`
	PeakMB float64 `json:"peak_mb"`
}

// ScaleDisk is the size of the durable node's data dir.
type ScaleDisk struct {
	Files int `json:"files"`
	// Bytes sums the files' sizes; AllocatedBytes their allocated blocks
	// (st_blocks × 512, what du counts: preallocated or sparse files
	// differ).
	Bytes          int64 `json:"bytes"`
	AllocatedBytes int64 `json:"allocated_bytes"`
	// Per closed bar (ScaleResult.ClosedBars).
	BytesPerClosedBar     float64 `json:"bytes_per_closed_bar"`
	AllocatedPerClosedBar float64 `json:"allocated_per_closed_bar"`
}

// ScaleRestart is the durable node's kill -9 and restart on its data dir.
//
// The check queries, each compared with the memory node's answer (200 and
// the same body): GET /api/v3/klines?interval=1m&limit=1000 of each
// checked symbol (ScaleResult.CheckedSymbols), and limit=2 of every
// traded symbol (its last closed bar and its open bar: stale if the
// symbol was not rolled to the node's clock).
type ScaleRestart struct {
	Checks int `json:"checks"`
	// ExactBeforeKill: the durable node answered every check exactly
	// before the kill; BeforeKillMismatch is the first difference
	// otherwise.
	ExactBeforeKill    bool   `json:"exact_before_kill"`
	BeforeKillMismatch string `json:"before_kill_mismatch,omitempty"`
	// ListenSeconds: process start to its "listening on" line (storage
	// open, snapshots loaded, the WAL tail replayed).
	ListenSeconds float64 `json:"listen_seconds"`
	// ExactSeconds: process start until the checked symbols' 1,000 bars
	// are answered exactly ("restart to exact answer"; polled every
	// 10 ms). AllExactSeconds: until, after that, a round of every check
	// matched too (at the end of that round, which takes RoundSeconds).
	// Exact: both happened within --exact-timeout of the listening line;
	// Mismatch is the last round's first difference otherwise.
	ExactSeconds    float64 `json:"exact_seconds"`
	AllExactSeconds float64 `json:"all_exact_seconds"`
	Exact           bool    `json:"exact"`
	Mismatch        string  `json:"mismatch,omitempty"`
	RoundSeconds    float64 `json:"round_seconds"`
	// Polls: rounds of check queries run after the restart.
	Polls int `json:"polls"`
	// AfterRestart: the restarted process's memory after the rounds.
	AfterRestart ProcMem `json:"after_restart"`
}

// ScaleMachine describes where and when `bench scale` ran.
type ScaleMachine struct {
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Date       string `json:"date"`
	// The 1-, 5- and 15-minute load averages when it started and ended.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

const benchScaleHelp = `
Usage: klinecast bench scale [flags]

Measures the storage at market scale as a user runs it: two nodes of this
binary as child processes (serve --clock event --http 127.0.0.1:0), a
durable one (--durability batch on a fresh data dir) and a --memory one,
fed the same trades over HTTP side by side in one run.

  1. Generates --trades trades over --symbols symbols and --span of trade
     time (the same trades as klinecast gen --symbols --trades --span --seed
     --format ndjson) and builds the NDJSON bodies of --batch trades, before
     any timing.
  2. Posts them to the memory node, then to the durable node, in time order
     from one client (one request at a time): trades/s of each and their
     ratio; each node's RSS right after, and after --settle of idleness;
     the data dir's size (file sizes and allocated blocks) per closed bar.
  3. Checks the closed-bar count (see ScaleResult.ClosedBars) against the
     memory node for a few symbols, kills the durable node with SIGKILL and
     restarts it on its data dir: the time from process start until
     GET /api/v3/klines?interval=1m&limit=1000 answers, for each checked
     symbol, exactly the memory node's body ("restart to exact answer").
  4. --queries random klines queries (1m, limit 1000, random symbol and
     startTime) on the restarted durable node, then on the memory node:
     P50/P99 latency, and answers that differ between them.

Progress and a summary table go to stderr, one JSON object (ScaleResult) to
stdout. Both nodes run with the default 64 shards, every CPU and serve's
default snapshot interval unless --snapshot-interval is given. KLINECAST_*
environment variables are not passed to the nodes: their flags are all
given here.

Scenarios set the default span: day (24h), quarter (90 days, 2160h).

Examples:
  klinecast bench scale                        # day: 2,000 symbols, 1M trades over 24h
  klinecast bench scale --scenario quarter > quarter.json
  klinecast bench scale --trades 300000 --settle 5s
`

// scaleOptions are the parsed flags of `bench scale`.
type scaleOptions struct {
	scenario       string
	symbols        int
	trades         int64
	span           time.Duration
	batch          int
	intervals      []messages.Interval
	seed           uint64
	queries        int
	check          int
	settle         time.Duration
	restartTimeout time.Duration
	exactTimeout   time.Duration
	snapshotEvery  string
	dir            string
	bin            string
	nodeLogLevel   string
}

// scaleProgressEvery is how often posting prints a progress line.
const scaleProgressEvery = 5 * time.Second

func runBenchScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench scale", benchScaleHelp)
	var o scaleOptions
	fs.StringVar(&o.scenario, "scenario", "day", "day (span 24h) or quarter (span 90 days)")
	fs.IntVar(&o.symbols, "symbols", 2000, "symbols")
	fs.Int64Var(&o.trades, "trades", 1_000_000, "trades")
	span := fs.String("span", "", "trade time the trades cover (36h, 90d, ...; default: the scenario's)")
	fs.IntVar(&o.batch, "batch", 5000, "trades per POST /api/v1/trades")
	ivs := fs.String("intervals", messages.FormatIntervals(messages.DefaultIntervals()), "intervals of both nodes")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed (gen's default is 1)")
	fs.IntVar(&o.queries, "queries", 2000, "random klines queries per node after the restart")
	fs.IntVar(&o.check, "check-symbols", 5, "symbols whose klines are compared after the restart and whose closed bars are counted on the memory node")
	fs.DurationVar(&o.settle, "settle", 10*time.Second, "idle time after a node's ingest before its memory (and the data dir) is measured again")
	fs.DurationVar(&o.restartTimeout, "restart-timeout", 10*time.Minute, "how long a node may take to start listening (the restarted durable node replays its WAL first)")
	fs.DurationVar(&o.exactTimeout, "exact-timeout", 30*time.Second, "how long the restarted durable node may take, once listening, to answer as the memory node")
	fs.StringVar(&o.snapshotEvery, "snapshot-interval", "", "both nodes' --snapshot-interval (default: serve's)")
	fs.StringVar(&o.dir, "dir", "", "the durable node's data dir, new or empty, kept afterwards (default: a new temporary one, removed afterwards)")
	fs.StringVar(&o.bin, "bin", "", "the klinecast binary to run the nodes with (default: this one)")
	fs.StringVar(&o.nodeLogLevel, "node-log-level", "warn", "the nodes' --log-level (their logs are shown if the bench fails)")
	lvl := logFlag(fs)
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("bench scale: unexpected arguments %q", rest)
	}
	switch o.scenario {
	case "day":
		o.span = 24 * time.Hour
	case "quarter":
		o.span = 90 * 24 * time.Hour
	default:
		return usageErrorf("bench scale: --scenario %q: want day or quarter", o.scenario)
	}
	if *span != "" {
		if o.span, err = parseSpan(*span); err != nil || o.span <= 0 {
			return usageErrorf("bench scale: --span %q: want a positive duration such as 24h or 90d", *span)
		}
	}
	if o.intervals, err = messages.ParseIntervals(*ivs); err != nil {
		return usageErrorf("bench scale: --intervals: %w", err)
	}
	if o.symbols < 1 || o.symbols > 100_000 || o.trades < 1 || o.batch < 1 || o.queries < 1 || o.check < 1 {
		return usageErrorf("bench scale: --symbols (1..100000), --trades, --batch, --queries and --check-symbols must be ≥ 1")
	}
	if o.settle < 0 || o.restartTimeout <= 0 || o.exactTimeout <= 0 {
		return usageErrorf("bench scale: --settle must be ≥ 0, --restart-timeout and --exact-timeout > 0")
	}
	if o.bin == "" {
		if o.bin, err = os.Executable(); err != nil {
			return fmt.Errorf("bench scale: finding this binary: %w", err)
		}
	}
	log := newLogger(stderr, *lvl)
	res, err := benchScale(ctx, o, stderr, log)
	if err != nil {
		return err
	}
	printScaleTable(stderr, &res)
	return json.NewEncoder(stdout).Encode(res)
}

// scaleLoad is the generated load.
type scaleLoad struct {
	bodies     [][]byte
	sizes      []int // trades per body
	bytes      int64
	symbols    []string
	firstTrade []int64 // per symbol (index in symbols): first trade time, -1 if none
	first      int64   // first trade time
	last       int64   // last trade time: the nodes' clock after ingest
	traded     []int   // indices of the symbols that traded
}

// scaleLoadGen generates the trades (sorted by time, as gen writes them)
// and encodes them as NDJSON bodies of batch trades.
func scaleLoadGen(o scaleOptions) (*scaleLoad, error) {
	syms := gen.Symbols(o.symbols)
	g, err := gen.New(gen.Config{Symbols: syms, Trades: o.trades, Seed: o.seed, Span: o.span})
	if err != nil {
		return nil, fmt.Errorf("bench scale: %w", err)
	}
	l := &scaleLoad{symbols: syms, firstTrade: make([]int64, len(syms))}
	for i := range l.firstTrade {
		l.firstTrade[i] = -1
	}
	var (
		t   messages.Trade
		cur []byte
		cnt int
		n   int64
	)
	for ; g.Next(&t); n++ {
		if n == 0 {
			l.first = t.Time
		}
		l.last = t.Time
		if s := g.LastSymbol(); l.firstTrade[s] < 0 {
			l.firstTrade[s] = t.Time
		}
		if cur == nil {
			cur = make([]byte, 0, o.batch*200)
		}
		cur = append(messages.AppendAggTradeJSON(cur, &t), '\n')
		if cnt++; cnt == o.batch {
			l.bodies, l.sizes = append(l.bodies, cur), append(l.sizes, cnt)
			l.bytes += int64(len(cur))
			cur, cnt = nil, 0
		}
	}
	if cnt > 0 {
		l.bodies, l.sizes = append(l.bodies, cur), append(l.sizes, cnt)
		l.bytes += int64(len(cur))
	}
	if n != o.trades {
		return nil, fmt.Errorf("bench scale: the generator gave %d trades, want %d", n, o.trades)
	}
	for i, f := range l.firstTrade {
		if f >= 0 {
			l.traded = append(l.traded, i)
		}
	}
	return l, nil
}

// closedBars returns the number of closed bars of interval iv of a symbol
// whose first trade is at first, on a node whose clock is at watermark:
// the bars opening from Align(first) up to, not including, the open bar
// at Align(watermark) (gap-filled bars count: every period has a bar).
func closedBars(iv messages.Interval, first, watermark int64) int64 {
	lo, hi := iv.Align(first), iv.Align(watermark)
	if hi <= lo {
		return 0
	}
	if n := iv.Fixed(); n > 0 {
		return (hi - lo) / n
	}
	var c int64
	for o := lo; o < hi; o = iv.Next(o) {
		c++
	}
	return c
}

// checkedSymbols picks n of the traded symbols spread evenly over them
// (the first is the first symbol: BTCUSDT).
func (l *scaleLoad) checkedSymbols(n int) []string {
	n = min(n, len(l.traded))
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, l.symbols[l.traded[i*len(l.traded)/n]])
	}
	return out
}

func benchScale(ctx context.Context, o scaleOptions, stderr io.Writer, log *slog.Logger) (res ScaleResult, err error) {
	began := time.Now()
	res = ScaleResult{Scenario: o.scenario, Symbols: o.symbols, Trades: o.trades, Span: o.span.String(),
		SpanHours: o.span.Hours(), Batch: o.batch, Seed: o.seed, Queries: o.queries,
		Machine: scaleMachine()}
	for _, iv := range o.intervals {
		res.Intervals = append(res.Intervals, iv.String())
	}
	say := func(format string, args ...any) { fmt.Fprintf(stderr, "bench scale: "+format+"\n", args...) }

	// 1. The load, outside any timing.
	say("generating %d trades over %d symbols and %s of trade time (seed %d)", o.trades, o.symbols, o.span, o.seed)
	t0 := time.Now()
	load, err := scaleLoadGen(o)
	if err != nil {
		return res, err
	}
	res.GenerateSeconds = time.Since(t0).Seconds()
	res.Requests, res.BodyBytes = len(load.bodies), load.bytes
	res.FirstTradeMs, res.LastTradeMs, res.SymbolsTraded = load.first, load.last, len(load.traded)
	res.ClosedBarsByInterval = map[string]int64{}
	for _, s := range load.traded {
		for _, iv := range o.intervals {
			n := closedBars(iv, load.firstTrade[s], load.last)
			res.ClosedBars += n
			res.ClosedBarsByInterval[iv.String()] += n
		}
	}
	res.CheckedSymbols = load.checkedSymbols(o.check)
	say("generated in %.1f s: %d bodies of up to %d trades, %.0f MB; %d closed bars expected",
		res.GenerateSeconds, len(load.bodies), o.batch, float64(load.bytes)/1e6, res.ClosedBars)

	// The durable node's data dir.
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "klinecast-bench-scale-"); err != nil {
			return res, fmt.Errorf("bench scale: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("bench scale: removing %s: %w", dir, rerr)
			}
		}()
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, fmt.Errorf("bench scale: --dir: %w", err)
		}
		if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
			return res, usageErrorf("bench scale: --dir %s: want a new or empty directory (%d entries, %v)", dir, len(ents), err)
		}
	}
	res.DataDirFS = fsTypeOf(dir)

	common := []string{"serve", "--http", "127.0.0.1:0", "--clock", "event",
		"--intervals", messages.FormatIntervals(o.intervals), "--log-level", o.nodeLogLevel}
	if o.snapshotEvery != "" {
		common = append(common, "--snapshot-interval", o.snapshotEvery)
	}
	memArgs := append(slices.Clone(common), "--memory")
	durArgs := append(slices.Clone(common), "--data-dir", dir, "--durability", "batch")
	res.Memory.Args, res.Durable.Args = memArgs[1:], durArgs[1:]

	var nodes []*scaleNode
	defer func() {
		for _, n := range nodes {
			if serr := n.stop(30 * time.Second); serr != nil && err == nil {
				err = fmt.Errorf("bench scale: stopping a node: %w\n%s", serr, n.log.String())
			}
		}
	}()
	start := func(args []string) (*scaleNode, float64, error) {
		n, took, err := startScaleNode(ctx, o.bin, args, o.restartTimeout)
		if err != nil {
			return nil, 0, err
		}
		nodes = append(nodes, n)
		return n, took.Seconds(), nil
	}
	say("starting the nodes: %s %s", o.bin, strings.Join(memArgs, " "))
	mem, took, err := start(memArgs)
	if err != nil {
		return res, err
	}
	res.Memory.StartSeconds = took
	say("                    %s %s", o.bin, strings.Join(durArgs, " "))
	dur, took, err := start(durArgs)
	if err != nil {
		return res, err
	}
	res.Durable.StartSeconds = took
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Minute}
	defer client.CloseIdleConnections()

	// 2. Ingest, one node after the other; each measured right after and
	// after --settle.
	ingest := func(name string, n *scaleNode, r *ScaleNodeResult) error {
		say("posting %d bodies to the %s node (%s)", len(load.bodies), name, n.url)
		if err := scalePost(ctx, client, n.url, load, r, func(done, trades int, el time.Duration) {
			say("  %s: %d/%d requests, %d trades, %.0f trades/s", name, done, len(load.bodies), trades, tradeRate(trades, el))
		}); err != nil {
			return fmt.Errorf("bench scale: %s node: %w\n%s", name, err, n.log.String())
		}
		mem, err := readProcMem(n.pid())
		if err != nil {
			return err
		}
		r.AfterIngest = mem
		st, err := scaleStats(ctx, client, n.url)
		if err != nil {
			return fmt.Errorf("bench scale: %s node: %w", name, err)
		}
		r.NodeAccepted = st.Accepted
		say("%s: %.0f trades/s (%.1f s), RSS %.0f MB (peak %.0f MB)", name, r.TradesPerSec, r.PostSeconds, r.AfterIngest.RSSMB, r.AfterIngest.PeakMB)
		return nil
	}
	settle := func(name string, n *scaleNode, r *ScaleNodeResult) error {
		if o.settle > 0 {
			say("%s: settling for %s", name, o.settle)
			select {
			case <-time.After(o.settle):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var err error
		r.Settled, err = readProcMem(n.pid())
		return err
	}
	if err := ingest("memory", mem, &res.Memory); err != nil {
		return res, err
	}
	if err := settle("memory", mem, &res.Memory); err != nil {
		return res, err
	}
	if err := ingest("durable", dur, &res.Durable); err != nil {
		return res, err
	}
	if res.DiskAfterIngest, err = diskUsage(dir, res.ClosedBars); err != nil {
		return res, err
	}
	if err := settle("durable", dur, &res.Durable); err != nil {
		return res, err
	}
	if res.DiskSettled, err = diskUsage(dir, res.ClosedBars); err != nil {
		return res, err
	}
	if res.Memory.TradesPerSec > 0 {
		res.RatioDurableToMemory = res.Durable.TradesPerSec / res.Memory.TradesPerSec
	}
	say("data dir: %.1f MB (allocated %.1f MB), %.1f bytes per closed bar",
		float64(res.DiskSettled.Bytes)/1e6, float64(res.DiskSettled.AllocatedBytes)/1e6, res.DiskSettled.BytesPerClosedBar)

	// 3. The closed-bar count, checked on the memory node; the reference
	// answers; kill -9 and restart to the exact answer.
	res.ClosedBarsVerified = true
	for _, sym := range res.CheckedSymbols {
		s := slices.Index(load.symbols, sym)
		for _, iv := range o.intervals {
			got, err := countClosedBars(ctx, client, mem.url, sym, iv, iv.Align(load.last))
			if err != nil {
				return res, fmt.Errorf("bench scale: counting bars on the memory node: %w", err)
			}
			if want := closedBars(iv, load.firstTrade[s], load.last); got != want {
				say("closed bars of %s %s on the memory node: %d, computed %d", sym, iv, got, want)
				res.ClosedBarsVerified = false
			}
		}
	}
	sample, newest, err := scaleChecks(ctx, client, mem.url, load, res.CheckedSymbols)
	if err != nil {
		return res, err
	}
	all := append(slices.Clone(sample), newest...)
	res.Restart.Checks = len(all)
	res.Restart.BeforeKillMismatch = firstMismatch(ctx, client, dur.url, all)
	res.Restart.ExactBeforeKill = res.Restart.BeforeKillMismatch == ""
	if !res.Restart.ExactBeforeKill {
		say("before the kill, the durable node does not answer as the memory node: %s", res.Restart.BeforeKillMismatch)
	}
	say("killing the durable node (SIGKILL, pid %d) and restarting it on %s", dur.pid(), dir)
	dur.kill()
	restarted := time.Now()
	dur, _, err = start(durArgs)
	if err != nil {
		return res, err
	}
	res.Restart.ListenSeconds = time.Since(restarted).Seconds()
	// poll runs rounds of checks every 10 ms until one matches entirely
	// (true, at the end of that round) or the deadline passes.
	deadline := time.Now().Add(o.exactTimeout)
	poll := func(checks []scaleCheck) bool {
		for {
			res.Restart.Polls++
			round := time.Now()
			res.Restart.Mismatch = firstMismatch(ctx, client, dur.url, checks)
			res.Restart.RoundSeconds = time.Since(round).Seconds()
			if res.Restart.Mismatch == "" {
				return true
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				say("the restarted node did not answer as the memory node within %s: %s", o.exactTimeout, res.Restart.Mismatch)
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if poll(sample) {
		res.Restart.ExactSeconds = time.Since(restarted).Seconds()
		if poll(all) {
			res.Restart.AllExactSeconds, res.Restart.Exact = time.Since(restarted).Seconds(), true
		}
	}
	if res.Restart.AfterRestart, err = readProcMem(dur.pid()); err != nil {
		return res, err
	}
	if res.DiskAfterRestart, err = diskUsage(dir, res.ClosedBars); err != nil {
		return res, err
	}
	say("restart: listening after %.2f s, exact answer after %.2f s, every symbol's after %.2f s (exact: %v)",
		res.Restart.ListenSeconds, res.Restart.ExactSeconds, res.Restart.AllExactSeconds, res.Restart.Exact)

	// 4. Query latency, the same queries on both.
	queries := scaleQueries(load, o.queries, o.seed)
	say("%d random klines queries on the durable node, then on the memory node", len(queries))
	durSums := scaleQueryRun(ctx, client, dur.url, queries, &res.Durable)
	memSums := scaleQueryRun(ctx, client, mem.url, queries, &res.Memory)
	for i := range durSums {
		if durSums[i] != memSums[i] {
			res.QueryMismatches++
			if len(res.MismatchedQueries) < 5 {
				res.MismatchedQueries = append(res.MismatchedQueries, queries[i])
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.Machine.LoadEnd = loadAvg()
	res.TotalSeconds = time.Since(began).Seconds()
	log.Debug("bench scale done", "seconds", res.TotalSeconds)
	return res, nil
}

// scalePost posts every body in order, one request at a time, and fills
// r's ingest figures. A 503 (busy) is retried after 50 ms.
func scalePost(ctx context.Context, client *http.Client, base string, l *scaleLoad, r *ScaleNodeResult, progress func(done, trades int, elapsed time.Duration)) error {
	lat := make([]time.Duration, 0, len(l.bodies))
	url := base + "/api/v1/trades"
	began := time.Now()
	lastProgress, trades := began, 0
	for i, body := range l.bodies {
		t0 := time.Now()
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/x-ndjson")
			resp, err := client.Do(req)
			if err != nil {
				return fmt.Errorf("request %d: %w", i, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("request %d: %w", i, err)
			}
			if resp.StatusCode == http.StatusServiceUnavailable {
				r.Retries++
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("request %d: HTTP %d: %s", i, resp.StatusCode, b)
			}
			var ans struct {
				Accepted   int               `json:"accepted"`
				Duplicates int               `json:"duplicates"`
				Rejected   []json.RawMessage `json:"rejected"`
			}
			if err := json.Unmarshal(b, &ans); err != nil {
				return fmt.Errorf("request %d: answer %q: %w", i, b, err)
			}
			r.Accepted += int64(ans.Accepted)
			r.Duplicates += int64(ans.Duplicates)
			r.Rejected += int64(len(ans.Rejected))
			break
		}
		lat = append(lat, time.Since(t0))
		trades += l.sizes[i]
		if now := time.Now(); now.Sub(lastProgress) >= scaleProgressEvery {
			lastProgress = now
			progress(i+1, trades, now.Sub(began))
		}
	}
	elapsed := time.Since(began)
	r.PostSeconds = elapsed.Seconds()
	r.TradesPerSec = tradeRate(trades, elapsed)
	r.RequestsPerSec = tradeRate(len(l.bodies), elapsed)
	r.PostP50Millis, r.PostP99Millis, r.PostMaxMillis = latencyMillis(lat)
	return nil
}

// latencyMillis returns the P50, P99 and largest of lat in ms (sorting
// lat): P50 is lat[n/2], P99 lat[n×99/100] of the sorted values.
func latencyMillis(lat []time.Duration) (p50, p99, largest float64) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1])
}

// scaleGet GETs base+path and returns the status and body.
func scaleGet(ctx context.Context, client *http.Client, base, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// scaleStats reads GET /api/v1/stats.
func scaleStats(ctx context.Context, client *http.Client, base string) (st struct {
	Accepted uint64 `json:"accepted"`
}, err error) {
	status, b, err := scaleGet(ctx, client, base, "/api/v1/stats")
	if err != nil {
		return st, err
	}
	if status != http.StatusOK {
		return st, fmt.Errorf("stats: HTTP %d: %s", status, b)
	}
	return st, json.Unmarshal(b, &st)
}

// scaleCheck is a restart check query and the memory node's answer.
type scaleCheck struct {
	path string
	want []byte
}

// scaleChecks returns the restart check queries (see ScaleRestart) with
// the memory node's answers: the checked symbols' 1,000 bars and every
// traded symbol's newest two.
func scaleChecks(ctx context.Context, client *http.Client, memURL string, l *scaleLoad, checked []string) (sample, newest []scaleCheck, err error) {
	for _, sym := range checked {
		sample = append(sample, scaleCheck{path: "/api/v3/klines?symbol=" + url.QueryEscape(sym) + "&interval=1m&limit=1000"})
	}
	for _, s := range l.traded {
		newest = append(newest, scaleCheck{path: "/api/v3/klines?symbol=" + url.QueryEscape(l.symbols[s]) + "&interval=1m&limit=2"})
	}
	for _, cs := range [][]scaleCheck{sample, newest} {
		for i := range cs {
			status, b, err := scaleGet(ctx, client, memURL, cs[i].path)
			if err != nil || status != http.StatusOK {
				return nil, nil, fmt.Errorf("bench scale: memory node: GET %s: HTTP %d, %v: %s", cs[i].path, status, err, b)
			}
			cs[i].want = b
		}
	}
	return sample, newest, nil
}

// firstMismatch runs the checks on base and describes the first answer
// that is not the memory node's ("" if none).
func firstMismatch(ctx context.Context, client *http.Client, base string, checks []scaleCheck) string {
	for _, c := range checks {
		status, b, err := scaleGet(ctx, client, base, c.path)
		switch {
		case err != nil:
			return fmt.Sprintf("GET %s: %v", c.path, err)
		case status != http.StatusOK:
			return fmt.Sprintf("GET %s: HTTP %d: %s", c.path, status, clip(b))
		case !bytes.Equal(b, c.want):
			return fmt.Sprintf("GET %s: %d bytes %s, the memory node's %d bytes %s", c.path, len(b), clip(b), len(c.want), clip(c.want))
		}
	}
	return ""
}

// clip returns b as a string, its middle cut if it is long.
func clip(b []byte) string {
	const keep = 200
	if len(b) <= 2*keep {
		return string(b)
	}
	return string(b[:keep]) + "…" + string(b[len(b)-keep:])
}

// countClosedBars pages through every bar of sym and iv on base (limit
// 1000, each page from the last open time + 1) and returns how many open
// before openBar (the open bar's open time).
func countClosedBars(ctx context.Context, client *http.Client, base, sym string, iv messages.Interval, openBar int64) (int64, error) {
	var n int64
	from := int64(1) // startTime=1: every bar (0 reads as unbounded)
	for {
		path := fmt.Sprintf("/api/v3/klines?symbol=%s&interval=%s&startTime=%d&limit=1000", url.QueryEscape(sym), iv, from)
		status, b, err := scaleGet(ctx, client, base, path)
		if err != nil {
			return 0, err
		}
		if status != http.StatusOK {
			return 0, fmt.Errorf("%s: HTTP %d: %s", path, status, b)
		}
		var rows [][]json.RawMessage
		if err := json.Unmarshal(b, &rows); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		for _, row := range rows {
			if len(row) == 0 {
				return 0, fmt.Errorf("%s: an empty row", path)
			}
			open, err := strconv.ParseInt(string(row[0]), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: open time %s: %w", path, row[0], err)
			}
			if open < openBar {
				n++
			}
			from = open + 1
		}
		if len(rows) < 1000 {
			return n, nil
		}
	}
}

// scaleQueries returns n random klines queries (1m, limit 1000): a
// random traded symbol and a startTime uniform over the trades' time,
// deterministic for seed.
func scaleQueries(l *scaleLoad, n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x5ca1e))
	out := make([]string, n)
	for i := range out {
		sym := l.symbols[l.traded[rng.IntN(len(l.traded))]]
		from := l.first + rng.Int64N(l.last-l.first+1)
		out[i] = fmt.Sprintf("/api/v3/klines?symbol=%s&interval=1m&limit=1000&startTime=%d", url.QueryEscape(sym), from)
	}
	return out
}

// scaleQueryRun runs the queries on base one at a time, fills r's query
// latency and returns a hash of each answer (status and body; 0 for a
// failed request).
func scaleQueryRun(ctx context.Context, client *http.Client, base string, queries []string, r *ScaleNodeResult) []uint64 {
	sums := make([]uint64, len(queries))
	lat := make([]time.Duration, 0, len(queries))
	for i, q := range queries {
		t0 := time.Now()
		status, b, err := scaleGet(ctx, client, base, q)
		lat = append(lat, time.Since(t0))
		if err != nil || status != http.StatusOK {
			r.QueryErrors++
			if ctx.Err() != nil {
				break
			}
			continue
		}
		h := fnv.New64a()
		h.Write(b)
		sums[i] = h.Sum64()
	}
	r.QueryP50Millis, r.QueryP99Millis, r.QueryMaxMillis = latencyMillis(lat)
	return sums
}

// diskUsage sums the sizes and the allocated blocks of the regular files
// under dir (files vanishing meanwhile, e.g. compacted away, are
// skipped), per closed bar too.
func diskUsage(dir string, closedBars int64) (ScaleDisk, error) {
	var d ScaleDisk
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		d.Files++
		d.Bytes += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			d.AllocatedBytes += int64(st.Blocks) * 512
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("bench scale: measuring %s: %w", dir, err)
	}
	if closedBars > 0 {
		d.BytesPerClosedBar = float64(d.Bytes) / float64(closedBars)
		d.AllocatedPerClosedBar = float64(d.AllocatedBytes) / float64(closedBars)
	}
	return d, nil
}

// readProcMem reads a process's memory from /proc/PID/status.
func readProcMem(pid int) (ProcMem, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ProcMem{}, fmt.Errorf("bench scale: reading the memory of process %d: %w", pid, err)
	}
	var m ProcMem
	fields := map[string]*float64{"VmRSS": &m.RSSMB, "RssAnon": &m.AnonMB, "RssFile": &m.FileMB, "VmHWM": &m.PeakMB}
	for line := range strings.Lines(string(b)) {
		name, rest, ok := strings.Cut(line, ":")
		if p := fields[name]; ok && p != nil {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err == nil {
				*p = kb / 1024
			}
		}
	}
	return m, nil
}

// fsTypeOf names the file system dir is on (statfs), or its magic number.
func fsTypeOf(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ""
	}
	names := map[int64]string{0xEF53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683E: "btrfs",
		0x794c7630: "overlayfs", 0x6969: "nfs", 0x2fc12fc1: "zfs", 0x65735546: "fuse"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", st.Type)
}

// scaleMachine describes this machine now.
func scaleMachine() ScaleMachine {
	m := ScaleMachine{Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		OS: runtime.GOOS, Arch: runtime.GOARCH, Date: time.Now().UTC().Format(time.RFC3339), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadAvg returns the 1-, 5- and 15-minute load averages ("" without
// /proc).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// scaleNode is a `klinecast serve` child process.
type scaleNode struct {
	cmd    *exec.Cmd
	url    string
	log    *tailBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // its exit status, once exited is closed
}

// startScaleNode starts bin with args and waits for its "listening on
// URL" line on stdout (at most within), returning the time that took.
// KLINECAST_* variables are left out of its environment: every flag it
// gets is on its command line.
func startScaleNode(ctx context.Context, bin string, args []string, within time.Duration) (*scaleNode, time.Duration, error) {
	n := &scaleNode{cmd: exec.CommandContext(ctx, bin, args...), log: &tailBuffer{max: 64 << 10}, exited: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) {
			n.cmd.Env = append(n.cmd.Env, kv)
		}
	}
	if n.cmd.Env == nil {
		n.cmd.Env = []string{}
	}
	n.cmd.Stderr = n.log
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	began := time.Now()
	if err := n.cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("bench scale: starting %s: %w", bin, err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "listening on "); ok && !found {
				found = true
				urls <- u
			}
		}
		n.err = n.cmd.Wait() // after stdout is drained, as exec requires
		close(n.exited)
	}()
	select {
	case n.url = <-urls:
		return n, time.Since(began), nil
	case <-n.exited:
		return nil, 0, fmt.Errorf("bench scale: %s %s exited before listening: %v\n%s", bin, strings.Join(args, " "), n.err, n.log.String())
	case <-time.After(within):
		n.kill()
		return nil, 0, fmt.Errorf("bench scale: %s %s: not listening after %s\n%s", bin, strings.Join(args, " "), within, n.log.String())
	case <-ctx.Done():
		n.kill()
		return nil, 0, ctx.Err()
	}
}

func (n *scaleNode) pid() int { return n.cmd.Process.Pid }

// kill sends SIGKILL and waits until the process is gone.
func (n *scaleNode) kill() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop shuts the node down gracefully (SIGTERM), killing it if it has not
// exited within. A node killed earlier is no error.
func (n *scaleNode) stop(within time.Duration) error {
	select {
	case <-n.exited:
		return nil
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		return n.err
	case <-time.After(within):
		n.kill()
		return fmt.Errorf("pid %d: still running %s after SIGTERM: killed", n.pid(), within)
	}
}

// tailBuffer keeps the last max bytes written to it; safe for concurrent
// use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

// String returns what was kept, marked if older output was dropped.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cut {
		return "[…]\n" + string(b.buf)
	}
	return string(b.buf)
}

// printScaleTable writes the summary of r.
func printScaleTable(w io.Writer, r *ScaleResult) {
	m, d := &r.Memory, &r.Durable
	fmt.Fprintf(w, "\nbench scale, scenario %s: %d symbols, %d trades over %s, %d intervals, %d requests of %d trades\n",
		r.Scenario, r.Symbols, r.Trades, r.Span, len(r.Intervals), r.Requests, r.Batch)
	fmt.Fprintf(w, "%d cores (GOMAXPROCS %d), %s, %s, load %s → %s\n\n",
		r.Machine.Cores, r.Machine.GOMAXPROCS, r.Machine.CPU, r.Machine.Date, r.Machine.LoadStart, r.Machine.LoadEnd)
	row := func(name, format string, a, b float64) {
		fmt.Fprintf(w, "  %-28s %14s %14s\n", name, fmt.Sprintf(format, a), fmt.Sprintf(format, b))
	}
	fmt.Fprintf(w, "  %-28s %14s %14s\n", "", "memory", "durable batch")
	row("ingest trades/s", "%.0f", m.TradesPerSec, d.TradesPerSec)
	row("ingest seconds", "%.2f", m.PostSeconds, d.PostSeconds)
	row("POST p50 ms", "%.1f", m.PostP50Millis, d.PostP50Millis)
	row("POST p99 ms", "%.1f", m.PostP99Millis, d.PostP99Millis)
	row("RSS after ingest MB", "%.0f", m.AfterIngest.RSSMB, d.AfterIngest.RSSMB)
	row("  anon MB", "%.0f", m.AfterIngest.AnonMB, d.AfterIngest.AnonMB)
	row("  file MB", "%.0f", m.AfterIngest.FileMB, d.AfterIngest.FileMB)
	row("  peak MB", "%.0f", m.AfterIngest.PeakMB, d.AfterIngest.PeakMB)
	row("RSS settled MB", "%.0f", m.Settled.RSSMB, d.Settled.RSSMB)
	row("query p50 ms", "%.2f", m.QueryP50Millis, d.QueryP50Millis)
	row("query p99 ms", "%.2f", m.QueryP99Millis, d.QueryP99Millis)
	fmt.Fprintf(w, "\n  ratio durable/memory         %.3f\n", r.RatioDurableToMemory)
	fmt.Fprintf(w, "  closed bars                  %d (verified on %d symbols: %v)\n", r.ClosedBars, len(r.CheckedSymbols), r.ClosedBarsVerified)
	for _, s := range []struct {
		name string
		d    ScaleDisk
	}{{"data dir after ingest", r.DiskAfterIngest}, {"data dir settled", r.DiskSettled}, {"data dir after restart", r.DiskAfterRestart}} {
		fmt.Fprintf(w, "  %-28s %.1f MB (%.1f B/bar), allocated %.1f MB (%.1f B/bar), %d files\n", s.name,
			float64(s.d.Bytes)/1e6, s.d.BytesPerClosedBar, float64(s.d.AllocatedBytes)/1e6, s.d.AllocatedPerClosedBar, s.d.Files)
	}
	fmt.Fprintf(w, "  restart (kill -9)            listening %.2f s, exact answer %.2f s, every symbol %.2f s (exact %v, before kill %v), RSS %.0f MB\n",
		r.Restart.ListenSeconds, r.Restart.ExactSeconds, r.Restart.AllExactSeconds, r.Restart.Exact, r.Restart.ExactBeforeKill, r.Restart.AfterRestart.RSSMB)
	fmt.Fprintf(w, "  queries                      %d per node, %d answers differ, errors %d / %d\n",
		r.Queries, r.QueryMismatches, m.QueryErrors, d.QueryErrors)
	fmt.Fprintf(w, "  total                        %.1f s\n\n", r.TotalSeconds)
}
