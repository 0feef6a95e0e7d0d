package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// symbolOf returns a symbol of the generated set that hashes to shard sh.
func symbolsByShard(trades []messages.Trade, shards int) map[int][]messages.Trade {
	out := map[int][]messages.Trade{}
	for _, tr := range trades {
		sh := ShardOf(tr.Symbol, shards)
		out[sh] = append(out[sh], tr)
	}
	return out
}

// goroutineIn reports whether some goroutine's stack is in fn.
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// TestWaitOnABrokenNodeWaitsForTheHealthyShards: a request whose part for
// one shard will never be answered (the shard exceeded its restart limit
// and was stopped) must not return while a healthy shard still reads the
// caller's trades: the caller (the HTTP layer) recycles them as soon as
// Wait returns. Here the healthy shard is held inside the request's part
// (its sink blocks), and Wait must still be waiting once the node is
// broken; it returns ErrActorStopped after the shard let go.
func TestWaitOnABrokenNodeWaitsForTheHealthyShards(t *testing.T) {
	const victim, healthy = 0, 1
	var block atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	cfg := Config{Clock: ClockEvent, Shards: 2, Cores: 2, Intervals: []messages.Interval{messages.Interval1m},
		Sink: DeltaSinkFunc(func(sh int, _ *aggregate.Delta) {
			if sh == healthy && block.CompareAndSwap(true, false) {
				entered <- struct{}{}
				<-release
			}
		})}
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := start(context.Background(), cfg, hooks{restartLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The stopped shard cannot checkpoint: Close says so.
		if err := n.Close(context.Background()); err != nil && !errors.Is(err, ErrActorStopped) {
			t.Errorf("close: %v", err)
		}
	})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // runs before the node's Close: a failed check must not leave the shard blocked
	if n.Workers() < 2 {
		t.Skip("needs two pinned workers (the healthy shard must not share the stopped one's thread)")
	}
	by := symbolsByShard(genTrades(t, 8, 400, time.Hour, 21), 2)
	if len(by[victim]) == 0 || len(by[healthy]) == 0 {
		t.Fatal("generated symbols do not cover both shards")
	}
	trades := append(append([]messages.Trade(nil), by[victim][:50]...), by[healthy][:50]...)
	block.Store(true)
	call := n.IngestAsync(context.Background(), trades)
	<-entered // the healthy shard is inside the request's part
	// Only now break the node: panics injected before the request could
	// stop the victim (and refuse the request) before the healthy shard
	// had its part, on a loaded machine.
	for range 3 { // two restarts, then the supervisor stops it
		if err := n.InjectShardPanic(victim, "broken-node drill"); err != nil {
			t.Fatal(err)
		}
	}
	type outcome struct {
		err      error
		released bool
	}
	var released atomic.Bool
	done := make(chan outcome, 1)
	go func() {
		_, err := call.Wait()
		done <- outcome{err, released.Load()}
	}()
	testkit.Eventually(t, 30*time.Second, func() error {
		if n.life.Err() == nil {
			return errors.New("node not broken yet")
		}
		if !goroutineIn("ingest.(*Call).awaitReleased") {
			select {
			case o := <-done:
				t.Fatalf("Wait returned (%v) while shard %d still read the request's trades", o.err, healthy)
			default:
			}
			return errors.New("Wait not yet waiting for the healthy shards")
		}
		return nil
	})
	released.Store(true)
	letGo()
	o := <-done
	if !o.released {
		t.Fatal("Wait returned before the healthy shard let go of the trades")
	}
	if !errors.Is(o.err, ErrActorStopped) {
		t.Fatalf("Wait: %v, want ErrActorStopped", o.err)
	}
}

