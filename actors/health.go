package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/storage"
)

// HealthState is a component's health.
type HealthState string

// Health states (SPEC §5): a component whose heartbeat is late by more than
// one timeout is Degraded, by more than two Failed.
const (
	Healthy  HealthState = "healthy"
	Degraded HealthState = "degraded"
	Failed   HealthState = "failed"
)

// HealthTimeout is how late a busy shard's heartbeat may be before it is
// Degraded. A shard with an empty mailbox is idle, not late.
const HealthTimeout = 2 * time.Second

// ComponentHealth is one component's state.
type ComponentHealth struct {
	Name   string      `json:"name"`
	State  HealthState `json:"state"`
	Detail string      `json:"detail,omitempty"`
}

// HealthReport is the node's health: the worst component state and each
// component's.
type HealthReport struct {
	State      HealthState       `json:"state"`
	Components []ComponentHealth `json:"components"`
}

// Health evaluates every shard's heartbeat now.
func (n *Node) Health() HealthReport {
	var rep HealthReport
	n.health(&rep)
	return rep
}

// health evaluates every component into rep, reusing its Components: it
// allocates nothing while every component is healthy.
func (n *Node) health(rep *HealthReport) {
	now := n.cfg.Now().UnixMilli()
	rep.State, rep.Components = Healthy, rep.Components[:0]
	if n.life.Closing() {
		rep.State = Failed
		rep.Components = append(rep.Components, ComponentHealth{Name: "node", State: Failed, Detail: "shutting down"})
		return
	}
	if n.store != nil {
		rep.add(storageHealth(n.store.Health()))
	}
	for i, h := range n.shards {
		rep.add(actorHealth(n.healthNames[i], &h.Stats, now))
	}
	// A router partition runs on the same worker as its shards; a stuck
	// partition stops ingest for all of them.
	for w, ph := range n.ingest.Partitions() {
		rep.add(actorHealth(n.healthNames[len(n.shards)+w], &ph.Stats, now))
	}
}

// actorHealth judges an actor by its heartbeat and whether its supervisor
// stopped it.
func actorHealth(name string, st *lifecycle.Stats, now int64) ComponentHealth {
	c := heartbeat(name, st.PingSent.Load(), now)
	if st.Stopped() {
		c.State, c.Detail = Failed, "stopped after exceeding its restart limit; last failure: "+st.LastFailure()
	}
	return c
}

// heartbeat judges an actor by its outstanding heartbeat (sent at sent,
// unix ms; 0: none): the actor is as late as the heartbeat's age. An idle
// actor answers at once.
func heartbeat(name string, sent, now int64) ComponentHealth {
	c := ComponentHealth{Name: name, State: Healthy}
	if sent != 0 {
		if late := time.Duration(now-sent) * time.Millisecond; late > HealthTimeout {
			c.State = Degraded
			if late > 2*HealthTimeout {
				c.State = Failed
			}
			c.Detail = "heartbeat unanswered for " + late.Round(time.Millisecond).String()
		}
	}
	return c
}

// add records a component; the report's state is the worst one.
func (r *HealthReport) add(c ComponentHealth) {
	if c.State == Failed || c.State == Degraded && r.State == Healthy {
		r.State = c.State
	}
	r.Components = append(r.Components, c)
}

// healthFire wakes the health monitor.
type healthFire struct{}

// healthMonitor evaluates the node's health every second and logs every
// state change, so an operator sees a stuck shard in the log too.
//
// A check allocates nothing while the node is healthy (one timer, one
// fire message and one report, reused), so a node at rest makes no
// garbage and a busy one's allocation count is its traffic's alone.
type healthMonitor struct {
	n     *Node
	st    *lifecycle.Stats
	timer *time.Timer
	fire  healthFire
	rep   HealthReport
	last  map[string]HealthState
}

func (m *healthMonitor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		m.last = map[string]HealthState{}
		// The first check right away (then every second): a shard that
		// is stuck from the start shows as soon as possible.
		m.st.Enqueued.Add(1)
		ctx.Send(ctx.Self(), &m.fire)
	case *actor.Stopping, *actor.Restarting:
		if m.timer != nil {
			m.timer.Stop()
		}
	case *healthFire:
		m.st.Processed.Add(1)
		now := m.n.cfg.Now().UnixMilli()
		for _, h := range m.n.shards {
			// One heartbeat in flight per actor: a stuck one does not pile
			// them up.
			if h.Stats.PingSent.CompareAndSwap(0, now) {
				h.Send(&shard.Ping{})
			}
		}
		for _, ph := range m.n.ingest.Partitions() {
			if ph.Stats.PingSent.CompareAndSwap(0, now) {
				ph.Send(&shard.Ping{})
			}
		}
		m.n.health(&m.rep)
		for _, c := range m.rep.Components {
			prev, seen := m.last[c.Name]
			if !seen {
				prev = Healthy
			}
			if c.State != prev {
				m.n.log.Warn("health changed", "component", c.Name, "from", prev, "to", c.State, "detail", c.Detail)
			}
			m.last[c.Name] = c.State
		}
		m.arm(ctx)
	}
}

func (m *healthMonitor) arm(ctx actor.Context) {
	if m.timer != nil {
		m.timer.Reset(time.Second)
		return
	}
	self, system, st, fire := ctx.Self(), m.n.system, m.st, &m.fire
	m.timer = time.AfterFunc(time.Second, func() {
		st.Enqueued.Add(1)
		system.Root.Send(self, fire)
	})
}

// storageHealth is the store as a health component: a store that refuses
// writes (a full disk, a failing fsync) fails ingest, so the node is not
// healthy while it does.
func storageHealth(h storage.StoreHealth) ComponentHealth {
	c := ComponentHealth{Name: "storage", State: Healthy}
	switch h.State {
	case storage.HealthDegraded:
		c.State, c.Detail = Degraded, h.Reason
	case storage.HealthFailed:
		c.State, c.Detail = Failed, h.Reason
	}
	return c
}
