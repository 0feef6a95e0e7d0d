package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/actors/internal/ingest"
	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/pinned"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// Errors returned by Node methods; match with errors.Is. Each is the one
// value of its kind in the module (the internal packages and storage return
// the same values).
var (
	// ErrBusy: the node's ingest or query queues stayed full for
	// Config.BusyTimeout. Nothing of the request was applied; retry later
	// (HTTP 503 + Retry-After).
	ErrBusy = ingest.ErrBusy
	// ErrClosed: the node is shutting down or stopped.
	ErrClosed = lifecycle.ErrClosed
	// ErrUnknownInterval: the interval is not configured on this node (or
	// not an interval at all).
	ErrUnknownInterval = messages.ErrUnknownInterval
	// ErrActorStopped: a shard, a router partition or the router failed
	// more often than its restart limit allows (10 times in 10 s) and was
	// stopped. What it was asked will never be answered, so the node
	// refuses ingest and queries with this error, and /healthz reports it
	// failed: restart the node (a durable node recovers everything
	// acknowledged from its WAL).
	ErrActorStopped = lifecycle.ErrActorStopped
	// ErrPartFailed: a shard failed 3 times in a row applying its part of
	// the request (a trade or a delivery that crashes it every time) and
	// gave the part up. None of that part's trades was applied; the other
	// shards' parts were (a retry counts them as duplicates). Retrying
	// unchanged fails the same way.
	ErrPartFailed = shard.ErrPartFailed
	// ErrLayoutMismatch: the data dir was written by a node with another
	// shard count, interval set or format version (see storage.Layout).
	ErrLayoutMismatch = storage.ErrLayoutMismatch
)

// ItemError is one rejected trade of an ingest request.
type ItemError = shard.ItemError

// IngestResult is the answer to one ingest request, given once every
// accepted trade was applied by its shard.
type IngestResult = ingest.Result

// IngestCall is an ingest request in flight (see Node.IngestAsync).
type IngestCall = ingest.Call

// IngestReply answers a *messages.TradeBatch sent to IngestPID.
type IngestReply = ingest.Reply

// DeltaSink receives shard output (see Config.Sink).
type DeltaSink = shard.DeltaSink

// DeltaSinkFunc adapts a function to DeltaSink.
type DeltaSinkFunc = shard.DeltaSinkFunc

// WorkerStats are a pinned worker's counters.
type WorkerStats = pinned.WorkerStats

// Node is a running klinecast node: an actor system with a root guardian,
// the ingest router and its partitions, the shard supervisor and its
// shards, the clock and the health monitor. Its methods are safe for
// concurrent use.
type Node struct {
	cfg        Config
	hooks      hooks
	coreConfig aggregate.Config
	log        *slog.Logger
	system     *actor.ActorSystem
	pool       *pinned.Pool
	bars       []*storage.ShardBars // by shard
	store      *storage.Store       // nil: memory-only
	life       *lifecycle.Life
	env        *shard.Env
	ingest     *ingest.Ingest
	shards     []*shard.Handle
	// queries bounds the queries (open bar, symbols, checkpoint) in
	// flight: each puts one message in a shard's mailbox.
	queries chan struct{}
	// healthNames are the components' names in a health report (built
	// once: see healthMonitor).
	healthNames []string
	tree        *tree
	root        *actor.PID

	deltas atomic.Uint64 // deltas delivered by shards

	closeOnce sync.Once
	stop      context.CancelFunc
	bg        sync.WaitGroup // background goroutines (checkpoints)
	started   time.Time
	recovery  RecoveryStats
}

// Start builds and starts a node. A durable node (Config.Store set) first
// checks that the store was written with this node's layout (shards,
// intervals, format), and refuses it with ErrLayoutMismatch otherwise:
// symbols would hash to other shards than their snapshots and WAL.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	return start(ctx, cfg, hooks{})
}

