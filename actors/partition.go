package actors

import (
	"github.com/asynkron/protoactor-go/actor"
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
	// cursor[k]: how far into its part's idx shard shards[k] was sent.
	cursor      []int32
	stepPending bool // a partitionStep is in the mailbox
	step        partitionStep
	// touch accumulates what the sequential walk reads, so the reads are
	// not dead code.
	touch int64
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
	if h.pos == 0 && !a.involved(c) {
		a.pop()
		a.walk() // nothing to do here: the next entry
		return
	}
	lo := h.pos
	hi := len(c.trades)
	if n.store == nil {
		hi = min(lo+n.cfg.chunkTrades, hi)
		// Read the chunk in order, both cache lines of each trade, so the
		// shards below find it in this core's cache.
		var touch int64
		for i := lo; i < hi; i++ {
			touch += c.trades[i].AggID ^ c.trades[i].EventTime
		}
		h.touch += touch
	}
	last := hi == len(c.trades)
	sends := &c.sends[h.worker]
	if lo == 0 {
		// Room for every message of this request up front: shards hold
		// pointers into it until they answered.
		chunks := (len(c.trades) + n.cfg.chunkTrades - 1) / n.cfg.chunkTrades
		if want := len(h.shards) * (chunks + 1); cap(*sends) < want {
			*sends = make([]chunkPart, 0, want)
		}
		*sends = (*sends)[:0]
		clear(h.cursor)
	}
	for k, sh := range h.shards {
		p := &c.parts[sh]
		if len(p.idx) == 0 {
			continue
		}
		from := h.cursor[k]
		to := from
		for int(to) < len(p.idx) && int(p.idx[to]) < hi {
			to++
		}
		if to == from && !last {
			continue
		}
		h.cursor[k] = to
		*sends = append(*sends, chunkPart{part: p, lo: from, hi: to, last: last})
		n.shards[sh].send(n.system, &(*sends)[len(*sends)-1])
	}
	h.pos = hi
	if last {
		a.pop()
	}
}

// involved reports whether the request has trades for this worker's shards.
func (a *partition) involved(c *IngestCall) bool {
	for _, sh := range a.h.shards {
		if len(c.parts[sh].idx) > 0 {
			return true
		}
	}
	return false
}

// pop drops the head of the queue (in place: the queue's array is reused).
func (a *partition) pop() {
	h := a.h
	n := copy(h.queue, h.queue[1:])
	h.queue[n] = partitionEntry{}
	h.queue = h.queue[:n]
	h.pos = 0
}
