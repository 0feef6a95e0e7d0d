package actors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// genTrades returns n generated trades over nsym symbols in time order.
func genTrades(t testing.TB, nsym int, n int64, span time.Duration, seed uint64) []messages.Trade {
	return gen.ForTest(t, nsym, n, span, seed)
}

func testNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	return testNodeHooks(t, cfg, hooks{})
}

// testNodeHooks starts a node with test seams.
func testNodeHooks(t testing.TB, cfg Config, hk hooks) *Node {
	t.Helper()
	n, err := start(context.Background(), cfg, hk)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return n
}

// ingestAll sends trades in batches and checks every trade was accepted.
func ingestAll(t testing.TB, n *Node, trades []messages.Trade, batch int, between func(i int)) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(trades); i += batch {
		end := min(i+batch, len(trades))
		res, err := n.Ingest(ctx, trades[i:end])
		if err != nil {
			t.Fatalf("ingest batch at %d: %v", i, err)
		}
		if res.Accepted != end-i || len(res.Rejected) != 0 {
			t.Fatalf("ingest batch at %d: %+v", i, res)
		}
		if between != nil {
			between(i / batch)
		}
	}
}

// requireMatchesOffline compares every symbol's bars on the node with an
// Offline aggregation of the same trades: identical from the first to the
// last trade's bar, then only empty bars at the last close up to the clock.
func requireMatchesOffline(t testing.TB, n *Node, trades []messages.Trade) {
	t.Helper()
	bySym := map[string][]messages.Trade{}
	for _, tr := range trades {
		bySym[tr.Symbol] = append(bySym[tr.Symbol], tr)
	}
	ctx := context.Background()
	for sym, ts := range bySym {
		off := aggregate.NewOffline(sym, n.cfg.Intervals)
		for i := range ts {
			if err := off.Add(&ts[i]); err != nil {
				t.Fatal(err)
			}
		}
		for _, iv := range n.cfg.Intervals {
			want := off.Klines(iv)
			got, err := n.Klines(ctx, sym, iv, want[0].OpenTime, 0, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) < len(want) {
				t.Fatalf("%s %s: node has %d bars, offline %d", sym, iv, len(got), len(want))
			}
			for i := range got {
				g := got[i]
				if i >= len(want) {
					if !g.Empty() || g.Close != want[len(want)-1].Close {
						t.Fatalf("%s %s bar %d after the last trade is not an empty bar at the last close: %+v", sym, iv, i, g)
					}
					continue
				}
				if d := klineDiff(g, want[i]); d != "" {
					t.Fatalf("%s %s bar %d (%s): %s", sym, iv, i, time.UnixMilli(g.OpenTime).UTC(), d)
				}
				if wantClosed := i < len(got)-1; g.Closed != wantClosed {
					t.Fatalf("%s %s bar %d: closed=%v, want %v", sym, iv, i, g.Closed, wantClosed)
				}
			}
		}
	}
}

// klineDiff compares bars exactly, except quote volumes (float sums,
// 1e-9 relative) and the closed flag.
func klineDiff(a, b messages.Kline) string {
	if !relClose(a.QuoteVolume, b.QuoteVolume) || !relClose(a.TakerBuyQuoteVolume, b.TakerBuyQuoteVolume) {
		return fmt.Sprintf("quote volumes %v/%v, want %v/%v", a.QuoteVolume, a.TakerBuyQuoteVolume, b.QuoteVolume, b.TakerBuyQuoteVolume)
	}
	a.QuoteVolume, a.TakerBuyQuoteVolume, a.Closed = b.QuoteVolume, b.TakerBuyQuoteVolume, b.Closed
	if a != b {
		return fmt.Sprintf("\n got %+v\nwant %+v", a, b)
	}
	return ""
}

