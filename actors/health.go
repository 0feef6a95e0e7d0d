package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
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
	now := n.cfg.Now().UnixMilli()
	rep := HealthReport{State: Healthy}
	if n.closed.Load() {
		rep.State = Failed
		rep.Components = append(rep.Components, ComponentHealth{Name: "node", State: Failed, Detail: "shutting down"})
		return rep
	}
	for _, h := range n.shards {
		c := ComponentHealth{Name: shardName(h.id), State: Healthy}
		depth := int64(h.enqueued.Load()) - int64(h.processed.Load())
		if late := time.Duration(now-h.lastBeat.Load()) * time.Millisecond; depth > 0 && late > HealthTimeout {
			c.State = Degraded
			if late > 2*HealthTimeout {
				c.State = Failed
			}
			c.Detail = "no progress for " + late.Round(time.Millisecond).String() + " with queued messages"
		}
		if c.State == Failed || c.State == Degraded && rep.State == Healthy {
			rep.State = c.State
		}
		rep.Components = append(rep.Components, c)
	}
	return rep
}

// healthFire wakes the health monitor.
type healthFire struct{}

// healthMonitor evaluates the node's health every second and logs every
// state change, so an operator sees a stuck shard in the log too.
type healthMonitor struct {
	n     *Node
	st    *actorStats
	timer *time.Timer
	last  map[string]HealthState
}

func (m *healthMonitor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		m.last = map[string]HealthState{}
		m.arm(ctx)
	case *actor.Stopping, *actor.Restarting:
		if m.timer != nil {
			m.timer.Stop()
		}
	case *healthFire:
		m.st.processed.Add(1)
		for _, c := range m.n.Health().Components {
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
	self, system, st := ctx.Self(), m.n.system, m.st
	m.timer = time.AfterFunc(time.Second, func() {
		st.enqueued.Add(1)
		system.Root.Send(self, &healthFire{})
	})
}