// start is Start with test seams.
func start(ctx context.Context, cfg Config, hk hooks) (*Node, error) {
	cfg.setDefaults()
	hk.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(cfg.Retention) > 0 && cfg.Store == nil {
		return nil, fmt.Errorf("actors: invalid config: %w", &FieldError{Field: "Retention", Value: cfg.Retention,
			Want: "none on a memory-only node (no Store; it keeps MemoryRetention bars per series)"})
	}
	cfg.Retention = maps.Clone(cfg.Retention) // the caller's map may change
	n := &Node{cfg: cfg, hooks: hk, log: cfg.Logger, started: time.Now(), queries: make(chan struct{}, cfg.MaxQueries)}
	n.life = lifecycle.New(n.log)
	n.coreConfig = aggregate.Config{
		Intervals:       cfg.Intervals,
		AllowedLateness: cfg.AllowedLateness.Milliseconds(),
	}
	if len(cfg.Symbols) > 0 {
		n.coreConfig.Symbols = cfg.Symbols
	}
	if _, err := aggregate.New(n.coreConfig); err != nil {
		return nil, fmt.Errorf("actors: %w", err)
	}
	retention := max(cfg.MemoryRetention, 0)
	if cfg.Store != nil {
		if err := cfg.Store.CheckLayout(ctx, storage.Layout{Shards: cfg.Shards, Intervals: cfg.Intervals}); err != nil {
			return nil, fmt.Errorf("actors: %w", err)
		}
		n.store = cfg.Store
		retention = 0
	} else if retention > 0 {
		n.log.Info("memory-only node: keeps the latest bars of each series only", "bars_per_series", retention)
	}
	n.bars = make([]*storage.ShardBars, cfg.Shards)
	for i := range n.bars {
		n.bars[i] = storage.NewShardBars(cfg.Store, retention)
	}
	// A mailbox yields (runtime.Gosched) every Throughput messages; on a
	// locked thread each yield is a thread handoff. Shard mailboxes are
	// bounded by the ingest and query gates, so a long turn cannot starve
	// the worker.
	pool, err := pinned.NewPool(pinned.Config{Workers: cfg.Cores, Logger: n.log, Throughput: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("actors: pinned dispatcher: %w", err)
	}
	n.pool = pool
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return n.log.With("lib", "protoactor")
	}))
	n.env = &shard.Env{Core: n.coreConfig, Store: cfg.Store, Retention: cfg.Retention, Sink: cfg.Sink, System: n.system,
		Life: n.life, Log: n.log, Deltas: &n.deltas, PartFailureLimit: hk.partFailureLimit,
		Faults: hk.faults}
	var recordClock func(int64)
	if cfg.Store != nil {
		recordClock = cfg.Store.RecordClock
	}
	n.shards = make([]*shard.Handle, cfg.Shards)
	for i := range n.shards {
		n.shards[i] = shard.New(n.env, i, cfg.MailboxSize, n.bars[i])
	}
	n.ingest = ingest.New(ingest.Config{System: n.system, Life: n.life, Log: n.log, Pool: pool, Shards: n.shards,
		EventClock: cfg.Clock == ClockEvent, Durable: cfg.Store != nil, ChunkTrades: hk.chunkTrades,
		MaxRequests: cfg.MailboxSize, MaxTrades: cfg.MaxInFlightTrades, BusyTimeout: cfg.BusyTimeout, Now: cfg.Now,
		RecordClock: recordClock})
	for _, h := range n.shards {
		n.healthNames = append(n.healthNames, h.Stats.Name)
	}
	for _, ph := range n.ingest.Partitions() {
		n.healthNames = append(n.healthNames, ph.Stats.Name)
	}
	n.tree = newTree()
	ready := make(chan error, 1)
	props := actor.PropsFromProducer(func() actor.Actor { return &guardian{n: n, ready: ready} },
		actor.WithSupervisor(restartStrategy(hk.restartLimit)))
	n.root, err = n.system.Root.SpawnNamed(props, "klinecast")
	if err != nil {
		_ = n.ingest.Close(context.Background()) // nothing was admitted: it returns at once
		pool.Close()
		return nil, fmt.Errorf("actors: spawn root guardian: %w", err)
	}
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		err = n.awaitRecovery(ctx)
	}
	if err != nil {
		// Stopping the actors is not a failure of theirs. Nothing was
		// admitted yet, so closing ingest returns at once.
		n.life.Close()
		_ = n.ingest.Close(context.Background())
		n.system.Root.StopFuture(n.root).Wait()
		n.life.Halt()
		n.closeShards()
		pool.Close()
		return nil, fmt.Errorf("actors: start: %w", err)
	}
	bgctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.bg.Add(1)
	go n.checkpointLoop(bgctx)
	n.log.Info("node started", "shards", cfg.Shards, "workers", pool.Workers(), "clock", cfg.Clock.String(),
		"intervals", messages.FormatIntervals(cfg.Intervals))
	return n, nil
}

