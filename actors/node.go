package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// Errors returned by Node methods; match with errors.Is.
var (
	// ErrBusy: shard mailboxes stayed full for Config.BusyTimeout. Nothing
	// of the request was applied; retry later (HTTP 503 + Retry-After).
	ErrBusy = errors.New("actors: node busy, retry later")
	// ErrClosed: the node is shutting down or stopped.
	ErrClosed = errors.New("actors: node closed")
	// ErrUnknownInterval: the interval is not configured on this node.
	ErrUnknownInterval = errors.New("actors: interval not configured")
	// ErrActorStopped: a shard, a router partition or the router failed
	// more often than its restart limit allows (10 times in 10 s) and was
	// stopped. What it was asked will never be answered, so the node
	// refuses ingest and queries with this error, and /healthz reports it
	// failed: restart the node (a durable node recovers everything
	// acknowledged from its WAL).
	ErrActorStopped = errors.New("actors: an actor of the node exceeded its restart limit and stopped; restart the node")
	// ErrPartFailed: a shard failed maxPartFailures times in a row
	// applying its part of the request (a trade or a delivery that crashes
	// it every time) and gave the part up. None of that part's trades was
	// applied; the other shards' parts were (a retry counts them as
	// duplicates). Retrying unchanged fails the same way.
	ErrPartFailed = errors.New("actors: a shard could not apply its part of the request")
)

// ItemError is one rejected trade of an ingest request.
type ItemError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// IngestResult is the answer to one ingest request, given once every
// accepted trade was applied by its shard.
type IngestResult struct {
	Accepted   int         `json:"accepted"`
	Duplicates int         `json:"duplicates"`
	LastSeq    uint64      `json:"last_seq"`
	Rejected   []ItemError `json:"rejected"`
}

// Node is a running klinecast node: an actor system with a root guardian,
// the ingest router, the shard supervisor and its shards, the clock, the
// publisher and the health monitor. Its methods are safe for concurrent use.
type Node struct {
	cfg        Config
	coreConfig aggregate.Config
	log        *slog.Logger
	system     *actor.ActorSystem
	pool       *PinnedPool
	klines     KlineStore
	store      *storage.Store // nil: memory-only

	shards     []*shardHandle
	partitions []*partitionHandle // router partitions, by worker
	// healthNames are the components' names in a health report: the
	// shards', then the partitions' (built once: see healthMonitor).
	healthNames []string
	tree        *tree

	root   *actor.PID
	router *actor.PID

	seq    atomic.Uint64 // last input sequence number assigned by the router
	deltas atomic.Uint64 // deltas delivered by shards

	accepted   atomic.Uint64
	duplicates atomic.Uint64
	rejected   atomic.Uint64

	closeOnce sync.Once
	closed    atomic.Bool
	inflight  sync.WaitGroup   // Ingest calls in progress
	calls     chan *IngestCall // recycled calls, at most MailboxSize (see newCall)
	gate      chan struct{}    // ingest back-pressure: one token per request in flight
	halted    chan struct{}    // closed once the actor tree stopped: no shard answers any more
	// broken is closed, brokenErr set before, when an actor the node cannot
	// do without was stopped by its supervisor (see ErrActorStopped).
	broken     chan struct{}
	brokenOnce sync.Once
	brokenErr  error
	stop       context.CancelFunc
	bg         sync.WaitGroup // background goroutines (checkpoints)
	started    time.Time
	recovery   RecoveryStats
}

