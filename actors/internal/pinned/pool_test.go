package pinned

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// dispatchNewPool starts a pool closed at cleanup.
func dispatchNewPool(tb testing.TB, cfg Config) *Pool {
	tb.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		tb.Fatalf("NewPool(%+v): %v", cfg, err)
	}
	tb.Cleanup(p.Close)
	return p
}

// dispatchNewSystem returns a quiet actor system.
func dispatchNewSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
}

// dispatchStopAll stops pids and waits until each has stopped.
func dispatchStopAll(tb testing.TB, system *actor.ActorSystem, pids []*actor.PID) {
	tb.Helper()
	for _, pid := range pids {
		if err := system.Root.StopFuture(pid).Wait(); err != nil {
			tb.Errorf("stop %v: %v", pid, err)
		}
	}
}

// dispatchSeq is a test message: the seq-th message for one shard.
type dispatchSeq struct{ seq int }

// dispatchFuncActor adapts a function to actor.Actor.
type dispatchFuncActor func(ctx actor.Context)

func (f dispatchFuncActor) Receive(ctx actor.Context) { f(ctx) }

// dispatchSpawnShards spawns one actor per shard on the pool's dispatcher
// with a bounded mailbox; onSeq runs inside Receive for each dispatchSeq.
func dispatchSpawnShards(tb testing.TB, system *actor.ActorSystem, pool *Pool, shards, mailbox int,
	onSeq func(shard int, m dispatchSeq)) []*actor.PID {
	tb.Helper()
	pids := make([]*actor.PID, shards)
	for shard := range pids {
		props := actor.PropsFromProducer(func() actor.Actor {
			return dispatchFuncActor(func(ctx actor.Context) {
				if m, ok := ctx.Message().(dispatchSeq); ok {
					onSeq(shard, m)
				}
			})
		}, actor.WithDispatcher(pool.Dispatcher(shard)), actor.WithMailbox(actor.Bounded(mailbox)))
		pids[shard] = system.Root.Spawn(props)
	}
	return pids
}

func TestDispatchConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	bad := map[string]Config{
		"negative workers":    {Workers: -1},
		"negative throughput": {Throughput: -1},
		"negative queue":      {QueueSize: -1},
		"negative cpu":        {CPUs: []int{-1}},
		"cpu too large":       {CPUs: []int{pinnedMaxCPU}},
		"duplicate cpu":       {CPUs: []int{0, 0}},
	}
	for name, cfg := range bad {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, cfg)
		}
		if p, err := NewPool(cfg); err == nil {
			p.Close()
			t.Errorf("%s: NewPool accepted %+v", name, cfg)
		}
	}
}

func TestDispatchDefaultsAndWorkerCount(t *testing.T) {
	allowed := runtime.NumCPU()
	if cpus, err := pinnedAllowedCPUs(); err == nil {
		allowed = min(allowed, len(cpus))
	}

	p := dispatchNewPool(t, Config{})
	if got := p.Workers(); got != allowed {
		t.Errorf("Workers() = %d with Workers 0, want %d", got, allowed)
	}
	if got := p.Dispatcher(0).Throughput(); got != DefaultThroughput {
		t.Errorf("Throughput() = %d, want %d", got, DefaultThroughput)
	}
	if got := cap(p.workers[0].queue); got != DefaultQueueSize {
		t.Errorf("queue capacity = %d, want %d", got, DefaultQueueSize)
	}

	if got := dispatchNewPool(t, Config{Workers: 1000}).Workers(); got != allowed {
		t.Errorf("Workers() = %d with Workers 1000, want capped at %d", got, allowed)
	}
	if got := dispatchNewPool(t, Config{Workers: 1, Throughput: 7}).Dispatcher(3).Throughput(); got != 7 {
		t.Errorf("Throughput() = %d, want 7", got)
	}
	// An explicit CPU list caps the workers and fixes each one's CPU.
	p = dispatchNewPool(t, Config{CPUs: []int{0}})
	if st := p.Stats(); len(st) != 1 || st[0].CPU != 0 || st[0].Worker != 0 {
		t.Errorf("Stats() = %+v with CPUs [0], want one worker on CPU 0", st)
	}
}

