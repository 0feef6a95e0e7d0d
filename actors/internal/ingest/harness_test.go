package ingest

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/actors/internal/lifecycle"
	"github.com/klinecast/klinecast/actors/internal/pinned"
	"github.com/klinecast/klinecast/actors/internal/shard"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// testIngest builds an ingest path whose actors are not spawned: enough to
// classify requests by hand.
func testIngest(t testing.TB, shards, workers int) *Ingest {
	t.Helper()
	pool, err := pinned.NewPool(pinned.Config{Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.DiscardHandler)
	env := &shard.Env{Core: aggregate.Config{Intervals: messages.DefaultIntervals()}, System: actor.NewActorSystem(),
		Life: lifecycle.New(log), Log: log, Deltas: new(atomic.Uint64)}
	hs := make([]*shard.Handle, shards)
	for i := range hs {
		hs[i] = shard.New(env, i, 64, storage.NewShardBars(nil, 0))
	}
	return New(Config{System: env.System, Life: env.Life, Log: log, Pool: pool, Shards: hs,
		MaxRequests: 64, MaxTrades: 1 << 22, BusyTimeout: time.Second, Now: time.Now})
}

// genTrades returns n generated trades over nsym symbols in time order.
func genTrades(t testing.TB, nsym int, n int64, span time.Duration, seed uint64) []messages.Trade {
	return gen.ForTest(t, nsym, n, span, seed)
}
