package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/httpapi"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// Serve is the `klinecast serve` subcommand.
func (commands) Serve() command {
	return command{summary: "run a node: HTTP trade ingest and Binance-compatible REST (--demo for a live synthetic feed)", run: runServe}
}

const serveHelp = `
Usage: klinecast serve [flags]

Runs a klinecast node: trades come in over HTTP (or from --demo), every
symbol is aggregated into K-lines of every configured interval, and the
bars are served Binance-style.

Endpoints:
  POST /api/v1/trades        JSON array or NDJSON of Binance aggTrade events;
                             answers {"accepted","duplicates","last_seq","rejected"}
  GET  /api/v3/klines        ?symbol=&interval=&startTime=&endTime=&limit=
  GET  /api/v3/exchangeInfo  the symbols
  GET  /healthz              health (503 when failed)
  GET  /api/v1/actors        the supervision tree
  GET  /api/v1/stats         counters

Once listening it prints "listening on http://HOST:PORT" on stdout (with
--http HOST:0 the port is the one the system chose). SIGINT or SIGTERM
shuts down gracefully: HTTP stops accepting and finishes its requests, the
node drains its mailboxes and checkpoints, and the command exits 0, all
within 10 s. A second signal kills it.

Clocks: "wall" closes bars on time by the wall clock (live feeds); "event"
uses the newest trade time accepted, so results depend only on the input
(replays, tests).

Storage: everything durable lives under --data-dir (badger): every
accepted batch is in the WAL before POST /api/v1/trades answers 200
(--durability sync: fsynced, shared between concurrent requests; batch:
fsynced every --sync-interval; none: left to the OS), closed bars are
stored, and shards snapshot every --snapshot-interval and at shutdown. A
restart loads the snapshots and replays the WAL behind them, so a node
killed at any moment (kill -9 included) loses no acknowledged trade. A
torn WAL tail is truncated with a warning; corruption in the middle of the
WAL stops the start with the key named, unless --repair deletes it. A
second node on the same --data-dir refuses to start. A data dir written
by an older klinecast (storage format 1: one key per bar) is converted to
the current format at the first start, with progress in the log; a start
interrupted meanwhile resumes it. --memory runs without storage (nothing
survives a restart) and keeps only the latest --memory-retention closed
bars of each symbol and interval, so its memory does not grow with
history.

Retention: with storage every closed bar is kept unless --retention says
otherwise, per interval: --retention 1s=7d,1m=365d keeps the 1s bars of
the last 7 days and the 1m bars of the last 365 days of each symbol
(counted back from its latest bar), and every bar of the other intervals.
Units: s, m, h, d, w. Each shard deletes older bars after a snapshot, at
most once a minute.

Examples:
  klinecast serve --demo
  klinecast serve --clock event --http 127.0.0.1:0 --intervals 1m,1h,1d
  klinecast gen --format ndjson --trades 100000 |
    curl --data-binary @- http://127.0.0.1:8080/api/v1/trades
  curl 'http://127.0.0.1:8080/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5'
`

// serveShutdownTimeout bounds the graceful shutdown: HTTP drain plus the
// node's drain and checkpoint.
const serveShutdownTimeout = 10 * time.Second

