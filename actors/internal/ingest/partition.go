package ingest

import (
	"math"
	"unsafe"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/messages"
)

// Router partitions
//
// The router orders requests; a router partition, one per pinned worker and
// running on it, validates them and hands each request's parts to the
// shards of its worker. It exists for the memory hierarchy: a shard reads
// its trades in place, one in 64 of the request scattered over megabytes,
// and from DRAM each of those reads is a cache miss that costs about as
// much as aggregating the trade. So a request is split into chunks of
// 8,192 trades, each classified by whichever partition claims it first.
// That partition reads the chunk sequentially (cheap: the hardware
// prefetches it), validates it and groups its trades by shard, and tells
// the other partitions; every
// partition hands out the chunks in order to its shards, a message per
// shard with that shard's trades of the chunk. A partition does one step
// (classify a chunk or hand one out) per mailbox turn and yields, so its
// worker runs the shards, reading the chunk from cache, before the
// partition goes on. Every shard gets its part's trades in request order,
// in one or more chunk messages, the last one flagged; the shard flushes
// and answers the request on the last one. The caller's goroutine does no
// per-trade work, so the load is spread evenly over the workers whatever
// CPU the caller runs on.
//
// Ticks for the shards travel through the partitions too, queued behind
// the requests routed before them, so a shard sees trades and ticks in the
// order the router decided.

// partitionRoute hands a routed request to a partition (one per request and
// worker, part of the Call).
type partitionRoute struct{ call *Call }

// partitionTick is a clock tick for some of a partition's shards.
type partitionTick struct {
	now    int64
	shards []int32
}

// partitionStep makes a partition walk its next chunk (sent to itself).
type partitionStep struct{}

// partitionEntry is a request or a tick waiting in a partition.
type partitionEntry struct {
	call *Call
	tick *partitionTick
}

// partitionReady tells a partition that another one classified a chunk
// of a request (part of the Call).
type partitionReady struct {
	call  *Call
	chunk int
}

// chunkInfo is one chunk of a request as its owner partition classified
// it: the chunk's valid trades grouped by shard (order[start[sh]:
// start[sh+1]] are shard sh's, in request order) and its newest valid
// trade.
type chunkInfo struct {
	order   []int32
	start   []int32 // len shards+1
	maxTime int64
	ready   []partitionReady // one message per partition
}

// Partition is the part of a router partition that outlives its actor
// incarnations.
type Partition struct {
	worker int
	g      *Ingest
	pid    *actor.PID
	// Stats are the partition actor's counters (mailbox, restarts,
	// failure, heartbeat).
	Stats  lifecycle.Stats
	shards []int32 // the shards on this worker

	queue []partitionEntry // in routing order; queue[0] is being walked
	// For queue[0]'s request: begun once set up, pos the next chunk to
	// hand out, maxTime the newest valid trade of the chunks handed out.
	begun   bool
	pos     int
	maxTime int64

	// cache maps symbol strings to shards (see symbolShards).
	cache *symbolShards
	fill  func(sym string) int32 // a symbol's shard for the cache (built once)
	// Scratch for classify.
	shardOf []int16
	fillAt  []int32

	stepPending bool // a partitionStep is in the mailbox
	step        partitionStep
}

// Worker returns the pinned worker the partition runs on.
func (p *Partition) Worker() int { return p.worker }

// NewActor returns a new incarnation of the partition actor.
func (p *Partition) NewActor() actor.Actor { return &partition{h: p} }

// Spawned records the partition actor's PID.
func (p *Partition) Spawned(pid *actor.PID) { p.pid = pid }

// Send queues msg for the partition.
func (p *Partition) Send(msg any) {
	p.Stats.Sent()
	p.g.cfg.System.Root.Send(p.pid, msg)
}

// partition is one incarnation of a router partition actor.
type partition struct{ h *Partition }

func (a *partition) Receive(ctx actor.Context) {
	h := a.h
	defer h.Stats.RecordPanic()
	switch m := ctx.Message().(type) {
	case *actor.Stopping:
		h.Stats.Stopping(h.g.cfg.Life)
		return
	case *actor.Started:
		// A restart lost the mailbox's step, if any: walk on.
		h.stepPending = false
		a.kick(ctx)
		return
	case *actor.Restarting:
		h.Stats.Restarts.Add(1)
		return
	case *partitionRoute:
		h.queue = append(h.queue, partitionEntry{call: m.call})
		a.kick(ctx)
	case *partitionTick:
		h.queue = append(h.queue, partitionEntry{tick: m})
		a.kick(ctx)
	case *partitionReady:
		// The request may not have reached the head of the queue (or
		// even arrived): the flag waits in it.
		m.call.ready[h.worker][m.chunk] = true
		a.kick(ctx)
	case *shard.Ping:
		h.Stats.PingSent.Store(0)
	case *partitionStep:
		h.stepPending = false
		if a.walk() {
			a.kick(ctx)
		}
	default:
		return
	}
	h.Stats.Processed.Add(1)
}

