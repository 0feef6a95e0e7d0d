package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/klinecast/klinecast/messages"
)

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

func TestKlinesRangeScans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		m := messages.Minute
		var bars []messages.Kline
		for i := int64(-3); i < 10; i++ { // negative open times sort first (sign flip)
			bars = append(bars, mkBar("BTCUSDT", messages.Interval1m, i*m))
		}
		// Neighbours that must never leak into BTCUSDT/1m scans: another
		// interval, a symbol that is a prefix of it, one it is a prefix of.
		bars = append(bars,
			mkBar("BTCUSDT", messages.Interval5m, 0),
			mkBar("BTC", messages.Interval1m, 0),
			mkBar("BTCUSDTX", messages.Interval1m, m),
		)
		if err := s.PutKlines(ctx, bars); err != nil {
			t.Fatal(err)
		}
		all, err := s.Klines("BTCUSDT", messages.Interval1m, -1<<62, 1<<62, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 13 || all[0].OpenTime != -3*m || all[12].OpenTime != 9*m {
			t.Fatalf("full scan: %v", opens(all))
		}
		if all[5] != bars[5] {
			t.Fatalf("round trip: got %+v, want %+v", all[5], bars[5])
		}
		cases := []struct {
			start, end int64
			limit      int
			want       []int64
		}{
			{2 * m, 5 * m, 0, []int64{2 * m, 3 * m, 4 * m, 5 * m}}, // inclusive both ends
			{2*m + 1, 5*m - 1, 0, []int64{3 * m, 4 * m}},
			{2 * m, 100 * m, 3, []int64{2 * m, 3 * m, 4 * m}}, // limit
			{-2 * m, 0, 0, []int64{-2 * m, -m, 0}},
			{20 * m, 30 * m, 0, []int64{}},
			{5 * m, 2 * m, 0, []int64{}}, // empty range
		}
		for _, c := range cases {
			got, err := s.Klines("BTCUSDT", messages.Interval1m, c.start, c.end, c.limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(opens(got)) != fmt.Sprint(c.want) {
				t.Errorf("Klines(%d, %d, %d) = %v, want %v", c.start, c.end, c.limit, opens(got), c.want)
			}
		}
		last, err := s.LastKlines("BTCUSDT", messages.Interval1m, 5*m, 3, nil)
		if err != nil || fmt.Sprint(opens(last)) != fmt.Sprint([]int64{3 * m, 4 * m, 5 * m}) {
			t.Fatalf("LastKlines(5m, 3) = %v, %v", opens(last), err)
		}
		last, _ = s.LastKlines("BTCUSDT", messages.Interval1m, 1<<62, 2, nil)
		if fmt.Sprint(opens(last)) != fmt.Sprint([]int64{8 * m, 9 * m}) {
			t.Fatalf("LastKlines(max, 2) = %v", opens(last))
		}
		// dst is appended to, and its spare capacity reused.
		dst := make([]messages.Kline, 1, 8)
		dst[0].Symbol = "KEEP"
		dst, _ = s.Klines("BTCUSDT", messages.Interval1m, 0, 1<<62, 2, dst)
		if len(dst) != 3 || dst[0].Symbol != "KEEP" || dst[1].OpenTime != 0 {
			t.Fatalf("append to dst: %v", opens(dst))
		}
		syms, err := s.Symbols()
		if err != nil || fmt.Sprint(syms) != "[BTC BTCUSDT BTCUSDTX]" {
			t.Fatalf("Symbols() = %v, %v", syms, err)
		}
	})
}

func TestKlinesOverwriteIsCorrection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		b := mkBar("ETHUSDT", messages.Interval1h, 7*messages.Hour)
		if err := s.PutKlines(ctx, []messages.Kline{b}); err != nil {
			t.Fatal(err)
		}
		b.High += 100
		b.TradeCount++
		b.Close = b.High
		if err := s.PutKlines(ctx, []messages.Kline{b}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Klines("ETHUSDT", messages.Interval1h, 0, 1<<62, 0, nil)
		if err != nil || len(got) != 1 || got[0] != b {
			t.Fatalf("after correction: %+v, %v", got, err)
		}
	})
}

func TestKlinesRejectInvalid(t *testing.T) {
	s := openStore(t, testConfig(t, inMemory, ""))
	ctx := context.Background()
	open := mkBar("A", messages.Interval1m, 0)
	open.Closed = false
	for name, k := range map[string]messages.Kline{
		"open bar":     open,
		"no symbol":    mkBar("", messages.Interval1m, 0),
		"bad interval": mkBar("A", 0, 0),
		"long symbol":  mkBar("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", messages.Interval1m, 0),
	} {
		good := mkBar("GOOD", messages.Interval1m, 0)
		if err := s.PutKlines(ctx, []messages.Kline{good, k}); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if syms, _ := s.Symbols(); len(syms) != 0 {
		t.Fatalf("a rejected call wrote something: %v", syms)
	}
	if _, err := s.Klines("A", 99, 0, 1, 0, nil); err == nil {
		t.Error("Klines with an invalid interval succeeded")
	}
}

func TestKlinesCorruptValue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		if err := s.PutKlines(ctx, []messages.Kline{mkBar("C", messages.Interval1m, 0), mkBar("C", messages.Interval1m, messages.Minute)}); err != nil {
			t.Fatal(err)
		}
		key := appendKlineKey(nil, "C", messages.Interval1m, messages.Minute)
		v := rawGet(t, s, key)
		v[12] ^= 0xff
		rawPut(t, s, key, v)
		got, err := s.Klines("C", messages.Interval1m, 0, 1<<62, 0, nil)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Key != formatKey(key) || len(got) != 1 {
			t.Fatalf("corrupt bar: %d bars, %v", len(got), err)
		}
	})
}

func TestKlinesReopen(t *testing.T) {
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
	if err := s.PutKlines(context.Background(), bars); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	for _, iv := range messages.DefaultIntervals() {
		got, err := s.Klines("ADAUSDT", iv, 0, 1<<62, 0, nil)
		if err != nil || len(got) != 50 || !slices.IsSortedFunc(got, func(a, b messages.Kline) int { return int(a.OpenTime - b.OpenTime) }) {
			t.Fatalf("%s after reopen: %d bars, %v", iv, len(got), err)
		}
	}
}