// serveOptions are the parsed flags of serve.
type serveOptions struct {
	dataDir     string
	store       storage.Config
	memory      bool
	httpAddr    string
	node        actors.Config
	demo        bool
	demoSymbols int
	demoRate    float64
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", serveHelp)
	var o serveOptions
	fs.StringVar(&o.dataDir, "data-dir", "./data", "data directory: WAL, klines, snapshots (created if missing)")
	fs.TextVar(&o.store.Durability, "durability", storage.DurabilitySync, "WAL durability before a batch is acknowledged: sync, batch or none")
	fs.DurationVar(&o.store.SyncInterval, "sync-interval", storage.DefaultSyncInterval, "--durability batch: fsync period")
	fs.Int64Var(&o.store.ValueLogFileSize, "value-log-file-size", storage.DefaultValueLogFileSize, "bytes per badger value-log file (1 MiB..2 GiB); also bounds one WAL record and sizes the free-space reserve")
	fs.DurationVar(&o.node.CheckpointInterval, "snapshot-interval", actors.DefaultCheckpointInterval, "how often shards snapshot their state (the WAL behind a snapshot is deleted)")
	fs.BoolVar(&o.store.Repair, "repair", false, "delete corrupt WAL records found in the middle of the log (with a warning) instead of refusing to start")
	fs.BoolVar(&o.memory, "memory", false, "run without storage: nothing is persisted (tests, demos)")
	fs.TextVar(&o.node.Retention, "retention", storage.Retention{}, "how long closed bars are kept per interval, a `LIST` like 1s=7d,1m=365d (units s, m, h, d, w; counted back from each series' latest bar); unlisted intervals, and the default, keep every bar")
	fs.IntVar(&o.node.MemoryRetention, "memory-retention", actors.DefaultMemoryRetention, "--memory: closed bars kept per symbol and interval (the latest ones; older are dropped); -1 keeps every bar")
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "HTTP listen address; port 0 picks a free port")
	clock := fs.String("clock", "wall", "bar clock: wall (live) or event (newest trade time; replays and tests)")
	intervals := fs.String("intervals", messages.FormatIntervals(messages.DefaultIntervals()), `comma-separated intervals, or "all"`)
	fs.IntVar(&o.node.Shards, "shards", actors.DefaultShards, fmt.Sprintf("number of shards symbols are hashed onto (1..%d); part of the data dir's layout", actors.MaxShards))
	fs.IntVar(&o.node.Cores, "cores", 0, "pinned worker threads for the shards; 0 = every CPU the process may use")
	fs.DurationVar(&o.node.AllowedLateness, "allowed-lateness", 0, "how late a trade may be and still amend a closed bar (0 drops late trades, counted)")
	fs.IntVar(&o.node.MailboxSize, "max-inflight-requests", actors.DefaultMailboxSize, "ingest requests in flight at once; more wait up to --busy-timeout, then get 503")
	fs.IntVar(&o.node.MaxInFlightTrades, "max-inflight-trades", actors.DefaultMaxInFlightTrades, "trades in flight at once (a larger request runs alone); more wait up to --busy-timeout, then get 503")
	fs.IntVar(&o.node.MaxQueries, "max-queries", actors.DefaultMaxQueries, "queries to shards in flight at once; more wait up to --busy-timeout, then get 503")
	fs.DurationVar(&o.node.BusyTimeout, "busy-timeout", actors.DefaultBusyTimeout, "how long ingest and queries wait for room before answering 503")
	symbols := fs.String("symbols", "", "fixed comma-separated symbol list; other symbols are rejected (default: any symbol, created on first trade)")
	fs.BoolVar(&o.demo, "demo", false, "feed the node a live synthetic stream (trades stamped with the wall clock)")
	fs.IntVar(&o.demoSymbols, "demo-symbols", 50, "--demo: number of symbols (ignored with --symbols, whose names it uses)")
	fs.Float64Var(&o.demoRate, "demo-rate", 200, "--demo: mean trades per second over all symbols")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	lvl := logFlag(fs)
	rest, err := parseFlags(fs, args, stdout)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageErrorf("unexpected arguments %q", rest)
	}
	if o.node.Clock, err = actors.ParseClockMode(*clock); err != nil {
		return usageErrorf("--clock: %w", err)
	}
	if o.node.Intervals, err = parseIntervalList(*intervals); err != nil {
		return usageErrorf("--intervals: %w", err)
	}
	// The node states what is valid; the flags only name its fields.
	if err := o.node.Validate(); err != nil {
		return usageErrorf("%w", flagErrors(err, serveFlagOf))
	}
	if *symbols != "" {
		for _, s := range strings.Split(*symbols, ",") {
			s = messages.NormalizeSymbol(strings.TrimSpace(s))
			probe := messages.Trade{Symbol: s, Price: 1, Time: messages.MinTradeTime}
			if err := probe.Validate(0); err != nil {
				return usageErrorf("--symbols: %q: %w", s, err)
			}
			o.node.Symbols = append(o.node.Symbols, s)
		}
	}
	if o.memory && len(o.node.Retention) > 0 {
		return usageErrorf("--retention applies to a node with storage; --memory keeps the latest --memory-retention bars of each series")
	}
	if o.demo && len(o.node.Symbols) == 0 && (o.demoSymbols < 1 || o.demoSymbols > 100_000) {
		return usageErrorf("--demo-symbols %d: want 1..100000", o.demoSymbols)
	}
	if o.demo && !(o.demoRate > 0 && o.demoRate <= 1e6) {
		return usageErrorf("--demo-rate %v: want a rate in (0, 1e6] trades/s", o.demoRate)
	}
	log, err := newServeLogger(stderr, *lvl, *logFormat)
	if err != nil {
		return err
	}
	o.node.Logger = log
	return serve(ctx, o, stdout, log)
}

