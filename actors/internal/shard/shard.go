package shard

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// shard is one incarnation of a shard actor.
type shard struct {
	h       *Handle
	core    *aggregate.Core
	scratch []messages.Trade // a part's trades for its WAL record
	// touched keeps applyIdx's loads of the trades it touches ahead of
	// Apply from being optimised away (its value means nothing).
	touched uintptr
	// A WAL replay's progress (startDurable).
	replayDelivering bool
	replayed         int
}

func (s *shard) Receive(ctx actor.Context) {
	h := s.h
	defer h.Stats.RecordPanic() // and supervision restarts the shard
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start()
		return
	case *actor.Restarting:
		h.Stats.Restarts.Add(1)
		if h.applying {
			h.inflightFailures++
			h.applying = false
		}
		return
	case *actor.Stopping:
		h.Stats.Stopping(h.env.Life)
		return
	case *actor.Stopped:
		return
	case *Chunk:
		if h.env.Store == nil {
			s.applyChunk(m)
			break
		}
		// A durable node's part comes whole, in one chunk.
		p := m.Part
		if err := s.record(p); err != nil {
			// Not recorded, so not applied: the producer gets the error.
			p.answer(Result{Shard: h.id, Err: err})
			break
		}
		// Durable first, then applied (like raft's persist-then-apply): a
		// part whose WAL write fails is never applied, so the live state
		// is always what a replay of the WAL rebuilds. The shard goes on
		// with other messages meanwhile; inputs wait in order.
		h.awaiting = append(h.awaiting, awaitEntry{part: p})
		h.io <- ioJob{part: p}
	case *walDurable:
		s.applyDurable(m.part)
	case *snapshotDone:
		s.snapshotFinished(m)
	case *Tick:
		if len(h.awaiting) > 0 {
			h.awaiting = append(h.awaiting, awaitEntry{tick: m.Now}) // stays behind the parts
			break
		}
		s.applyTick(m.Now)
	case *OpenBarQuery:
		// The caller reads the closed bars from the shard's ShardBars next.
		k, ok := s.core.OpenBar(m.Symbol, m.Iv)
		m.Reply <- OpenBarReply{Bar: k, OK: ok}
	case *Ping:
		h.Stats.PingSent.Store(0)
	case *SymbolsQuery:
		m.Reply <- s.core.Symbols(nil)
	case *CheckpointNow:
		if h.env.Store == nil && h.inflight != nil {
			// Between two chunks of a part: after the part, so the
			// checkpoint never holds half of it.
			h.deferredCheckpoints = append(h.deferredCheckpoints, m.Done)
			break
		}
		if h.env.Store != nil {
			s.requestSnapshot(m.Done)
			break
		}
		m.Done <- s.checkpoint()
	case *Panic:
		h.Stats.Processed.Add(1)
		panic(fmt.Sprintf("shard %d: %s", h.id, m.Reason))
	default:
		return
	}
	h.Stats.Processed.Add(1)
}

