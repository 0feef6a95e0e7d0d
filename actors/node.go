package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

	shards []*shardHandle
	tree   *tree

	root   *actor.PID
	router *actor.PID

	seq    atomic.Uint64 // last input sequence number assigned by the router
	deltas atomic.Uint64 // deltas delivered by shards

	accepted   atomic.Uint64
	duplicates atomic.Uint64
	rejected   atomic.Uint64

	closeOnce sync.Once
	closed    atomic.Bool
	inflight  sync.WaitGroup // Ingest calls in progress
	stop      context.CancelFunc
	bg        sync.WaitGroup // background goroutines (checkpoints)
	started   time.Time
	recovery  RecoveryStats
}

// Start builds and starts a node.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, started: time.Now()}
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
		n.shards[i] = &shardHandle{id: i, node: n, gate: make(chan struct{}, cfg.MailboxSize),
			recovered: make(chan recovery, 1), appliedSeq: math.MaxUint64}
		if cfg.Store != nil {
			// At most MailboxSize parts are queued or waiting per shard
			// (the gate), so sends to walq never block.
			n.shards[i].walq = make(chan *shardPart, cfg.MailboxSize)
		}
	}
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return n.log.With("lib", "protoactor")
	}))
	n.tree = newTree()
	ready := make(chan error, 1)
	props := actor.PropsFromProducer(func() actor.Actor { return &guardian{n: n, ready: ready} },
		actor.WithSupervisor(restartStrategy()))
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
		n.system.Root.StopFuture(n.root).Wait()
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
// producer may retry a whole batch safely. Ingest does not retain trades.
//
// Per symbol, trades must arrive in aggregate-id order (as an exchange feed
// delivers them): a lower id than one already applied is a duplicate.
// Concurrent Ingest calls are ordered by the router in the order they
// reach it; a producer that needs its own requests kept in order while
// several are in flight uses IngestAsync.
func (n *Node) Ingest(ctx context.Context, trades []messages.Trade) (IngestResult, error) {
	return n.IngestAsync(ctx, trades).Wait(ctx)
}

// IngestCall is an ingest request in flight.
type IngestCall struct {
	n       *Node
	res     IngestResult
	parts   []*shardPart
	maxTime int64
	routed  chan struct{} // closed by the router (see ingestBatch)
	err     error
	done    func()
}

// IngestAsync starts an ingest request and returns once the request is
// ordered behind every request this goroutine started before: requests
// started one after another by one goroutine are applied in that order.
// Wait collects the result. It blocks only for back-pressure (full shard
// mailboxes, up to Config.BusyTimeout). IngestAsync does not retain
// trades.
func (n *Node) IngestAsync(ctx context.Context, trades []messages.Trade) *IngestCall {
	n.inflight.Add(1)
	call := &IngestCall{n: n, done: n.inflight.Done}
	if n.closed.Load() {
		call.err = ErrClosed
		return call
	}
	res := &call.res
	res.Rejected = []ItemError{}
	now := n.cfg.Now().UnixMilli()
	parts, maxTime, rejected := n.groupTrades(trades, now)
	res.Rejected = append(res.Rejected, rejected...)
	if parts == nil {
		return call
	}
	if err := n.acquire(ctx, parts); err != nil {
		call.err = err
		return call
	}
	call.parts = parts
	call.maxTime = maxTime
	call.routed = make(chan struct{})
	n.system.Root.Send(n.router, &ingestBatch{parts: parts, maxTime: maxTime, routed: call.routed})
	return call
}