// serveFlagOf names the serve flag of each actors.Config field.
var serveFlagOf = map[string]string{
	"Shards": "shards", "Cores": "cores", "AllowedLateness": "allowed-lateness",
	"CheckpointInterval": "snapshot-interval", "MailboxSize": "max-inflight-requests",
	"MaxInFlightTrades": "max-inflight-trades", "MaxQueries": "max-queries", "BusyTimeout": "busy-timeout",
	"MemoryRetention": "memory-retention", "Retention": "retention",
}

// flagErrors rewrites a Config's field errors in terms of the flags that
// set them ("--shards 0: want 1..4096").
func flagErrors(err error, flagOf map[string]string) error {
	var fields []*actors.FieldError
	var walk func(error)
	walk = func(e error) {
		var fe *actors.FieldError
		if errors.As(e, &fe) && e == error(fe) {
			fields = append(fields, fe)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
		}
	}
	walk(err)
	if len(fields) == 0 {
		return err
	}
	msgs := make([]string, len(fields))
	for i, fe := range fields {
		name := fe.Field
		if f, ok := flagOf[fe.Field]; ok {
			name = "--" + f
		}
		msgs[i] = fmt.Sprintf("%s %v: want %s", name, fe.Value, fe.Want)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// newServeLogger returns serve's logger: text or JSON lines on stderr.
func newServeLogger(stderr io.Writer, lvl slog.Level, format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usageErrorf("--log-format %q: want text or json", format)
}

// serve runs the node and its HTTP server until ctx is cancelled, then
// shuts both down gracefully.
func serve(ctx context.Context, o serveOptions, stdout io.Writer, log *slog.Logger) error {
	if !o.memory {
		scfg := o.store
		scfg.Dir = o.dataDir
		scfg.Logger = log.With("component", "storage")
		st, err := storage.Open(ctx, scfg)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		defer func() {
			if err := st.Close(); err != nil {
				log.Error("closing storage", "err", err)
			}
		}()
		o.node.Store = st
		log.Info("storage open", "data_dir", o.dataDir, "durability", scfg.Durability.String())
	} else {
		log.Warn("running memory-only (--memory): nothing survives a restart")
	}

	node, err := actors.Start(ctx, o.node)
	if err != nil {
		return err
	}
	closeNode := func() error {
		cctx, cancel := context.WithTimeout(context.Background(), serveShutdownTimeout)
		defer cancel()
		return node.Close(cctx)
	}
	ln, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("--http: %w", err), closeNode())
	}
	srv := &http.Server{
		Handler:           httpapi.New(node, httpapi.Config{Logger: log}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("listening", "url", url)
	// The parseable line scripts and tests wait for.
	fmt.Fprintf(stdout, "listening on %s\n", url)

	demoCtx, stopDemo := context.WithCancel(ctx)
	defer stopDemo()
	var demo sync.WaitGroup
	if o.demo {
		syms := o.node.Symbols
		if len(syms) == 0 {
			syms = gen.Symbols(o.demoSymbols)
		}
		feed, err := newDemoFeed(node, syms, o.demoRate, time.Now(), log)
		if err != nil {
			stopDemo()
			return errors.Join(err, shutdown(srv, node, &demo, log))
		}
		demo.Go(func() { feed.run(demoCtx) })
		log.Info("demo feed started", "symbols", len(syms), "rate", o.demoRate)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("signal received, shutting down")
	case runErr = <-serveErr:
		runErr = fmt.Errorf("http server: %w", runErr)
	}
	stopDemo()
	return errors.Join(runErr, shutdown(srv, node, &demo, log))
}

// shutdown stops the demo feed and HTTP (in-flight requests finish), then
// drains and closes the node, within serveShutdownTimeout in all.
func shutdown(srv *http.Server, node *actors.Node, demo *sync.WaitGroup, log *slog.Logger) error {
	began := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), serveShutdownTimeout)
	defer cancel()
	demo.Wait()
	var errs []error
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := node.Close(sctx); err != nil {
		errs = append(errs, fmt.Errorf("node close: %w", err))
	}
	log.Info("shutdown complete", "took", time.Since(began).Round(time.Millisecond))
	return errors.Join(errs...)
}