// kick makes sure a step is queued while there is work.
func (a *partition) kick(ctx actor.Context) {
	h := a.h
	if len(h.queue) > 0 && !h.stepPending {
		h.stepPending = true
		h.Stats.Enqueued.Add(1)
		ctx.Send(ctx.Self(), &h.step)
	}
}

// walk delivers the ticks at the head of the queue, then does one unit of
// work on the request after them: hand out its next chunk if it is
// classified, or else claim and classify the next chunk nobody has. It
// reports whether it did something (false: waiting for another partition,
// whose ready message will wake it).
//
// The chunks of a request are classified in order by whichever partition
// claims the next one first (an atomic counter in the request): it reads
// and validates the chunk once for every shard and tells the other
// partitions; each partition hands out every chunk, in order, to the
// shards of its worker. Claiming rather than fixed ownership balances the
// workers: one whose CPU also runs other threads (the caller, the router,
// the GC) classifies fewer chunks, and the other is not left waiting for
// it (with fixed round-robin owners a worker idled up to a quarter of the
// time). A partition claims at most four rounds ahead of the chunk it
// hands out next: close enough that the chunk is still in cache when the
// shards apply it (the claimer's shards from its core, the others from
// the claimer's). A durable node's request is one chunk: its shards write
// it to the WAL whole.
func (a *partition) walk() bool {
	h := a.h
	g := h.g
	for len(h.queue) > 0 && h.queue[0].tick != nil {
		t := h.queue[0].tick
		for _, sh := range t.shards {
			g.cfg.Shards[sh].Send(&shard.Tick{Now: t.now})
		}
		a.pop()
	}
	if len(h.queue) == 0 {
		return false
	}
	c := h.queue[0].call
	w := h.worker
	if !h.begun {
		a.begin(c)
	}
	if c.ready[w][h.pos] {
		a.handOut(c, h.pos)
		h.pos++
		if h.pos == len(c.chunks) {
			// The summary is the partition's last use of c: once the
			// producer has every summary and answer it recycles c.
			c.Arrive(shard.Result{Summary: true, Worker: w, Parts: len(c.touched[w]), MaxTime: h.maxTime, Rejected: c.rejected[w]})
			a.pop()
		}
		return true
	}
	// Claim the next chunk nobody classified yet (whoever has time does
	// it, so a worker slowed down by other threads on its CPU does less of
	// this), unless it is too far ahead of what this partition hands out.
	if k := int(c.classified.Load()); k < len(c.chunks) && k <= h.pos+4*len(g.partitions) &&
		c.classified.CompareAndSwap(int32(k), int32(k+1)) {
		a.classify(c, k)
		c.ready[w][k] = true
		for v, ph := range g.partitions {
			if v != w {
				ph.Send(&c.chunks[k].ready[v])
			}
		}
		return true
	}
	return false
}

// begin readies the partition for a request.
func (a *partition) begin(c *Call) {
	h := a.h
	w := h.worker
	h.begun, h.pos, h.maxTime = true, 0, 0
	// Room for every chunk message up front (shards hold pointers into
	// it until they answered) and for twice a fair share of trades per
	// shard, so a recycled call stops growing after a request or two.
	if want := len(h.shards) * (len(c.chunks) + 1); cap(c.sends[w]) < want {
		c.sends[w] = make([]shard.Chunk, 0, want)
	}
	c.sends[w] = c.sends[w][:0]
	want := 2*len(c.Trades)/len(c.parts) + 64
	for _, sh := range h.shards {
		if cap(c.parts[sh].Idx) < want {
			c.parts[sh].Idx = make([]int32, 0, want)
		}
	}
}

// classify validates chunk k of c and groups its valid trades by shard
// (every shard, not only this worker's), noting its newest valid trade;
// the invalid ones it reports itself.
func (a *partition) classify(c *Call, k int) {
	h := a.h
	w := h.worker
	nsh := len(c.parts)
	lo, hi := c.chunkBounds(k)
	ci := &c.chunks[k]
	if cap(h.shardOf) < hi-lo {
		h.shardOf = make([]int16, hi-lo)
	}
	shardOf := h.shardOf[:hi-lo]
	if len(ci.start) != nsh+1 {
		ci.start = make([]int32, nsh+1)
	}
	start := ci.start
	clear(start)
	maxTime := int64(0)
	fill := h.fill
	for i := lo; i < hi; i++ {
		t := &c.Trades[i]
		sh := h.cache.lookup(t.Symbol, fill)
		if sh >= 0 && t.FieldsValid(c.now) {
			maxTime = max(maxTime, t.Time)
			shardOf[i-lo] = int16(sh)
			start[sh+1]++
			continue
		}
		shardOf[i-lo] = -1
		err := t.ValidateFields(c.now)
		if err == nil {
			err = messages.ValidateSymbol(t.Symbol)
		}
		c.rejected[w] = append(c.rejected[w], shard.ItemError{Index: i, Error: err.Error()})
	}
	for sh := 1; sh <= nsh; sh++ {
		start[sh] += start[sh-1]
	}
	if cap(ci.order) < int(start[nsh]) {
		ci.order = make([]int32, start[nsh])
	}
	ci.order = ci.order[:start[nsh]]
	if cap(h.fillAt) < nsh {
		h.fillAt = make([]int32, nsh)
	}
	at := h.fillAt[:nsh]
	copy(at, start[:nsh])
	order := ci.order // a local: a store through ci.order would reload it
	for i, sh := range shardOf {
		if sh >= 0 {
			j := at[sh]
			order[j] = int32(lo + i)
			at[sh] = j + 1
		}
	}
	ci.maxTime = maxTime
}

