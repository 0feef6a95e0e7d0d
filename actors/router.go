package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/messages"
)

// ingestBatch is one ingest request, grouped by shard (nil: no trades).
type ingestBatch struct {
	parts   []*shardPart
	maxTime int64
}

// clockTick is a wall-clock tick from the clock actor.
type clockTick struct{ now int64 }

// router is the ingest router: the single point that orders inputs. It
// gives every request a sequence number and, in event-clock mode, advances
// the watermark and delivers it to every shard behind the trades, so each
// shard sees trades and ticks in the same order on every run.
type router struct {
	n         *Node
	st        *actorStats
	watermark int64 // event clock: the largest trade time accepted
}

func (r *router) Receive(ctx actor.Context) {
	n := r.n
	switch m := ctx.Message().(type) {
	case *ingestBatch:
		seq := n.seq.Add(1)
		advanced := false
		if n.cfg.Clock == ClockEvent && m.maxTime > r.watermark {
			r.watermark = m.maxTime
			advanced = true
		}
		for sh, p := range m.parts {
			h := n.shards[sh]
			switch {
			case p != nil:
				p.seq = seq
				if n.cfg.Clock == ClockEvent {
					p.tick = r.watermark
				}
				h.send(n.system, p)
			case advanced:
				h.send(n.system, &shardTick{now: r.watermark})
			}
		}
	case *clockTick:
		for _, h := range n.shards {
			// Coalesce: a shard that has not yet taken its previous tick
			// takes the newest value with it (wall clock only; event
			// ticks must stay ordered with the trades).
			if h.pendingTick.Swap(m.now) == 0 {
				h.send(n.system, &shardTick{now: m.now})
			}
		}
	case *messages.TradeBatch:
		// An embedding program's request: run the ingest path on its own
		// goroutine so the router keeps ordering other requests.
		sender := ctx.Sender()
		trades := m.Trades
		go func() {
			res, err := n.Ingest(context.Background(), trades)
			if sender != nil {
				n.system.Root.Send(sender, &IngestReply{Result: res, Err: err})
			}
		}()
	default:
		return
	}
	r.st.processed.Add(1)
}
