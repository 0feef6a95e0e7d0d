package shard

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// DeltaSink receives shard output. Deliver is called on the shard's
// goroutine; it must not block, and must copy whatever it keeps: d is
// reused once Deliver returns. Delivery is at least once: a shard that
// restarts (after a panic) delivers again what it rebuilt since its last
// checkpoint, so a sink must treat a bar it has seen as an update of it.
// d.Closed may hold runs of empty bars (Repeat > 0; see aggregate.Delta).
type DeltaSink interface {
	Deliver(shard int, d *aggregate.Delta)
}

// DeltaSinkFunc adapts a function to DeltaSink.
type DeltaSinkFunc func(shard int, d *aggregate.Delta)

// Deliver calls f.
func (f DeltaSinkFunc) Deliver(shard int, d *aggregate.Delta) { f(shard, d) }

// Env is what every shard of a node shares: built once by the node, read
// only afterwards.
type Env struct {
	Core  aggregate.Config
	Store *storage.Store // nil: memory-only
	// Retention is enforced by each shard's storage writer after a
	// snapshot, at most every RetentionEvery (durable nodes; empty: none).
	Retention storage.Retention
	Sink      DeltaSink // nil: none
	System    *actor.ActorSystem
	Life      *lifecycle.Life
	Log       *slog.Logger
	// Deltas counts the Deltas delivered by every shard.
	Deltas *atomic.Uint64
	// PartFailureLimit is how many incarnations of a memory-only shard may
	// fail in a row applying one part before it gives the part up.
	PartFailureLimit int
	// Faults are test hooks (nil in production).
	Faults Faults
}

// Faults inject failures a test cannot cause otherwise.
type Faults struct {
	// Chunk, if set, is asked before each chunk a shard applies; true makes
	// the shard apply half of the chunk and panic, as a bug in the middle
	// of a part would.
	Chunk func(shard int, lo int32) bool
	// Replay, if set, is asked before a restarted memory-only shard applies
	// again the part it failed on; true: panic (a part that fails every
	// time).
	Replay func(shard int) bool
}

// Handle is the part of a shard that outlives its actor incarnations:
// the checkpoint it restarts from, the inputs applied since, and counters.
// Only the shard's current incarnation touches the non-atomic fields, and
// incarnations never overlap (protoactor restarts in the same mailbox).
type Handle struct {
	id  int
	env *Env
	// bars are the shard's closed bars: chunked series in memory, stored
	// with each snapshot on a durable node. They outlive incarnations (a
	// restart replays silently what they already hold).
	bars *storage.ShardBars
	pid  atomic.Pointer[actor.PID] // replaced when the supervisor restarts

	// Stats are the shard actor's counters (mailbox, restarts, failure,
	// heartbeat).
	Stats lifecycle.Stats

	// Memory-only nodes restart from the in-memory checkpoint and the
	// inputs logged since (see shard.keep).
	checkpoint aggregate.Checkpoint
	log        []shardLogEntry
	logTrades  []messages.Trade // the logged parts' trades
	delivered  int              // log entries whose output was delivered

	// Durable nodes apply a part once its WAL record is durable: awaiting
	// holds the inputs waiting for that, in order. io feeds the shard's
	// storage writer (writer.go), which reports each write's outcome as a
	// message; snapshotting: a snapshot
	// is being saved, and snapshotWaiters wait for the next one.
	awaiting []awaitEntry
	io       chan ioJob
	// snapMu is held by the storage writer while it saves a snapshot and
	// truncates the WAL behind it, and by a restarting shard while it
	// loads its snapshot and replays the WAL: a replay must not see the
	// WAL truncated under it by a snapshot its failed incarnation started.
	snapMu          sync.Mutex
	snapshotting    bool
	snapshotWaiters []chan<- error
	// lastRetention is when the storage writer last enforced
	// Env.Retention (wall clock; the writer's own).
	lastRetention time.Time

	// Durable nodes restart from the stored snapshot and the WAL.
	started   bool            // the first start (Recovery) happened
	recovered chan Recovery   // the first start's outcome, for the node's start
	lastWAL   *storage.Append // the WAL append of the last part an incarnation started
	inflight  *Part           // the part being applied (nil between parts)
	// A memory-only shard's part arrives in chunks: inflightHi is where
	// the chunk being applied ends (the part is applied up to there once
	// it succeeds), inflightLast whether it is the part's last.
	inflightHi   int32
	inflightLast bool
	// inflightFailures counts the incarnations that failed while applying
	// the part in flight (applying: a chunk of it, or its replay, was
	// being applied; other failures between two chunks do not count); at
	// Env.PartFailureLimit the part is given up (see abandon). abandoned is
	// such a part whose remaining chunks are still to come: they are
	// skipped, and its last one is answered with abandonErr.
	applying         bool
	inflightFailures int
	abandoned        *Part
	abandonErr       error
	// deferredCheckpoints are checkpoint requests that arrived between two
	// chunks of a part, answered once it is finished.
	deferredCheckpoints []chan<- error
	// appliedSeq bounds the replay of a restart: records up to it were
	// started by the failed incarnation. MaxUint64 before the first start.
	appliedSeq   uint64
	deliveredSeq uint64 // records up to here had their output delivered
	walSeq       uint64 // the last WAL record replayed by a start
	lastTick     int64  // the last clock tick applied
	// clock is the shard's complete clock: the newest clock it was sent
	// from a state in which every earlier request was complete (a tick,
	// or the clock a part was routed behind). Not a part's own TickAfter:
	// that one moves the shard's core as soon as its part is applied,
	// before the request's other parts are, and after a power cut some
	// of them may be missing from the WAL. The node restarts its clock
	// from the shards' complete clocks, so the trades of a request only
	// partly recovered are not refused as late when the producer sends it
	// again.
	clock int64

	// How keep made applied parts recoverable (memory-only), for tests
	// and stats.
	keptBySave atomic.Uint64
	keptByLog  atomic.Uint64
}

