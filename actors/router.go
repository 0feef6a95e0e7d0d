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
	// routed is closed once the router has numbered the parts and queued
	// their WAL appends: only then may the caller read those fields.
	routed chan struct{}
}

// clockTick is a wall-clock tick from the clock actor.
type clockTick struct{ now int64 }

// batchDone reports an event-clock ingest request that every shard applied.
type batchDone struct {
	maxTime int64
	done    chan struct{} // closed once the ticks are sent
}

// setClock gives the router the clock the shards recovered to; it ticks
// every shard to it so they all agree.
type setClock struct{ now int64 }

// router is the ingest router: the single point that orders inputs. It
// gives every request a sequence number and, in event-clock mode, advances
// the watermark and delivers it to every shard behind the trades, so each
// shard sees trades and ticks in the same order on every run.
type router struct {
	n  *Node
	st *actorStats
	// watermark is the clock time every shard has been sent: with the
	// event clock the largest trade time accepted, with the wall clock the
	// last tick.
	watermark int64
}

func (r *router) Receive(ctx actor.Context) {
	n := r.n
	switch m := ctx.Message().(type) {
	case *ingestBatch:
		seq := n.seq.Add(1)
		for sh, p := range m.parts {
			if p == nil {
				continue
			}
			p.seq = seq
			p.tickBefore = r.watermark
			if n.cfg.Clock == ClockEvent {
				// The shards this batch touches tick past it right away;
				// the others when the batch is known to be applied
				// (batchDone), so a batch that fails moves no clock.
				p.tickAfter = max(r.watermark, m.maxTime)
			}
			n.shards[sh].send(n.system, p)
		}
		close(m.routed)
	case *batchDone:
		// Event clock: an ingest request was applied everywhere; the
		// watermark moves to its newest trade and every shard learns it
		// before the request is answered (done).
		if m.maxTime > r.watermark {
			r.watermark = m.maxTime
			for _, h := range n.shards {
				h.send(n.system, &shardTick{now: r.watermark})
			}
		}
		close(m.done)
	case *clockTick:
		// Ticks stay ordered with the trades (never coalesced): the WAL
		// records the clock before each batch, and a replay must find the
		// shard where the live one was.
		if m.now <= r.watermark {
			break
		}
		r.watermark = m.now
		for _, h := range n.shards {
			h.send(n.system, &shardTick{now: m.now})
		}
	case *setClock:
		r.watermark = max(r.watermark, m.now)
		if r.watermark > 0 {
			for _, h := range n.shards {
				h.send(n.system, &shardTick{now: r.watermark})
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
