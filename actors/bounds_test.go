package actors

import (
	"context"
	"errors"
	"runtime"
	"sync"
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

// TestQueriesAreBounded: queries that ask a shard (HasSymbol, Symbols)
// wait for a token (MaxQueries) before they put a message in its mailbox;
// with the shard held and the tokens taken, the next one fails with
// ErrBusy instead of queueing. A klines query asks no shard and answers
// at once.
func TestQueriesAreBounded(t *testing.T) {
	n, arm, release := blockedNode(t, Config{MaxQueries: 1, BusyTimeout: 20 * time.Millisecond})
	trades := tradesOf(t, 10)
	entered := arm()
	call := n.IngestAsync(context.Background(), trades)
	<-entered
	// A klines query needs no message to the shard (its bar series has
	// the bars as of the last flush): it answers while the shard is held.
	if _, err := n.Klines(context.Background(), trades[0].Symbol, messages.Interval1m, 0, 0, 10); err != nil {
		t.Fatalf("klines while the shard is held: %v", err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := n.HasSymbol(context.Background(), trades[0].Symbol)
		first <- err
	}()
	// The first shard query takes the only token (its message then waits
	// behind the held part); once it has, a second is refused.
	for len(n.queries) == 0 {
		select {
		case err := <-first:
			t.Fatalf("the first query finished (%v) while the shard is held", err)
		default:
			runtime.Gosched()
		}
	}
	if _, err := n.HasSymbol(context.Background(), trades[0].Symbol); !errors.Is(err, ErrBusy) {
		t.Fatalf("a second query while the first holds the only token: %v, want ErrBusy", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatalf("first query: %v", err)
	}
	if _, err := call.Wait(); err != nil {
		t.Fatal(err)
	}
	if ok, err := n.HasSymbol(context.Background(), trades[0].Symbol); err != nil || !ok {
		t.Fatalf("a query once the shard moves: %v, %v", ok, err)
	}
}

// TestShardMailboxStaysBounded drives shards with every kind of message at
// once (requests in many chunks from several producers, queries, the
// clock, heartbeats, checkpoints) under small limits, and checks that no
// shard's mailbox ever held more than the gates allow: per request in
// flight its chunk messages and one tick, the queries in flight, one
// heartbeat and the checkpoints.
func TestShardMailboxStaysBounded(t *testing.T) {
	const (
		chunk, requests, queries = 10, 2, 2
		batch, producers         = 100, 4
	)
	cfg := Config{Clock: ClockEvent, Shards: 2, MailboxSize: requests, MaxInFlightTrades: 10 * batch,
		MaxQueries: queries, BusyTimeout: time.Hour, CheckpointInterval: 50 * time.Millisecond,
		Intervals: []messages.Interval{messages.Interval1m, messages.Interval1h}}
	n := testNodeHooks(t, cfg, hooks{chunkTrades: chunk})
	trades := genTrades(t, 20, producers*40*batch, 48*time.Hour, 32)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg, qwg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each producer its own symbols' trades in order (the same
			// symbol from two producers would be duplicates or late).
			var mine []messages.Trade
			for _, tr := range trades {
				if ShardOf(tr.Symbol, producers) == p {
					mine = append(mine, tr)
				}
			}
			for i := 0; i < len(mine); i += batch {
				if _, err := n.Ingest(ctx, mine[i:min(i+batch, len(mine))]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 4 * queries {
		qwg.Add(1)
		go func() {
			defer qwg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := n.Klines(ctx, trades[0].Symbol, messages.Interval1m, 0, 0, 10); err != nil && !errors.Is(err, ErrBusy) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	qwg.Wait()
	perRequest := int64((batch+chunk-1)/chunk + 1 + 1) // chunk messages (the last may be its own) and a tick
	bound := requests*perRequest + queries + 1 + 2     // + a heartbeat, a checkpoint and one behind it
	for _, h := range n.shards {
		if d := h.Stats.MaxDepth(); d > bound || d == 0 {
			t.Errorf("%s: mailbox held up to %d messages, want 1..%d", h.Stats.Name, d, bound)
		} else {
			t.Logf("%s: mailbox held up to %d messages (bound %d)", h.Stats.Name, d, bound)
		}
	}
}
