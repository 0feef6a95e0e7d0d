package actors

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// Restart limits of the supervision tree: a child that fails more than
// maxRestarts times within restartWindow is stopped, and its failure
// escalates to its parent.
const (
	maxRestarts   = 10
	restartWindow = 10 * time.Second
)

func restartStrategy(limit int) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(limit, restartWindow, actor.DefaultDecider)
}

// ActorInfo describes one actor of the supervision tree (GET /api/v1/actors).
type ActorInfo struct {
	Name         string `json:"name"`
	Parent       string `json:"parent"`
	Kind         string `json:"kind"`
	MailboxDepth int64  `json:"mailbox_depth"`
	Restarts     int64  `json:"restarts"`
	Processed    uint64 `json:"processed"`
	LastFailure  string `json:"last_failure,omitempty"`
	Worker       *int   `json:"worker,omitempty"` // shards: pinned worker
}

// actorStats are the counters of a non-shard actor.
type actorStats struct {
	name, parent, kind string
	enqueued           atomic.Uint64
	processed          atomic.Uint64
	restarts           atomic.Int64
	lastFailure        atomic.Pointer[string]
	stopped            atomic.Bool // stopped for good by its supervisor (restart limit)
}

// recordPanic, deferred by an actor's Receive, records the reason of a
// panic in last and lets the panic go on to the supervisor.
func recordPanic(last *atomic.Pointer[string]) {
	if r := recover(); r != nil {
		reason := fmt.Sprint(r)
		last.Store(&reason)
		panic(r)
	}
}

// stopping handles an actor's *actor.Stopping: outside Close it means
// the supervisor stopped it for good (see Node.actorStopped).
func (st *actorStats) stopping(n *Node) {
	if !n.closed.Load() {
		st.stopped.Store(true)
		n.actorStopped(st.name, lastFailure(&st.lastFailure))
	}
}

// tree records the non-shard actors in spawn order.
type tree struct {
	mu struct {
		sync.Mutex
		actors []*actorStats
	}
}

func newTree() *tree { return &tree{} }

func (t *tree) add(name, parent, kind string) *actorStats {
	s := &actorStats{name: name, parent: parent, kind: kind}
	t.mu.Lock()
	t.mu.actors = append(t.mu.actors, s)
	t.mu.Unlock()
	return s
}

// Actors returns the supervision tree, parents before children.
func (n *Node) Actors() []ActorInfo {
	n.tree.mu.Lock()
	stats := append([]*actorStats(nil), n.tree.mu.actors...)
	n.tree.mu.Unlock()
	var out []ActorInfo
	for _, s := range stats {
		p := s.processed.Load()
		out = append(out, ActorInfo{Name: s.name, Parent: s.parent, Kind: s.kind,
			MailboxDepth: max(0, int64(s.enqueued.Load())-int64(p)), Restarts: s.restarts.Load(), Processed: p})
		if f := s.lastFailure.Load(); f != nil {
			out[len(out)-1].LastFailure = *f
		}
		if s.name == "shards" {
			for _, h := range n.shards {
				p := h.processed.Load()
				w := n.pool.WorkerOf(h.id)
				info := ActorInfo{Name: shardName(h.id), Parent: "shards", Kind: "shard",
					MailboxDepth: max(0, int64(h.enqueued.Load())-int64(p)), Restarts: h.restarts.Load(),
					Processed: p, Worker: &w}
				if f := h.lastFailure.Load(); f != nil {
					info.LastFailure = *f
				}
				out = append(out, info)
			}
		}
	}
	return out
}

func shardName(i int) string { return fmt.Sprintf("shard-%02d", i) }

func partitionName(w int) string { return fmt.Sprintf("router-%d", w) }

// guardian is the root of the supervision tree. It spawns the node's
// top-level actors and restarts them (within limits) when they fail.
type guardian struct {
	n     *Node
	ready chan<- error
}

func (g *guardian) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); !ok {
		return
	}
	n := g.n
	n.tree.add("klinecast", "", "guardian")
	spawn := func(name, kind string, producer func(*actorStats) actor.Actor, opts ...actor.PropsOption) (*actor.PID, error) {
		st := n.tree.add(name, "klinecast", kind)
		opts = append(opts, actor.WithSupervisor(restartStrategy(n.cfg.restartLimit)))
		pid, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return producer(st) }, opts...), name)
		if err != nil {
			return nil, fmt.Errorf("spawn %s: %w", name, err)
		}
		return pid, nil
	}
	var err error
	// The router gets two messages per request: its mailbox must not
	// allocate either (protoactor's default allocates per turn).
	if n.router, err = spawn("ingest", "router", func(st *actorStats) actor.Actor { return &router{n: n, st: st} },
		actor.WithMailbox(newShardMailbox)); err != nil {
		g.ready <- err
		return
	}
	shardsReady := make(chan error, 1)
	if _, err = spawn("shards", "supervisor", func(st *actorStats) actor.Actor {
		return &shardSupervisor{n: n, st: st, ready: shardsReady}
	}); err != nil {
		g.ready <- err
		return
	}
	if err = <-shardsReady; err != nil {
		g.ready <- err
		return
	}
	if _, err = spawn("clock", "clock", func(st *actorStats) actor.Actor { return &clock{n: n, st: st} }); err != nil {
		g.ready <- err
		return
	}
	if _, err = spawn("health", "health-monitor", func(st *actorStats) actor.Actor { return &healthMonitor{n: n, st: st} }); err != nil {
		g.ready <- err
		return
	}
	g.ready <- nil
}

// shardSupervisor is the parent of the shard actors; each shard runs on its
// pinned worker and restarts independently (one-for-one).
type shardSupervisor struct {
	n     *Node
	st    *actorStats
	ready chan<- error
}

func (s *shardSupervisor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); !ok {
		return
	}
	// A restart of this supervisor stops its children, so every
	// incarnation spawns the shards; they rebuild from their handles.
	for _, h := range s.n.shards {
		h := h
		props := actor.PropsFromProducer(func() actor.Actor { return &shard{h: h} },
			actor.WithDispatcher(s.n.pool.Dispatcher(h.id)),
			actor.WithMailbox(newShardMailbox), // allocation-free ingest
			actor.WithSupervisor(restartStrategy(s.n.cfg.restartLimit)))
		pid, err := ctx.SpawnNamed(props, shardName(h.id))
		if err != nil {
			s.signal(fmt.Errorf("spawn %s: %w", shardName(h.id), err))
			return
		}
		if h.pid == nil && h.walq != nil {
			go h.walWaiter() // once per handle: it outlives restarts
		}
		h.pid = pid
	}
	// The router partitions, one per worker, on that worker (see
	// partition.go): one message per mailbox turn.
	for _, ph := range s.n.partitions {
		ph := ph
		if ph.stats == nil {
			ph.stats = s.n.tree.add(partitionName(ph.worker), "shards", "router-partition")
		}
		props := actor.PropsFromProducer(func() actor.Actor { return &partition{h: ph} },
			actor.WithDispatcher(s.n.pool.Dispatcher(ph.worker)),
			actor.WithMailbox(newPartitionMailbox),
			actor.WithSupervisor(restartStrategy(s.n.cfg.restartLimit)))
		pid, err := ctx.SpawnNamed(props, partitionName(ph.worker))
		if err != nil {
			s.signal(fmt.Errorf("spawn %s: %w", partitionName(ph.worker), err))
			return
		}
		ph.pid = pid
	}
	s.signal(nil)
}

// signal reports the first start's outcome; later incarnations have no
// one waiting.
func (s *shardSupervisor) signal(err error) {
	select {
	case s.ready <- err:
	default:
	}
}
