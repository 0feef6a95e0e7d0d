package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/pinned"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/messages"
)

// ErrBusy: the node's ingest queues stayed full for Config.BusyTimeout.
// Nothing of the request was applied; retry later (HTTP 503 +
// Retry-After).
var ErrBusy = errors.New("actors: node busy, retry later")

// DefaultChunkTrades is the number of trades in a chunk of a memory-only
// node's request: the chunk (80 bytes a trade) and its shard lists stay
// well inside a core's L2.
const DefaultChunkTrades = 8192

// Config configures the ingest path of a node.
type Config struct {
	System *actor.ActorSystem
	Life   *lifecycle.Life
	Log    *slog.Logger
	Pool   *pinned.Pool
	Shards []*shard.Handle
	// EventClock: the clock is the newest accepted trade time, moved by
	// every request (else the wall clock ticks through WallTick).
	EventClock bool
	// Durable: shards write each part to the WAL whole, so a request is
	// one chunk.
	Durable bool
	// ChunkTrades is the chunk size of a memory-only node's requests.
	ChunkTrades int
	// MaxRequests bounds the requests in flight; MaxTrades the trades in
	// them (the caller's memory the shards read in place, and the chunk
	// messages queued in the shards' mailboxes). A request waits up to
	// BusyTimeout for room, then fails with ErrBusy.
	MaxRequests int
	MaxTrades   int
	BusyTimeout time.Duration
	// Now is the wall clock, for the future-time check of trades.
	Now func() time.Time
	// RecordClock, if set, is told the event clock each time every
	// request up to it is applied (a durable node records it: see
	// storage.Store.RecordClock).
	RecordClock func(int64)
}

// Result is the answer to one ingest request, given once every accepted
// trade was applied by its shard.
type Result struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	LastSeq    uint64            `json:"last_seq"`
	Rejected   []shard.ItemError `json:"rejected"`
}

// Counters are the ingest path's totals.
type Counters struct {
	Accepted, Duplicates, Rejected uint64
	LastSeq                        uint64
}

// Ingest is a node's ingest path: the router, its partitions (one per
// pinned worker) and the bounded queues in front of them.
type Ingest struct {
	cfg        Config
	router     *actor.PID
	RouterStat lifecycle.Stats
	partitions []*Partition

	seq        atomic.Uint64 // last input sequence number assigned by the router
	accepted   atomic.Uint64
	duplicates atomic.Uint64
	rejected   atomic.Uint64

	calls    chan *Call    // recycled calls, at most MaxRequests (see newCall)
	gate     chan struct{} // one token per request in flight
	trades   tradeGate     // trades in flight
	inflight inflight      // calls between IngestAsync and Wait's return
	embedded *embedQueue   // *messages.TradeBatch requests of embedding programs
}

// New builds the ingest path; spawn its actors next (NewRouter,
// Partitions).
func New(cfg Config) *Ingest {
	if cfg.ChunkTrades == 0 {
		cfg.ChunkTrades = DefaultChunkTrades
	}
	g := &Ingest{cfg: cfg, gate: make(chan struct{}, cfg.MaxRequests), calls: make(chan *Call, cfg.MaxRequests)}
	g.trades.init(cfg.MaxTrades)
	g.RouterStat.Name, g.RouterStat.Parent, g.RouterStat.Kind = "ingest", "klinecast", "router"
	nw := cfg.Pool.Workers()
	g.partitions = make([]*Partition, nw)
	for w := range g.partitions {
		// The classify scratch up front: a partition may classify its
		// first chunk only in a later request (another one claimed every
		// chunk so far), and allocating then would land in the hot path.
		ph := &Partition{worker: w, g: g, cache: new(symbolShards),
			shardOf: make([]int16, cfg.ChunkTrades), fillAt: make([]int32, len(cfg.Shards))}
		ph.Stats.Name, ph.Stats.Parent, ph.Stats.Kind = PartitionName(w), "shards", "router-partition"
		nsh := len(cfg.Shards)
		ph.fill = func(sym string) int32 {
			if messages.ValidateSymbol(sym) != nil {
				return -1
			}
			return int32(messages.ShardOf(sym, nsh))
		}
		for sh := range cfg.Shards {
			if cfg.Pool.WorkerOf(sh) == w {
				ph.shards = append(ph.shards, int32(sh))
			}
		}
		g.partitions[w] = ph
	}
	g.embedded = newEmbedQueue(g, cfg.MaxRequests)
	return g
}

// PartitionName is the actor name of worker w's router partition.
func PartitionName(w int) string { return fmt.Sprintf("router-%d", w) }

// NewRouter returns a new incarnation of the router actor.
func (g *Ingest) NewRouter() actor.Actor { return &router{g: g} }

// SetRouter records the router's PID.
func (g *Ingest) SetRouter(pid *actor.PID) { g.router = pid }

// Partitions returns the router partitions, by worker.
func (g *Ingest) Partitions() []*Partition { return g.partitions }

// SetClock gives the router the clock the shards recovered to; it ticks
// every shard to it so they all agree.
func (g *Ingest) SetClock(now int64) { g.cfg.System.Root.Send(g.router, &setClock{now: now}) }

// WallTick moves the wall clock to now (unix ms).
func (g *Ingest) WallTick(now int64) {
	g.RouterStat.Enqueued.Add(1)
	g.cfg.System.Root.Send(g.router, &clockTick{now: now})
}

