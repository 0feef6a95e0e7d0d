package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

func openStore(t testing.TB, dir string) *storage.Store {
	t.Helper()
	cfg := storage.DefaultLocalConfig(dir)
	cfg.Logger = slog.New(slog.DiscardHandler)
	st, err := storage.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestDurableNodeRestartMatchesOffline ingests into a node on a real badger
// store, stops it (graceful: snapshots) halfway and once more without a
// final snapshot, and requires klines identical to the offline aggregate
// of everything accepted.
func TestDurableNodeRestartMatchesOffline(t *testing.T) {
	trades := genTrades(t, 10, 12_000, 4*24*time.Hour, 5)
	dir := t.TempDir()
	third := len(trades) / 3

	run := func(part []messages.Trade, graceful bool) {
		st := openStore(t, dir)
		cfg := eventConfig()
		cfg.Store = st
		cfg.Logger = slog.New(slog.DiscardHandler)
		cfg.CheckpointInterval = time.Hour // checkpoints happen where the test says
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !graceful && n.Recovery().Symbols == 0 {
			t.Fatal("the second run recovered no symbols from the first run's snapshots")
		}
		ingestAll(t, n, part, 300, nil)
		if graceful {
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		} else {
			// As if the process died: no final checkpoint. The store is
			// closed so the next Open can take the directory lock.
			n.abandon()
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run(trades[:third], true)
	run(trades[third:2*third], false)
	st := openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	cfg := eventConfig()
	cfg.Store = st
	cfg.CheckpointInterval = time.Hour
	n := testNode(t, cfg)
	if r := n.Recovery(); r.WALTrades != int64(third) {
		t.Fatalf("recovered %d trades from the WAL, want the %d of the run that did not checkpoint", r.WALTrades, third)
	}
	ingestAll(t, n, trades[2*third:], 300, nil)
	requireMatchesOffline(t, n, trades)
}

// TestDurableShardPanicRestartsFromSnapshotAndWAL injects panics into a
// durable node's shards between checkpoints.
func TestDurableShardPanicRestartsFromSnapshotAndWAL(t *testing.T) {
	trades := genTrades(t, 16, 15_000, 3*24*time.Hour, 6)
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	cfg := eventConfig()
	cfg.Store = st
	n := testNode(t, cfg)
	ingestAll(t, n, trades, 300, func(batch int) {
		switch batch % 5 {
		case 1:
			if err := n.InjectShardPanic(batch%cfg.Shards, "drill"); err != nil {
				t.Fatal(err)
			}
		case 3:
			if err := n.Checkpoint(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	})
	requireMatchesOffline(t, n, trades)
	if n.Stats().Restarts == 0 {
		t.Fatal("no shard restarted")
	}
}

// abandon stops the node as a crash would: no final flush or checkpoint.
func (n *Node) abandon() {
	n.closeOnce.Do(func() {
		n.life.Close()
		n.stop()
		n.bg.Wait()
		n.system.Root.StopFuture(n.root).Wait()
		n.life.Halt()
		n.closeShards()
		n.pool.Close()
	})
}

// TestDurableStorageFailureRefusesThenRecovers fails every storage write
// (as a full disk or a failed fsync does) in the middle of a stream: ingest
// must fail with storage.ErrUnavailable (HTTP 503) while it lasts, work
// again once writes succeed, and lose nothing acknowledged — checked after
// a restart that replays the WAL.
func TestDurableStorageFailureRefusesThenRecovers(t *testing.T) {
	trades := genTrades(t, 6, 6_000, 2*24*time.Hour, 8)
	dir := t.TempDir()
	var failing atomic.Bool
	scfg := storage.DefaultLocalConfig(dir)
	scfg.Logger = slog.New(slog.DiscardHandler)
	scfg.Faults = storage.FaultFunc(func(storage.FaultOp) error {
		if failing.Load() {
			return syscall.ENOSPC
		}
		return nil
	})
	st, err := storage.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := eventConfig()
	cfg.Store = st
	cfg.CheckpointInterval = time.Hour
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	half := len(trades) / 2
	ingestAll(t, n, trades[:half], 300, nil)

	failing.Store(true)
	restartsBefore := n.Stats().Restarts
	// A disk that stays full refuses request after request: each is
	// refused, and no shard restarts for it (a part whose append failed
	// was never applied), so the supervisor's limit is never in reach.
	for i := 0; i < 20; i++ {
		_, err = n.Ingest(context.Background(), trades[half:half+300])
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("ingest %d with failing storage: %v, want ErrUnavailable", i, err)
		}
	}
	if r := n.Stats().Restarts - restartsBefore; r != 0 {
		t.Fatalf("%d shard restarts for 20 refused requests, want none", r)
	}
	if err := n.Checkpoint(context.Background()); err == nil {
		t.Fatal("a snapshot succeeded while storage fails")
	}
	failing.Store(false)
	// The producer retries the refused batch (some of its trades may have
	// been applied: they count as duplicates) and goes on.
	ingestAllowingDuplicates(t, n, trades[half:], 300)
	n.abandon() // crash: the restart must rebuild everything from the WAL
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	requireMatchesOffline(t, testNode(t, cfg), trades)
}

// ingestAllowingDuplicates is ingestAll for retried batches.
func ingestAllowingDuplicates(t testing.TB, n *Node, trades []messages.Trade, batch int) {
	t.Helper()
	for i := 0; i < len(trades); i += batch {
		end := min(i+batch, len(trades))
		res, err := n.Ingest(context.Background(), trades[i:end])
		if err != nil || res.Accepted+res.Duplicates != end-i || len(res.Rejected) != 0 {
			t.Fatalf("ingest batch at %d: %+v, %v", i, res, err)
		}
	}
}

// TestDurableRestartKeepsTheClock: after a crash between snapshots, every
// symbol's bars reach the clock the node had, not only those of the shards
// the last request touched (the others had it from ticks, which no WAL
// holds): the node records its complete clock in the store and restarts
// from it.
func TestDurableRestartKeepsTheClock(t *testing.T) {
	dir := t.TempDir()
	trades := genTrades(t, 20, 4_000, 24*time.Hour, 12)
	last := trades[len(trades)-1]
	last.AggID += 1_000_000
	last.FirstID, last.LastID = -1, -1
	last.Time += 3 * time.Hour.Milliseconds() // the clock jumps, one symbol trades
	last.EventTime = last.Time
	cfg := eventConfig()
	cfg.Intervals = []messages.Interval{messages.Interval1m, messages.Interval1h}
	cfg.CheckpointInterval = time.Hour // no snapshot after the start
	cfg.Logger = slog.New(slog.DiscardHandler)

	st := openStore(t, dir)
	cfg.Store = st
	n, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ingestAll(t, n, append(trades, last), 500, nil)
	syms, err := n.Symbols(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]messages.Kline{}
	for _, sym := range syms {
		if before[sym], err = n.Klines(context.Background(), sym, messages.Interval1m, 0, 0, 1000); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if c, err := st.Clock(); err != nil || c != last.Time {
			return fmt.Errorf("recorded clock %d (%v), want %d", c, err, last.Time)
		}
		return nil
	})
	n.abandon()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openStore(t, dir)
	t.Cleanup(func() { st.Close() })
	cfg.Store = st
	n = testNode(t, cfg)
	for _, sym := range syms {
		after, err := n.Klines(context.Background(), sym, messages.Interval1m, 0, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before[sym]) || after[len(after)-1].OpenTime != before[sym][len(before[sym])-1].OpenTime {
			t.Fatalf("%s after the restart: %d bars up to %d, before: %d up to %d", sym, len(after), after[len(after)-1].OpenTime,
				len(before[sym]), before[sym][len(before[sym])-1].OpenTime)
		}
		for i := range after {
			if d := klineDiff(after[i], before[sym][i]); d != "" {
				t.Fatalf("%s bar %d after the restart: %s", sym, i, d)
			}
		}
	}
}

// TestDurableRetention: a durable node with a 1m retention of 2 days
// deletes, after a snapshot, the 1m bars of a 10-day series that open
// more than 2 days before its last; its 1h bars and the recent 1m bars
// stay. Retention is refused without a store and for an interval the
// node does not aggregate.
func TestDurableRetention(t *testing.T) {
	day := 24 * time.Hour
	m1 := messages.Interval1m
	ret := storage.Retention{m1: 2 * day}
	memCfg := Config{Clock: ClockEvent, Intervals: []messages.Interval{m1, messages.Interval1h}, Retention: ret}
	if _, err := Start(context.Background(), memCfg); err == nil || !strings.Contains(err.Error(), "Retention") {
		t.Fatalf("retention on a memory-only node: %v", err)
	}
	bad := DefaultConfig()
	bad.Intervals, bad.Retention = []messages.Interval{messages.Interval1h}, ret
	var fe *FieldError
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Field != "Retention" || !strings.Contains(err.Error(), "not 1m") {
		t.Fatalf("retention of an interval not aggregated: %v", err)
	}

	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	cfg := memCfg
	cfg.Store = st
	cfg.Shards = 2
	cfg.CheckpointInterval = time.Hour // checkpoints happen where the test says
	n := testNode(t, cfg)
	// One trade every 10 minutes for 10 days: chunks of a few days.
	start := messages.Interval1d.Align(1_700_000_000_000)
	var trades []messages.Trade
	for i := range int64(10 * 24 * 6) {
		trades = append(trades, messages.Trade{Symbol: "RETUSDT", AggID: i + 1, Price: messages.Decimal(100_000_000 + i%97), Quantity: 1_000,
			FirstID: i + 1, LastID: i + 1, Time: start + i*10*messages.Minute + 1})
	}
	ingestAll(t, n, trades, 100, nil)
	ctx := context.Background()
	lastTrade := trades[len(trades)-1].Time
	old := func() int {
		t.Helper()
		got, err := n.Klines(ctx, "RETUSDT", m1, start, start+messages.Day, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	if got := old(); got != 1000 {
		t.Fatalf("before retention: %d old bars", got)
	}
	if err := n.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// The shard's storage writer enforces retention after the snapshot.
	deadline := time.Now().Add(10 * time.Second)
	for old() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("old 1m bars still there after the snapshot: %d", old())
		}
		time.Sleep(10 * time.Millisecond)
	}
	from := m1.Align(lastTrade) - messages.Day
	recent, err := n.Klines(ctx, "RETUSDT", m1, from, lastTrade, 1000)
	if err != nil || len(recent) != 1000 || recent[0].OpenTime != from {
		t.Fatalf("recent 1m bars: %d, %v", len(recent), err)
	}
	hours, err := n.Klines(ctx, "RETUSDT", messages.Interval1h, start, lastTrade, 1000)
	if err != nil || len(hours) != 10*24 {
		t.Fatalf("1h bars (no retention): %d, %v", len(hours), err)
	}
}

// TestLateTradeSplitsARun: a late trade (within AllowedLateness) that
// lands inside a run of gap-filled bars amends exactly that bar, on a
// memory-only node and on a durable one, after a restart too: the bars on
// either side stay gap fills at the previous close.
func TestLateTradeSplitsARun(t *testing.T) {
	const sym = "LATEUSDT"
	t0 := messages.Interval1m.Align(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli())
	at := func(min int64) int64 { return t0 + min*messages.Minute }
	mk := func(id, min int64, price messages.Decimal) messages.Trade {
		return messages.Trade{Symbol: sym, AggID: id, Price: price, Quantity: 100_000_000, FirstID: -1, LastID: -1,
			Time: at(min) + 1_000, EventTime: at(min) + 1_000}
	}
	check := func(t *testing.T, n *Node) {
		t.Helper()
		got, err := n.Klines(context.Background(), sym, messages.Interval1m, t0, at(30), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 31 {
			t.Fatalf("%d bars, want 31 (minutes 0..30)", len(got))
		}
		for i, k := range got {
			var want messages.Decimal
			var count int64
			switch {
			case i == 0:
				want, count = 100_00000000, 1
			case i == 25:
				want, count = 105_00000000, 1 // the late trade
			case i == 30:
				want, count = 110_00000000, 1
			default:
				want = 100_00000000 // a gap fill at the close before the run
			}
			if k.OpenTime != at(int64(i)) || k.Open != want || k.Close != want || k.TradeCount != count {
				t.Fatalf("bar %d: open time %d, O %v C %v, %d trades; want %d, %v, %d trades", i, k.OpenTime, k.Open, k.Close, k.TradeCount, at(int64(i)), want, count)
			}
		}
	}
	ingest := func(t *testing.T, n *Node) {
		t.Helper()
		for _, tr := range []messages.Trade{mk(1, 0, 100_00000000), mk(2, 30, 110_00000000), mk(3, 25, 105_00000000)} {
			res, err := n.Ingest(context.Background(), []messages.Trade{tr})
			if err != nil || res.Accepted != 1 {
				t.Fatalf("ingest %+v: %+v, %v", tr, res, err)
			}
		}
	}
	cfg := Config{Clock: ClockEvent, Shards: 2, Intervals: []messages.Interval{messages.Interval1m, messages.Interval1h},
		AllowedLateness: 10 * time.Minute, CheckpointInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)}
	t.Run("memory", func(t *testing.T) {
		n := testNode(t, cfg)
		ingest(t, n)
		check(t, n)
	})
	t.Run("durable", func(t *testing.T) {
		dir := t.TempDir()
		st := openStore(t, dir)
		dcfg := cfg
		dcfg.Store = st
		n, err := Start(context.Background(), dcfg)
		if err != nil {
			t.Fatal(err)
		}
		ingest(t, n)
		check(t, n)
		// A graceful close stores the chunks (the run split); the
		// restart reads them, and a second late trade amends the stored
		// chunk, splitting the rest of the run again.
		if err := n.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st = openStore(t, dir)
		t.Cleanup(func() { st.Close() })
		dcfg.Store = st
		n = testNode(t, dcfg)
		check(t, n)
		res, err := n.Ingest(context.Background(), []messages.Trade{mk(4, 27, 107_00000000)})
		if err != nil || res.Accepted != 1 {
			t.Fatalf("a late trade after the restart: %+v, %v", res, err)
		}
		got, err := n.Klines(context.Background(), sym, messages.Interval1m, at(24), at(28), 10)
		if err != nil {
			t.Fatal(err)
		}
		wants := []messages.Decimal{100_00000000, 105_00000000, 100_00000000, 107_00000000, 100_00000000}
		if len(got) != len(wants) {
			t.Fatalf("%d bars for minutes 24..28", len(got))
		}
		for i, k := range got {
			if k.Close != wants[i] {
				t.Fatalf("after the second late trade, bar %d (minute %d) closes at %v, want %v", i, 24+i, k.Close, wants[i])
			}
		}
	})
}
