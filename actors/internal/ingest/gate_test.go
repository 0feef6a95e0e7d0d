package ingest

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// testGate is an Ingest with only its admission gates (no actors).
func testGate(maxRequests, maxTrades int, busy time.Duration) *Ingest {
	g := &Ingest{cfg: Config{BusyTimeout: busy}, gate: make(chan struct{}, maxRequests)}
	g.trades.init(maxTrades)
	return g
}

// TestGateBoundsRequests: at most MaxRequests requests are admitted; the
// next waits BusyTimeout and fails with ErrBusy, and gets in once one is
// released.
func TestGateBoundsRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate(2, 1000, 200*time.Millisecond)
		ctx := context.Background()
		for i := range 2 {
			if err := g.acquire(ctx, 10); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		began := time.Now()
		if err := g.acquire(ctx, 10); !errors.Is(err, ErrBusy) {
			t.Fatalf("third request: %v, want ErrBusy", err)
		}
		if waited := time.Since(began); waited != 200*time.Millisecond {
			t.Fatalf("waited %v, want the busy timeout (200ms)", waited)
		}
		done := make(chan error, 1)
		go func() { done <- g.acquire(ctx, 10) }()
		synctest.Wait() // it waits for room
		g.release(10)
		if err := <-done; err != nil {
			t.Fatalf("after a release: %v", err)
		}
	})
}

// TestGateBoundsTrades: the trades in flight stay within MaxTrades; a
// request that does not fit waits for room (and fails with ErrBusy if
// none comes), and one larger than the bound runs alone.
func TestGateBoundsTrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate(8, 100, time.Second)
		ctx := context.Background()
		if err := g.acquire(ctx, 60); err != nil {
			t.Fatal(err)
		}
		if err := g.acquire(ctx, 60); !errors.Is(err, ErrBusy) {
			t.Fatalf("60 more trades with 60 of 100 in flight: %v, want ErrBusy", err)
		}
		if len(g.gate) != 1 {
			t.Fatalf("a refused request kept its request token: %d tokens taken", len(g.gate))
		}
		done := make(chan error, 1)
		go func() { done <- g.acquire(ctx, 60) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("admitted (%v) while 60 of 100 trades are in flight", err)
		default:
		}
		g.release(60)
		if err := <-done; err != nil {
			t.Fatalf("after the release: %v", err)
		}
		g.release(60)
		// Larger than the bound: admitted alone.
		if err := g.acquire(ctx, 500); err != nil {
			t.Fatalf("an oversized request on an idle node: %v", err)
		}
		if err := g.acquire(ctx, 1); !errors.Is(err, ErrBusy) {
			t.Fatalf("a request beside an oversized one: %v, want ErrBusy", err)
		}
		g.release(500)
		if g.trades.inUse() != 0 || len(g.gate) != 0 {
			t.Fatalf("after every release: %d trades, %d tokens in use", g.trades.inUse(), len(g.gate))
		}
	})
}

// TestGateHonoursContext: a caller that gives up waiting gets its
// context's error, and leaves no token behind.
func TestGateHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := testGate(1, 100, time.Hour)
		if err := g.acquire(context.Background(), 100); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := g.acquire(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v, want the context's deadline", err)
		}
		g.release(100)
		ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
		defer cancel2()
		if err := g.acquire(ctx2, 100); err != nil {
			t.Fatal(err)
		}
		if err := g.acquire(ctx2, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("waiting for trades' room: %v, want the context's deadline", err)
		}
		if len(g.gate) != 1 {
			t.Fatalf("%d request tokens held, want 1", len(g.gate))
		}
	})
}