func relClose(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// eventConfig: event clock, all intervals but 1s (days of data), every bar
// kept on a memory-only node (the tests compare whole histories).
func eventConfig() Config {
	return Config{Clock: ClockEvent, Shards: 8, Intervals: messages.AllIntervals()[1:], MemoryRetention: -1}
}

// TestMemoryNodeKeepsTheLatestBars: a memory-only node keeps at least
// MemoryRetention bars per series, exactly, and forgets history beyond
// about a chunk more, so its memory does not grow with time.
func TestMemoryNodeKeepsTheLatestBars(t *testing.T) {
	const keep = 300
	cfg := eventConfig()
	cfg.MemoryRetention = keep
	n := testNode(t, cfg)
	trades := genTrades(t, 3, 60_000, 10*24*time.Hour, 41) // 10 days: 14,400 1m bars per symbol
	ingestAll(t, n, trades, 2000, nil)
	syms, err := n.Symbols(context.Background())
	if err != nil || len(syms) != 3 {
		t.Fatalf("symbols %v, %v", syms, err)
	}
	for _, sym := range syms {
		var own []messages.Trade
		for i := range trades {
			if trades[i].Symbol == sym {
				own = append(own, trades[i])
			}
		}
		off := aggregate.NewOffline(sym, cfg.Intervals)
		for i := range own {
			if err := off.Add(&own[i]); err != nil {
				t.Fatal(err)
			}
		}
		want := off.Klines(messages.Interval1m)
		got, err := n.Klines(context.Background(), sym, messages.Interval1m, 1, 0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < keep || len(got) > keep+2000 {
			t.Fatalf("%s: %d bars kept, want %d to about a chunk more (of %d)", sym, len(got), keep, len(want))
		}
		// The offline series ends at the symbol's last trade; the node's
		// goes on to its open bar (the clock moved with other symbols).
		// Every bar both have must be equal, and the node's must be the
		// latest ones, without a hole.
		byOpen := map[int64]messages.Kline{}
		for _, k := range want {
			byOpen[k.OpenTime] = k
		}
		for i := range got {
			if i > 0 && got[i].OpenTime != messages.Interval1m.Next(got[i-1].OpenTime) {
				t.Fatalf("%s: bar %d opens at %d: a hole after %d", sym, i, got[i].OpenTime, got[i-1].OpenTime)
			}
			w, ok := byOpen[got[i].OpenTime]
			if !ok || i == len(got)-1 {
				continue
			}
			if d := klineDiff(got[i], w); d != "" {
				t.Fatalf("%s: bar %d: %s", sym, i, d)
			}
		}
		if last := want[len(want)-1].OpenTime; got[0].OpenTime > last-keep*messages.Minute {
			t.Fatalf("%s: kept bars start at %d, after the retained window of the last trade's bar %d", sym, got[0].OpenTime, last)
		}
	}
}

func TestNodeEventClockMatchesOffline(t *testing.T) {
	trades := genTrades(t, 12, 30_000, 10*24*time.Hour, 1)
	n := testNode(t, eventConfig())
	ingestAll(t, n, trades, 500, nil)
	requireMatchesOffline(t, n, trades)
	syms, err := n.Symbols(context.Background())
	if err != nil || len(syms) != 12 {
		t.Fatalf("symbols %v, %v", syms, err)
	}
}

func TestNodeDuplicatesAreIdempotent(t *testing.T) {
	trades := genTrades(t, 4, 4_000, 24*time.Hour, 2)
	n := testNode(t, eventConfig())
	ingestAll(t, n, trades, 250, nil)
	// A producer retrying every batch: nothing changes, all are duplicates.
	res, err := n.Ingest(context.Background(), trades[:1000])
	if err != nil || res.Accepted != 0 || res.Duplicates != 1000 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	requireMatchesOffline(t, n, trades)
}

// TestNodeShardPanicChangesNothing injects panics into shards mid-stream
// (between batches and with batches queued behind the panic) and requires
// exactly the klines of an undisturbed run.
func TestNodeShardPanicChangesNothing(t *testing.T) {
	trades := genTrades(t, 16, 20_000, 5*24*time.Hour, 3)
	cfg := eventConfig()
	n := testNode(t, cfg)
	ingestAll(t, n, trades, 400, func(batch int) {
		switch batch % 7 {
		case 2:
			if err := n.InjectShardPanic(batch%cfg.Shards, "drill"); err != nil {
				t.Fatal(err)
			}
		case 4:
			if err := n.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
	requireMatchesOffline(t, n, trades)
	var restarts int64
	for _, a := range n.Actors() {
		if a.Kind == "shard" {
			restarts += a.Restarts
			if a.Restarts > 0 && a.LastFailure == "" {
				t.Errorf("%s restarted without a recorded failure", a.Name)
			}
		}
	}
	if restarts == 0 {
		t.Fatal("no shard restarted: the drill did not run")
	}
}

func TestNodeRejectsInvalidTradesPerItem(t *testing.T) {
	n := testNode(t, Config{Clock: ClockEvent, Shards: 2, Symbols: []string{"BTCUSDT"}})
	base := messages.Trade{Symbol: "BTCUSDT", AggID: 1, Price: 100, Quantity: 1, FirstID: 1, LastID: 1, Time: time.Now().UnixMilli()}
	bad := []messages.Trade{base, base, base, base, base}
	bad[1].Price = 0
	bad[2].Time = 123
	bad[3].Symbol = "ETHUSDT"
	bad[3].AggID = 2
	bad[4].AggID = 3
	res, err := n.Ingest(context.Background(), bad)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 2 || len(res.Rejected) != 3 {
		t.Fatalf("result %+v", res)
	}
	for i, want := range []int{1, 2, 3} {
		if res.Rejected[i].Index != want || res.Rejected[i].Error == "" {
			t.Fatalf("rejected[%d] = %+v, want index %d", i, res.Rejected[i], want)
		}
	}
}

func TestNodeActorTree(t *testing.T) {
	n := testNode(t, Config{Clock: ClockEvent, Shards: 4})
	infos := n.Actors()
	kinds := map[string]int{}
	parents := map[string]string{}
	for _, a := range infos {
		kinds[a.Kind]++
		parents[a.Name] = a.Parent
	}
	for kind, want := range map[string]int{"guardian": 1, "router": 1, "supervisor": 1, "shard": 4, "clock": 1, "health-monitor": 1} {
		if kinds[kind] != want {
			t.Errorf("%d actors of kind %s, want %d (tree %+v)", kinds[kind], kind, want, infos)
		}
	}
	if parents["shard-03"] != "shards" || parents["shards"] != "klinecast" || parents["ingest"] != "klinecast" {
		t.Errorf("parents %v", parents)
	}
}

func TestNodeClosedRefusesIngest(t *testing.T) {
	n, err := Start(context.Background(), Config{Shards: 2, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ingest(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("ingest after close: %v", err)
	}
}

func TestShardOfIsStable(t *testing.T) {
	for _, sym := range []string{"BTCUSDT", "ETHUSDT", "X", "PEPEUSDT", ""} {
		h := fnv.New32a()
		h.Write([]byte(sym))
		if a, b := ShardOf(sym, 64), int(h.Sum32()%64); a != b {
			t.Fatalf("%s: ShardOf %d, hash/fnv's FNV-1a %d", sym, a, b)
		}
	}
	// The mapping is part of the data layout (snapshots are per shard):
	// pin a few values so a change of hash cannot slip in.
	for sym, want := range map[string]int{"BTCUSDT": 44, "ETHUSDT": 48, "PEPEUSDT": 33} {
		if got := ShardOf(sym, 64); got != want {
			t.Errorf("ShardOf(%s, 64) = %d, want %d", sym, got, want)
		}
	}
}

// TestNodeWallClockClosesBarsWithoutTrades runs the wall clock on a
// shifted wall clock: after one trade, the clock alone must close its 1s
// bar and open the following ones (empty, at the trade's price), with no
// further trade.
func TestNodeWallClockClosesBarsWithoutTrades(t *testing.T) {
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	began := time.Now()
	now := func() time.Time { return base.Add(time.Since(began)) }
	n := testNode(t, Config{Clock: ClockWall, Shards: 2, Intervals: []messages.Interval{messages.Interval1s, messages.Interval1m}, Now: now})
	tr := messages.Trade{Symbol: "BTCUSDT", AggID: 1, Price: 5_000_000_000, Quantity: 100_000_000, FirstID: 1, LastID: 1, Time: now().UnixMilli()}
	if _, err := n.Ingest(context.Background(), []messages.Trade{tr}); err != nil {
		t.Fatal(err)
	}
	first := messages.Interval1s.Align(tr.Time)
	testkit.Eventually(t, 10*time.Second, func() error {
		bars, err := n.Klines(context.Background(), "BTCUSDT", messages.Interval1s, first, 0, 10)
		if err != nil {
			return err
		}
		if len(bars) < 3 {
			return fmt.Errorf("%d 1s bars so far", len(bars))
		}
		if !bars[0].Closed || bars[0].TradeCount != 1 || bars[0].OpenTime != first {
			return fmt.Errorf("the trade's bar is %+v", bars[0])
		}
		for _, b := range bars[1:] {
			if b.TradeCount != 0 || b.Close != tr.Price {
				return fmt.Errorf("clock bar %+v is not empty at the last close", b)
			}
		}
		return nil
	})
}

// TestNodeHealthReportsAStuckShard blocks one shard (its delta sink does
// not return) and moves a fake clock: the shard's unanswered heartbeat
// makes it Failed, the others stay Healthy, and it recovers once unblocked.
// TestNodeHealthCheckAllocatesNothing: the health monitor's check of
// every shard and partition, once a second for the node's lifetime,
// reuses its report: a healthy node at rest makes no garbage.
func TestNodeHealthCheckAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are meaningless under -race")
	}
	n := testNode(t, Config{Shards: 16})
	var rep HealthReport
	n.health(&rep)
	if rep.State != Healthy || len(rep.Components) != 16+n.Workers() {
		t.Fatalf("report %+v: want healthy, 16 shards and %d partitions", rep, n.Workers())
	}
	testkit.RequireNoAllocs(t, "health check", 1000, func() { n.health(&rep) })
}

func TestNodeHealthReportsAStuckShard(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	release := make(chan struct{})
	var blocked atomic.Bool
	n := testNode(t, Config{Clock: ClockEvent, Shards: 4, Now: func() time.Time { return time.UnixMilli(clock.Load()) },
		Sink: DeltaSinkFunc(func(int, *aggregate.Delta) {
			if blocked.CompareAndSwap(false, true) {
				<-release
			}
		})})
	tr := messages.Trade{Symbol: "BTCUSDT", AggID: 1, Price: 100, Quantity: 1, FirstID: -1, LastID: -1, Time: clock.Load()}
	call := n.IngestAsync(context.Background(), []messages.Trade{tr})
	stuck := n.shards[ShardOf("BTCUSDT", 4)]
	// The router partition on the blocked worker cannot answer either.
	stuckRouter := n.ingest.Partitions()[n.pool.WorkerOf(stuck.ID())]
	testkit.Eventually(t, 10*time.Second, func() error {
		if !blocked.Load() || stuck.Stats.PingSent.Load() == 0 || stuckRouter.Stats.PingSent.Load() == 0 {
			return errors.New("shard not blocked with heartbeats outstanding yet")
		}
		return nil
	})
	clock.Add(3 * HealthTimeout.Milliseconds())
	rep := n.Health()
	found := false
	for _, c := range rep.Components {
		if c.Name == shard.Name(stuck.ID()) {
			found = true
			if c.State != Failed {
				t.Errorf("%s: %s, want failed (%s)", c.Name, c.State, c.Detail)
			}
		}
	}
	if !found {
		t.Fatalf("no health entry for %s: %+v", shard.Name(stuck.ID()), rep)
	}
	if !slices.ContainsFunc(rep.Components, func(c ComponentHealth) bool {
		return c.Name == stuckRouter.Stats.Name && c.State == Failed
	}) {
		t.Errorf("%s on the blocked worker not reported failed: %+v", stuckRouter.Stats.Name, rep.Components)
	}
	if rep.State != Failed {
		t.Fatalf("node state %s with a stuck shard", rep.State)
	}
	close(release)
	if _, err := call.Wait(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if s := n.Health().State; s != Healthy {
			return fmt.Errorf("node still %s", s)
		}
		return nil
	})
}

// TestNodeShardPanicWhileApplying makes shards fail in the middle of a
// part (the sink panics while the part's output is delivered, after its
// trades were applied and before it was answered), on a memory-only node,
// both when shards keep applied parts by saving checkpoints (few symbols
// per shard, large parts) and by logging their trades (many symbols, small
// parts). The restarted shard must rebuild its state, apply the failed
// part exactly once and answer it: the klines equal an undisturbed run.
func TestNodeShardPanicWhileApplying(t *testing.T) {
	tests := []struct {
		name           string
		symbols, batch int
		wantLogged     bool
		inject         bool // also inject panics while requests are in flight
	}{
		{"checkpoint per part", 16, 400, false, false},
		{"input log", 600, 30, true, false},
		{"parts in many chunks", 16, 1500, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trades := genTrades(t, tc.symbols, 12_000, 2*24*time.Hour, 5)
			cfg := eventConfig()
			var hk hooks
			hk.chunkTrades = 97 // parts of many chunks when batches are large
			// The faults below are transient, but dense and counted across
			// all shards: by coincidence one part can meet several in a row,
			// and under the race detector a shard can restart often. This
			// test is about rebuilding exactly; giving a part up and the
			// restart limit have their own tests.
			hk.partFailureLimit = 1 << 20
			hk.restartLimit = 1 << 20
			var chunks atomic.Int64
			if tc.inject {
				hk.faults.Chunk = func(shard int, lo int32) bool {
					// Deterministic: every 31st chunk after a part's first.
					return lo > 0 && chunks.Add(1)%31 == 0
				}
			}
			var deliveries atomic.Int64
			cfg.Sink = DeltaSinkFunc(func(shard int, d *aggregate.Delta) {
				// Deterministic faults: every 97th delivery panics.
				if deliveries.Add(1)%97 == 0 {
					panic("sink fault drill")
				}
			})
			n := testNodeHooks(t, cfg, hk)
			ctx := context.Background()
			for i, b := 0, 0; i < len(trades); i, b = i+tc.batch, b+1 {
				end := min(i+tc.batch, len(trades))
				c := n.IngestAsync(ctx, trades[i:end])
				if tc.inject && b%2 == 1 {
					// While the request is in flight: with parts in many
					// chunks, the shard is likely between two of them.
					if err := n.InjectShardPanic(b%cfg.Shards, "drill"); err != nil {
						t.Fatal(err)
					}
				}
				res, err := c.Wait()
				if err != nil || res.Accepted != end-i {
					t.Fatalf("batch at %d: %+v, %v", i, res, err)
				}
			}
			requireMatchesOffline(t, n, trades)
			var restarts int64
			for _, a := range n.Actors() {
				if a.Kind == "shard" {
					restarts += a.Restarts
				}
			}
			if restarts == 0 {
				t.Fatal("no shard restarted: the drill did not run")
			}
			var saved, logged uint64
			for _, h := range n.shards {
				s, l := h.KeptBy()
				saved += s
				logged += l
			}
			t.Logf("restarts %d, parts kept by checkpoint %d, by log %d", restarts, saved, logged)
			if tc.inject && chunks.Load() < 31 {
				t.Fatalf("%d chunks after a part's first: no fault injected mid-part", chunks.Load())
			}
			if tc.wantLogged && logged == 0 || !tc.wantLogged && saved == 0 {
				t.Fatalf("parts kept by checkpoint %d, by log %d: the case does not exercise its path", saved, logged)
			}
		})
	}
}

// TestNodeIngestAllocatesNothingInSteadyState: once the symbols exist and
// the recycled requests and shard buffers have grown, an ingest request
// allocates nothing: no per-trade and no per-request allocation on the
// path producer → router → partitions → shards → sink and bar series. What
// remains is rare and counted in: a sealed chunk's payload (one per ~100
// bars of a series) and the growth of young heads.
func TestNodeIngestAllocatesNothingInSteadyState(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are meaningless under -race")
	}
	const batch = 2000
	trades := genTrades(t, 200, 400*batch, 6*time.Hour, 9)
	n := testNode(t, Config{Clock: ClockEvent, Shards: 8, Intervals: messages.DefaultIntervals(),
		Sink: DeltaSinkFunc(func(int, *aggregate.Delta) {})})
	ctx := context.Background()
	next := 0
	ingest := func() {
		res, err := n.Ingest(ctx, trades[next:next+batch])
		if err != nil || res.Accepted != batch {
			t.Fatalf("batch at %d: %+v %v", next, res, err)
		}
		next += batch
	}
	for range 200 { // warm up: symbols, buffers, slabs
		ingest()
	}
	// Counted exactly (testing.AllocsPerRun rounds down: 149 in 150 runs
	// would read 0). Not required to be 0: sealed chunks and growing heads
	// (counted below), and the Go runtime refilling its own caches (a parked
	// worker's sudog, protoactor's type-switch cache) allocate a few
	// objects over the whole run; an allocation per request would be 150.
	const runs = 150
	chunkAllocs := func() (total uint64) {
		for _, b := range n.bars {
			st := b.Stats()
			total += st.Sealed + st.HeadGrowths
		}
		return total
	}
	before := chunkAllocs()
	allocs := testkit.Allocs(ingest, runs)
	chunks := chunkAllocs() - before
	t.Logf("%d allocations in %d requests of %d trades; %d chunks sealed or heads grown", allocs, runs, batch, chunks)
	// A sealed chunk allocates its payload (and may grow the series' list
	// of chunks); a young head grows a few times.
	if allocs >= runs/10+3*chunks {
		t.Fatalf("%d allocations in %d requests of %d trades in steady state: something allocates per request", allocs, runs, batch)
	}
}

// TestNodeGivesUpAPartThatAlwaysFails: a part that crashes its shard every
// time it is applied (here by a Sink that panics on it, or a fault in a
// middle chunk that recurs on every replay) is given up after
// shard.DefaultPartFailureLimit attempts: its request fails with ErrPartFailed instead of
// waiting forever behind a shard stopped by its restart limit, the shard
// serves on, and retrying the request once the cause is gone applies the
// part (the other parts count as duplicates): the klines end up exact.
func TestNodeGivesUpAPartThatAlwaysFails(t *testing.T) {
	tests := []struct {
		name string
		sink bool // the Sink panics (at the part's end); else a middle chunk
	}{
		{"delivery fails at the part's end", true},
		{"a middle chunk fails, and again on every replay", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			trades := genTrades(t, 16, 6_000, 24*time.Hour, 11)
			const poisoned = 3 // the shard that fails
			var failing atomic.Bool
			cfg := eventConfig()
			var hk hooks
			hk.chunkTrades = 50 // parts of several chunks
			if tc.sink {
				cfg.Sink = DeltaSinkFunc(func(shard int, d *aggregate.Delta) {
					if shard == poisoned && failing.Load() {
						panic("sink rejects this delta")
					}
				})
			} else {
				hk.faults.Chunk = func(shard int, lo int32) bool {
					return shard == poisoned && lo > 0 && failing.Load()
				}
				hk.faults.Replay = func(shard int) bool { return shard == poisoned && failing.Load() }
			}
			n := testNodeHooks(t, cfg, hk)
			ctx := context.Background()
			first, second := trades[:2000], trades[2000:4000]
			if res, err := n.Ingest(ctx, first); err != nil || res.Accepted != len(first) {
				t.Fatalf("first batch: %+v, %v", res, err)
			}
			failing.Store(true)
			res, err := n.Ingest(ctx, second)
			if !errors.Is(err, ErrPartFailed) || !strings.Contains(err.Error(), fmt.Sprintf("shard %d:", poisoned)) {
				t.Fatalf("second batch while shard %d fails: %+v, %v; want ErrPartFailed naming the shard", poisoned, res, err)
			}
			var restarts int64
			for _, a := range n.Actors() {
				if a.Name == shard.Name(poisoned) {
					restarts = a.Restarts
				}
			}
			if restarts != shard.DefaultPartFailureLimit {
				t.Errorf("shard %d restarted %d times, want %d", poisoned, restarts, shard.DefaultPartFailureLimit)
			}
			failing.Store(false)
			// The retry applies the part given up; the rest are duplicates.
			res, err = n.Ingest(ctx, second)
			if err != nil || res.Accepted == 0 || res.Accepted+res.Duplicates != len(second) {
				t.Fatalf("retry: %+v, %v; want the given-up part accepted, the rest duplicates", res, err)
			}
			rest := trades[4000:]
			if res, err := n.Ingest(ctx, rest); err != nil || res.Accepted != len(rest) {
				t.Fatalf("last batch: %+v, %v", res, err)
			}
			requireMatchesOffline(t, n, trades)
		})
	}
}

// TestNodeShardStoppedByItsRestartLimit: a shard that fails more often than
// its restart limit allows is stopped by its supervisor, and what was
// queued for it will never be answered. The request waiting on it fails
// with ErrActorStopped instead of waiting forever, later requests and
// queries are refused with it, /healthz reports the shard failed with the
// reason, and Close still finishes.
func TestNodeShardStoppedByItsRestartLimit(t *testing.T) {
	cfg := eventConfig()
	var hk hooks
	hk.restartLimit = 2
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := start(context.Background(), cfg, hk)
	if err != nil {
		t.Fatal(err)
	}
	trades := genTrades(t, 16, 3_000, 24*time.Hour, 12)
	ctx := context.Background()
	if res, err := n.Ingest(ctx, trades[:1000]); err != nil || res.Accepted != 1000 {
		t.Fatalf("first batch: %+v, %v", res, err)
	}
	const victim = 5
	// Three failures: two restarts, then the supervisor stops the shard.
	// The request's part for it is queued behind them.
	for range 3 {
		if err := n.InjectShardPanic(victim, "restart-limit drill"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := n.Ingest(ctx, trades[1000:2000]); !errors.Is(err, ErrActorStopped) ||
		!strings.Contains(err.Error(), shard.Name(victim)) || !strings.Contains(err.Error(), "restart-limit drill") {
		t.Fatalf("request queued behind the stopped shard: %v; want ErrActorStopped naming %s and the reason", err, shard.Name(victim))
	}
	if _, err := n.Ingest(ctx, trades[2000:]); !errors.Is(err, ErrActorStopped) {
		t.Errorf("a later request: %v; want ErrActorStopped", err)
	}
	if _, err := n.Symbols(ctx); !errors.Is(err, ErrActorStopped) {
		t.Errorf("Symbols: %v; want ErrActorStopped", err)
	}
	rep := n.Health()
	if rep.State != Failed {
		t.Errorf("health %s, want failed", rep.State)
	}
	found := false
	for _, c := range rep.Components {
		if c.Name == shard.Name(victim) {
			found = c.State == Failed && strings.Contains(c.Detail, "restart limit") && strings.Contains(c.Detail, "restart-limit drill")
		} else if c.State != Healthy {
			t.Errorf("%s: %s %s, want healthy", c.Name, c.State, c.Detail)
		}
	}
	if !found {
		t.Errorf("%s not reported failed with the reason: %+v", shard.Name(victim), rep.Components)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := n.Close(cctx); !errors.Is(err, ErrActorStopped) {
		t.Errorf("Close: %v; want it done, reporting the stopped shard's checkpoint failure", err)
	}
}

// TestNodeFailuresBetweenChunksDoNotGiveUpAPart: only failures while the
// part is being applied count against it. Three failures of the shard
// between two chunks of one part (here injected panics) restart it three
// times, and the part still completes: giving up is for parts that fail
// themselves.
func TestNodeFailuresBetweenChunksDoNotGiveUpAPart(t *testing.T) {
	trades := genTrades(t, 16, 4_000, 24*time.Hour, 13)
	cfg := eventConfig()
	var hk hooks
	hk.chunkTrades = 10 // a part of many chunks, handed out a few at a time
	victim := ShardOf(trades[0].Symbol, cfg.Shards)
	var n *Node
	var injected atomic.Bool
	failures := shard.DefaultPartFailureLimit
	hk.faults.Chunk = func(shard int, lo int32) bool {
		if shard == victim && lo > 0 && injected.CompareAndSwap(false, true) {
			for range failures {
				if err := n.InjectShardPanic(victim, "between chunks"); err != nil {
					t.Error(err)
				}
			}
		}
		return false
	}
	n = testNodeHooks(t, cfg, hk)
	res, err := n.Ingest(context.Background(), trades)
	if err != nil || res.Accepted != len(trades) {
		t.Fatalf("ingest: %+v, %v; want every trade accepted", res, err)
	}
	if !injected.Load() {
		t.Fatalf("no panic injected: shard %d's part had one chunk", victim)
	}
	for _, a := range n.Actors() {
		if a.Name == shard.Name(victim) && a.Restarts != shard.DefaultPartFailureLimit {
			t.Errorf("%s restarted %d times, want %d", a.Name, a.Restarts, shard.DefaultPartFailureLimit)
		}
	}
	requireMatchesOffline(t, n, trades)
}