// awaitRecovery waits for every shard's first start (an empty core, or
// snapshot + WAL replay), logs what was recovered, and gives the router the
// clock every shard agrees on.
func (n *Node) awaitRecovery(ctx context.Context) error {
	began := time.Now()
	var total shard.Recovery
	var errs []error
	for _, h := range n.shards {
		select {
		case r := <-h.Recovered():
			if r.Err != nil {
				errs = append(errs, r.Err)
			}
			total.Records += r.Records
			total.Trades += r.Trades
			total.Symbols += r.Symbols
			total.Watermark = max(total.Watermark, r.Watermark)
			total.Clock = max(total.Clock, r.Clock)
		case <-ctx.Done():
			return fmt.Errorf("recovering shard %d: %w", h.ID(), ctx.Err())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n.recovery = RecoveryStats{WALRecords: total.Records, WALTrades: total.Trades, Symbols: total.Symbols,
		Watermark: total.Watermark, Took: time.Since(began)}
	if n.store != nil {
		n.log.Info("recovered from snapshots and WAL", "symbols", total.Symbols, "wal_records", total.Records,
			"wal_trades", total.Trades, "watermark", total.Watermark, "took", time.Since(began).Round(time.Millisecond))
	}
	// The clock restarts from the shards' complete clocks, not their
	// watermarks: a shard whose part of the last request survived a power
	// cut while another's did not is ahead, and the request, sent again,
	// must not find its trades late on the others. The clock the node
	// recorded as complete counts too: shards no recent request touched
	// had it from ticks only.
	if n.store != nil {
		recorded, err := n.store.Clock()
		if err != nil {
			return err
		}
		total.Clock = max(total.Clock, recorded)
	}
	n.ingest.SetClock(total.Clock)
	if total.Records > 0 {
		// Snapshot what was just replayed, so that a crash soon after does
		// not replay it all again and the WAL behind it can go.
		if err := n.Checkpoint(ctx); err != nil {
			n.log.Warn("snapshot after recovery failed (the WAL is kept)", "err", err)
		}
	}
	return nil
}

// RecoveryStats describes what Start recovered from the store.
type RecoveryStats struct {
	WALRecords int64         `json:"wal_records"`
	WALTrades  int64         `json:"wal_trades"`
	Symbols    int           `json:"symbols"`
	Watermark  int64         `json:"watermark"`
	Took       time.Duration `json:"took_ns"`
}

// Recovery returns what Start recovered (zero for a memory-only node).
func (n *Node) Recovery() RecoveryStats { return n.recovery }

// closeShards ends the shards' WAL waiter goroutines; the actor tree has
// stopped, so nothing sends to their queues any more.
func (n *Node) closeShards() {
	for _, h := range n.shards {
		h.Close()
	}
}

// Config returns the node's effective configuration (a copy: changing it
// changes nothing).
func (n *Node) Config() Config {
	c := n.cfg
	c.Intervals = slices.Clone(c.Intervals)
	c.Symbols = slices.Clone(c.Symbols)
	c.Retention = maps.Clone(c.Retention)
	return c
}

// Workers returns the number of pinned workers the shards run on.
func (n *Node) Workers() int { return n.pool.Workers() }

// System returns the node's actor system, for embedding programs that talk
// to the node with actor messages.
func (n *Node) System() *actor.ActorSystem { return n.system }

// IngestPID is the ingest router: send it *messages.TradeBatch with
// RequestFuture and receive an *IngestReply. At most Config.MailboxSize
// such requests are queued; beyond that the reply is ErrBusy at once.
func (n *Node) IngestPID() *actor.PID { return n.ingest.RouterPID() }

// Ingest validates trades, applies every valid one on its shard, and
// answers when all of them were applied. Invalid trades are reported per
// item in the result (by index into trades) and never applied. A trade whose
// aggregate id its symbol already applied counts as a duplicate, so a
// producer may retry a whole batch safely.
//
// Per symbol, trades must arrive in aggregate-id order (as an exchange feed
// delivers them): a lower id than one already applied is a duplicate.
// Concurrent Ingest calls are ordered by the router in the order they
// reach it; a producer that needs its own requests kept in order while
// several are in flight uses IngestAsync.
//
// ctx bounds the wait for admission (back-pressure); once admitted, the
// request runs to its end. The shards read trades in place: the caller
// must not modify them until Ingest returns.
func (n *Node) Ingest(ctx context.Context, trades []messages.Trade) (IngestResult, error) {
	return n.ingest.Ingest(ctx, trades)
}

// IngestAsync starts an ingest request and returns once the request is
// ordered behind every request this goroutine started before: requests
// started one after another by one goroutine are applied in that order.
// Wait collects the result. IngestAsync blocks only for back-pressure
// (Config.MailboxSize requests or Config.MaxInFlightTrades trades in
// flight, up to Config.BusyTimeout, or until ctx is done). The shards read
// trades in place: the caller must not modify them until Wait returns.
func (n *Node) IngestAsync(ctx context.Context, trades []messages.Trade) *IngestCall {
	return n.ingest.IngestAsync(ctx, trades)
}

// query takes a query token (one per query in flight), waiting at most
// BusyTimeout, so queries cannot fill the shards' mailboxes.
func (n *Node) query(ctx context.Context) error {
	if n.life.Closing() {
		return ErrClosed
	}
	if err := n.life.Err(); err != nil {
		return err
	}
	select {
	case n.queries <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(n.cfg.BusyTimeout)
	defer timer.Stop()
	select {
	case n.queries <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: %d queries in flight", ErrBusy, cap(n.queries))
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) queryDone() { <-n.queries }

// hasInterval reports whether iv is configured.
func (n *Node) hasInterval(iv messages.Interval) bool { return slices.Contains(n.cfg.Intervals, iv) }

// Klines answers a Binance-style klines query: bars of symbol and iv with
// open time in [start, end] (0 = unbounded), ascending, at most limit, the
// open bar last. Without start it returns the latest limit bars.
func (n *Node) Klines(ctx context.Context, symbol string, iv messages.Interval, start, end int64, limit int) ([]messages.Kline, error) {
	// Sized once for a REST page (at most 1,000 bars and the open one);
	// a larger limit (an embedding caller) grows it as needed.
	return n.AppendKlines(ctx, make([]messages.Kline, 0, min(max(limit, 500), 1000)+1), symbol, iv, start, end, limit)
}

// AppendKlines is Klines appending to dst (whose elements it may
// overwrite beyond len): a server answering many queries reuses one slice
// per query instead of allocating a page of bars each time.
func (n *Node) AppendKlines(ctx context.Context, dst []messages.Kline, symbol string, iv messages.Interval, start, end int64, limit int) ([]messages.Kline, error) {
	if !n.hasInterval(iv) {
		return nil, fmt.Errorf("%w: %s (configured: %s)", ErrUnknownInterval, iv, messages.FormatIntervals(n.cfg.Intervals))
	}
	if limit <= 0 {
		limit = 500
	}
	if n.life.Closing() {
		return nil, ErrClosed
	}
	if err := n.life.Err(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The shard's bar series holds its closed and open bars as of its last
	// flush: a query reads them there, under the series' lock, without a
	// message to the shard (so a busy shard does not slow queries, nor
	// queries the shard). The open bar first: a bar that closes meanwhile
	// is among the closed ones read after it, so none is missed.
	bars := n.bars[messages.ShardOf(symbol, len(n.bars))]
	open, hasOpen := bars.OpenBar(symbol, iv)
	hi := end
	if hi <= 0 {
		hi = 1<<63 - 1
	}
	lo := start
	if lo <= 0 {
		// Latest `limit` bars up to hi: bars are contiguous (gaps are
		// filled), so they start at most `limit` periods back.
		ref := hi
		if hasOpen && open.OpenTime < ref {
			ref = open.OpenTime
		}
		lo = stepBack(iv, iv.Align(ref), limit)
	}
	fetch := 0 // the latest-bars range holds at most limit+1 bars already
	if start > 0 {
		// Pages of a long history cost their own size, not the rest of it.
		fetch = limit
	}
	base := len(dst)
	page, err := bars.Klines(symbol, iv, lo, hi, fetch, dst)
	if err != nil {
		return nil, fmt.Errorf("actors: klines %s %s: %w", symbol, iv, err)
	}
	if hasOpen && open.OpenTime >= lo && open.OpenTime <= hi {
		// The open bar is the newest; a closed version of it read after
		// it (it closed meanwhile) gives way to it.
		for len(page) > base && page[len(page)-1].OpenTime >= open.OpenTime {
			page = page[:len(page)-1]
		}
		page = append(page, open)
	}
	if len(page)-base > limit {
		if start == 0 {
			// The latest limit bars: drop the oldest.
			copy(page[base:], page[len(page)-limit:])
		}
		page = page[:base+limit]
	}
	return page, nil
}

// stepBack returns the open time k bars before open.
func stepBack(iv messages.Interval, open int64, k int) int64 {
	if d := iv.Fixed(); d > 0 {
		return open - int64(k)*d
	}
	t := time.UnixMilli(open).UTC()
	return t.AddDate(0, -k, 0).UnixMilli()
}

func (n *Node) openBar(ctx context.Context, symbol string, iv messages.Interval) (shard.OpenBarReply, error) {
	if err := n.query(ctx); err != nil {
		return shard.OpenBarReply{}, err
	}
	h := n.shards[messages.ShardOf(symbol, len(n.shards))]
	reply := make(chan shard.OpenBarReply, 1)
	h.Send(&shard.OpenBarQuery{Symbol: symbol, Iv: iv, Reply: reply})
	select {
	case r := <-reply:
		n.queryDone()
		return r, nil
	case <-ctx.Done():
		go n.queryDoneAfter(reply) // the query is still queued: its token too
		return shard.OpenBarReply{}, fmt.Errorf("actors: open bar of %s from shard %d: %w", symbol, h.ID(), ctx.Err())
	case <-n.life.Broken():
		return shard.OpenBarReply{}, fmt.Errorf("actors: open bar of %s from shard %d: %w", symbol, h.ID(), n.life.Err())
	}
}

// queryDoneAfter gives back a query's token once its shard answered (or
// will never answer), for a caller that stopped waiting.
func (n *Node) queryDoneAfter(reply <-chan shard.OpenBarReply) {
	select {
	case <-reply:
	case <-n.life.Broken():
	case <-n.life.Halted():
	}
	n.queryDone()
}

// Symbols returns every symbol with state on this node, sorted.
func (n *Node) Symbols(ctx context.Context) ([]string, error) {
	// One token for the whole query: it puts one message in each shard's
	// mailbox, and each shard handles them in order.
	if err := n.query(ctx); err != nil {
		return nil, err
	}
	replies := make(chan []string, len(n.shards))
	for _, h := range n.shards {
		h.Send(&shard.SymbolsQuery{Reply: replies})
	}
	var out []string
	for i := range n.shards {
		select {
		case s := <-replies:
			out = append(out, s...)
		case <-ctx.Done():
			go n.symbolsDoneAfter(replies, len(n.shards)-i)
			return nil, fmt.Errorf("actors: symbols: %w", ctx.Err())
		case <-n.life.Broken():
			return nil, fmt.Errorf("actors: symbols: %w", n.life.Err())
		}
	}
	n.queryDone()
	slices.Sort(out)
	return out, nil
}

// symbolsDoneAfter gives back a symbols query's token once the shards
// still to answer did (or never will).
func (n *Node) symbolsDoneAfter(replies <-chan []string, left int) {
	for ; left > 0; left-- {
		select {
		case <-replies:
		case <-n.life.Broken():
			left = 1
		case <-n.life.Halted():
			left = 1
		}
	}
	n.queryDone()
}

// Stats are node-wide counters.
type Stats struct {
	Accepted   uint64 `json:"accepted"`
	Duplicates uint64 `json:"duplicates"`
	Rejected   uint64 `json:"rejected"`
	Deltas     uint64 `json:"deltas"`
	LastSeq    uint64 `json:"last_seq"`
	Restarts   int64  `json:"shard_restarts"`
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	c := n.ingest.Counters()
	s := Stats{Accepted: c.Accepted, Duplicates: c.Duplicates, Rejected: c.Rejected,
		Deltas: n.deltas.Load(), LastSeq: c.LastSeq}
	for _, h := range n.shards {
		s.Restarts += h.Stats.Restarts.Load()
	}
	return s
}

// WorkerStats returns the pinned workers' counters (turns run, time busy).
func (n *Node) WorkerStats() []WorkerStats { return n.pool.Stats() }

// InjectShardPanic makes shard i panic (a fault drill): supervision
// restarts it from its checkpoint and the inputs applied since.
func (n *Node) InjectShardPanic(i int, reason string) error {
	if i < 0 || i >= len(n.shards) {
		return fmt.Errorf("actors: no shard %d", i)
	}
	n.shards[i].Send(&shard.Panic{Reason: reason})
	return nil
}

// Checkpoint makes every shard checkpoint now and waits for them.
func (n *Node) Checkpoint(ctx context.Context) error {
	done := make(chan error, len(n.shards))
	for _, h := range n.shards {
		h.Send(&shard.CheckpointNow{Done: done})
	}
	var errs []error
	for range n.shards {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("actors: checkpoint: %w", ctx.Err())
		case <-n.life.Broken():
			return fmt.Errorf("actors: checkpoint: %w", n.life.Err())
		}
	}
	return errors.Join(errs...)
}

func (n *Node) checkpointLoop(ctx context.Context) {
	defer n.bg.Done()
	t := time.NewTicker(n.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cctx, cancel := context.WithTimeout(ctx, n.cfg.CheckpointInterval)
			if err := n.Checkpoint(cctx); err != nil && ctx.Err() == nil {
				n.log.Warn("periodic checkpoint failed", "err", err)
			}
			cancel()
		}
	}
}

// Close shuts the node down gracefully: new ingest is refused, in-flight
// requests finish, every shard drains its mailbox and checkpoints, then the
// actor tree stops. It does not close Config.Store (the caller owns it).
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		n.life.Close()
		n.stop()
		n.bg.Wait()
		if ierr := n.ingest.Close(ctx); ierr != nil {
			err = ierr
		}
		if cerr := n.Checkpoint(ctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if serr := n.system.Root.StopFuture(n.root).Wait(); serr != nil {
			err = errors.Join(err, fmt.Errorf("actors: stop actor tree: %w", serr))
		}
		n.life.Halt()
		n.closeShards()
		n.pool.Close()
		n.log.Info("node stopped", "accepted", n.ingest.Counters().Accepted, "uptime", time.Since(n.started).Round(time.Millisecond))
	})
	return err
}

// ShardOf maps a symbol to its shard among shards (messages.ShardOf: FNV-1a,
// stable across processes and versions).
func ShardOf(symbol string, shards int) int { return messages.ShardOf(symbol, shards) }
