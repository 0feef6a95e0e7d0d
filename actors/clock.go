package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
)

// clockFire wakes the clock actor.
type clockFire struct{}

// clock drives rollover by the wall clock: it fires ClockMargin after each
// boundary of the smallest configured interval and tells the router the
// current time. A late or skipped firing loses nothing: shards roll to the
// bar containing the tick's time, not one bar forward. In event-clock mode
// it stays idle (the router derives the clock from trades).
type clock struct {
	n     *Node
	st    *lifecycle.Stats
	timer *time.Timer
}

func (c *clock) Receive(ctx actor.Context) {
	n := c.n
	switch ctx.Message().(type) {
	case *actor.Started:
		if n.cfg.Clock == ClockWall {
			c.schedule(ctx)
		}
	case *actor.Stopping, *actor.Restarting:
		if c.timer != nil {
			c.timer.Stop()
		}
	case *clockFire:
		c.st.Processed.Add(1)
		n.ingest.WallTick(n.cfg.Now().UnixMilli())
		c.schedule(ctx)
	}
}

// schedule arms the timer for the next boundary of the smallest interval,
// plus the margin.
func (c *clock) schedule(ctx actor.Context) {
	n := c.n
	now := n.cfg.Now()
	iv := n.cfg.Intervals[0]
	for _, x := range n.cfg.Intervals {
		iv = min(iv, x) // intervals order by length
	}
	next := iv.Next(iv.Align(now.UnixMilli()))
	wait := time.UnixMilli(next).Add(n.cfg.ClockMargin).Sub(now)
	self, system, st := ctx.Self(), n.system, c.st
	c.timer = time.AfterFunc(wait, func() {
		st.Enqueued.Add(1)
		system.Root.Send(self, &clockFire{})
	})
}