// start builds the core. A durable node's shard loads its snapshot and
// replays its WAL (the first start recovers everything; a restart after a
// failure replays up to the input that failed). A memory-only node's shard
// restarts from its in-memory checkpoint and logged inputs. Either way,
// inputs whose output was already delivered are replayed silently, and the
// one being processed when the previous incarnation failed is processed
// normally, reply included, so its trades are neither lost nor applied
// twice.
func (s *shard) start() {
	h := s.h
	if h.env.Store != nil {
		rec, err := s.startDurable()
		if !h.started {
			h.started = true
			rec.Err = err
			h.recovered <- rec
			if err != nil {
				// Node.Start fails with this error and stops the tree;
				// give it a core so queries in between do not crash.
				s.core, _ = aggregate.New(h.env.Core)
			}
			return
		}
		if err != nil {
			panic(err) // supervision retries within its limits
		}
		return
	}
	defer func() {
		if !h.started {
			h.started = true
			h.recovered <- Recovery{Symbols: len(s.core.Symbols(nil)), Watermark: s.core.Watermark(), Clock: s.core.Watermark()}
		}
	}()
	cfg := h.env.Core
	var err error
	if h.checkpoint.Valid() {
		s.core, err = aggregate.RestoreCheckpoint(cfg, &h.checkpoint)
	} else {
		s.core, err = aggregate.New(cfg)
	}
	if err != nil {
		// The config was validated at Start and the checkpoint came from a
		// core with the same config: this is a bug, let supervision see it.
		panic(fmt.Sprintf("shard %d: rebuild core: %v", h.id, err))
	}
	if len(h.log) == 0 && h.inflight == nil {
		return
	}
	began := time.Now()
	for i, e := range h.log {
		deliver := i >= h.delivered
		var err error
		if e.part {
			p := Part{trades: h.logTrades[e.lo:e.hi], TickBefore: e.TickBefore, TickAfter: e.TickAfter}
			_, err = s.applyPart(&p, deliver)
		} else {
			s.core.Tick(e.tick)
			err = s.flush(deliver)
		}
		if err != nil {
			panic(err) // still failing: supervision retries within its limits
		}
	}
	h.delivered = len(h.log)
	replayed := len(h.log)
	if p := h.inflight; p != nil && h.inflightFailures >= h.env.PartFailureLimit {
		s.abandon(p)
	} else if p != nil {
		// The part being applied: its trades up to the chunk that failed
		// (the failed message is not delivered again) are applied again;
		// if that was its last chunk, it is finished and answered, and its
		// gate token (still held) released. Otherwise its next chunks are
		// in the mailbox.
		h.applying = true
		if f := h.env.Faults.Replay; f != nil && f(h.id) {
			panic(fmt.Sprintf("shard %d: injected fault replaying a part", h.id))
		}
		s.beginPart(p)
		s.applyIdx(p, 0, h.inflightHi, &p.res)
		if h.inflightLast {
			s.finishPart(p)
		}
		h.applying = false
		replayed++
	}
	h.env.Log.Info("shard rebuilt after restart", "shard", h.id, "inputs_replayed", replayed, "took", time.Since(began))
}

// DefaultPartFailureLimit is how many incarnations of a memory-only shard may fail
// in a row applying one part before the shard gives the part up. Below the
// supervisor's restart limit (maxRestarts), so a part that crashes the
// shard every time fails its request instead of stopping the shard.
const DefaultPartFailureLimit = 3

// abandon gives up the part in flight after it failed DefaultPartFailureLimit
// times in a row: a trade or a delivery (a Sink) that crashes the shard
// whenever it is applied again. The shard's state stays as start rebuilt
// it, from before the part, so none of the part's trades is applied, and
// the request fails with ErrPartFailed and the last failure's reason.
// Nothing acknowledged is lost, and the shard serves on: otherwise it
// would exhaust its restart limit and stop, and every later request for
// its symbols would wait forever.
func (s *shard) abandon(p *Part) {
	h := s.h
	reason := h.Stats.LastFailure()
	err := fmt.Errorf("%w: it failed %d times, last: %s", ErrPartFailed, h.inflightFailures, reason)
	h.env.Log.Error("shard gives up a part that fails every time it is applied", "shard", h.id,
		"trades", p.len(), "failures", h.inflightFailures, "last_failure", reason)
	h.inflight, h.inflightFailures = nil, 0
	if h.inflightLast {
		p.answer(Result{Shard: h.id, Err: err})
	} else {
		// Its next chunks are in the mailbox: answer with the last one
		// (the request is recycled once answered, and the chunk messages
		// point into it).
		h.abandoned, h.abandonErr = p, err
	}
	s.answerDeferredCheckpoints()
}

// answerDeferredCheckpoints takes the checkpoints asked for while a part
// was in progress.
func (s *shard) answerDeferredCheckpoints() {
	h := s.h
	for _, done := range h.deferredCheckpoints {
		done <- s.checkpoint()
	}
	clear(h.deferredCheckpoints)
	h.deferredCheckpoints = h.deferredCheckpoints[:0]
}

