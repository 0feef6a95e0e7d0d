package ingest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/messages"
)

// Call is an ingest request in flight. The node recycles it once Wait
// returns: it must not be used after that.
//
// A request is grouped without copying a trade: each shard gets the list
// of its trades' indices in the caller's slice (4 bytes per trade) and
// reads them there. Copying 64-byte trades into per-shard buffers cost
// more than aggregating them (the writes scatter over 64 destinations).
// A shard that must be able to rebuild its state keeps what it needs
// itself (the WAL record of a durable node, the input log of a memory-only
// one).
type Call struct {
	shard.Request // the caller's trades and the shards' answers

	g     *Ingest
	now   int64        // unix ms at IngestAsync: the future-time check
	parts []shard.Part // by shard; each filled and sent by its worker's partition
	res   Result
	err   error
	// entered: counted in flight (Wait leaves); holds: holds a request
	// token and room for its trades; sent: went to the router, every
	// partition answers.
	entered, holds, sent bool
	// routed is set by the router once every partition was handed the
	// request (if the router is stopped before, no partition reads it).
	routed atomic.Bool

	// Set by the router: the request's sequence number and the clock
	// every shard was sent before it.
	seq        uint64
	tickBefore int64

	clock   batchDone // event clock: the message that moves the watermark
	maxTime int64     // the newest valid trade (from the summaries)
	// Per partition w: routes[w] hands the request to it, touched[w] are
	// its shards with trades in the request, rejected[w] the invalid
	// trades it reports, sends[w] the chunk messages it sent.
	routes   []partitionRoute
	touched  [][]int32
	rejected [][]shard.ItemError
	sends    [][]shard.Chunk

	// The request's chunks (see partition.walk), sized by IngestAsync:
	// chunk k spans trades [k*chunk, (k+1)*chunk); ready[w][k] is set
	// (by partition w only) once chunk k is classified.
	chunk      int
	chunks     []chunkInfo
	ready      [][]bool
	classified atomic.Int32 // chunks claimed for classifying (by any partition)
}

// chunkBounds returns the trades of chunk k.
func (c *Call) chunkBounds(k int) (lo, hi int) {
	return k * c.chunk, min((k+1)*c.chunk, len(c.Trades))
}