// handOut gives each shard of this worker its trades of chunk k (the last
// chunk: a final message to every shard with trades in the request, with
// the event clock's tick).
func (a *partition) handOut(c *Call, k int) {
	h := a.h
	g := h.g
	w := h.worker
	ci := &c.chunks[k]
	h.maxTime = max(h.maxTime, ci.maxTime)
	last := k == len(c.chunks)-1
	sends := &c.sends[w]
	for _, sh := range h.shards {
		seg := ci.order[ci.start[sh]:ci.start[sh+1]]
		p := &c.parts[sh]
		if len(seg) == 0 && (!last || len(p.Idx) == 0) {
			continue
		}
		if len(p.Idx) == 0 {
			p.TickBefore = c.tickBefore
			c.touched[w] = append(c.touched[w], sh)
			c.AddPending()
		}
		from := int32(len(p.Idx))
		p.Idx = append(p.Idx, seg...)
		if last && g.cfg.EventClock {
			// The shards this request touches tick past it right away;
			// the others when it is known to be applied (batchDone), so a
			// request that fails moves no clock. Every partition saw every
			// chunk's newest trade, so they agree.
			p.TickAfter = max(c.tickBefore, h.maxTime)
		}
		*sends = append(*sends, shard.Chunk{Part: p, Lo: from, Hi: int32(len(p.Idx)), Last: last})
		g.cfg.Shards[sh].Send(&(*sends)[len(*sends)-1])
	}
}

// pop drops the head of the queue (in place: the queue's array is reused).
func (a *partition) pop() {
	h := a.h
	n := copy(h.queue, h.queue[1:])
	h.queue[n] = partitionEntry{}
	h.queue = h.queue[:n]
	h.begun, h.pos = false, 0
}

// symbolShards remembers, by string identity, the shard of (or the verdict
// on) each symbol string a request carries: a request holds few distinct
// symbols, each as one string when the decoder interns them, so a partition
// hashes and checks each symbol once, not once per trade.
//
// It is four-way set associative, stored way by way, and a string's set is
// its address / 16 (its 16-byte slot in a 16 KiB window of the heap) XOR
// the window's number. Symbols interned one after another sit in nearby
// slots of the heap, so their keys lie side by side in way 0: 1,000
// symbols' keys fill about 16 KiB of lines and fit in L1, where a
// multiplicative hash spread them one to a cache line over 64 KiB (the
// XOR keeps neighbours in one line, as it permutes within aligned blocks,
// and spreads addresses that lie a multiple of 16 KiB apart). Symbols whose
// sets collide (strings scattered over the heap) take the other ways: with
// fewer ways the symbols of the sets that draw three or more (about one
// set in thirteen with 1,000 random addresses in 1,024 sets and two ways)
// evicted each other on every trade, and each miss hashes and validates
// the symbol again. The strings live apart from the keys, held so that a
// key's address cannot be reused by another string meanwhile; the loop
// reads only the keys.
type symbolShards struct {
	keys [symbolWays][symbolSets]symbolKey
	syms [symbolWays][symbolSets]string
}

// symbolKey is a symbol string's identity and its shard.
type symbolKey struct {
	data  uintptr // unsafe.StringData of the symbol
	n     uint32  // its length + 1; 0: an empty key
	shard int32   // -1: an invalid symbol
}

const (
	symbolSetBits = 10
	symbolSets    = 1 << symbolSetBits
	symbolWays    = 4
)

// symbolSet returns the set of a string at address data (see symbolShards).
func symbolSet(data uintptr) uintptr {
	return (data>>4 ^ data>>(4+symbolSetBits)) & (symbolSets - 1)
}

// lookup returns the shard of sym (-1: invalid), asking fill on a miss.
func (t *symbolShards) lookup(sym string, fill func(sym string) int32) int32 {
	if uint64(len(sym)) >= math.MaxUint32 {
		return fill(sym) // not kept: the length does not fit a key
	}
	data := uintptr(unsafe.Pointer(unsafe.StringData(sym)))
	n := uint32(len(sym)) + 1
	set := symbolSet(data)
	for w := range symbolWays {
		if k := &t.keys[w][set]; k.data == data && k.n == n {
			return k.shard
		}
	}
	// The most recently filled first; the oldest goes.
	for w := symbolWays - 1; w > 0; w-- {
		t.keys[w][set] = t.keys[w-1][set]
		t.syms[w][set] = t.syms[w-1][set]
	}
	shard := fill(sym)
	t.keys[0][set] = symbolKey{data: data, n: n, shard: shard}
	t.syms[0][set] = sym
	return shard
}