// applyPart applies one part, ticks the event clock and flushes (the
// output is dropped unless deliver). The caller answers.
func (s *shard) applyPart(p *Part, deliver bool) (Result, error) {
	res := Result{Shard: s.h.id, WAL: p.WAL}
	s.applyTrades(p, &res)
	res.Err = s.flush(deliver)
	return res, res.Err
}

// applyTrades ticks to where the part was routed, applies its trades and
// ticks the event clock past them, counting outcomes into res (nil: no
// counting, as in replays whose answers were given).
func (s *shard) applyTrades(p *Part, res *Result) {
	s.h.clock = max(s.h.clock, p.TickBefore)
	if p.TickBefore > 0 {
		// A no-op live (the shard was sent this tick before); a replay
		// ticks here where the live shard had been ticked.
		s.core.Tick(p.TickBefore)
	}
	if p.trades == nil && res != nil {
		s.applyIdx(p, 0, int32(len(p.Idx)), res)
	} else {
		for i, n := 0, p.len(); i < n; i++ {
			t := p.trade(i)
			if o := s.core.Apply(t); res != nil {
				if o == aggregate.Applied {
					res.Applied++
				} else {
					res.count(o, p.position(i), t)
				}
			}
		}
	}
	if p.TickAfter > 0 {
		s.core.Tick(p.TickAfter)
	}
}

// applyIdx applies the trades p.Idx[lo:hi], read in place from the request,
// counting outcomes into res: the hot path. The trades are scattered over
// the request (1 in 64 with 64 shards), and from DRAM, L3 or the other
// core's cache each is a miss that costs about what applying it does.
// Touching a run of them first (a load from each of the two cache lines a
// trade spans) lets the CPU fetch the whole run at once, the loads being
// independent, instead of stalling on each as Apply reaches it; Apply then
// reads them from L1. Loads alone, not copies: copying the run into a
// buffer first costs twice as much (17 ns a trade against 8 in profiles),
// most likely because each copy's stores wait for its missing loads and a
// full store queue stalls the loads of the trades after it.
func (s *shard) applyIdx(p *Part, lo, hi int32, res *Result) {
	trades := p.Req.Trades
	touched := s.touched
	for base := lo; base < hi; base += touchRun {
		run := p.Idx[base:min(base+touchRun, hi)]
		for _, j := range run {
			// A trade (80 bytes) spans two cache lines, one holding its
			// first word and the other its last.
			t := &trades[j]
			touched += uintptr(unsafe.Pointer(unsafe.StringData(t.Symbol))) ^ uintptr(t.EventTime)
		}
		for _, j := range run {
			t := &trades[j]
			if o := s.core.Apply(t); o == aggregate.Applied {
				res.Applied++
			} else {
				res.count(o, int(j), t)
			}
		}
	}
	s.touched = touched
}

// applyChunk applies one chunk of a part (memory-only nodes); the last one
// finishes the part.
func (s *shard) applyChunk(m *Chunk) {
	h := s.h
	p := m.Part
	if p == h.abandoned {
		if m.Last {
			h.abandoned = nil
			p.answer(Result{Shard: h.id, Err: h.abandonErr})
		}
		return
	}
	// Set before applying: if this fails, the restart applies the part up
	// to here again (see start).
	// applying stays set if this panics (no defer): the failure counts
	// against the part.
	h.inflight, h.inflightHi, h.inflightLast = p, m.Hi, m.Last
	h.applying = true
	if m.Lo == 0 {
		s.beginPart(p)
	}
	if f := h.env.Faults.Chunk; f != nil && f(h.id, m.Lo) {
		s.applyIdx(p, m.Lo, m.Lo+(m.Hi-m.Lo)/2, &p.res)
		panic(fmt.Sprintf("shard %d: injected fault in a chunk at %d", h.id, m.Lo))
	}
	s.applyIdx(p, m.Lo, m.Hi, &p.res)
	if m.Last {
		s.finishPart(p)
	}
	h.applying = false
}