// groupTrades validates trades and groups the valid ones by shard: parts
// (nil when no trade is valid) indexed by shard, nil where a shard has no
// trade; the newest valid trade time; and the invalid trades.
func (n *Node) groupTrades(trades []messages.Trade, now int64) (parts []*shardPart, maxTime int64, rejected []ItemError) {
	// Group by shard with a counting sort: one pass validates, hashes and
	// counts; one allocation holds every part's trades contiguously; a
	// second pass copies them in. The parts own their copies, so shards
	// read contiguous memory and a memory-only shard can keep its part for
	// recovery without copying again. A large request is grouped by
	// several goroutines, each over a contiguous chunk: the producer's
	// side is the pipeline's serial stage, and the pinned workers are idle
	// while it runs.
	nsh := len(n.shards)
	chunks := 1
	if len(trades) >= parallelGroupMin {
		chunks = min(runtime.GOMAXPROCS(0), len(trades)/(parallelGroupMin/2))
	}
	// A chunk's symbol table is indexed by symChunkShift bits: keep every
	// chunk below that many trades (a chunk has at most one entry per trade).
	chunks = max(chunks, (len(trades)>>(symChunkShift-1))+1)
	shardOf := make([]int32, len(trades)) // -1: rejected
	symOf := make([]uint32, len(trades))  // packedTrade.sym
	counts := make([][]int32, chunks)     // per chunk, per shard
	results := make([]chunkResult, chunks)
	symbols := make([][]string, chunks) // per chunk: its distinct symbols
	span := (len(trades) + chunks - 1) / chunks
	parallel(chunks, func(c int) {
		lo, hi := c*span, min((c+1)*span, len(trades))
		counts[c] = make([]int32, nsh)
		results[c], symbols[c] = classify(trades, lo, hi, now, nsh, uint32(c), shardOf, symOf, counts[c])
	})
	valid := int32(0)
	for c := range results {
		rejected = append(rejected, results[c].rejected...)
		maxTime = max(maxTime, results[c].maxTime)
		valid += results[c].valid
	}
	if valid == 0 {
		return nil, 0, rejected
	}
	buf := make([]packedTrade, valid)
	positions := make([]int32, valid)
	parts = make([]*shardPart, nsh)
	// next[c][sh]: where chunk c writes its next trade of shard sh; chunk
	// c's trades of a shard follow chunk c-1's, so request order holds.
	next := make([][]int32, chunks)
	off := int32(0)
	for sh := 0; sh < nsh; sh++ {
		start := off
		for c := range chunks {
			if next[c] == nil {
				next[c] = make([]int32, nsh)
			}
			next[c][sh] = off
			off += counts[c][sh]
		}
		if off > start {
			parts[sh] = &shardPart{packed: buf[start:off:off], symbols: symbols, positions: positions[start:off:off], reply: make(chan partResult, 1)}
		}
	}
	parallel(chunks, func(c int) {
		lo, hi := c*span, min((c+1)*span, len(trades))
		at := next[c]
		for i := lo; i < hi; i++ {
			if sh := shardOf[i]; sh >= 0 {
				j := at[sh]
				buf[j] = packTrade(&trades[i], symOf[i])
				positions[j] = int32(i)
				at[sh] = j + 1
			}
		}
	})
	return parts, maxTime, rejected
}

// parallelGroupMin is the request size from which grouping is split over
// goroutines (below it the goroutines cost more than they save).
const parallelGroupMin = 16_384

// parallel runs fn(0..n-1) on n goroutines (the last on the caller's) and
// waits for them.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Go(func() { fn(i) })
	}
	fn(0)
	wg.Wait()
}

// chunkResult is what classify found in one chunk of a request.
type chunkResult struct {
	valid    int32
	maxTime  int64
	rejected []ItemError
}

// classify validates trades[lo:hi], records each valid trade's shard in
// shardOf (-1: rejected) and its symbol in symOf (chunk c's table, which it
// returns), and counts them per shard.
func classify(trades []messages.Trade, lo, hi int, now int64, nsh int, c uint32, shardOf []int32, symOf []uint32, counts []int32) (chunkResult, []string) {
	var r chunkResult
	var table []string
	// A request holds few distinct symbols, each as one string when the
	// decoder interns them: remember the shard of (and the verdict on)
	// each symbol string by identity instead of hashing and checking it
	// per trade. An entry holds its string, so its address cannot be
	// reused by another string meanwhile.
	cache := new([2048]struct {
		sym   string
		shard int32  // -1: invalid symbol
		index uint32 // packedTrade.sym
	})
	for i := lo; i < hi; i++ {
		t := &trades[i]
		e := &cache[uintptr(unsafe.Pointer(unsafe.StringData(t.Symbol)))>>4%uintptr(len(cache))]
		if unsafe.StringData(e.sym) != unsafe.StringData(t.Symbol) || len(e.sym) != len(t.Symbol) || e.sym == "" {
			e.sym, e.shard = t.Symbol, -1
			if messages.ValidateSymbol(t.Symbol) == nil {
				e.shard = int32(shardOfFast(t.Symbol, nsh))
				// A symbol string evicted from the cache and seen again
				// gets a second entry: harmless, the table is per request.
				e.index = c<<symChunkShift | uint32(len(table))
				table = append(table, t.Symbol)
			}
		}
		sh := e.shard
		err := t.ValidateFields(now)
		if sh < 0 && err == nil {
			err = messages.ValidateSymbol(t.Symbol)
		}
		if err != nil {
			r.rejected = append(r.rejected, ItemError{Index: i, Error: err.Error()})
			shardOf[i] = -1
			continue
		}
		shardOf[i] = sh
		symOf[i] = e.index
		counts[sh]++
		r.maxTime = max(r.maxTime, t.Time)
		r.valid++
	}
	return r, table
}

