package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/klinecast/klinecast/messages"
)

// ShardBars against a Store, on every backend: what the per-bar kline
// store's tests asserted, now of the chunked series.

// mkBar returns a closed bar with values derived from open.
func mkBar(sym string, iv messages.Interval, open int64) messages.Kline {
	p := messages.Decimal(1_000_000_000 + open%1000)
	return messages.Kline{
		Symbol: sym, Interval: iv, OpenTime: open, CloseTime: iv.CloseTime(open),
		Open: p, High: p + 5, Low: p - 5, Close: p + 1,
		Volume:      messages.Decimal128{Hi: 1, Lo: uint64(open)},
		QuoteVolume: float64(open) / 3, TakerBuyVolume: messages.Decimal128{Lo: 7},
		TakerBuyQuoteVolume: 0.5, TradeCount: 3, FirstTradeID: 10, LastTradeID: 12,
		Closed: true,
	}
}

func opens(ks []messages.Kline) []int64 {
	out := make([]int64, len(ks))
	for i := range ks {
		out[i] = ks[i].OpenTime
	}
	return out
}

// storeBars puts ks into a ShardBars of s and writes them.
func storeBars(t *testing.T, s *Store, ks ...messages.Kline) *ShardBars {
	t.Helper()
	return storeSealed(t, s, ChunkTargetBytes, ks...)
}

// storeSealed is storeBars with heads sealed at sealBytes (small: many
// chunks from few bars).
func storeSealed(t *testing.T, s *Store, sealBytes int, ks ...messages.Kline) *ShardBars {
	t.Helper()
	b := NewShardBars(s, 0)
	b.sealBytes = sealBytes
	if err := b.Put(ks); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteDirty(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestShardBarsStoreRangeScans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		m := messages.Minute
		base := messages.Interval1m.Align(t0)
		at := func(i int64) int64 { return base + i*m }
		var bars []messages.Kline
		for i := range int64(13) {
			bars = append(bars, mkBar("BTCUSDT", messages.Interval1m, at(i)))
		}
		// Neighbours that must never leak into BTCUSDT/1m scans: another
		// interval, a symbol that is a prefix of it, one it is a prefix of.
		bars = append(bars,
			mkBar("BTCUSDT", messages.Interval5m, messages.Interval5m.Align(t0)),
			mkBar("BTC", messages.Interval1m, at(0)),
			mkBar("BTCUSDTX", messages.Interval1m, at(1)),
		)
		b := NewShardBars(s, 0)
		b.sealBytes = 64 // a few bars per chunk: scans cross chunks
		if err := b.Put(bars); err != nil {
			t.Fatal(err)
		}
		if n, err := b.WriteDirty(ctx); err != nil || n < 4 {
			t.Fatalf("WriteDirty: %d chunks, %v", n, err)
		}
		// The writer's bars (memory over store) and a fresh one's (the
		// store alone) answer alike.
		for name, q := range map[string]*ShardBars{"writer": b, "store only": NewShardBars(s, 0)} {
			all, err := q.Klines("BTCUSDT", messages.Interval1m, 0, 1<<62, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !sameBars(all, bars[:13]) {
				t.Fatalf("%s: full scan %v", name, opens(all))
			}
			cases := []struct {
				start, end int64
				limit      int
				want       []int64
			}{
				{at(2), at(5), 0, []int64{at(2), at(3), at(4), at(5)}}, // inclusive both ends
				{at(2) + 1, at(5) - 1, 0, []int64{at(3), at(4)}},
				{at(2), at(100), 3, []int64{at(2), at(3), at(4)}}, // limit
				{-1 << 62, at(1), 0, []int64{at(0), at(1)}},
				{at(20), at(30), 0, []int64{}},
				{at(5), at(2), 0, []int64{}}, // empty range
			}
			for _, c := range cases {
				got, err := q.Klines("BTCUSDT", messages.Interval1m, c.start, c.end, c.limit, nil)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(opens(got)) != fmt.Sprint(c.want) {
					t.Errorf("%s: Klines(%d, %d, %d) = %v, want %v", name, c.start, c.end, c.limit, opens(got), c.want)
				}
			}
			// dst is appended to, and its spare capacity reused.
			dst := make([]messages.Kline, 1, 8)
			dst[0].Symbol = "KEEP"
			dst, _ = q.Klines("BTCUSDT", messages.Interval1m, 0, 1<<62, 2, dst)
			if len(dst) != 3 || dst[0].Symbol != "KEEP" || dst[1].OpenTime != at(0) {
				t.Fatalf("%s: append to dst: %v", name, opens(dst))
			}
		}
		syms, err := s.Symbols()
		if err != nil || fmt.Sprint(syms) != "[BTC BTCUSDT BTCUSDTX]" {
			t.Fatalf("Symbols() = %v, %v", syms, err)
		}
	})
}

