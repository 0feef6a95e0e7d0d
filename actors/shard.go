package actors

import (
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// ShardOf maps a symbol to its shard with a stable hash (FNV-1a), the same
// in every process and version: shard placement and snapshots depend on it.
func ShardOf(symbol string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(symbol))
	return int(h.Sum32() % uint32(shards))
}

// shardOfFast is ShardOf without the hash.Hash allocation, for the ingest
// path. Both compute FNV-1a; a test keeps them equal.
func shardOfFast(symbol string, shards int) int {
	h := uint32(2166136261)
	for i := 0; i < len(symbol); i++ {
		h ^= uint32(symbol[i])
		h *= 16777619
	}
	return int(h % uint32(shards))
}

// DeltaSink receives shard output. Deliver is called on the shard's
// goroutine after the closed bars were stored; it must not block, and must
// copy whatever it keeps: d is reused once Deliver returns.
type DeltaSink interface {
	Deliver(shard int, d *aggregate.Delta)
}

// DeltaSinkFunc adapts a function to DeltaSink.
type DeltaSinkFunc func(shard int, d *aggregate.Delta)

// Deliver calls f.
func (f DeltaSinkFunc) Deliver(shard int, d *aggregate.Delta) { f(shard, d) }

// shardPart is one ingest request's trades for one shard.
type shardPart struct {
	seq    uint64
	trades []messages.Trade
	index  []int32         // position of each trade in the original request
	tick   int64           // event clock: watermark to tick to after the trades (0: none)
	reply  chan partResult // buffered 1: the first answer is kept, later ones dropped
}

// partResult is a shard's answer for one shardPart.
type partResult struct {
	shard      int
	applied    int
	duplicates int
	rejected   []ItemError
	err        error
}

// shardTick moves a shard's clock.
type shardTick struct{ now int64 }

// openBarsQuery asks a shard for a symbol's open bar.
type openBarQuery struct {
	symbol string
	iv     messages.Interval
	reply  chan<- openBarReply
}

type openBarReply struct {
	bar messages.Kline
	ok  bool
}

type symbolsQuery struct{ reply chan<- []string }

// checkpointNow asks a shard to checkpoint its state.
type checkpointNow struct{ done chan<- error }

// PanicShard makes the receiving shard actor panic: a fault drill to check
// that supervision restarts it with its state intact.
type PanicShard struct{ Reason string }

// shardLogEntry is one input a shard applied since its last checkpoint.
type shardLogEntry struct {
	part *shardPart // trades (nil for a tick)
	tick int64
}

// shardHandle is the part of a shard that outlives its actor incarnations:
// the checkpoint it restarts from, the inputs applied since, and counters.
// Only the shard's current incarnation touches the non-atomic fields, and
// incarnations never overlap (protoactor restarts in the same mailbox).
type shardHandle struct {
	id   int
	node *Node
	pid  *actor.PID
	gate chan struct{} // ingest back-pressure: one token per queued part

	checkpoint *aggregate.State
	log        []shardLogEntry
	delivered  int // log entries whose output was delivered

	enqueued    atomic.Uint64
	processed   atomic.Uint64
	restarts    atomic.Int64
	lastFailure atomic.Pointer[string]
	lastBeat    atomic.Int64 // unix ms of the last processed message
	pendingTick atomic.Int64 // coalesced wall-clock tick not yet processed
}

func (h *shardHandle) send(system *actor.ActorSystem, msg any) {
	h.enqueued.Add(1)
	system.Root.Send(h.pid, msg)
}

// shard is one incarnation of a shard actor.
type shard struct {
	h    *shardHandle
	core *aggregate.Core
}