func TestDispatchWorkerOf(t *testing.T) {
	p := dispatchNewPool(t, Config{Workers: 1})
	// Build a pool shape independent of the host: WorkerOf only needs len.
	p3 := &Pool{workers: make([]*pinnedWorker, 3)}
	for shard, want := range map[int]int{0: 0, 1: 1, 2: 2, 3: 0, 64: 1, -1: 2, -3: 0, -4: 2} {
		if got := p3.WorkerOf(shard); got != want {
			t.Errorf("WorkerOf(%d) = %d with 3 workers, want %d", shard, got, want)
		}
	}
	for shard := -5; shard < 70; shard++ {
		if got := p.WorkerOf(shard); got != 0 {
			t.Errorf("WorkerOf(%d) = %d with 1 worker, want 0", shard, got)
		}
		if p.Dispatcher(shard).(pinnedDispatcher).w != p.workers[0] {
			t.Errorf("Dispatcher(%d) is not on worker 0", shard)
		}
	}
}

// TestDispatchActorOrder sends N messages to each of K shard actors from one
// goroutine per actor, through small bounded mailboxes so senders block, and
// requires every message to arrive exactly once and in order.
func TestDispatchActorOrder(t *testing.T) {
	const shards, perShard, mailbox = 16, 2000, 64
	pool := dispatchNewPool(t, Config{QueueSize: shards})
	system := dispatchNewSystem()

	next := make([]int, shards) // owned by each shard's actor
	var done sync.WaitGroup
	done.Add(shards)
	pids := dispatchSpawnShards(t, system, pool, shards, mailbox, func(shard int, m dispatchSeq) {
		if m.seq != next[shard] {
			t.Errorf("shard %d: got seq %d, want %d", shard, m.seq, next[shard])
		}
		next[shard] = m.seq + 1
		if m.seq == perShard-1 {
			done.Done()
		}
	})
	defer dispatchStopAll(t, system, pids)

	for _, pid := range pids {
		go func() {
			for seq := range perShard {
				system.Root.Send(pid, dispatchSeq{seq: seq})
			}
		}()
	}
	done.Wait()
	for shard, n := range next {
		if n != perShard {
			t.Errorf("shard %d processed %d messages, want %d", shard, n, perShard)
		}
	}
}

// TestDispatchActorToActor bounces a counter between shard actors, so that
// workers call Schedule on their own queue (a shard sending to a shard on the
// same worker) and on each other's.
func TestDispatchActorToActor(t *testing.T) {
	pool := dispatchNewPool(t, Config{})
	system := dispatchNewSystem()
	const hops = 5000
	shards := 2*pool.Workers() + 1 // some pairs share a worker, some do not
	pids := make([]*actor.PID, shards)
	finished := make(chan int, 1)
	for shard := range pids {
		props := actor.PropsFromProducer(func() actor.Actor {
			return dispatchFuncActor(func(ctx actor.Context) {
				m, ok := ctx.Message().(dispatchSeq)
				if !ok {
					return
				}
				if m.seq == hops {
					finished <- m.seq
					return
				}
				ctx.Send(pids[(shard+m.seq)%shards], dispatchSeq{seq: m.seq + 1})
			})
		}, actor.WithDispatcher(pool.Dispatcher(shard)), actor.WithMailbox(actor.Bounded(16)))
		pids[shard] = system.Root.Spawn(props)
	}
	defer dispatchStopAll(t, system, pids)
	system.Root.Send(pids[0], dispatchSeq{seq: 0})
	if got := <-finished; got != hops {
		t.Fatalf("finished at hop %d, want %d", got, hops)
	}
}

