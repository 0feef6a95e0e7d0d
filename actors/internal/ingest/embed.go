package ingest

import (
	"context"
	"fmt"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/messages"
)

// Reply answers a *messages.TradeBatch sent to the router by an embedding
// program.
type Reply struct {
	Result Result
	Err    error
}

// embedQueue runs the *messages.TradeBatch requests of embedding programs.
// The router cannot wait for a request itself (it orders every other one),
// so it queues them here: one goroutine starts them in order, another
// waits for them in order and replies. The queue is bounded (as many as
// may be in flight); a batch that finds it full is answered ErrBusy at
// once.
type embedQueue struct {
	g       *Ingest
	mu      sync.Mutex
	closed  bool
	queue   chan embedReq
	waiting chan embedWait
	done    sync.WaitGroup
}

type embedReq struct {
	trades []messages.Trade
	sender *actor.PID
}

type embedWait struct {
	call   *Call
	sender *actor.PID
}

func newEmbedQueue(g *Ingest, size int) *embedQueue {
	q := &embedQueue{g: g, queue: make(chan embedReq, size), waiting: make(chan embedWait, size)}
	q.done.Add(2)
	go q.start()
	go q.wait()
	return q
}

// push queues a batch, or answers ErrBusy if the queue is full (or
// ErrClosed once closed).
func (q *embedQueue) push(trades []messages.Trade, sender *actor.PID) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var err error
	if q.closed {
		err = lifecycle.ErrClosed
	} else {
		select {
		case q.queue <- embedReq{trades: trades, sender: sender}:
			return
		default:
			err = fmt.Errorf("%w: %d embedded requests queued", ErrBusy, cap(q.queue))
		}
	}
	q.reply(sender, Result{}, err)
}

func (q *embedQueue) reply(sender *actor.PID, res Result, err error) {
	if sender != nil {
		q.g.cfg.System.Root.Send(sender, &Reply{Result: res, Err: err})
	}
}

func (q *embedQueue) start() {
	defer q.done.Done()
	defer close(q.waiting)
	for r := range q.queue {
		q.waiting <- embedWait{call: q.g.IngestAsync(context.Background(), r.trades), sender: r.sender}
	}
}

func (q *embedQueue) wait() {
	defer q.done.Done()
	for w := range q.waiting {
		res, err := w.call.Wait()
		q.reply(w.sender, res, err)
	}
}

// close refuses new batches and waits until the queued ones were answered.
func (q *embedQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.queue)
	}
	q.mu.Unlock()
	q.done.Wait()
}