func (s *shard) Receive(ctx actor.Context) {
	h := s.h
	defer func() {
		if r := recover(); r != nil {
			reason := fmt.Sprint(r)
			h.lastFailure.Store(&reason)
			panic(r) // supervision restarts the shard
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start()
		return
	case *actor.Restarting:
		h.restarts.Add(1)
		return
	case *actor.Stopping, *actor.Stopped:
		return
	case *shardPart:
		h.log = append(h.log, shardLogEntry{part: m})
		if err := s.applyPart(m, true); err != nil {
			// Not marked delivered: the restarted incarnation replays this
			// input and stores its closed bars again.
			panic(err)
		}
		h.delivered = len(h.log)
		<-h.gate
	case *shardTick:
		now := h.pendingTick.Swap(0)
		if now == 0 {
			now = m.now
		}
		h.log = append(h.log, shardLogEntry{tick: now})
		s.core.Tick(now)
		if err := s.flush(true); err != nil {
			panic(err)
		}
		h.delivered = len(h.log)
	case *openBarQuery:
		k, ok := s.core.OpenBar(m.symbol, m.iv)
		m.reply <- openBarReply{k, ok}
	case *symbolsQuery:
		m.reply <- s.core.Symbols(nil)
	case *checkpointNow:
		m.done <- s.checkpoint()
	case *PanicShard:
		h.processed.Add(1)
		panic(fmt.Sprintf("shard %d: %s", h.id, m.Reason))
	default:
		return
	}
	h.processed.Add(1)
	h.lastBeat.Store(h.node.cfg.Now().UnixMilli())
}

// start builds the core: empty, or from the checkpoint plus the inputs
// applied since. Inputs whose output was already delivered are replayed
// silently; the one being processed when the previous incarnation failed
// is processed normally, reply included, so its trades are neither lost
// nor applied twice.
func (s *shard) start() {
	h := s.h
	cfg := h.node.coreConfig
	var err error
	if h.checkpoint != nil {
		s.core, err = aggregate.Restore(cfg, *h.checkpoint)
	} else {
		s.core, err = aggregate.New(cfg)
	}
	if err != nil {
		// The config was validated at Start and the checkpoint came from a
		// core with the same config: this is a bug, let supervision see it.
		panic(fmt.Sprintf("shard %d: rebuild core: %v", h.id, err))
	}
	if len(h.log) == 0 {
		return
	}
	began := time.Now()
	for i, e := range h.log {
		deliver := i >= h.delivered
		var err error
		if e.part != nil {
			err = s.applyPart(e.part, deliver)
		} else {
			s.core.Tick(e.tick)
			err = s.flush(deliver)
		}
		if err != nil {
			panic(err) // still failing: supervision retries within its limits
		}
	}
	if h.delivered < len(h.log) {
		// The failed input's gate token is still held; it has now been
		// processed.
		<-h.gate
	}
	h.delivered = len(h.log)
	h.node.log.Info("shard rebuilt after restart", "shard", h.id, "inputs_replayed", len(h.log), "took", time.Since(began))
}

// applyPart applies one part, ticks the event clock, flushes, and (when
// deliver) replies. The reply never blocks: the part's channel has room
// for one answer, and a replay after a failed flush may answer again.
func (s *shard) applyPart(p *shardPart, deliver bool) error {
	res := partResult{shard: s.h.id}
	for i := range p.trades {
		switch o := s.core.Apply(&p.trades[i]); o {
		case aggregate.Applied:
			res.applied++
		case aggregate.Duplicate:
			res.duplicates++
		default:
			if deliver {
				res.rejected = append(res.rejected, ItemError{Index: int(p.index[i]), Error: rejectReason(o, &p.trades[i])})
			}
		}
	}
	if p.tick > 0 {
		s.core.Tick(p.tick)
	}
	res.err = s.flush(deliver)
	if deliver && p.reply != nil {
		select {
		case p.reply <- res:
		default:
		}
	}
	return res.err
}

func rejectReason(o aggregate.Outcome, t *messages.Trade) string {
	switch o {
	case aggregate.LateDropped:
		return fmt.Sprintf("late: trade time %d is older than the open bar of %s beyond the allowed lateness", t.Time, t.Symbol)
	case aggregate.UnknownSymbol:
		return fmt.Sprintf("unknown symbol %q (the node runs with a fixed symbol list)", t.Symbol)
	}
	return o.Err().Error()
}

// flush hands the core's output to the kline store and the sink. With
// deliver false (replay of already delivered inputs) it is dropped.
func (s *shard) flush(deliver bool) error {
	if !s.core.HasReady() {
		return nil
	}
	d := s.core.Ready()
	defer s.core.Release(d)
	if !deliver {
		return nil
	}
	n := s.h.node
	if len(d.Closed) > 0 {
		if err := n.klines.PutKlines(d.Closed); err != nil {
			// The bars are not lost: they are rebuilt from the checkpoint
			// and the inputs on restart. Fail loudly so supervision
			// restarts the shard and the caller gets the error.
			err = fmt.Errorf("shard %d: store closed bars: %w", s.h.id, err)
			n.log.Error("store closed bars", "shard", s.h.id, "err", err)
			return err
		}
	}
	if n.cfg.Sink != nil {
		n.cfg.Sink.Deliver(s.h.id, d)
	}
	n.deltas.Add(1)
	return nil
}

// checkpoint records the core's state so a restart resumes from here.
func (s *shard) checkpoint() error {
	if err := s.flush(true); err != nil {
		return err
	}
	st := s.core.Snapshot()
	s.h.checkpoint = &st
	clear(s.h.log)
	s.h.log = s.h.log[:0]
	s.h.delivered = 0
	return nil
}
