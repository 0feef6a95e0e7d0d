package ingest

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/messages"
)

// clockTick is a wall-clock tick from the clock actor.
type clockTick struct{ now int64 }

// batchDone reports an event-clock ingest request that every shard applied.
// It is part of the Call, reused with it.
type batchDone struct {
	call    *Call
	maxTime int64
	done    chan struct{} // capacity 1: one token once the ticks are sent
}

// setClock gives the router the clock the shards recovered to; it ticks
// every shard to it so they all agree.
type setClock struct{ now int64 }

// router is the ingest router: the single point that orders inputs. It
// gives every request a sequence number and, in event-clock mode, advances
// the watermark and delivers it to every shard behind the trades, so each
// shard sees trades and ticks in the same order on every run.
type router struct {
	g *Ingest
	// watermark is the clock time every shard has been sent: with the
	// event clock the largest trade time accepted, with the wall clock the
	// last tick.
	watermark int64
	// sent is, per shard, the newest clock time it was sent (as a tick or
	// behind a part's trades): a shard already there needs no tick.
	sent []int64
}

// tickAll sends every shard that is behind now a tick to it, through the
// shard's router partition (behind the requests routed before).
func (r *router) tickAll(now int64) {
	g := r.g
	if r.sent == nil {
		r.sent = make([]int64, len(g.cfg.Shards))
	}
	var ticks []*partitionTick
	for sh := range g.cfg.Shards {
		if r.sent[sh] >= now {
			continue
		}
		r.sent[sh] = now
		if ticks == nil {
			ticks = make([]*partitionTick, len(g.partitions))
		}
		w := g.cfg.Pool.WorkerOf(sh)
		if ticks[w] == nil {
			ticks[w] = &partitionTick{now: now}
		}
		ticks[w].shards = append(ticks[w].shards, int32(sh))
	}
	for w, t := range ticks {
		if t != nil {
			g.partitions[w].Send(t)
		}
	}
}

func (r *router) Receive(ctx actor.Context) {
	g := r.g
	defer g.RouterStat.RecordPanic()
	switch m := ctx.Message().(type) {
	case *actor.Restarting:
		g.RouterStat.Restarts.Add(1)
		return
	case *actor.Stopping:
		g.RouterStat.Stopping(g.cfg.Life)
		return
	case *Call:
		if r.sent == nil {
			r.sent = make([]int64, len(g.cfg.Shards))
		}
		m.seq = g.seq.Add(1)
		m.tickBefore = r.watermark
		// Every partition reads the request and hands out its shards'
		// parts (the parts' ticks are set there: see partition.walk).
		for w, ph := range g.partitions {
			ph.Send(&m.routes[w])
		}
		m.routed.Store(true)
	case *batchDone:
		// Event clock: an ingest request was applied everywhere; the
		// watermark moves to its newest trade and every shard learns it
		// before the request is answered (done). Shards the request
		// touched are there already (counted only now: a part that
		// failed was not applied, nor its tick).
		for _, touched := range m.call.touched {
			for _, sh := range touched {
				r.sent[sh] = max(r.sent[sh], m.call.parts[sh].TickAfter)
			}
		}
		if m.maxTime > r.watermark {
			r.watermark = m.maxTime
			r.tickAll(r.watermark)
			if g.cfg.RecordClock != nil {
				// Every request up to here is applied: a restart may
				// start from this clock (the shards it did not touch
				// have it from a tick only, which no WAL holds).
				g.cfg.RecordClock(r.watermark)
			}
		}
		m.done <- struct{}{}
	case *clockTick:
		// Ticks stay ordered with the trades (never coalesced): the WAL
		// records the clock before each batch, and a replay must find the
		// shard where the live one was.
		if m.now <= r.watermark {
			break
		}
		r.watermark = m.now
		r.tickAll(m.now)
	case *setClock:
		r.watermark = max(r.watermark, m.now)
		if r.watermark > 0 {
			r.tickAll(r.watermark)
		}
	case *messages.TradeBatch:
		// An embedding program's request: queued for the embedded
		// requests' goroutine (bounded: a full queue answers ErrBusy), so
		// the router keeps ordering other requests.
		g.embedded.push(m.Trades, ctx.Sender())
	default:
		return
	}
	g.RouterStat.Processed.Add(1)
}