// TestDispatchCloseDrainsActors posts messages and closes the pool without
// waiting: when Close returns, every message posted before it was processed.
func TestDispatchCloseDrainsActors(t *testing.T) {
	const shards, perShard = 8, 500
	pool := dispatchNewPool(t, Config{})
	system := dispatchNewSystem()
	counts := make([]atomic.Int64, shards)
	pids := dispatchSpawnShards(t, system, pool, shards, perShard, func(shard int, _ dispatchSeq) {
		counts[shard].Add(1)
	})
	for seq := range perShard {
		for _, pid := range pids {
			system.Root.Send(pid, dispatchSeq{seq: seq})
		}
	}
	pool.Close()
	for shard := range counts {
		if got := counts[shard].Load(); got != perShard {
			t.Errorf("shard %d: %d messages processed when Close returned, want %d", shard, got, perShard)
		}
	}
	for _, st := range pool.Stats() {
		if st.Queue != 0 {
			t.Errorf("worker %d: queue %d after Close, want 0", st.Worker, st.Queue)
		}
	}

	// After Close the actors still work (turns run on plain goroutines), so
	// they can be messaged and stopped during shutdown.
	var after sync.WaitGroup
	after.Add(1)
	extra := dispatchSpawnShards(t, system, pool, 1, 4, func(int, dispatchSeq) { after.Done() })
	system.Root.Send(extra[0], dispatchSeq{})
	after.Wait()
	dispatchStopAll(t, system, append(pids, extra...))
}

// dispatchBlockWorker occupies worker 0 of p until the returned func is
// called.
func dispatchBlockWorker(p *Pool) (release func()) {
	entered, gate := make(chan struct{}), make(chan struct{})
	p.Dispatcher(0).Schedule(func() {
		close(entered)
		<-gate
	})
	<-entered
	return func() { close(gate) }
}

func TestDispatchCloseDrainsQueue(t *testing.T) {
	p := dispatchNewPool(t, Config{Workers: 1, QueueSize: 64})
	release := dispatchBlockWorker(p)
	const queued = 50
	var ran atomic.Int64
	for range queued {
		p.Dispatcher(0).Schedule(func() { ran.Add(1) })
	}
	if got := p.Stats()[0].Queue; got != queued {
		t.Errorf("Queue = %d with the worker blocked, want %d", got, queued)
	}

	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	release()
	<-closed
	if got := ran.Load(); got != queued {
		t.Errorf("%d queued turns ran before Close returned, want %d", got, queued)
	}
	st := p.Stats()[0]
	if st.Turns != queued+1 || st.Queue != 0 {
		t.Errorf("Stats = %+v, want Turns %d and Queue 0", st, queued+1)
	}
	p.Close() // idempotent

	// Schedule after Close still runs fn, on its own goroutine.
	late := make(chan struct{})
	p.Dispatcher(0).Schedule(func() { close(late) })
	<-late
	if got := p.Stats()[0].Turns; got != queued+1 {
		t.Errorf("Turns = %d after a post-Close Schedule, want %d (not run by the worker)", got, queued+1)
	}
}

// TestDispatchScheduleBlocksWhenFull fills a tiny queue from several
// goroutines while the worker is busy: Schedule must block rather than drop,
// and each sender's turns run in its order.
func TestDispatchScheduleBlocksWhenFull(t *testing.T) {
	const queueSize, senders, each = 2, 4, 25
	p := dispatchNewPool(t, Config{Workers: 1, QueueSize: queueSize})
	release := dispatchBlockWorker(p)

	var ran sync.WaitGroup
	ran.Add(senders * each)
	next := make([]int, senders) // touched only by the worker
	for s := range senders {
		go func() {
			for i := range each {
				p.Dispatcher(s).Schedule(func() {
					if next[s] != i {
						t.Errorf("sender %d: turn %d ran, want %d", s, i, next[s])
					}
					next[s] = i + 1
					ran.Done()
				})
			}
		}()
	}
	// The queue fills while the worker is blocked; senders are then stuck in
	// Schedule. Poll (no timing) until it is full.
	for p.Stats()[0].Queue < queueSize {
		runtime.Gosched()
	}
	release()
	ran.Wait()
	p.Close() // the worker counts a turn after fn returns: wait for it
	if got, want := p.Stats()[0].Turns, uint64(senders*each+1); got != want {
		t.Errorf("Turns = %d, want %d", got, want)
	}
}