func TestShardBarsStoreCorrection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		iv := messages.Interval1h
		first := iv.Align(t0)
		var bars []messages.Kline
		for i := range int64(40) {
			bars = append(bars, mkBar("ETHUSDT", iv, first+i*messages.Hour))
		}
		b := storeSealed(t, s, 128, bars...)
		// A correction of a stored, sealed bar, by a later incarnation
		// (nothing of the series in memory).
		b = NewShardBars(s, 0)
		c := bars[7]
		c.High += 100
		c.TradeCount++
		c.Close = c.High
		if err := b.Put([]messages.Kline{c}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteDirty(ctx); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(bars)
		want[7] = c
		got, err := NewShardBars(s, 0).Klines("ETHUSDT", iv, 0, 1<<62, 0, nil)
		if err != nil || !sameBars(got, want) {
			t.Fatalf("after correction: %v, %v", opens(got), err)
		}
		if g, _ := NewShardBars(s, 0).Klines("ETHUSDT", iv, c.OpenTime, c.OpenTime, 0, nil); len(g) != 1 || g[0] != c {
			t.Fatalf("corrected bar: %+v", g)
		}
	})
}

func TestShardBarsStoreRejectInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		open := mkBar("A", messages.Interval1m, 0)
		open.Closed = false
		unaligned := mkBar("A", messages.Interval1m, 60_001)
		b := NewShardBars(s, 0)
		for name, k := range map[string]messages.Kline{
			"open bar":     open,
			"no symbol":    mkBar("", messages.Interval1m, 0),
			"bad interval": mkBar("A", 0, 0),
			"long symbol":  mkBar("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", messages.Interval1m, 0),
			"unaligned":    unaligned,
			"negative":     mkBar("A", messages.Interval1m, -60_000),
			"traded run":   func() messages.Kline { k := mkBar("A", messages.Interval1m, 0); k.Repeat = 3; return k }(),
		} {
			good := mkBar("GOOD", messages.Interval1m, 0)
			if err := b.Put([]messages.Kline{good, k}); err == nil {
				t.Errorf("%s accepted", name)
			}
		}
		if n, err := b.WriteDirty(context.Background()); n != 0 || err != nil {
			t.Fatalf("a refused Put left something to write: %d, %v", n, err)
		}
		if syms, _ := s.Symbols(); len(syms) != 0 {
			t.Fatalf("a rejected call wrote something: %v", syms)
		}
		if _, err := b.Klines("A", 99, 0, 1, 0, nil); err == nil {
			t.Error("Klines with an invalid interval succeeded")
		}
	})
}

func TestShardBarsStoreCorruptChunk(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		m := messages.Interval1m
		first := m.Align(t0)
		var bars []messages.Kline
		for i := range int64(20) {
			bars = append(bars, mkBar("C", m, first+i*messages.Minute))
		}
		storeSealed(t, s, 128, bars...)
		c, ok, err := s.lastChunk("C", m)
		if err != nil || !ok || c.first == first {
			t.Fatalf("last chunk: %v %v (want one after the first)", ok, err)
		}
		key := appendChunkKey(nil, "C", m, c.first)
		v := rawGet(t, s, key)
		v[12] ^= 0xff
		rawPut(t, s, key, v)
		q := NewShardBars(s, 0)
		_, err = q.Klines("C", m, 0, 1<<62, 0, nil)
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Key != formatKey(key) {
			t.Fatalf("corrupt chunk: %v, want a *CorruptError naming %s", err, formatKey(key))
		}
		// The chunks before it still answer.
		if got, err := q.Klines("C", m, first, first+messages.Minute, 0, nil); err != nil || !sameBars(got, bars[:2]) {
			t.Fatalf("bars before the corrupt chunk: %v, %v", opens(got), err)
		}
		// So does a Put that must amend it: it fails, naming the key.
		if err := q.Put([]messages.Kline{mkBar("C", m, c.first)}); !errors.As(err, &ce) || ce.Key != formatKey(key) {
			t.Fatalf("amending a corrupt chunk: %v", err)
		}
	})
}

func TestShardBarsStoreReopen(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	s := openStore(t, cfg)
	var bars []messages.Kline
	for _, sym := range []string{"XRPUSDT", "ADAUSDT"} {
		for _, iv := range messages.DefaultIntervals() {
			open := iv.Align(1_700_000_000_000)
			for range 50 {
				bars = append(bars, mkBar(sym, iv, open))
				open = iv.Next(open)
			}
		}
	}
	storeBars(t, s, bars...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	b := NewShardBars(s, 0)
	for i, iv := range messages.DefaultIntervals() {
		got, err := b.Klines("ADAUSDT", iv, 0, 1<<62, 0, nil)
		want := bars[(len(messages.DefaultIntervals())+i)*50:][:50]
		if err != nil || !sameBars(got, want) {
			t.Fatalf("%s after reopen: %d bars, %v", iv, len(got), err)
		}
	}
	// The next bar of a series continues its stored head.
	next := mkBar("XRPUSDT", messages.Interval1m, bars[49].OpenTime+messages.Minute)
	if err := b.Put([]messages.Kline{next}); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Klines("XRPUSDT", messages.Interval1m, 0, 1<<62, 0, nil); len(got) != 51 || got[50] != next {
		t.Fatalf("after a put: %d bars", len(got))
	}
}