// Wait returns the request's result once every shard applied its part.
// Call it exactly once per IngestCall.
func (c *IngestCall) Wait(ctx context.Context) (IngestResult, error) {
	if c.done != nil {
		defer c.done()
		c.done = nil
	}
	if c.err != nil {
		return IngestResult{}, c.err
	}
	n := c.n
	res := c.res
	if c.routed != nil {
		select {
		case <-c.routed:
		case <-ctx.Done():
			return IngestResult{}, fmt.Errorf("actors: waiting for the ingest router: %w", ctx.Err())
		}
	}
	for sh, p := range c.parts {
		if p == nil {
			continue
		}
		select {
		case r := <-p.reply:
			if r.err != nil {
				return IngestResult{}, fmt.Errorf("actors: shard %d: %w", sh, r.err)
			}
			if r.wal != nil {
				// Durable first: a trade is acknowledged only once its
				// WAL record is (SPEC §4).
				seq, err := r.wal.Wait()
				if err != nil {
					return IngestResult{}, fmt.Errorf("actors: shard %d: %w", sh, err)
				}
				res.LastSeq = max(res.LastSeq, seq)
			}
			res.Accepted += r.applied
			res.Duplicates += r.duplicates
			res.Rejected = append(res.Rejected, r.rejected...)
		case <-ctx.Done():
			return IngestResult{}, fmt.Errorf("actors: waiting for shard %d: %w", sh, ctx.Err())
		}
		if n.store == nil {
			res.LastSeq = max(res.LastSeq, p.seq)
		}
	}
	slices.SortFunc(res.Rejected, func(a, b ItemError) int { return a.Index - b.Index })
	if n.cfg.Clock == ClockEvent && len(c.parts) > 0 {
		done := make(chan struct{})
		n.system.Root.Send(n.router, &batchDone{maxTime: c.maxTime, done: done})
		select {
		case <-done:
		case <-ctx.Done():
			return IngestResult{}, fmt.Errorf("actors: waiting for the clock: %w", ctx.Err())
		}
	}
	n.accepted.Add(uint64(res.Accepted))
	n.duplicates.Add(uint64(res.Duplicates))
	n.rejected.Add(uint64(len(res.Rejected)))
	return res, nil
}

// acquire takes one mailbox token for every part, waiting at most
// BusyTimeout; on failure it gives back what it took.
func (n *Node) acquire(ctx context.Context, parts []*shardPart) error {
	var timer *time.Timer
	for sh, p := range parts {
		if p == nil {
			continue
		}
		gate := n.shards[sh].gate
		select {
		case gate <- struct{}{}:
			continue
		default:
		}
		if timer == nil {
			timer = time.NewTimer(n.cfg.BusyTimeout)
			defer timer.Stop()
		}
		select {
		case gate <- struct{}{}:
		case <-timer.C:
			n.release(parts[:sh])
			return fmt.Errorf("%w: shard %d has %d batches queued", ErrBusy, sh, cap(gate))
		case <-ctx.Done():
			n.release(parts[:sh])
			return ctx.Err()
		}
	}
	return nil
}

func (n *Node) release(parts []*shardPart) {
	for sh, p := range parts {
		if p != nil {
			<-n.shards[sh].gate
		}
	}
}

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
	h := n.shards[shardOfFast(symbol, len(n.shards))]
	reply := make(chan openBarReply, 1)
	h.send(n.system, &openBarQuery{symbol: symbol, iv: iv, reply: reply})
	select {
	case r := <-reply:
		return r.bar, r.ok, nil
	case <-ctx.Done():
		return messages.Kline{}, false, fmt.Errorf("actors: open bar of %s from shard %d: %w", symbol, h.id, ctx.Err())
	}
}

// Symbols returns every symbol with state on this node, sorted.
func (n *Node) Symbols(ctx context.Context) ([]string, error) {
	if n.closed.Load() {
		return nil, ErrClosed
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
		n.stopWALWaiters()
		n.pool.Close()
		n.log.Info("node stopped", "accepted", n.accepted.Load(), "uptime", time.Since(n.started).Round(time.Millisecond))
	})
	return err
}