// beginPart starts a part's outcome and ticks to where it was routed (a
// no-op live: the shard was sent this tick before; a restart needs it).
func (s *shard) beginPart(p *Part) {
	p.res = Result{Shard: s.h.id}
	if p.TickBefore > 0 {
		s.core.Tick(p.TickBefore)
	}
}

// finishPart ticks past a part (event clock), flushes, keeps what a
// restart needs, answers the request and releases the gate token; then it
// takes the checkpoints asked for while the part was in progress.
func (s *shard) finishPart(p *Part) {
	h := s.h
	if p.TickAfter > 0 {
		s.core.Tick(p.TickAfter)
	}
	if err := s.flush(true); err != nil {
		// Not marked delivered: the restarted incarnation finishes the
		// part again and stores its closed bars again.
		panic(err)
	}
	// Before the answer: after it the producer may reuse the trades.
	s.keep(p)
	h.inflight, h.inflightFailures = nil, 0
	h.delivered = len(h.log)
	p.answer(p.res)
	s.answerDeferredCheckpoints()
}

// count records an outcome other than Applied.
func (r *Result) count(o aggregate.Outcome, pos int, t *messages.Trade) {
	if o == aggregate.Duplicate {
		r.Duplicates++
		return
	}
	r.Rejected = append(r.Rejected, ItemError{Index: pos, Error: rejectReason(o, t)})
}

// applyLive applies a durable node's part once its WAL record is durable,
// and answers it. (A memory-only node's parts go through applyChunk.)
func (s *shard) applyLive(p *Part) {
	h := s.h
	h.inflight = p
	h.lastWAL = p.WAL
	res, err := s.applyPart(p, true)
	if err != nil {
		// The restarted incarnation replays this input from the WAL and
		// stores its closed bars again.
		panic(err)
	}
	h.inflight, h.inflightFailures = nil, 0
	p.answer(res)
}

// keep makes an applied part recoverable without its request, on a
// memory-only node, whichever way is cheaper: save the core into the
// in-memory checkpoint (a copy of the shard's state, which empties the
// log), or copy the part's trades into the input log. With few symbols
// per shard and large parts (a busy feed) the save is far cheaper than
// the trades; with many symbols and small parts, the log is. The log is
// bounded: past maxLogTrades trades the shard saves regardless.
func (s *shard) keep(p *Part) {
	h := s.h
	logged := len(h.logTrades) + p.len()
	if s.core.CheckpointBytes() <= logged*tradeBytes || logged > maxLogTrades || len(h.log) >= maxLogEntries {
		if err := s.core.SaveCheckpoint(&h.checkpoint); err == nil {
			h.log = h.log[:0]
			h.logTrades = h.logTrades[:0]
			h.delivered = 0
			h.keptBySave.Add(1)
			return
		}
		// Output still pending (flush failed and was not retried): log.
	}
	lo := len(h.logTrades)
	for i, n := 0, p.len(); i < n; i++ {
		h.logTrades = append(h.logTrades, *p.trade(i))
	}
	h.log = append(h.log, shardLogEntry{part: true, lo: lo, hi: len(h.logTrades), TickBefore: p.TickBefore, TickAfter: p.TickAfter})
	h.keptByLog.Add(1)
}

// touchRun is how many trades a shard touches before applying them (see
// applyIdx): 32 trades' 64 loads fit the CPU's load queue. (16: about the
// same; 64: slower.)
const touchRun = 32

// tradeBytes is what logging one trade copies.
const tradeBytes = int(unsafe.Sizeof(messages.Trade{}))

// applyTick moves the clock and flushes.
func (s *shard) applyTick(now int64) {
	h := s.h
	if h.env.Store == nil {
		h.log = append(h.log, shardLogEntry{tick: now})
	}
	s.core.Tick(now)
	h.lastTick = max(h.lastTick, now)
	h.clock = max(h.clock, now)
	if err := s.flush(true); err != nil {
		panic(err)
	}
	h.delivered = len(h.log)
}