// demoTick is how often the demo feed hands the trades that became due to
// the node.
const demoTick = 100 * time.Millisecond

// demoMaxBatch bounds one Ingest call of the demo feed.
const demoMaxBatch = 1000

// demoFeed replays an unbounded generated stream in real time: the
// generator starts at the feed's start time, and every demoTick the trades
// whose time has come are ingested. Each is stamped with the time it is
// handed over (at most demoTick after its generated time), so a wall-clock
// node never finds a demo trade older than its open bar.
//
// Aggregate and raw trade ids are offset by the start time (ms × 1000), so
// they keep increasing across restarts of the demo: a node with storage
// would otherwise see the second run's trades as duplicates.
type demoFeed struct {
	node     *actors.Node
	gen      *gen.Generator
	log      *slog.Logger
	idOffset int64

	pending    messages.Trade // generated, not yet due
	hasPending bool
	batch      []messages.Trade // due, not yet accepted by the node
}

func newDemoFeed(node *actors.Node, symbols []string, rate float64, start time.Time, log *slog.Logger) (*demoFeed, error) {
	startMs := start.UnixMilli()
	g, err := gen.New(gen.Config{Symbols: symbols, Start: startMs, Rate: rate, Seed: uint64(startMs)})
	if err != nil {
		return nil, fmt.Errorf("demo feed: %w", err)
	}
	return &demoFeed{node: node, gen: g, log: log, idOffset: startMs * 1000}, nil
}

// run feeds the node until ctx is cancelled or the node closes.
func (f *demoFeed) run(ctx context.Context) {
	t := time.NewTicker(demoTick)
	defer t.Stop()
	var sent, ticks uint64
	for {
		select {
		case <-ctx.Done():
			f.log.Info("demo feed stopped", "trades", sent)
			return
		case <-t.C:
			ticks++
			// Stamp with the time of the hand-over itself, not the tick's:
			// the closer to Ingest, the less a boundary can slip between.
			n, err := f.step(ctx, time.Now().UnixMilli())
			sent += uint64(n)
			switch {
			case err == nil:
			case errors.Is(err, actors.ErrBusy):
				// Back-pressure: the batch is kept and retried next tick.
				f.log.Debug("demo feed: node busy, retrying", "pending", len(f.batch))
			case errors.Is(err, actors.ErrClosed), ctx.Err() != nil:
				f.log.Info("demo feed stopped", "trades", sent)
				return
			default:
				f.log.Warn("demo feed: ingest failed, retrying", "err", err, "pending", len(f.batch))
			}
			if ticks%600 == 0 { // every minute
				f.log.Info("demo feed", "trades", sent)
			}
		}
	}
}

// step ingests the trades due at nowMs, in batches of at most demoMaxBatch,
// and returns how many the node accepted.
func (f *demoFeed) step(ctx context.Context, nowMs int64) (int, error) {
	accepted := 0
	for {
		for len(f.batch) < demoMaxBatch {
			if !f.hasPending {
				f.gen.Next(&f.pending) // unbounded: always a trade
				f.pending.AggID += f.idOffset
				f.pending.FirstID += f.idOffset
				f.pending.LastID += f.idOffset
				f.hasPending = true
			}
			if f.pending.Time > nowMs {
				break
			}
			tr := f.pending
			tr.Time, tr.EventTime = nowMs, nowMs
			f.batch = append(f.batch, tr)
			f.hasPending = false
		}
		if len(f.batch) == 0 {
			return accepted, nil
		}
		res, err := f.node.Ingest(ctx, f.batch)
		if err != nil {
			return accepted, err
		}
		if len(res.Rejected) > 0 {
			f.log.Warn("demo feed: trades rejected", "count", len(res.Rejected), "first", res.Rejected[0].Error)
		}
		accepted += res.Accepted
		full := len(f.batch) == demoMaxBatch
		f.batch = f.batch[:0]
		if !full {
			return accepted, nil
		}
	}
}