// TestDispatchCountsParksOnlyWhenIdle: a worker that finds turns queued
// runs them without parking; it parks (and counts it) only on an empty
// queue.
func TestDispatchCountsParksOnlyWhenIdle(t *testing.T) {
	p := dispatchNewPool(t, Config{Workers: 1, QueueSize: 64})
	for p.Stats()[0].Parks == 0 { // the new worker's queue is empty
		runtime.Gosched()
	}
	release := dispatchBlockWorker(p) // wakes it: 1 park so far
	const queued = 50
	var ran sync.WaitGroup
	ran.Add(queued)
	for range queued {
		p.Dispatcher(0).Schedule(ran.Done)
	}
	release()
	ran.Wait()
	// The worker may have parked again after the last turn, not before.
	if got := p.Stats()[0].Parks; got != 1 && got != 2 {
		t.Fatalf("Parks = %d after %d queued turns, want 1 (or 2 once idle again)", got, queued)
	}
	for p.Stats()[0].Parks < 2 {
		runtime.Gosched()
	}
}

// TestDispatchCloseRacesSchedule closes the pool while other goroutines keep
// scheduling: every fn runs exactly once, on the worker or after Close on a
// goroutine, and Close does not hang.
func TestDispatchCloseRacesSchedule(t *testing.T) {
	const senders, each = 4, 2000
	p := dispatchNewPool(t, Config{Workers: 1, QueueSize: 8})
	var ran sync.WaitGroup
	ran.Add(senders * each)
	var count atomic.Int64
	started := make(chan struct{}, senders)
	for range senders {
		go func() {
			started <- struct{}{}
			for range each {
				p.Dispatcher(0).Schedule(func() {
					count.Add(1)
					ran.Done()
				})
			}
		}()
	}
	for range senders {
		<-started
	}
	p.Close()
	ran.Wait()
	if got := count.Load(); got != senders*each {
		t.Errorf("%d fns ran, want %d", got, senders*each)
	}
}

// TestDispatchDrainAfterSentinel covers, white-box, the Close race that
// black-box tests hit only rarely: a Schedule that passed its closed check
// before Close but sends after the stop sentinel. The worker must run that
// turn (queued behind the sentinel) and one still in flight (senders > 0).
func TestDispatchDrainAfterSentinel(t *testing.T) {
	w := &pinnedWorker{queue: make(chan func(), 4), done: make(chan struct{})}
	w.closed.Store(true)
	var ran []string // touched only by the worker goroutine until done
	inFlightGo := make(chan struct{})
	w.queue <- nil // the sentinel
	w.queue <- func() { ran = append(ran, "queued"); close(inFlightGo) }
	w.senders.Add(1) // a sender past its closed check, not yet sent
	go func() {
		<-inFlightGo
		w.queue <- func() { ran = append(ran, "in flight") }
		w.senders.Add(-1)
	}()
	var pinErr error
	go w.loop(false, &pinErr, func() {})
	<-w.done
	if want := []string{"queued", "in flight"}; !slices.Equal(ran, want) {
		t.Errorf("drained %q, want %q", ran, want)
	}
	if w.turns.Load() != 2 || len(w.queue) != 0 {
		t.Errorf("turns %d, queue %d after drain; want 2 and 0", w.turns.Load(), len(w.queue))
	}
}

func TestDispatchScheduleNilPanics(t *testing.T) {
	p := dispatchNewPool(t, Config{Workers: 1})
	defer func() {
		if recover() == nil {
			t.Error("Schedule(nil) did not panic")
		}
	}()
	p.Dispatcher(0).Schedule(nil)
}

