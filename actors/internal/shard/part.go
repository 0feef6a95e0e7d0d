package shard

import (
	"errors"
	"sync/atomic"

	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// ErrPartFailed: a shard failed Env.PartFailureLimit times in a row
// applying its part of a request (a trade or a delivery that crashes it
// every time) and gave the part up. None of that part's trades was
// applied; the other shards' parts were (a retry counts them as
// duplicates). Retrying unchanged fails the same way.
var ErrPartFailed = errors.New("actors: a shard could not apply its part of the request")

// ItemError is one rejected trade of an ingest request.
type ItemError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// Request is the half of an ingest request that shards see: the caller's
// trades, read in place, and where the answers go. The ingest package
// embeds it in its request; shards know nothing else of it.
//
// Every answer is counted: pending is the number still to come, and the
// one that brings it to zero signals Done, so the caller wakes once per
// request, not once per answer.
type Request struct {
	// Trades are the caller's, read in place by the shards until they
	// answered.
	Trades []messages.Trade

	replies chan Result
	pending atomic.Int32
	done    chan struct{}
}

// InitRequest readies r for up to maxReplies answers per request.
func (r *Request) InitRequest(maxReplies int) {
	r.replies = make(chan Result, maxReplies)
	r.done = make(chan struct{}, 1)
}

// SetPending sets the number of answers to wait for before the parts are
// handed out (the partitions' summaries; parts add themselves).
func (r *Request) SetPending(n int32) { r.pending.Store(n) }

// AddPending counts a part handed to a shard, before it is sent: its answer
// is one more to wait for.
func (r *Request) AddPending() { r.pending.Add(1) }

// Arrive sends an answer (a partition's summary or a part's answer) and
// counts it; the last one signals Done. The count cannot reach zero early:
// a partition counts each part before sending it and its summary after the
// last one, so until every summary arrived the count stays above zero.
func (r *Request) Arrive(res Result) {
	r.replies <- res
	if r.pending.Add(-1) == 0 {
		r.done <- struct{}{}
	}
}

// Done receives one value once every answer arrived.
func (r *Request) Done() <-chan struct{} { return r.done }

// Replies are the answers, each sent before it was counted.
func (r *Request) Replies() <-chan Result { return r.replies }

// Part is one ingest request's trades for one shard: indices into the
// request's trades (ingest), or trades of its own (WAL replays, the input
// log of a memory-only shard).
type Part struct {
	Req *Request // the request (nil: replayed or logged; nobody to answer)
	// Idx are the part's trades as positions in Req.Trades, in request
	// order; they are also the positions per-item errors report.
	Idx []int32
	// trades, when non-nil, are the part's trades (Idx, if set, still
	// gives their positions in the request).
	trades []messages.Trade

	TickBefore int64 // the clock the shard has been sent before these trades
	TickAfter  int64 // event clock: the watermark after them (0: none)
	answered   bool  // the request got this part's answer (only the shard touches it)
	// res accumulates the part's outcome over its chunks (memory-only
	// nodes; only the shard touches it).
	res Result

	// WAL is the part's WAL append, queued by the shard before it applies
	// the trades (durable nodes only). Only the shard's goroutine uses it;
	// the request gets it through the answer.
	WAL *storage.Append
}

// Reset empties the part for another request, keeping Idx's array.
func (p *Part) Reset(req *Request) { *p = Part{Req: req, Idx: p.Idx[:0]} }

// Result is a shard's answer for one Part, or a router partition's summary
// of a request.
type Result struct {
	Shard      int
	Applied    int
	Duplicates int
	Rejected   []ItemError
	WAL        *storage.Append // the part's WAL append; the caller waits for it
	Err        error

	// A router partition's summary of a request (Summary true): how many
	// parts it sent, the newest valid trade, and the invalid trades it
	// found (in Rejected).
	Summary bool
	Worker  int
	Parts   int
	MaxTime int64
}

// Chunk is the trades of a part that lie in one chunk of its request:
// Part.Idx[Lo:Hi]. Last: the part's final chunk.
type Chunk struct {
	Part   *Part
	Lo, Hi int32
	Last   bool
}

// len returns the number of trades in the part.
func (p *Part) len() int {
	if p.trades != nil {
		return len(p.trades)
	}
	return len(p.Idx)
}

// trade returns the part's i-th trade.
func (p *Part) trade(i int) *messages.Trade {
	if p.trades != nil {
		return &p.trades[i]
	}
	return &p.Req.Trades[p.Idx[i]]
}

// position returns the index in its request of the part's i-th trade.
func (p *Part) position(i int) int {
	if p.Idx != nil {
		return int(p.Idx[i])
	}
	return i
}

// answer gives the request its answer for this part, once: a restart that
// processes the part again does not answer again. It never blocks (the
// request's reply channel has room for every shard).
func (p *Part) answer(r Result) {
	if p.Req == nil || p.answered {
		return
	}
	p.answered = true
	p.Req.Arrive(r)
}

// Tick moves a shard's clock to Now (unix ms).
type Tick struct{ Now int64 }

// OpenBarQuery asks a shard for a symbol's open bar.
type OpenBarQuery struct {
	Symbol string
	Iv     messages.Interval
	Reply  chan<- OpenBarReply
}

// OpenBarReply answers an OpenBarQuery: the open bar, if the symbol has
// one.
type OpenBarReply struct {
	Bar messages.Kline
	OK  bool
}

// SymbolsQuery asks a shard for its symbols.
type SymbolsQuery struct{ Reply chan<- []string }

// CheckpointNow asks a shard to checkpoint its state.
type CheckpointNow struct{ Done chan<- error }

// Ping is a health heartbeat; a shard answers by clearing its
// Stats.PingSent.
type Ping struct{}

// Panic makes the receiving shard actor panic: a fault drill to check that
// supervision restarts it with its state intact.
type Panic struct{ Reason string }

// walDurable tells a shard that a part's WAL append finished (sent by the
// shard's WAL waiter, in append order).
type walDurable struct{ part *Part }

// awaitEntry is an input waiting for an earlier part's WAL write: a part,
// or a clock tick (part == nil).
type awaitEntry struct {
	part *Part
	tick int64
}

// Recovery is what a shard's first start restored.
type Recovery struct {
	Records, Trades int64 // WAL records and trades replayed
	Symbols         int
	Watermark       int64
	Clock           int64 // the shard's complete clock (see Handle.clock)
	Err             error
}

// errStopReplay ends a WAL replay at the last input the failed incarnation
// started; later records are still in the mailbox.
var errStopReplay = errors.New("actors: stop replay")

// shardLogEntry is one input a memory-only shard applied since its last
// checkpoint: a tick, or a part whose trades the shard copied into its log
// (logTrades[lo:hi]).
type shardLogEntry struct {
	part                  bool
	lo, hi                int
	TickBefore, TickAfter int64
	tick                  int64
}
