package aggregate

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// TestCheckpointRollbackMatches checks the use a shard makes of
// checkpoints: save after each drained batch, keep the inputs applied
// since, and on a "crash" restore the checkpoint and replay them. The
// recovered core must continue exactly like one that never crashed.
func TestCheckpointRollbackMatches(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ivs := []messages.Interval{messages.Interval1m, messages.Interval5m, messages.Interval1h, messages.Interval1w, messages.Interval1M}
		cfg := Config{Intervals: ivs, AllowedLateness: rapid.SampledFrom([]int64{0, 90_000}).Draw(rt, "lateness")}
		if rapid.Bool().Draw(rt, "fixed") {
			cfg.Symbols = []string{"AAA", "BBB", "CCC"}
		}
		a, _ := New(cfg)
		b, _ := New(cfg)
		var cp Checkpoint
		type input struct {
			tick  int64
			trade messages.Trade
		}
		var since []input // b's inputs since cp was saved
		removed := false
		src := &tradeSource{now: ms(rapid.SampledFrom(boundaryStarts).Draw(rt, "start")), nextAgg: map[string]int64{}, nextRaw: map[string]int64{}, trades: map[string][]messages.Trade{}}
		colA, colB := newCollector(), newCollector()
		for range rapid.IntRange(1, 60).Draw(rt, "steps") {
			switch rapid.IntRange(0, 7).Draw(rt, "action") {
			case 0:
				a.Tick(src.now)
				b.Tick(src.now)
				since = append(since, input{tick: src.now})
			case 1: // save
				colB.drain(rt, b, true)
				if err := b.SaveCheckpoint(&cp); err != nil {
					rt.Fatal(err)
				}
				since = since[:0]
			case 2: // crash: roll back to the checkpoint, replay
				var err error
				if cp.Valid() {
					b, err = RestoreCheckpoint(cfg, &cp)
				} else {
					b, err = New(cfg)
				}
				if err != nil {
					rt.Fatal(err)
				}
				for _, in := range since {
					switch {
					case in.tick == -1:
						b.RemoveSymbol(in.trade.Symbol)
					case in.tick != 0:
						b.Tick(in.tick)
					default:
						b.Apply(&in.trade)
					}
				}
			case 3:
				// A removed symbol never trades again here: trading it
				// afterwards reopens a bar the collector saw closed.
				if !removed && rapid.Bool().Draw(rt, "remove") {
					removed = true
					sym := "DDD"
					a.RemoveSymbol(sym)
					b.RemoveSymbol(sym)
					since = append(since, input{tick: -1, trade: messages.Trade{Symbol: sym}})
				}
			default:
				syms := []string{"AAA", "BBB", "DDD"}
				if removed {
					syms = syms[:2]
				}
				tr := src.draw(rt, syms, 3*messages.Hour)
				if rapid.IntRange(0, 4).Draw(rt, "late") == 0 {
					tr.Time -= rapid.Int64Range(0, 200_000).Draw(rt, "lateBy")
				}
				oa, ob := a.Apply(&tr), b.Apply(&tr)
				if oa != ob {
					rt.Fatalf("outcomes differ: %v vs %v", oa, ob)
				}
				since = append(since, input{trade: tr})
			}
		}
		colA.drain(rt, a, true)
		colB.drain(rt, b, true)
		requireSameBars(rt, colA, colB, "after rollbacks")
		// Counters are state too: a rollback and replay counts each input
		// once.
		if sa, sb := a.Stats(), b.Stats(); sa.Applied != sb.Applied || sa.Duplicates != sb.Duplicates {
			rt.Fatalf("stats differ: %+v vs %+v", sa, sb)
		}
	})
}

func TestCheckpointRefusesPendingOutput(t *testing.T) {
	c, _ := New(Config{Intervals: []messages.Interval{messages.Interval1m}})
	tr := trade("X", 1, "2024-01-01T00:00:05Z", "1", "1", false)
	c.Apply(&tr)
	var cp Checkpoint
	if err := c.SaveCheckpoint(&cp); !errors.Is(err, ErrOutputPending) {
		t.Fatalf("save with output pending: %v, want ErrOutputPending", err)
	}
	if cp.Valid() {
		t.Fatal("checkpoint valid after a refused save")
	}
	if _, err := RestoreCheckpoint(Config{Intervals: []messages.Interval{messages.Interval1m}}, &cp); err == nil {
		t.Fatal("restore from an empty checkpoint succeeded")
	}
	c.Release(c.Ready())
	if err := c.SaveCheckpoint(&cp); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreCheckpoint(Config{Intervals: []messages.Interval{messages.Interval5m}}, &cp); err == nil {
		t.Fatal("restore with other intervals succeeded")
	}
}

// TestCheckpointSaveAllocatesNothing: saving again into the same
// checkpoint is allocation-free in steady state (a shard saves after every
// batch). Counted exactly (testkit.Allocs), not as a rounded-down mean.
func TestCheckpointSaveAllocatesNothing(t *testing.T) {
	for _, lateness := range []int64{0, 60_000} {
		t.Run(fmt.Sprintf("lateness=%dms", lateness), func(t *testing.T) {
			c, _ := New(Config{Intervals: messages.DefaultIntervals(), AllowedLateness: lateness})
			var cp Checkpoint
			at := ms("2024-01-01T00:00:00Z")
			agg := int64(0)
			closed := 0 // bars closed by the measured steps
			step := func() {
				for _, sym := range []string{"AAA", "BBB", "CCC"} {
					agg++
					tr := messages.Trade{Symbol: sym, AggID: agg, Price: 100_000_000, Quantity: 1, FirstID: agg, LastID: agg, Time: at}
					c.Apply(&tr)
				}
				at += 1000
				d := c.Ready()
				for i := range d.Closed {
					closed += int(d.Closed[i].Bars())
				}
				c.Release(d)
				if err := c.SaveCheckpoint(&cp); err != nil {
					t.Fatal(err)
				}
			}
			// Warm up past the first close of 1m, 3m and 5m (the growth of
			// the buffers at the first 5m close cost allocations
			// that AllocsPerRun's rounded-down mean hid); the measured
			// steps (400 s to 500 s) close only 1m bars.
			for range 400 {
				step()
			}
			closed = 0
			n := testkit.Allocs(step, 100)
			if lateness == 0 {
				if n != 0 {
					t.Fatalf("apply+save: %d allocations in 100 steps, want 0", n)
				}
				return
			}
			// KNOWN DEFECT (core.go, emitClosed): with a lateness window,
			// every closed bar is stored in the recent map, whose
			// messages.Kline values are too large for a map slot and are
			// allocated one by one. Until the core keeps them without a
			// per-entry allocation, allow exactly that: at most one
			// allocation per closed bar, none per trade.
			t.Logf("%d allocations for %d closed bars in 100 steps (want 0 once the core is fixed)", n, closed)
			if n > uint64(closed) {
				t.Fatalf("apply+save: %d allocations in 100 steps closing %d bars, want at most one per closed bar", n, closed)
			}
		})
	}
}
