package actors

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// blockedNode starts a memory-only node whose only shard blocks in its sink
// (on the first Delta once armed) until released: everything sent to it
// queues up. arm blocks the next Delta and returns a channel that receives
// once the shard is held.
func blockedNode(t *testing.T, cfg Config) (n *Node, arm func() <-chan struct{}, release func()) {
	t.Helper()
	hold := make(chan chan struct{}, 1)
	gate := make(chan struct{})
	cfg.Shards, cfg.Clock = 1, ClockEvent
	cfg.Intervals = []messages.Interval{messages.Interval1m}
	cfg.Sink = DeltaSinkFunc(func(int, *aggregate.Delta) {
		select {
		case entered := <-hold:
			entered <- struct{}{}
			<-gate
		default:
		}
	})
	n = testNode(t, cfg)
	released := false
	release = func() {
		if !released {
			released = true
			close(gate)
		}
	}
	t.Cleanup(release) // before Close (cleanups run last first)
	arm = func() <-chan struct{} {
		entered := make(chan struct{}, 1)
		hold <- entered
		return entered
	}
	return n, arm, release
}

func tradesOf(t *testing.T, n int) []messages.Trade {
	return genTrades(t, 1, int64(n), time.Hour, 31)
}

// TestEmbeddedBatchesAreBounded: *messages.TradeBatch requests from an
// embedding program are queued for one goroutine, not a goroutine each:
// with the node held, at most three are taken (one in flight, one waiting
// for admission, one queued; MailboxSize 1) and every other is answered
// ErrBusy at once; the three complete once the node moves again.
func TestEmbeddedBatchesAreBounded(t *testing.T) {
	n, arm, release := blockedNode(t, Config{MailboxSize: 1, BusyTimeout: time.Hour})
	trades := tradesOf(t, 100)
	entered := arm()
	const sent = 10
	futures := make([]interface {
		Result() (any, error)
	}, sent)
	futures[0] = n.System().Root.RequestFuture(n.IngestPID(), &messages.TradeBatch{Trades: trades[:10]}, time.Minute)
	<-entered // the first is in flight and held
	for i := 1; i < sent; i++ {
		futures[i] = n.System().Root.RequestFuture(n.IngestPID(), &messages.TradeBatch{Trades: trades[i*10 : i*10+10]}, time.Minute)
	}
	busy, ok := 0, 0
	wait := func(f interface{ Result() (any, error) }) {
		r, err := f.Result()
		if err != nil {
			t.Fatalf("future: %v", err)
		}
		rep := r.(*IngestReply)
		switch {
		case errors.Is(rep.Err, ErrBusy):
			busy++
		case rep.Err == nil:
			ok++
		default:
			t.Fatalf("reply: %v", rep.Err)
		}
	}
	// The ones refused answer while the node is held; collect those
	// first, from the last sent (surely refused) backwards.
	for i := sent - 1; i >= 3; i-- {
		wait(futures[i])
	}
	release()
	for i := 2; i >= 0; i-- {
		wait(futures[i])
	}
	if busy != sent-3 || ok != 3 {
		t.Fatalf("%d accepted, %d busy; want 3 and %d", ok, busy, sent-3)
	}
}

// TestQueriesAreBounded: queries wait for a token (MaxQueries) before they
// put a message in a shard's mailbox; with the shard held and the tokens
// taken, the next query fails with ErrBusy instead of queueing.
func TestQueriesAreBounded(t *testing.T) {
	n, arm, release := blockedNode(t, Config{MaxQueries: 1, BusyTimeout: 20 * time.Millisecond})
	trades := tradesOf(t, 10)
	entered := arm()
	call := n.IngestAsync(context.Background(), trades)
	<-entered
	first := make(chan error, 1)
	go func() {
		_, err := n.Klines(context.Background(), trades[0].Symbol, messages.Interval1m, 0, 0, 10)
		first <- err
	}()
	// The first query takes the only token (its message then waits
	// behind the held part); once it has, a second is refused.
	for len(n.queries) == 0 {
		select {
		case err := <-first:
			t.Fatalf("the first query finished (%v) while the shard is held", err)
		default:
			runtime.Gosched()
		}
	}
	if _, err := n.Klines(context.Background(), trades[0].Symbol, messages.Interval1m, 0, 0, 10); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second query while the first holds the only token: %v, want ErrBusy", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first query: %v", err)
	}
	if _, err := call.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Klines(context.Background(), trades[0].Symbol, messages.Interval1m, 0, 0, 10); err != nil {
		t.Fatalf("a query once the shard moves: %v", err)
	}
}