// applyDurable handles the WAL outcome of the oldest waiting part: applied
// if its record is durable, refused (and not applied) if the write failed;
// then the ticks queued behind it. A notice for a part that is not the
// oldest waiting one is stale (a restart already dealt with it).
func (s *shard) applyDurable(p *Part) {
	h := s.h
	if len(h.awaiting) == 0 || h.awaiting[0].part != p {
		return
	}
	h.awaiting[0] = awaitEntry{}
	h.awaiting = h.awaiting[1:]
	if _, err := p.WAL.Wait(); err != nil {
		p.answer(Result{Shard: h.id, WAL: p.WAL, Err: err})
	} else {
		s.applyLive(p)
	}
	for len(h.awaiting) > 0 && h.awaiting[0].part == nil {
		now := h.awaiting[0].tick
		h.awaiting[0] = awaitEntry{}
		h.awaiting = h.awaiting[1:]
		s.applyTick(now)
	}
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

// flush hands the core's output to the shard's bars and the sink. With
// deliver false (replay of already delivered inputs) it is dropped.
func (s *shard) flush(deliver bool) error {
	if !s.core.HasReady() {
		return nil
	}
	d := s.core.Ready()
	if !deliver {
		s.core.Release(d)
		return nil
	}
	h := s.h
	env := h.env
	if env.Sink != nil {
		env.Sink.Deliver(h.id, d)
	}
	env.Deltas.Add(1)
	// Closed bars (and runs) go to the shard's bar series in memory; a
	// durable node stores them with its next snapshot (the WAL holds their
	// trades until then).
	// The open bars too: a query reads a series' closed and open bars
	// there, as of this flush, without a round trip to the shard.
	err := h.bars.PutDelta(d.Closed, d.Open)
	s.core.Release(d)
	if err != nil {
		return fmt.Errorf("shard %d: %w", h.id, err)
	}
	if env.Store != nil && !h.snapshotting && h.bars.PendingBytes() > maxPendingChunkBytes {
		s.startSnapshot(nil) // store the sealed chunks early
	}
	return nil
}

// checkpoint records a memory-only shard's state in memory, so a restart
// resumes from here (a durable shard snapshots: requestSnapshot).
func (s *shard) checkpoint() error {
	if err := s.flush(true); err != nil {
		return err
	}
	if err := s.core.SaveCheckpoint(&s.h.checkpoint); err != nil {
		return fmt.Errorf("shard %d: checkpoint: %w", s.h.id, err)
	}
	s.h.log = s.h.log[:0]
	s.h.logTrades = s.h.logTrades[:0]
	s.h.delivered = 0
	return nil
}

// startDurable builds the core from the stored snapshot and replays the
// shard's WAL after it: all of it on the first start, up to the failed
// input on a restart.
func (s *shard) startDurable() (Recovery, error) {
	h := s.h
	st := h.env.Store
	var rec Recovery
	h.snapMu.Lock() // no snapshot saved, no WAL truncated, while replaying
	defer h.snapMu.Unlock()
	covered, blob, ok, err := st.LoadSnapshot(h.id)
	if err != nil {
		return rec, fmt.Errorf("shard %d: load snapshot: %w", h.id, err)
	}
	if ok {
		state, clock, err := decodeSnapshot(blob)
		if err != nil {
			return rec, fmt.Errorf("shard %d: snapshot: %w", h.id, err)
		}
		if s.core, err = aggregate.Restore(h.env.Core, state); err != nil {
			return rec, fmt.Errorf("shard %d: restore snapshot: %w", h.id, err)
		}
		h.clock = max(h.clock, clock)
	} else if s.core, err = aggregate.New(h.env.Core); err != nil {
		return rec, fmt.Errorf("shard %d: %w", h.id, err)
	}
	applied := h.appliedSeq
	if h.started && h.lastWAL != nil {
		if seq, err := h.lastWAL.Wait(); err == nil {
			applied = seq
		}
	}
	var inflightSeq uint64
	if h.inflight != nil && h.inflight.WAL != nil {
		inflightSeq, _ = h.inflight.WAL.Wait()
	}
	began := time.Now()
	replay := &Part{}
	var lastSeq uint64
	err = st.ReplayWAL(context.Background(), h.id, covered, func(seq uint64, tb *messages.TradeBatch) error {
		if seq > applied {
			return errStopReplay
		}
		replay.trades, replay.TickBefore, replay.TickAfter = tb.Trades, tb.TickBefore, tb.TickAfter
		p := replay
		if seq == inflightSeq && h.inflight != nil {
			// The failed input: applied from its record and answered,
			// with positions in its request.
			p = h.inflight
			p.trades = tb.Trades
			defer func() { p.trades = nil }()
		}
		if err := s.replayPart(p, seq > h.deliveredSeq); err != nil {
			return err
		}
		rec.Records++
		rec.Trades += int64(len(replay.trades))
		lastSeq = seq
		return nil
	})
	if err != nil && !errors.Is(err, errStopReplay) {
		return rec, fmt.Errorf("shard %d: replay WAL: %w", h.id, err)
	}
	// Every open bar to the bar series (queries read them there), not
	// only those the replay changed.
	s.core.MarkAllOpen()
	if err := s.flush(true); err != nil {
		return rec, err
	}
	if h.lastTick > 0 {
		s.core.Tick(h.lastTick)
		if err := s.flush(true); err != nil {
			return rec, err
		}
	}
	if h.inflight != nil {
		// Its trades were applied above (or, if its append failed, are
		// not in the WAL and the producer was told so); it is done.
		h.inflight = nil
	}
	h.deliveredSeq = max(h.deliveredSeq, lastSeq)
	h.walSeq = max(h.walSeq, lastSeq)
	rec.Symbols = len(s.core.Symbols(nil))
	rec.Watermark = s.core.Watermark()
	rec.Clock = h.clock
	if rec.Records > 0 {
		h.env.Log.Info("shard replayed WAL", "shard", h.id, "records", rec.Records, "trades", rec.Trades,
			"restart", h.started, "took", time.Since(began).Round(time.Millisecond))
	}
	return rec, nil
}

// maxLogTrades bounds a memory-only shard's input log: past it the shard
// checkpoints, so the log never holds more than this many trades (64
// shards × 65,536 × 80 bytes: at most 320 MiB per node, reached only when
// a shard's state is larger than that many trades; see keep).
const maxLogTrades = 1 << 16

// maxLogEntries bounds the input log's entries (ticks and parts).
const maxLogEntries = 4096

// record makes a part recoverable before it is applied, on a durable
// node: it queues the part on the shard's WAL (the part is applied once
// the record is durable).
func (s *shard) record(p *Part) error {
	h := s.h
	if st := h.env.Store; st != nil {
		s.scratch = s.scratch[:0]
		for i, n := 0, p.len(); i < n; i++ {
			s.scratch = append(s.scratch, *p.trade(i))
		}
		tb := messages.TradeBatch{TickBefore: p.TickBefore, TickAfter: p.TickAfter, Trades: s.scratch}
		a, err := st.AppendBatchAsync(context.Background(), h.id, &tb)
		clear(s.scratch) // the record is encoded; drop symbol references
		if err != nil {
			return fmt.Errorf("shard %d: %w", h.id, err)
		}
		p.WAL = a
	}
	return nil
}

// replayPart applies a replayed WAL record. Output accumulates across
// records (one store write per many records instead of one per record);
// it is flushed when the replay crosses from already-delivered records to
// new ones, when it grows large, and for the failed input being answered.
func (s *shard) replayPart(p *Part, deliver bool) error {
	if !deliver {
		_, err := s.applyPart(p, false)
		return err
	}
	if !s.replayDelivering {
		// Everything before this record was delivered before the failure.
		if err := s.flush(false); err != nil {
			return err
		}
		s.replayDelivering = true
	}
	if p.Req != nil {
		res, err := s.applyPart(p, true)
		p.answer(res)
		return err
	}
	s.applyTrades(p, nil)
	if s.replayed++; s.replayed%256 == 0 {
		return s.flush(true)
	}
	return nil
}
