package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/messages"
)

// Router partitions
//
// The router orders requests; a router partition, one per pinned worker and
// running on it, hands each request's parts to the shards of its worker. It
// exists for the memory hierarchy: a shard reads its trades in place, one
// in 64 of the request scattered over megabytes, and from DRAM each of those
// reads is a cache miss that costs about as much as aggregating the trade.
// So the partition walks a request one chunk at a time: it reads the chunk
// sequentially (cheap: the hardware prefetches it) into its core's cache,
// sends each of its shards the part of its trades that lie in the chunk,
// and yields (its mailbox ends the turn after one message), so the worker
// runs those shards, reading from cache, before the partition takes the
// next chunk. Every shard gets its part's trades in request order, in one
// or more chunk messages, the last one flagged; the shard flushes and
// answers the request on the last one.
//
// Ticks for the shards travel through the partitions too, queued behind
// the requests routed before them, so a shard sees trades and ticks in the
// order the router decided.

// partitionChunk is the number of trades a partition walks per turn: the
// chunk (80 bytes a trade) and its index lists stay well inside a core's L2.
const partitionChunk = 8192

// partitionRoute hands a routed request to a partition (one per request and
// worker, part of the IngestCall).
type partitionRoute struct{ call *IngestCall }

// partitionTick is a clock tick for some of a partition's shards.
type partitionTick struct {
	now    int64
	shards []int32
}

// partitionStep makes a partition walk its next chunk (sent to itself).
type partitionStep struct{}

// chunkPart is the trades of a part that lie in one chunk of its request:
// part.idx[lo:hi]. last: the part's final chunk.
type chunkPart struct {
	part   *shardPart
	lo, hi int32
	last   bool
}

// partitionEntry is a request or a tick waiting in a partition.
type partitionEntry struct {
	call *IngestCall
	tick *partitionTick
}

// partitionHandle is the part of a partition that outlives its actor
// incarnations.
type partitionHandle struct {
	worker int
	node   *Node
	pid    *actor.PID
	stats  *actorStats
	shards []int32 // the shards on this worker

	queue []partitionEntry // in routing order; queue[0] is being walked
	pos   int              // next trade of queue[0].call to walk
	// cursor[sh]: how far into its part's idx shard sh was sent.
	cursor []int32
	// maxTime is the newest valid trade of queue[0].call walked so far.
	maxTime int64
	// cache maps symbol strings to shards (see symbolShards).
	cache       *symbolShards
	fill        func(e *symbolShard) // fills a cache entry (built once)
	stepPending bool                 // a partitionStep is in the mailbox
	step        partitionStep
}

// send queues msg for the partition.
func (p *partitionHandle) send(msg any) {
	p.stats.enqueued.Add(1)
	p.node.system.Root.Send(p.pid, msg)
}

// partition is one incarnation of a router partition actor.
type partition struct{ h *partitionHandle }

func (a *partition) Receive(ctx actor.Context) {
	h := a.h
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// A restart lost the mailbox's step, if any: walk on.
		h.stepPending = false
		a.kick(ctx)
		return
	case *actor.Restarting:
		h.stats.restarts.Add(1)
		return
	case *partitionRoute:
		h.queue = append(h.queue, partitionEntry{call: m.call})
		a.kick(ctx)
	case *partitionTick:
		h.queue = append(h.queue, partitionEntry{tick: m})
		a.kick(ctx)
	case *partitionStep:
		h.stepPending = false
		a.walk()
		a.kick(ctx)
	default:
		return
	}
	h.stats.processed.Add(1)
}

// kick makes sure a step is queued while there is work.
func (a *partition) kick(ctx actor.Context) {
	h := a.h
	if len(h.queue) > 0 && !h.stepPending {
		h.stepPending = true
		h.stats.enqueued.Add(1)
		ctx.Send(ctx.Self(), &h.step)
	}
}