// Start builds and starts a node.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, started: time.Now(), halted: make(chan struct{}), broken: make(chan struct{}),
		gate: make(chan struct{}, cfg.MailboxSize), calls: make(chan *IngestCall, cfg.MailboxSize)}
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
	if cfg.Store != nil {
		n.store = cfg.Store
		n.klines = storeKlines{cfg.Store}
	} else {
		n.klines = newMemKlineStore()
	}
	// A mailbox yields (runtime.Gosched) every Throughput messages; on a
	// locked thread each yield is a thread handoff. Shard mailboxes are
	// bounded by the ingest gate, so a long turn cannot starve the worker.
	pool, err := NewPinnedPool(PinnedConfig{Workers: cfg.Cores, Logger: n.log, Throughput: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("actors: pinned dispatcher: %w", err)
	}
	n.pool = pool
	n.shards = make([]*shardHandle, cfg.Shards)
	for i := range n.shards {
		n.shards[i] = &shardHandle{id: i, node: n,
			recovered: make(chan recovery, 1), appliedSeq: math.MaxUint64}
		if cfg.Store != nil {
			// At most MailboxSize parts are queued or waiting per shard
			// (the gate), so sends to walq never block.
			n.shards[i].walq = make(chan *shardPart, cfg.MailboxSize)
		}
	}
	n.partitions = make([]*partitionHandle, pool.Workers())
	for w := range n.partitions {
		// The classify scratch up front: a partition may classify its
		// first chunk only in a later request (another one claimed every
		// chunk so far), and allocating then would land in the hot path.
		ph := &partitionHandle{worker: w, node: n, cache: new(symbolShards),
			shardOf: make([]int16, n.cfg.chunkTrades), fillAt: make([]int32, len(n.shards))}
		ph.fill = func(sym string) int32 {
			if messages.ValidateSymbol(sym) != nil {
				return -1
			}
			return int32(shardOfFast(sym, len(n.shards)))
		}
		for sh := range n.shards {
			if pool.WorkerOf(sh) == w {
				ph.shards = append(ph.shards, int32(sh))
			}
		}
		n.partitions[w] = ph
	}
	for _, h := range n.shards {
		n.healthNames = append(n.healthNames, shardName(h.id))
	}
	for _, ph := range n.partitions {
		n.healthNames = append(n.healthNames, partitionName(ph.worker))
	}
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return n.log.With("lib", "protoactor")
	}))
	n.tree = newTree()
	ready := make(chan error, 1)
	props := actor.PropsFromProducer(func() actor.Actor { return &guardian{n: n, ready: ready} },
		actor.WithSupervisor(restartStrategy(cfg.restartLimit)))
	n.root, err = n.system.Root.SpawnNamed(props, "klinecast")
	if err != nil {
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
		n.closed.Store(true) // stopping the actors is not a failure of theirs
		n.system.Root.StopFuture(n.root).Wait()
		close(n.halted)
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
	var total recovery
	var errs []error
	for _, h := range n.shards {
		select {
		case r := <-h.recovered:
			if r.err != nil {
				errs = append(errs, r.err)
			}
			total.records += r.records
			total.trades += r.trades
			total.symbols += r.symbols
			total.watermark = max(total.watermark, r.watermark)
		case <-ctx.Done():
			return fmt.Errorf("recovering shard %d: %w", h.id, ctx.Err())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n.recovery = RecoveryStats{WALRecords: total.records, WALTrades: total.trades, Symbols: total.symbols,
		Watermark: total.watermark, Took: time.Since(began)}
	if n.store != nil {
		n.log.Info("recovered from snapshots and WAL", "symbols", total.symbols, "wal_records", total.records,
			"wal_trades", total.trades, "watermark", total.watermark, "took", time.Since(began).Round(time.Millisecond))
	}
	n.system.Root.Send(n.router, &setClock{now: total.watermark})
	if total.records > 0 {
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

// stopWALWaiters ends the shards' WAL waiter goroutines; the actor tree
// has stopped, so nothing sends to their queues any more.
func (n *Node) stopWALWaiters() {
	for _, h := range n.shards {
		if h.walq != nil {
			close(h.walq)
		}
	}
}

// Config returns the node's effective configuration (a copy: changing it
// changes nothing).
func (n *Node) Config() Config {
	c := n.cfg
	c.Intervals = slices.Clone(c.Intervals)
	c.Symbols = slices.Clone(c.Symbols)
	return c
}

// Workers returns the number of pinned workers the shards run on.
func (n *Node) Workers() int { return n.pool.Workers() }

// System returns the node's actor system, for embedding programs that talk
// to the node with actor messages.
func (n *Node) System() *actor.ActorSystem { return n.system }

// IngestPID is the ingest router: send it *messages.TradeBatch with
// RequestFuture and receive an *IngestReply.
func (n *Node) IngestPID() *actor.PID { return n.router }

// IngestReply answers a *messages.TradeBatch sent to IngestPID.
type IngestReply struct {
	Result IngestResult
	Err    error
}

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
// The shards read trades in place: the caller must not modify them until
// Ingest returns.
func (n *Node) Ingest(ctx context.Context, trades []messages.Trade) (IngestResult, error) {
	return n.IngestAsync(ctx, trades).Wait(ctx)
}

// IngestCall is an ingest request in flight. The node recycles it once
// Wait returns: it must not be used after that.
//
// A request is grouped without copying a trade: each shard gets the list
// of its trades' indices in the caller's slice (4 bytes per trade) and
// reads them there. Copying 64-byte trades into per-shard buffers cost
// more than aggregating them (the writes scatter over 64 destinations),
// and a shard that must be able to rebuild its state keeps what it needs
// itself (see shard.keep).
type IngestCall struct {
	n      *Node
	trades []messages.Trade // the caller's, read in place until Wait returns
	now    int64            // unix ms at IngestAsync: the future-time check
	parts  []shardPart      // by shard; each filled and sent by its worker's partition
	res    IngestResult
	err    error
	sent   bool // the request went to the router; every partition answers

	// Set by the router: the request's sequence number and the clock
	// every shard was sent before it.
	seq        uint64
	tickBefore int64

	// replies: one summary per partition, one answer per touched shard;
	// capacity: every shard and partition. pending counts the replies
	// still to come (see arrive); whoever sends the last one signals done,
	// so Wait wakes once per request, not once per reply.
	replies chan partResult
	pending atomic.Int32
	done    chan struct{}
	clock   batchDone // event clock: the message that moves the watermark
	maxTime int64     // the newest valid trade (from the summaries)
	// Per partition w: routes[w] hands the request to it, touched[w] are
	// its shards with trades in the request, rejected[w] the invalid
	// trades it reports, sends[w] the chunk messages it sent.
	routes   []partitionRoute
	touched  [][]int32
	rejected [][]ItemError
	sends    [][]chunkPart

	// The request's chunks (see partition.walk), sized by IngestAsync:
	// chunk k spans trades [k*chunk, (k+1)*chunk); ready[w][k] is set
	// (by partition w only) once chunk k is classified.
	chunk      int
	chunks     []chunkInfo
	ready      [][]bool
	classified atomic.Int32 // chunks claimed for classifying (by any partition)
}

// addPending counts a part handed to a shard, before it is sent: its
// answer is one more reply to wait for.
func (c *IngestCall) addPending() { c.pending.Add(1) }

// arrive sends a reply (a partition's summary or a part's answer) and
// counts it; the last one wakes Wait. The count cannot reach zero early:
// a partition counts each part before sending it and its summary after
// the last one, so until every summary arrived the count stays above zero.
func (c *IngestCall) arrive(r partResult) {
	c.replies <- r
	if c.pending.Add(-1) == 0 {
		c.done <- struct{}{}
	}
}

// chunkBounds returns the trades of chunk k.
func (c *IngestCall) chunkBounds(k int) (lo, hi int) {
	return k * c.chunk, min((k+1)*c.chunk, len(c.trades))
}

// sizeChunks splits the request into chunks of n.cfg.chunkTrades trades (a
// durable node's into one).
func (c *IngestCall) sizeChunks() {
	n := c.n
	c.chunk = len(c.trades)
	if n.store == nil {
		c.chunk = n.cfg.chunkTrades
	}
	k := (len(c.trades) + c.chunk - 1) / c.chunk
	for len(c.chunks) < k {
		ready := make([]partitionReady, len(n.partitions))
		for w := range ready {
			ready[w] = partitionReady{call: c, chunk: len(c.chunks)}
		}
		c.chunks = append(c.chunks, chunkInfo{ready: ready})
	}
	c.chunks = c.chunks[:k]
	c.classified.Store(0)
	for w := range c.ready {
		if cap(c.ready[w]) < k {
			c.ready[w] = make([]bool, k)
		}
		c.ready[w] = c.ready[w][:k]
	}
}

// newCall returns a recycled (or new) IngestCall for trades.
//
// The node keeps up to MailboxSize recycled calls (as many as may be in
// flight), with their buffers at the size of the largest request each
// served, and never lets them go: a sync.Pool would drop them at every
// second GC, and every request after that would allocate its buffers
// afresh. So the memory of the ingest high-water mark stays allocated, as
// the shards' buffers do.
func (n *Node) newCall(trades []messages.Trade) *IngestCall {
	var c *IngestCall
	select {
	case c = <-n.calls:
	default:
		w := len(n.partitions)
		c = &IngestCall{n: n, parts: make([]shardPart, len(n.shards)), replies: make(chan partResult, len(n.shards)+w),
			routes: make([]partitionRoute, w), touched: make([][]int32, w), rejected: make([][]ItemError, w),
			sends: make([][]chunkPart, w), ready: make([][]bool, w)}
		c.clock.done = make(chan struct{}, 1)
		c.clock.call = c
		c.done = make(chan struct{}, 1)
		for sh := range c.parts {
			c.parts[sh].call = c
		}
		for w := range c.routes {
			c.routes[w].call = c
		}
	}
	c.trades = trades
	c.res.Rejected = []ItemError{}
	return c
}

// recycle readies c for another request. Only a call every partition and
// shard answered may be recycled: they hold it until then.
func (n *Node) recycle(c *IngestCall) {
	for w, touched := range c.touched {
		for _, sh := range touched {
			p := &c.parts[sh]
			*p = shardPart{call: c, idx: p.idx[:0]}
		}
		c.touched[w] = touched[:0]
		clear(c.rejected[w]) // drop the error strings
		c.rejected[w] = c.rejected[w][:0]
		clear(c.ready[w])
	}
	c.trades, c.now, c.maxTime, c.res, c.err, c.sent = nil, 0, 0, IngestResult{}, nil, false
	c.seq, c.tickBefore = 0, 0
	select {
	case n.calls <- c:
	default: // as many are kept as may be in flight: let this one go
	}
}

// IngestAsync starts an ingest request and returns once the request is
// ordered behind every request this goroutine started before: requests
// started one after another by one goroutine are applied in that order.
// Wait collects the result. IngestAsync blocks only for back-pressure
// (Config.MailboxSize requests in flight, up to Config.BusyTimeout). The
// shards read trades in place: the caller must not modify them until Wait
// returns.
//
// The caller's goroutine does no per-trade work: validating and grouping
// the trades is done by the router partitions on the pinned workers, each
// for its own shards, so the work is spread evenly over the cores whatever
// CPU the caller runs on.
func (n *Node) IngestAsync(ctx context.Context, trades []messages.Trade) *IngestCall {
	n.inflight.Add(1)
	c := n.newCall(trades)
	if n.closed.Load() {
		c.err = ErrClosed
		return c
	}
	if len(trades) > math.MaxInt32 {
		c.err = fmt.Errorf("actors: %d trades in one request, at most %d", len(trades), math.MaxInt32)
		return c
	}
	if len(trades) == 0 {
		return c
	}
	if err := n.brokenCheck(); err != nil {
		c.err = err
		return c
	}
	if err := n.acquire(ctx); err != nil {
		c.err = err
		return c
	}
	c.now = n.cfg.Now().UnixMilli()
	c.sizeChunks()
	// Every partition's summary; the parts are added as the partitions
	// hand them out (before the shards can answer them).
	c.pending.Store(int32(len(c.routes)))
	c.sent = true
	n.system.Root.Send(n.router, c)
	return c
}

// Wait returns the request's result once every shard applied its part.
// Call it exactly once per IngestCall; the call is recycled when it
// returns. Once the request was sent, Wait waits for the shards whatever
// ctx says (they read the caller's trades until they answer, and they
// always answer: applied, refused, or the node stopped).
func (c *IngestCall) Wait(ctx context.Context) (IngestResult, error) {
	n := c.n
	defer n.inflight.Done()
	if c.err != nil || !c.sent {
		res, err := c.res, c.err
		n.recycle(c)
		if err != nil {
			return IngestResult{}, err
		}
		return res, nil
	}
	res := c.res
	var err error
	// Every partition sends a summary (the parts it sent, the trades it
	// rejected); every part sent is answered.
	select {
	case <-c.done:
	case <-n.halted:
		return IngestResult{}, ErrClosed // c is not recycled: shards may hold it
	case <-n.broken:
		// An actor that holds part of c will never answer: c is not
		// recycled.
		n.release()
		return IngestResult{}, n.brokenErr
	}
	// Every reply is in c.replies now (each was sent before it counted).
	summaries, parts, answered := 0, 0, 0
	for summaries < len(c.routes) || answered < parts {
		r := <-c.replies
		if r.summary {
			summaries++
			parts += r.parts
			c.maxTime = max(c.maxTime, r.maxTime)
			res.Rejected = append(res.Rejected, r.rejected...)
			continue
		}
		answered++
		if r.err != nil {
			err = errors.Join(err, fmt.Errorf("actors: shard %d: %w", r.shard, r.err))
			continue
		}
		if r.wal != nil {
			// Durable first: a trade is acknowledged only once its WAL
			// record is (SPEC §4). Shards answer after that already.
			seq, werr := r.wal.Wait()
			if werr != nil {
				err = errors.Join(err, fmt.Errorf("actors: shard %d: %w", r.shard, werr))
				continue
			}
			res.LastSeq = max(res.LastSeq, seq)
		} else {
			res.LastSeq = max(res.LastSeq, c.seq)
		}
		res.Accepted += r.applied
		res.Duplicates += r.duplicates
		res.Rejected = append(res.Rejected, r.rejected...)
	}
	if err == nil && parts > 0 && n.cfg.Clock == ClockEvent {
		// The watermark moves to the request's newest trade and every
		// shard learns it before the request is answered.
		c.clock.maxTime = c.maxTime
		n.system.Root.Send(n.router, &c.clock)
		select {
		case <-c.clock.done:
		case <-n.halted:
			return IngestResult{}, ErrClosed
		case <-n.broken:
			n.release()
			return IngestResult{}, n.brokenErr
		}
	}
	n.release()
	n.recycle(c)
	if err != nil {
		return IngestResult{}, err
	}
	slices.SortFunc(res.Rejected, func(a, b ItemError) int { return a.Index - b.Index })
	n.accepted.Add(uint64(res.Accepted))
	n.duplicates.Add(uint64(res.Duplicates))
	n.rejected.Add(uint64(len(res.Rejected)))
	return res, nil
}

// actorStopped records that an actor was stopped for good. Close stops
// every actor: that is not a failure. Otherwise the actor exceeded its
// restart limit and the node is broken (see ErrActorStopped).
func (n *Node) actorStopped(name, lastFailure string) {
	if n.closed.Load() {
		return
	}
	n.brokenOnce.Do(func() {
		n.brokenErr = fmt.Errorf("%w (%s, last failure: %s)", ErrActorStopped, name, lastFailure)
		n.log.Error("an actor exceeded its restart limit and stopped: the node refuses ingest and queries until restarted",
			"actor", name, "last_failure", lastFailure)
		close(n.broken)
	})
}

// brokenCheck returns the node's ErrActorStopped error, if it is broken.
func (n *Node) brokenCheck() error {
	select {
	case <-n.broken:
		return n.brokenErr
	default:
		return nil
	}
}

// acquire takes an ingest token (one per request in flight), waiting at
// most BusyTimeout.
func (n *Node) acquire(ctx context.Context) error {
	select {
	case n.gate <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(n.cfg.BusyTimeout)
	defer timer.Stop()
	select {
	case n.gate <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: %d requests in flight", ErrBusy, cap(n.gate))
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (n *Node) release() { <-n.gate }

// hasInterval reports whether iv is configured.
func (n *Node) hasInterval(iv messages.Interval) bool { return slices.Contains(n.cfg.Intervals, iv) }

// Klines answers a Binance-style klines query: bars of symbol and iv with
// open time in [start, end] (0 = unbounded), ascending, at most limit, the
// open bar last. Without start it returns the latest limit bars.
func (n *Node) Klines(ctx context.Context, symbol string, iv messages.Interval, start, end int64, limit int) ([]messages.Kline, error) {
	if !n.hasInterval(iv) {
		return nil, fmt.Errorf("%w: %s (configured: %s)", ErrUnknownInterval, iv, messages.FormatIntervals(n.cfg.Intervals))
	}
	if limit <= 0 {
		limit = 500
	}
	open, hasOpen, err := n.openBar(ctx, symbol, iv)
	if err != nil {
		return nil, err
	}
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
	bars, err := n.klines.Klines(symbol, iv, lo, hi, fetch, nil)
	if err != nil {
		return nil, fmt.Errorf("actors: klines %s %s: %w", symbol, iv, err)
	}
	if hasOpen && open.OpenTime >= lo && open.OpenTime <= hi {
		// The store holds closed bars only; the open one comes from the
		// shard and is always the newest.
		for len(bars) > 0 && bars[len(bars)-1].OpenTime >= open.OpenTime {
			bars = bars[:len(bars)-1]
		}
		bars = append(bars, open)
	}
	if len(bars) > limit {
		if start > 0 {
			bars = bars[:limit]
		} else {
			bars = bars[len(bars)-limit:]
		}
	}
	return bars, nil
}

// stepBack returns the open time k bars before open.
func stepBack(iv messages.Interval, open int64, k int) int64 {
	if d := iv.Fixed(); d > 0 {
		return open - int64(k)*d
	}
	t := time.UnixMilli(open).UTC()
	return t.AddDate(0, -k, 0).UnixMilli()
}

func (n *Node) openBar(ctx context.Context, symbol string, iv messages.Interval) (messages.Kline, bool, error) {
	if n.closed.Load() {
		return messages.Kline{}, false, ErrClosed
	}
	if err := n.brokenCheck(); err != nil {
		return messages.Kline{}, false, err
	}
	h := n.shards[shardOfFast(symbol, len(n.shards))]
	reply := make(chan openBarReply, 1)
	h.send(n.system, &openBarQuery{symbol: symbol, iv: iv, reply: reply})
	select {
	case r := <-reply:
		return r.bar, r.ok, nil
	case <-ctx.Done():
		return messages.Kline{}, false, fmt.Errorf("actors: open bar of %s from shard %d: %w", symbol, h.id, ctx.Err())
	case <-n.broken:
		return messages.Kline{}, false, fmt.Errorf("actors: open bar of %s from shard %d: %w", symbol, h.id, n.brokenErr)
	}
}

// Symbols returns every symbol with state on this node, sorted.
func (n *Node) Symbols(ctx context.Context) ([]string, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	if err := n.brokenCheck(); err != nil {
		return nil, err
	}
	replies := make(chan []string, len(n.shards))
	for _, h := range n.shards {
		h.send(n.system, &symbolsQuery{reply: replies})
	}
	var out []string
	for range n.shards {
		select {
		case s := <-replies:
			out = append(out, s...)
		case <-ctx.Done():
			return nil, fmt.Errorf("actors: symbols: %w", ctx.Err())
		case <-n.broken:
			return nil, fmt.Errorf("actors: symbols: %w", n.brokenErr)
		}
	}
	slices.Sort(out)
	return out, nil
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
	s := Stats{Accepted: n.accepted.Load(), Duplicates: n.duplicates.Load(), Rejected: n.rejected.Load(),
		Deltas: n.deltas.Load(), LastSeq: n.seq.Load()}
	for _, h := range n.shards {
		s.Restarts += h.restarts.Load()
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
	n.shards[i].send(n.system, &PanicShard{Reason: reason})
	return nil
}

// Checkpoint makes every shard checkpoint now and waits for them.
func (n *Node) Checkpoint(ctx context.Context) error {
	done := make(chan error, len(n.shards))
	for _, h := range n.shards {
		h.send(n.system, &checkpointNow{done: done})
	}
	var errs []error
	for range n.shards {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-ctx.Done():
			return fmt.Errorf("actors: checkpoint: %w", ctx.Err())
		case <-n.broken:
			return fmt.Errorf("actors: checkpoint: %w", n.brokenErr)
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
		n.closed.Store(true)
		n.stop()
		n.bg.Wait()
		waited := make(chan struct{})
		go func() { n.inflight.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			err = fmt.Errorf("actors: close: in-flight ingest: %w", ctx.Err())
		}
		if cerr := n.Checkpoint(ctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if serr := n.system.Root.StopFuture(n.root).Wait(); serr != nil {
			err = errors.Join(err, fmt.Errorf("actors: stop actor tree: %w", serr))
		}
		close(n.halted)
		n.stopWALWaiters()
		n.pool.Close()
		n.log.Info("node stopped", "accepted", n.accepted.Load(), "uptime", time.Since(n.started).Round(time.Millisecond))
	})
	return err
}
