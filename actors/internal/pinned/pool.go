package pinned

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"golang.org/x/sys/cpu"
)

// Pinned dispatcher
//
// A Pool runs a fixed set of worker goroutines, each locked to its own
// OS thread (runtime.LockOSThread) and, where the kernel permits, pinned to one
// CPU (sched_setaffinity). Dispatcher(shard) returns a protoactor
// actor.Dispatcher that always schedules onto worker shard % Workers, so a
// shard actor always runs on the same OS thread and core.
//
// How protoactor uses a dispatcher (actor/mailbox.go): when a message is
// posted to an idle mailbox, the poster CASes the mailbox from idle to running
// and calls Schedule(processMessages). processMessages drains the mailbox
// (yielding with runtime.Gosched every Throughput() messages, without
// returning) and sets it idle again. Hence:
//
//   - Schedule is called from any goroutine, concurrently: every sender, the
//     spawner (the Started system message), and the workers themselves when a
//     pinned actor sends to another pinned actor.
//   - A mailbox has at most one scheduled-but-not-yet-started processMessages
//     at any moment, so a worker's run queue never holds more entries than
//     there are mailboxes bound to that worker (see QueueSize).

// Defaults for Config. Each is applied when the field is zero.
const (
	// DefaultThroughput is the number of messages a mailbox processes
	// before it yields (protoactor's own default dispatcher uses 300).
	DefaultThroughput = 300
	// DefaultQueueSize is the per-worker run-queue capacity: far above
	// the default 64 shards, so Schedule never blocks in practice.
	DefaultQueueSize = 4096

	// pinnedMaxCPU is CPU_SETSIZE: CPU numbers must be below it.
	pinnedMaxCPU = 1024
)