// TestDispatchUnpinnedFallback asks for a CPU the kernel refuses: the pool
// still starts, logs one warning and runs the worker unpinned.
func TestDispatchUnpinnedFallback(t *testing.T) {
	const bogus = pinnedMaxCPU - 1
	if cpus, err := pinnedAllowedCPUs(); err == nil {
		for _, c := range cpus {
			if c == bogus {
				t.Skipf("CPU %d exists here", bogus)
			}
		}
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	p := dispatchNewPool(t, Config{CPUs: []int{bogus}, Logger: logger})
	if got := strings.Count(logs.String(), "cpu affinity unavailable, running unpinned"); got != 1 {
		t.Errorf("warning logged %d times, want once; log:\n%s", got, logs.String())
	}
	st := p.Stats()
	if len(st) != 1 || st[0].Pinned || st[0].CPU != bogus {
		t.Errorf("Stats = %+v, want one unpinned worker for CPU %d", st, bogus)
	}

	system := dispatchNewSystem()
	var got sync.WaitGroup
	got.Add(1)
	pids := dispatchSpawnShards(t, system, p, 1, 4, func(int, dispatchSeq) { got.Done() })
	system.Root.Send(pids[0], dispatchSeq{})
	got.Wait()
	dispatchStopAll(t, system, pids)
}

// BenchmarkPinnedDispatcher sends b.N messages round-robin from one goroutine
// to K actors and reports msgs/s (until the last one is processed) for
// protoactor's default goroutine-per-turn dispatcher and for the pinned pool:
//
//   - pinned: DefaultConfig (a worker on every CPU);
//   - pinned-spare: one CPU fewer than that, left to the sender and runtime;
//   - pinned-t1M: every CPU, Throughput 1<<20. protoactor's mailbox calls
//     runtime.Gosched every Throughput messages, and on a locked thread that
//     hands the P off and back (two futex round trips).
//
// Mailboxes are bounded (1024: a fast sender spins in the ring buffer's
// Put) or unbounded (dispatch cost alone). Messages are empty: this measures
// scheduling overhead, not the cache benefit of pinning heavy shard state.
func BenchmarkPinnedDispatcher(b *testing.B) {
	type benchMsg struct{}
	dispatchers := []struct {
		name string
		cfg  func() Config // nil: protoactor's default dispatcher
	}{
		{"default", nil},
		{"pinned", DefaultConfig},
		{"pinned-spare", func() Config {
			c := DefaultConfig()
			c.Workers = max(1, runtime.NumCPU()-1)
			return c
		}},
		{"pinned-t1M", func() Config {
			c := DefaultConfig()
			c.Throughput = 1 << 20
			return c
		}},
	}
	mailboxes := []struct {
		name string
		mb   actor.MailboxProducer
	}{
		{"bounded1024", actor.Bounded(1024)},
		{"unbounded", actor.Unbounded()},
	}
	for _, mb := range mailboxes {
		for _, actors := range []int{4, 64} {
			for _, disp := range dispatchers {
				name := fmt.Sprintf("mailbox=%s/actors=%d/dispatcher=%s", mb.name, actors, disp.name)
				b.Run(name, func(b *testing.B) {
					var pool *Pool
					if disp.cfg != nil {
						pool = dispatchNewPool(b, disp.cfg())
					}
					system := dispatchNewSystem()
					var done sync.WaitGroup
					pids := make([]*actor.PID, actors)
					for i := range pids {
						quota := b.N / actors
						if i < b.N%actors {
							quota++
						}
						if quota > 0 {
							done.Add(1)
						}
						d := actor.NewDefaultDispatcher(DefaultThroughput)
						if pool != nil {
							d = pool.Dispatcher(i)
						}
						seen := 0 // owned by the actor
						props := actor.PropsFromProducer(func() actor.Actor {
							return dispatchFuncActor(func(ctx actor.Context) {
								if _, ok := ctx.Message().(benchMsg); ok {
									if seen++; seen == quota {
										done.Done()
									}
								}
							})
						}, actor.WithDispatcher(d), actor.WithMailbox(mb.mb))
						pids[i] = system.Root.Spawn(props)
					}
					b.ReportAllocs()
					b.ResetTimer()
					start := time.Now()
					for i := range b.N {
						system.Root.Send(pids[i%actors], benchMsg{})
					}
					done.Wait()
					elapsed := time.Since(start)
					b.StopTimer()
					b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
					dispatchStopAll(b, system, pids)
				})
			}
		}
	}
}