// Counters returns the totals.
func (g *Ingest) Counters() Counters {
	return Counters{Accepted: g.accepted.Load(), Duplicates: g.duplicates.Load(), Rejected: g.rejected.Load(),
		LastSeq: g.seq.Load()}
}

// Close refuses new requests and waits (within ctx) until every request
// started has returned from Wait.
func (g *Ingest) Close(ctx context.Context) error {
	g.embedded.close()
	if err := g.inflight.closeAndWait(ctx); err != nil {
		return fmt.Errorf("actors: close: in-flight ingest: %w", err)
	}
	return nil
}

// Ingest runs one request to its end: IngestAsync, then Wait.
func (g *Ingest) Ingest(ctx context.Context, trades []messages.Trade) (Result, error) {
	return g.IngestAsync(ctx, trades).Wait()
}

// IngestAsync starts an ingest request and returns once the request is
// ordered behind every request this goroutine started before: requests
// started one after another by one goroutine are applied in that order.
// Wait collects the result. IngestAsync blocks only for back-pressure
// (Config.MaxRequests requests or Config.MaxTrades trades in flight, up to
// Config.BusyTimeout). The shards read trades in place: the caller must not
// modify them until Wait returns.
//
// The caller's goroutine does no per-trade work: validating and grouping
// the trades is done by the router partitions on the pinned workers, each
// for its own shards, so the work is spread evenly over the cores whatever
// CPU the caller runs on.
func (g *Ingest) IngestAsync(ctx context.Context, trades []messages.Trade) *Call {
	c := g.newCall(trades)
	if !g.inflight.enter() {
		c.err = lifecycle.ErrClosed
		return c
	}
	c.entered = true
	if len(trades) > math.MaxInt32 {
		c.err = fmt.Errorf("actors: %d trades in one request, at most %d", len(trades), math.MaxInt32)
		return c
	}
	if len(trades) == 0 {
		return c
	}
	if err := g.cfg.Life.Err(); err != nil {
		c.err = err
		return c
	}
	if err := g.acquire(ctx, len(trades)); err != nil {
		c.err = err
		return c
	}
	c.holds = true
	c.now = g.cfg.Now().UnixMilli()
	c.sizeChunks()
	// Every partition's summary; the parts are added as the partitions
	// hand them out (before the shards can answer them).
	c.SetPending(int32(len(c.routes)))
	c.sent = true
	g.RouterStat.Enqueued.Add(1)
	g.cfg.System.Root.Send(g.router, c)
	return c
}

// acquire takes a request token and room for n trades, waiting at most
// BusyTimeout for both. It allocates nothing unless it has to wait.
func (g *Ingest) acquire(ctx context.Context, n int) error {
	var timer *time.Timer
	var expired <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	select {
	case g.gate <- struct{}{}:
	default:
		timer = time.NewTimer(g.cfg.BusyTimeout)
		expired = timer.C
		select {
		case g.gate <- struct{}{}:
		case <-expired:
			return fmt.Errorf("%w: %d requests in flight", ErrBusy, cap(g.gate))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		changed, ok := g.trades.tryAcquire(n)
		if ok {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(g.cfg.BusyTimeout)
			expired = timer.C
		}
		select {
		case <-changed:
		case <-expired:
			<-g.gate
			return fmt.Errorf("%w: %d trades in flight, room for %d", ErrBusy, g.trades.inUse(), g.trades.max)
		case <-ctx.Done():
			<-g.gate
			return ctx.Err()
		}
	}
}

// release gives back what acquire took.
func (g *Ingest) release(n int) {
	g.trades.release(n)
	<-g.gate
}

// tradeGate bounds the trades in flight. A request larger than the bound
// is let in alone, when nothing else is in flight (it could never fit
// otherwise).
type tradeGate struct {
	max int
	mu  sync.Mutex
	// used: trades in flight; changed, if a waiter made it, is closed at
	// the next release.
	used    int
	changed chan struct{}
}

func (t *tradeGate) init(max int) { t.max = max }

// tryAcquire takes room for n trades, or returns a channel closed once
// room may have been freed.
func (t *tradeGate) tryAcquire(n int) (<-chan struct{}, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.used == 0 || t.used+n <= t.max {
		t.used += n
		return nil, true
	}
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return t.changed, false
}

func (t *tradeGate) release(n int) {
	t.mu.Lock()
	t.used -= n
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
	t.mu.Unlock()
}

func (t *tradeGate) inUse() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.used
}

// inflight counts the requests between IngestAsync and the return of their
// Wait, and refuses new ones once closed. (A sync.WaitGroup cannot do this:
// an Add racing the Wait of Close is a misuse of it.)
type inflight struct {
	mu     sync.Mutex
	n      int
	closed bool
	zero   chan struct{} // made by closeAndWait, closed when n reaches 0
}

// enter counts a request; false once closed.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	f.n--
	if f.n == 0 && f.zero != nil {
		close(f.zero)
		f.zero = nil
	}
	f.mu.Unlock()
}

// closeAndWait refuses new requests and waits for those in flight.
func (f *inflight) closeAndWait(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	if f.n == 0 {
		f.mu.Unlock()
		return nil
	}
	if f.zero == nil {
		f.zero = make(chan struct{})
	}
	zero := f.zero
	f.mu.Unlock()
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RouterPID returns the router's PID.
func (g *Ingest) RouterPID() *actor.PID { return g.router }
