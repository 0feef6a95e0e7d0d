package actors

import (
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/pinned"
)

// Restart limits of the supervision tree: a child that fails more than
// maxRestarts times within restartWindow is stopped, and its failure
// escalates to its parent.
const (
	maxRestarts   = 10
	restartWindow = 10 * time.Second
)

// restartStrategy is a parent's strategy for its children. (protoactor
// applies the strategy of the parent: a leaf's own WithSupervisor is never
// consulted, so leaves get none.)
func restartStrategy(limit int) actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(limit, restartWindow, actor.DefaultDecider)
}

// ActorInfo describes one actor of the supervision tree (GET /api/v1/actors).
type ActorInfo struct {
	Name         string `json:"name"`
	Parent       string `json:"parent"`
	Kind         string `json:"kind"`
	MailboxDepth int64  `json:"mailbox_depth"`
	MailboxMax   int64  `json:"mailbox_max"` // high-water mark (shards and router partitions)
	Restarts     int64  `json:"restarts"`
	Processed    uint64 `json:"processed"`
	LastFailure  string `json:"last_failure,omitempty"`
	Worker       *int   `json:"worker,omitempty"` // shards: pinned worker
}

// tree records the node's actors in spawn order, parents first.
type tree struct {
	mu     sync.Mutex
	actors []*lifecycle.Stats
	worker map[*lifecycle.Stats]int
}

func newTree() *tree { return &tree{worker: map[*lifecycle.Stats]int{}} }

// add records an actor's stats (a new entry for a new actor).
func (t *tree) add(st *lifecycle.Stats) *lifecycle.Stats {
	t.mu.Lock()
	t.actors = append(t.actors, st)
	t.mu.Unlock()
	return st
}

// addPinned records an actor that runs on pinned worker w.
func (t *tree) addPinned(st *lifecycle.Stats, w int) {
	t.mu.Lock()
	t.actors = append(t.actors, st)
	t.worker[st] = w
	t.mu.Unlock()
}

// newStats returns the stats of a new actor.
func newStats(name, parent, kind string) *lifecycle.Stats {
	return &lifecycle.Stats{Name: name, Parent: parent, Kind: kind}
}

// Actors returns the supervision tree, parents before children.
func (n *Node) Actors() []ActorInfo {
	n.tree.mu.Lock()
	defer n.tree.mu.Unlock()
	out := make([]ActorInfo, 0, len(n.tree.actors))
	for _, s := range n.tree.actors {
		info := ActorInfo{Name: s.Name, Parent: s.Parent, Kind: s.Kind, MailboxDepth: s.Depth(), MailboxMax: s.MaxDepth(),
			Restarts: s.Restarts.Load(), Processed: s.Processed.Load(), LastFailure: s.LastFailure()}
		if w, ok := n.tree.worker[s]; ok {
			info.Worker = &w
		}
		out = append(out, info)
	}
	return out
}

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
	n.tree.add(newStats("klinecast", "", "guardian"))
	spawn := func(st *lifecycle.Stats, producer actor.Producer, opts ...actor.PropsOption) (*actor.PID, error) {
		pid, err := ctx.SpawnNamed(actor.PropsFromProducer(producer, opts...), st.Name)
		if err != nil {
			return nil, fmt.Errorf("spawn %s: %w", st.Name, err)
		}
		return pid, nil
	}
	// The router gets two messages per request: its mailbox must not
	// allocate either (protoactor's default allocates per turn).
	pid, err := spawn(n.tree.add(&n.ingest.RouterStat), n.ingest.NewRouter, actor.WithMailbox(pinned.NewMailbox))
	if err != nil {
		g.ready <- err
		return
	}
	n.ingest.SetRouter(pid)
	shardsReady := make(chan error, 1)
	st := n.tree.add(newStats("shards", "klinecast", "supervisor"))
	if _, err = spawn(st, func() actor.Actor { return &shardSupervisor{n: n, ready: shardsReady} },
		actor.WithSupervisor(restartStrategy(n.hooks.restartLimit))); err != nil {
		g.ready <- err
		return
	}
	if err = <-shardsReady; err != nil {
		g.ready <- err
		return
	}
	st = n.tree.add(newStats("clock", "klinecast", "clock"))
	if _, err = spawn(st, func() actor.Actor { return &clock{n: n, st: st} }); err != nil {
		g.ready <- err
		return
	}
	hst := n.tree.add(newStats("health", "klinecast", "health-monitor"))
	if _, err = spawn(hst, func() actor.Actor { return &healthMonitor{n: n, st: hst} }); err != nil {
		g.ready <- err
		return
	}
	g.ready <- nil
}

// shardSupervisor is the parent of the shard actors and router partitions;
// each runs on its pinned worker and restarts independently (one-for-one).
type shardSupervisor struct {
	n     *Node
	ready chan<- error
	added bool
}

func (s *shardSupervisor) Receive(ctx actor.Context) {
	if _, ok := ctx.Message().(*actor.Started); !ok {
		return
	}
	n := s.n
	// A restart of this supervisor stops its children, so every
	// incarnation spawns the shards; they rebuild from their handles.
	for _, h := range n.shards {
		props := actor.PropsFromProducer(h.NewActor,
			actor.WithDispatcher(n.pool.Dispatcher(h.ID())),
			actor.WithMailbox(pinned.NewMailbox)) // allocation-free ingest
		pid, err := ctx.SpawnNamed(props, h.Stats.Name)
		if err != nil {
			s.signal(fmt.Errorf("spawn %s: %w", h.Stats.Name, err))
			return
		}
		h.Spawned(pid)
		if !s.added {
			n.tree.addPinned(&h.Stats, n.pool.WorkerOf(h.ID()))
		}
	}
	// The router partitions, one per worker, on that worker (see
	// ingest/partition.go): one message per mailbox turn.
	for _, ph := range n.ingest.Partitions() {
		props := actor.PropsFromProducer(ph.NewActor,
			actor.WithDispatcher(n.pool.Dispatcher(ph.Worker())),
			actor.WithMailbox(pinned.NewStepMailbox))
		pid, err := ctx.SpawnNamed(props, ph.Stats.Name)
		if err != nil {
			s.signal(fmt.Errorf("spawn %s: %w", ph.Stats.Name, err))
			return
		}
		ph.Spawned(pid)
		if !s.added {
			n.tree.addPinned(&ph.Stats, ph.Worker())
		}
	}
	s.added = true
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