// walk delivers the ticks at the head of the queue and one chunk of the
// request after them (a durable node's request in one chunk: its shards
// write it to the WAL whole).
func (a *partition) walk() {
	h := a.h
	n := h.node
	for len(h.queue) > 0 && h.queue[0].tick != nil {
		t := h.queue[0].tick
		for _, sh := range t.shards {
			n.shards[sh].send(n.system, &shardTick{now: t.now})
		}
		a.pop()
	}
	if len(h.queue) == 0 {
		return
	}
	c := h.queue[0].call
	w := h.worker
	lo := h.pos
	hi := len(c.trades)
	if n.store == nil {
		hi = min(lo+n.cfg.chunkTrades, hi)
	}
	last := hi == len(c.trades)
	if lo == 0 {
		a.begin(c)
	}
	// Reading the chunk in order brings it into this core's cache, where
	// the shards below find it.
	a.classify(c, lo, hi)
	sends := &c.sends[w]
	for _, sh := range c.touched[w] {
		p := &c.parts[sh]
		from := h.cursor[sh]
		to := int32(len(p.idx))
		if to == from && !last {
			continue
		}
		if last && n.cfg.Clock == ClockEvent {
			// The shards this request touches tick past it right away;
			// the others when it is known to be applied (batchDone), so a
			// request that fails moves no clock. Every partition read
			// every trade, so they agree on the newest.
			p.tickAfter = max(c.tickBefore, h.maxTime)
		}
		h.cursor[sh] = to
		*sends = append(*sends, chunkPart{part: p, lo: from, hi: to, last: last})
		n.shards[sh].send(n.system, &(*sends)[len(*sends)-1])
	}
	h.pos = hi
	if last {
		// The summary is the partition's last use of c: once the producer
		// has every summary and answer it recycles c.
		c.replies <- partResult{summary: true, parts: len(c.touched[w]), maxTime: h.maxTime, rejected: c.rejected[w]}
		a.pop()
	}
}

// begin readies the partition for a request.
func (a *partition) begin(c *IngestCall) {
	h := a.h
	w := h.worker
	h.maxTime = 0
	// Room for every chunk message up front (shards hold pointers into
	// it until they answered) and for twice a fair share of trades per
	// shard, so a recycled call stops growing after a request or two.
	chunks := 1
	if h.node.store == nil {
		chunks = (len(c.trades) + h.node.cfg.chunkTrades - 1) / h.node.cfg.chunkTrades
	}
	if want := len(h.shards) * (chunks + 1); cap(c.sends[w]) < want {
		c.sends[w] = make([]chunkPart, 0, want)
	}
	c.sends[w] = c.sends[w][:0]
	want := 2*len(c.trades)/len(c.parts) + 64
	for _, sh := range h.shards {
		if cap(c.parts[sh].idx) < want {
			c.parts[sh].idx = make([]int32, 0, want)
		}
		h.cursor[sh] = 0
	}
}

// classify validates trades lo..hi-1 of c, notes the newest valid one, and
// lists each valid trade of this worker's shards in its shard's part; it
// reports the invalid ones of this worker (and partition 0 those whose
// symbol is invalid, which have no shard).
func (a *partition) classify(c *IngestCall, lo, hi int) {
	h := a.h
	w := h.worker
	maxTime := h.maxTime
	fill := h.fill
	for i := lo; i < hi; i++ {
		t := &c.trades[i]
		e := h.cache.lookup(t.Symbol, fill)
		if e.shard >= 0 && t.FieldsValid(c.now) {
			maxTime = max(maxTime, t.Time)
			if int(e.worker) == w {
				p := &c.parts[e.shard]
				if len(p.idx) == 0 {
					p.seq, p.tickBefore = c.seq, c.tickBefore
					c.touched[w] = append(c.touched[w], e.shard)
				}
				p.idx = append(p.idx, int32(i))
			}
			continue
		}
		if int(e.worker) != w {
			continue
		}
		err := t.ValidateFields(c.now)
		if err == nil {
			err = messages.ValidateSymbol(t.Symbol)
		}
		c.rejected[w] = append(c.rejected[w], ItemError{Index: i, Error: err.Error()})
	}
	h.maxTime = maxTime
}

// pop drops the head of the queue (in place: the queue's array is reused).
func (a *partition) pop() {
	h := a.h
	n := copy(h.queue, h.queue[1:])
	h.queue[n] = partitionEntry{}
	h.queue = h.queue[:n]
	h.pos = 0
}
