package actors

import (
	"context"
	"log/slog"
	"testing"
	"time"

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
		n.closed.Store(true)
		n.stop()
		n.bg.Wait()
		n.system.Root.StopFuture(n.root).Wait()
		n.pool.Close()
	})
}