// sizeChunks splits the request into chunks of Config.ChunkTrades trades
// (a durable node's into one).
func (c *Call) sizeChunks() {
	g := c.g
	c.chunk = len(c.Trades)
	if !g.cfg.Durable {
		c.chunk = g.cfg.ChunkTrades
	}
	k := (len(c.Trades) + c.chunk - 1) / c.chunk
	for len(c.chunks) < k {
		ready := make([]partitionReady, len(g.partitions))
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

// newCall returns a recycled (or new) Call for trades.
//
// The node keeps up to MaxRequests recycled calls (as many as may be in
// flight), with their buffers at the size of the largest request each
// served, and never lets them go: a sync.Pool would drop them at every
// second GC, and every request after that would allocate its buffers
// afresh. So the memory of the ingest high-water mark stays allocated, as
// the shards' buffers do.
func (g *Ingest) newCall(trades []messages.Trade) *Call {
	var c *Call
	select {
	case c = <-g.calls:
	default:
		w := len(g.partitions)
		nsh := len(g.cfg.Shards)
		c = &Call{g: g, parts: make([]shard.Part, nsh), routes: make([]partitionRoute, w),
			touched: make([][]int32, w), rejected: make([][]shard.ItemError, w),
			sends: make([][]shard.Chunk, w), ready: make([][]bool, w)}
		c.InitRequest(nsh + w)
		c.clock.done = make(chan struct{}, 1)
		c.clock.call = c
		for sh := range c.parts {
			c.parts[sh].Req = &c.Request
		}
		for w := range c.routes {
			c.routes[w].call = c
		}
	}
	c.Trades = trades
	c.res.Rejected = []shard.ItemError{}
	return c
}

// recycle readies c for another request. Only a call every partition and
// shard answered may be recycled: they hold it until then.
func (g *Ingest) recycle(c *Call) {
	for w, touched := range c.touched {
		for _, sh := range touched {
			c.parts[sh].Reset(&c.Request)
		}
		c.touched[w] = touched[:0]
		clear(c.rejected[w]) // drop the error strings
		c.rejected[w] = c.rejected[w][:0]
		clear(c.ready[w])
	}
	c.Trades, c.now, c.maxTime, c.res, c.err = nil, 0, 0, Result{}, nil
	c.entered, c.holds, c.sent = false, false, false
	c.routed.Store(false)
	c.seq, c.tickBefore = 0, 0
	select {
	case g.calls <- c:
	default: // as many are kept as may be in flight: let this one go
	}
}

// end gives back what the request held: its admission (room for its
// trades) and its place among the requests in flight; reuse: recycle c
// (nothing holds it any more).
func (c *Call) end(reuse bool) {
	g := c.g
	if c.holds {
		g.release(len(c.Trades))
	}
	entered := c.entered
	if reuse {
		g.recycle(c)
	}
	if entered {
		g.inflight.leave()
	}
}

// Wait returns the request's result once every shard applied its part.
// Call it exactly once per Call; the call is recycled when it returns.
//
// Wait takes no context: once the request was sent, the shards read the
// caller's trades until they answer, and they always answer (applied,
// refused, or the node stopped), so returning earlier would hand the
// caller back trades still in use. A caller bounds its wait for admission
// with the context given to IngestAsync.
func (c *Call) Wait() (Result, error) {
	g := c.g
	life := g.cfg.Life
	if c.err != nil || !c.sent {
		res, err := c.res, c.err
		c.end(true)
		if err != nil {
			return Result{}, err
		}
		return res, nil
	}
	res := c.res
	var err error
	// Every partition sends a summary (the parts it sent, the trades it
	// rejected); every part sent is answered.
	select {
	case <-c.Done():
	case <-life.Halted():
		// Nothing runs any more, so nothing reads the trades; c is not
		// recycled (a stopped actor's queue may still point into it).
		c.end(false)
		return Result{}, lifecycle.ErrClosed
	case <-life.Broken():
		// An actor that holds part of c will never answer. The healthy
		// ones still read the caller's trades until they answer: wait
		// for them, then fail. c is not recycled.
		c.awaitReleased()
		c.end(false)
		return Result{}, life.Err()
	}
	// Every reply is in c.replies now (each was sent before it counted).
	summaries, parts, answered := 0, 0, 0
	replies := c.Replies()
	for summaries < len(c.routes) || answered < parts {
		r := <-replies
		if r.Summary {
			summaries++
			parts += r.Parts
			c.maxTime = max(c.maxTime, r.MaxTime)
			res.Rejected = append(res.Rejected, r.Rejected...)
			continue
		}
		answered++
		if r.Err != nil {
			err = errors.Join(err, fmt.Errorf("actors: shard %d: %w", r.Shard, r.Err))
			continue
		}
		if r.WAL != nil {
			// Durable first: a trade is acknowledged only once its WAL
			// record is (SPEC §4). Shards answer after that already.
			seq, werr := r.WAL.Wait()
			if werr != nil {
				err = errors.Join(err, fmt.Errorf("actors: shard %d: %w", r.Shard, werr))
				continue
			}
			res.LastSeq = max(res.LastSeq, seq)
		} else {
			res.LastSeq = max(res.LastSeq, c.seq)
		}
		res.Accepted += r.Applied
		res.Duplicates += r.Duplicates
		res.Rejected = append(res.Rejected, r.Rejected...)
	}
	if err == nil && parts > 0 && g.cfg.EventClock {
		// The watermark moves to the request's newest trade and every
		// shard learns it before the request is answered. Every shard
		// answered, so none reads the trades any more.
		c.clock.maxTime = c.maxTime
		g.RouterStat.Enqueued.Add(1)
		g.cfg.System.Root.Send(g.router, &c.clock)
		select {
		case <-c.clock.done:
		case <-life.Halted():
			c.end(false)
			return Result{}, lifecycle.ErrClosed
		case <-life.Broken():
			c.end(false)
			return Result{}, life.Err()
		}
	}
	c.end(true)
	if err != nil {
		return Result{}, err
	}
	slices.SortFunc(res.Rejected, func(a, b shard.ItemError) int { return a.Index - b.Index })
	g.accepted.Add(uint64(res.Accepted))
	g.duplicates.Add(uint64(res.Duplicates))
	g.rejected.Add(uint64(len(res.Rejected)))
	return res, nil
}

// awaitReleased waits, once the node broke, until no live actor reads the
// request any more: every partition that was handed it summarized it or
// was stopped, and every shard it handed a part answered or was stopped.
// A stopped actor never runs again, so it reads nothing.
func (c *Call) awaitReleased() {
	g := c.g
	life := g.cfg.Life
	nw := len(c.routes)
	summarized := make([]bool, nw)
	answered := make([]bool, len(c.parts))
	replies := c.Replies()
	mark := func(r shard.Result) {
		if r.Summary {
			summarized[r.Worker] = true
		} else {
			answered[r.Shard] = true
		}
	}
	for {
		// Notice stops from here on: a stop after this check wakes us.
		stops := life.StopNotify()
		for drained := false; !drained; {
			select {
			case r := <-replies:
				mark(r)
			default:
				drained = true
			}
		}
		if c.released(summarized, answered) {
			return
		}
		select {
		case r := <-replies:
			mark(r)
		case <-stops:
		case <-life.Halted():
			return
		}
	}
}

// released reports whether no live actor holds c (see awaitReleased).
func (c *Call) released(summarized, answered []bool) bool {
	g := c.g
	if !c.routed.Load() && g.RouterStat.Stopped() {
		return true // the router never handed it out
	}
	for w, ph := range g.partitions {
		// touched[w] is partition w's: read only once it is done with
		// the request (summarized) or stopped for good.
		if !summarized[w] && !ph.Stats.Stopped() {
			return false
		}
		for _, sh := range c.touched[w] {
			if !answered[sh] && !g.cfg.Shards[sh].Stats.Stopped() {
				return false
			}
		}
	}
	return true
}