// TestCloseRacesIngest starts requests while the node closes: every one
// either completes or is refused with ErrClosed, and Close returns only
// once none is in flight (a sync.WaitGroup used for this raced Add with
// Close's Wait: the race detector flags it).
func TestCloseRacesIngest(t *testing.T) {
	n, err := start(context.Background(), Config{Clock: ClockEvent, Shards: 4}, hooks{})
	if err != nil {
		t.Fatal(err)
	}
	trades := genTrades(t, 8, 4_000, time.Hour, 22)
	var inflight, afterClose atomic.Int64
	var closed atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; ; i += 4 {
				lo := (i * 50) % len(trades)
				inflight.Add(1)
				_, err := n.Ingest(context.Background(), trades[lo:lo+50])
				inflight.Add(-1)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if closed.Load() {
					afterClose.Add(1)
				}
			}
		}()
	}
	// Let the producers get going, then close under them.
	testkit.Eventually(t, 30*time.Second, func() error {
		if n.Stats().Accepted < 500 {
			return fmt.Errorf("%d accepted so far", n.Stats().Accepted)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("ingest while closing: %v", err)
	}
	if afterClose.Load() != 0 {
		t.Errorf("%d requests completed after Close returned", afterClose.Load())
	}
}

// TestDurableRefusesAnotherLayout: a data dir written with 8 shards must
// not be opened by a node with 4 (symbols would hash to other shards than
// their snapshots and WAL): Start fails with ErrLayoutMismatch, naming
// both, and the data is untouched for a node with the right layout.
func TestDurableRefusesAnotherLayout(t *testing.T) {
	dir := t.TempDir()
	trades := genTrades(t, 6, 2_000, 24*time.Hour, 23)
	st := openStore(t, dir)
	cfg := eventConfig()
	cfg.Store = st
	n := testNode(t, cfg)
	ingestAll(t, n, trades, 500, nil)
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	wrong := cfg
	wrong.Store, wrong.Shards = st, 4
	wrong.Logger = slog.New(slog.DiscardHandler)
	if n, err := Start(context.Background(), wrong); !errors.Is(err, ErrLayoutMismatch) ||
		!strings.Contains(err.Error(), "8 shards") || !strings.Contains(err.Error(), "4 shards") {
		if n != nil {
			n.Close(context.Background())
		}
		t.Fatalf("start with 4 shards on an 8-shard data dir: %v; want ErrLayoutMismatch naming both", err)
	}
	cfg.Store = st
	requireMatchesOffline(t, testNode(t, cfg), trades)
}

// TestHealthReportsFailingStorage: while the store refuses writes (a full
// disk), ingest answers ErrUnavailable, so the node is not healthy: the
// storage component reports failed with the reason, and healthy again
// once writes succeed.
func TestHealthReportsFailingStorage(t *testing.T) {
	var failing atomic.Bool
	scfg := storage.DefaultLocalConfig(t.TempDir())
	scfg.Logger = slog.New(slog.DiscardHandler)
	scfg.Faults = storage.FaultFunc(func(storage.FaultOp) error {
		if failing.Load() {
			return errors.New("injected: no space left on device")
		}
		return nil
	})
	st, err := storage.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := eventConfig()
	cfg.Store, cfg.CheckpointInterval = st, time.Hour
	n := testNode(t, cfg)
	trades := genTrades(t, 4, 1_000, time.Hour, 24)
	storageState := func() ComponentHealth {
		for _, c := range n.Health().Components {
			if c.Name == "storage" {
				return c
			}
		}
		t.Fatalf("no storage component in %+v", n.Health())
		return ComponentHealth{}
	}
	if c := storageState(); c.State != Healthy {
		t.Fatalf("storage %s (%s) before any fault", c.State, c.Detail)
	}
	failing.Store(true)
	if _, err := n.Ingest(context.Background(), trades[:500]); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("ingest on failing storage: %v, want ErrUnavailable", err)
	}
	if c := storageState(); c.State != Failed || c.Detail == "" {
		t.Fatalf("storage %s (%q) while writes fail; want failed with the reason", c.State, c.Detail)
	}
	if rep := n.Health(); rep.State != Failed {
		t.Fatalf("node %s while ingest is refused", rep.State)
	}
	failing.Store(false)
	testkit.Eventually(t, 30*time.Second, func() error {
		res, err := n.Ingest(context.Background(), trades[:500])
		if err != nil {
			return err
		}
		if res.Accepted+res.Duplicates != 500 {
			return fmt.Errorf("%+v", res)
		}
		if c := storageState(); c.State != Healthy {
			return fmt.Errorf("storage still %s: %s", c.State, c.Detail)
		}
		return nil
	})
}

// TestQueryNeverWaitsForTheDisk: a klines query is answered while the
// snapshot's write of the shard's bar chunks is stuck in the store (a slow
// disk): the bars are read from the shard's ShardBars in memory, exactly.
func TestQueryNeverWaitsForTheDisk(t *testing.T) {
	var writes atomic.Int64
	var armed atomic.Bool
	stuck := make(chan struct{})
	release := make(chan struct{})
	scfg := storage.DefaultLocalConfig(t.TempDir())
	scfg.Logger = slog.New(slog.DiscardHandler)
	scfg.Faults = storage.FaultFunc(func(op storage.FaultOp) error {
		// Armed: the next write (a snapshot's bar chunks) hangs until
		// released.
		if op == storage.FaultWrite && armed.Load() && writes.Add(1) == 1 {
			close(stuck)
			<-release
		}
		return nil
	})
	st, err := storage.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	cfg := Config{Clock: ClockEvent, Shards: 1, Store: st, CheckpointInterval: time.Hour,
		Intervals: []messages.Interval{messages.Interval1m, messages.Interval1h}}
	n := testNode(t, cfg)
	trades := genTrades(t, 1, 3_000, 6*time.Hour, 25)
	ingestAll(t, n, trades[:2000], 500, nil)
	// Let every closed bar so far reach the store.
	if err := n.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := n.Ingest(context.Background(), trades[2000:]); err != nil || res.Accepted != 1000 {
		t.Fatalf("ingest: %+v, %v", res, err)
	}
	armed.Store(true)
	snapshot := make(chan error, 1)
	go func() { snapshot <- n.Checkpoint(context.Background()) }()
	<-stuck // the snapshot's write of the bar chunks hangs in the store
	off := aggregate.NewOffline(trades[0].Symbol, cfg.Intervals)
	for i := range trades {
		if err := off.Add(&trades[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := off.Klines(messages.Interval1m)
	// A generous deadline, only so that a query that waits for the hung
	// write fails with a message instead of hanging the test binary.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := n.Klines(ctx, trades[0].Symbol, messages.Interval1m, want[0].OpenTime, 0, 1<<30)
	if err != nil {
		t.Fatalf("klines while a chunk write hangs: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d bars, want %d", len(got), len(want))
	}
	for i := range want {
		if d := klineDiff(got[i], want[i]); d != "" {
			t.Fatalf("bar %d: %s", i, d)
		}
	}
	once.Do(func() { close(release) })
	if err := <-snapshot; err != nil {
		t.Fatalf("snapshot once the write is released: %v", err)
	}
}