// Config configures a Pool. It is copied by NewPool and
// cannot change afterwards.
type Config struct {
	// Workers is the number of pinned workers (OS threads). Zero means
	// runtime.NumCPU(). The value is capped at the number of CPUs available
	// for pinning: len(CPUs) if CPUs is set, otherwise the number of CPUs in
	// the process's affinity mask. Two pinned workers on one CPU would only
	// contend. Negative is invalid.
	Workers int
	// CPUs optionally lists the CPUs to pin to, worker i to CPUs[i]. Nil or
	// empty means the CPUs of the process's affinity mask in ascending order.
	// Each must be in [0, 1024) and appear once. A CPU the kernel refuses
	// leaves that worker unpinned; it is not an error.
	CPUs []int
	// Throughput is how many messages a mailbox processes before it yields
	// its thread (protoactor calls runtime.Gosched; it does not return to the
	// worker, so it gives no fairness between the actors of one worker). Zero
	// means DefaultThroughput. Negative is invalid.
	Throughput int
	// QueueSize is the capacity of each worker's run queue, in scheduled
	// mailbox turns. Zero means DefaultQueueSize. Negative is invalid.
	// Schedule blocks while the queue is full (it never drops a turn); since a
	// mailbox is scheduled at most once at a time, the queue cannot fill as
	// long as QueueSize >= the number of actors bound to one worker, which is
	// ceil(shards / Workers) plus any other actor given the same dispatcher.
	QueueSize int
	// Logger receives the pool's few log lines (one warning if CPU affinity
	// is unavailable). Nil means discard.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration used in production: one
// worker per CPU of the affinity mask, protoactor's default throughput and a
// run queue far larger than the number of shards.
func DefaultConfig() Config {
	return Config{
		Workers:    0,                 // runtime.NumCPU(), capped at the affinity mask
		CPUs:       nil,               // the affinity mask, ascending
		Throughput: DefaultThroughput, // messages per mailbox before yielding
		QueueSize:  DefaultQueueSize,  // >> 64 shards / Workers: Schedule never blocks
		Logger:     nil,               // discard
	}
}

// Validate reports the first invalid field. Zero values are valid (they mean
// defaults).
func (c Config) Validate() error {
	switch {
	case c.Workers < 0:
		return fmt.Errorf("actors: pinned pool: Workers %d < 0", c.Workers)
	case c.Throughput < 0:
		return fmt.Errorf("actors: pinned pool: Throughput %d < 0", c.Throughput)
	case c.QueueSize < 0:
		return fmt.Errorf("actors: pinned pool: QueueSize %d < 0", c.QueueSize)
	}
	seen := make(map[int]bool, len(c.CPUs))
	for _, id := range c.CPUs {
		if id < 0 || id >= pinnedMaxCPU {
			return fmt.Errorf("actors: pinned pool: CPU %d out of range [0, %d)", id, pinnedMaxCPU)
		}
		if seen[id] {
			return fmt.Errorf("actors: pinned pool: CPU %d listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// WorkerStats is a snapshot of one worker's counters.
type WorkerStats struct {
	Worker int // index, 0 ≤ Worker < Workers()
	// CPU is the CPU the worker is meant for. It runs there only if Pinned.
	CPU int
	// Pinned reports whether the kernel accepted the worker's affinity.
	Pinned bool
	// Turns counts scheduled functions run (mailbox turns).
	Turns uint64
	// BusyNanos is the monotonic time spent inside those turns.
	BusyNanos uint64
	// Queue is the number of turns waiting in the run queue.
	Queue int
	// Parks counts the times the worker found its queue empty and blocked.
	Parks uint64
}

// Pool is a set of pinned workers. Its methods are safe for concurrent
// use.
type Pool struct {
	throughput int
	workers    []*pinnedWorker
	closeOnce  sync.Once
}

// pinnedWorker is one locked OS thread with its run queue.
type pinnedWorker struct {
	index int
	cpu   int

	// queue is the bounded run queue. A nil func is the stop sentinel sent by
	// Close.
	queue chan func()

	// Written by Schedule callers.
	closed  atomic.Bool  // set by Close before the stop sentinel is queued
	senders atomic.Int64 // Schedule calls between their closed check and their send

	_ cpu.CacheLinePad // keep the worker-written counters off the senders' line

	// Written by the worker only.
	pinned atomic.Bool
	turns  atomic.Uint64
	busy   atomic.Uint64 // nanoseconds
	parks  atomic.Uint64

	done chan struct{} // closed when the worker goroutine returns
}

// NewPool validates cfg, starts the workers and waits until each has
// locked its thread and tried to pin it. It fails only on an invalid cfg:
// if CPU affinity is unavailable (not permitted, not Linux) it logs one
// warning and the workers run unpinned, still one locked thread each.
func NewPool(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Throughput == 0 {
		cfg.Throughput = DefaultThroughput
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	allowed, affinityErr := pinnedAllowedCPUs()
	cpus := cfg.CPUs
	switch {
	case len(cpus) > 0:
	case affinityErr == nil && len(allowed) > 0:
		cpus = allowed
	default:
		// Unknown mask: number the CPUs notionally; nothing will be pinned.
		cpus = make([]int, runtime.NumCPU())
		for i := range cpus {
			cpus[i] = i
		}
	}
	n := cfg.Workers
	if n == 0 {
		n = runtime.NumCPU()
	}
	n = min(n, len(cpus))

	p := &Pool{throughput: cfg.Throughput, workers: make([]*pinnedWorker, n)}
	pinErrs := make([]error, n)
	var started sync.WaitGroup
	for i := range p.workers {
		w := &pinnedWorker{
			index: i,
			cpu:   cpus[i],
			queue: make(chan func(), cfg.QueueSize),
			done:  make(chan struct{}),
		}
		p.workers[i] = w
		started.Add(1)
		go w.loop(affinityErr == nil, &pinErrs[i], started.Done)
	}
	started.Wait()

	unpinned, firstErr := 0, affinityErr
	for _, err := range pinErrs {
		if err != nil {
			unpinned++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if affinityErr != nil {
		unpinned = n
	}
	if unpinned > 0 {
		logger.Warn("cpu affinity unavailable, running unpinned",
			"err", firstErr, "unpinned", unpinned, "workers", n)
	} else {
		logger.Debug("pinned pool started", "workers", n, "cpus", cpus[:n])
	}
	return p, nil
}

// loop is the worker goroutine. It locks its OS thread for its lifetime and
// narrows the thread's affinity to its CPU; on the way out it restores the
// mask before unlocking (see below), so no other goroutine ever runs on a
// narrowed thread. (The runtime creates new threads from its template
// thread, not from a locked one, so the narrowed mask is not inherited by
// new Ms either.)
func (w *pinnedWorker) loop(tryPin bool, pinErr *error, started func()) {
	runtime.LockOSThread()
	// On the way out the thread goes back to the runtime's pool, so a
	// process that starts and stops nodes (tests, embedding, benchmarks)
	// reuses its threads instead of the runtime starting new ones while a
	// later node runs. A pinned thread goes back only with the mask it had
	// (else any goroutine it ran later would be confined to one CPU); if
	// that fails it stays locked and exits with this goroutine.
	release := runtime.UnlockOSThread
	if tryPin {
		if restore, err := pinnedPinThread(w.cpu); err != nil {
			*pinErr = fmt.Errorf("worker %d cpu %d: %w", w.index, w.cpu, err)
		} else {
			w.pinned.Store(true)
			release = func() {
				if restore() == nil {
					runtime.UnlockOSThread()
				}
			}
		}
	}
	defer release()
	started()
	defer close(w.done)

	for {
		fn := w.next()
		if fn == nil {
			w.drain()
			return
		}
		w.run(fn)
	}
}

// next returns the next turn, waiting for one.
func (w *pinnedWorker) next() func() {
	select {
	case fn := <-w.queue:
		return fn
	default:
	}
	w.parks.Add(1)
	return <-w.queue
}

// run runs one turn and accounts for it. A panic escaping fn is not
// recovered: protoactor's mailbox already recovers actor panics and escalates
// them to the supervisor, so anything escaping is a bug in the mailbox or a
// middleware, and recovering it would leave that mailbox marked running
// forever. It crashes the process, as with protoactor's default dispatcher.
func (w *pinnedWorker) run(fn func()) {
	start := time.Now()
	fn()
	w.busy.Add(uint64(time.Since(start)))
	w.turns.Add(1)
}

// drain runs everything still queued after the stop sentinel, including
// turns from Schedule calls that passed their closed check before Close.
func (w *pinnedWorker) drain() {
	for {
		select {
		case fn := <-w.queue:
			if fn != nil {
				w.run(fn)
			}
			continue
		default:
		}
		if w.senders.Load() == 0 {
			// INVARIANT: closed was stored before the sentinel we received,
			// and every sender increments senders before it loads closed.
			// senders == 0 now means each sender that saw closed == false has
			// completed its send, and every later sender sees closed == true
			// and does not touch the queue. So the queue only shrinks from
			// here: one more pass empties it for good.
			for {
				select {
				case fn := <-w.queue:
					if fn != nil {
						w.run(fn)
					}
				default:
					return
				}
			}
		}
		// A sender is between its closed check and its send (or is backing
		// out). That window is a few instructions; yield until it is over.
		runtime.Gosched()
	}
}

// Workers returns the number of workers.
func (p *Pool) Workers() int { return len(p.workers) }

// WorkerOf returns the worker that runs shard: shard mod Workers(), never
// negative.
func (p *Pool) WorkerOf(shard int) int {
	n := len(p.workers)
	return (shard%n + n) % n
}

// Dispatcher returns the dispatcher for shard. Every dispatcher returned for
// the same WorkerOf(shard) schedules onto the same worker, hence the same OS
// thread and (if pinned) CPU. Use it with
//
//	actor.PropsFromProducer(newShard, actor.WithDispatcher(pool.Dispatcher(i)),
//		actor.WithMailbox(actor.Bounded(n)))
//
// Schedule on the returned dispatcher may be called from any goroutine,
// including the workers. It never drops a turn: it blocks while the worker's
// queue is full (see Config.QueueSize for why that does not happen with
// enough capacity). After Close, Schedule runs fn on a new goroutine, as
// protoactor's default dispatcher does, so late messages (stop and
// supervision messages during shutdown) are still processed, unpinned.
func (p *Pool) Dispatcher(shard int) actor.Dispatcher {
	return pinnedDispatcher{w: p.workers[p.WorkerOf(shard)], throughput: p.throughput}
}

// Stats returns a snapshot of every worker's counters, indexed by worker.
// Counters of different workers are read at slightly different moments.
func (p *Pool) Stats() []WorkerStats {
	out := make([]WorkerStats, len(p.workers))
	for i, w := range p.workers {
		out[i] = WorkerStats{
			Worker:    w.index,
			CPU:       w.cpu,
			Pinned:    w.pinned.Load(),
			Turns:     w.turns.Load(),
			Parks:     w.parks.Load(),
			BusyNanos: w.busy.Load(),
			Queue:     len(w.queue),
		}
	}
	return out
}

// Close stops the workers after draining their queues and waits for them:
// when it returns every turn scheduled before Close has run, so every message
// posted to a pinned actor before Close has been processed. Later Schedule
// calls run on plain goroutines. Close is idempotent; concurrent calls all
// wait for the drain. It must not be called from an actor running on the pool
// (the worker would wait for itself).
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		for _, w := range p.workers {
			w.closed.Store(true)
			// The sentinel may wait behind a full queue; the worker is still
			// draining it, so this makes progress.
			w.queue <- nil
		}
		for _, w := range p.workers {
			<-w.done
		}
	})
}

// pinnedDispatcher implements actor.Dispatcher for one worker.
type pinnedDispatcher struct {
	w          *pinnedWorker
	throughput int
}

var _ actor.Dispatcher = pinnedDispatcher{}

// Schedule queues fn on the worker, blocking while its queue is full.
func (d pinnedDispatcher) Schedule(fn func()) {
	if fn == nil {
		panic(errors.New("actors: pinned dispatcher: Schedule(nil)"))
	}
	w := d.w
	w.senders.Add(1)
	if w.closed.Load() {
		w.senders.Add(-1)
		go fn()
		return
	}
	w.queue <- fn
	w.senders.Add(-1)
}

// Throughput is the number of messages a mailbox processes before yielding.
func (d pinnedDispatcher) Throughput() int { return d.throughput }