// New returns the handle of shard id, whose closed bars go to bars. queue
// bounds the parts that may be waiting for their WAL write at once (the
// node's requests in flight).
func New(env *Env, id, queue int, bars *storage.ShardBars) *Handle {
	h := &Handle{id: id, env: env, bars: bars, recovered: make(chan Recovery, 1), appliedSeq: math.MaxUint64}
	h.Stats.Name, h.Stats.Parent, h.Stats.Kind = Name(id), "shards", "shard"
	if env.Store != nil {
		// At most queue parts wait for their WAL write per shard (the
		// node's ingest gate), and one snapshot: sends to io never block.
		h.io = make(chan ioJob, queue+2)
	}
	return h
}

// Name is the actor name of shard id.
func Name(id int) string { return fmt.Sprintf("shard-%02d", id) }

// ID returns the shard's number.
func (h *Handle) ID() int { return h.id }

// NewActor returns a new incarnation of the shard actor (an
// actor.Producer).
func (h *Handle) NewActor() actor.Actor { return &shard{h: h} }

// Spawned records the PID of the shard's actor; the first time, it starts
// the goroutine that waits for the shard's WAL appends (it outlives
// restarts, and ends with Close).
func (h *Handle) Spawned(pid *actor.PID) {
	first := h.pid.Swap(pid) == nil
	if first && h.io != nil {
		go h.storageWriter()
	}
}

// Send queues msg for the shard.
func (h *Handle) Send(msg any) {
	h.Stats.Sent()
	h.env.System.Root.Send(h.pid.Load(), msg)
}

// Recovered receives the outcome of the shard's first start, once.
func (h *Handle) Recovered() <-chan Recovery { return h.recovered }

// Close ends the shard's WAL waiter; call it once the actor tree stopped,
// so nothing sends to its queue any more.
func (h *Handle) Close() {
	if h.io != nil {
		close(h.io)
	}
}

// KeptBy reports how a memory-only shard made its applied parts
// recoverable: by saving its core, or by logging the part's trades.
func (h *Handle) KeptBy() (saves, logs uint64) { return h.keptBySave.Load(), h.keptByLog.Load() }
