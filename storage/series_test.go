package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/klinecast/klinecast/messages"
)

// tradedBar returns a closed bar with trades, its values derived from seed.
func tradedBar(sym string, iv messages.Interval, open int64, seed uint64) messages.Kline {
	p := messages.Decimal(1_000_000_000 + seed%997)
	k := messages.Kline{
		Symbol: sym, Interval: iv, OpenTime: open, CloseTime: iv.CloseTime(open),
		Open: p, High: p + messages.Decimal(seed%13), Low: p - messages.Decimal(seed%7), Close: p + messages.Decimal(seed%5),
		Volume:      messages.Decimal128{Lo: 100 + seed%1000},
		QuoteVolume: float64(seed) / 3, TradeCount: int64(1 + seed%4), FirstTradeID: int64(seed), LastTradeID: int64(seed + seed%4),
		Closed: true,
	}
	switch seed % 3 {
	case 0: // no taker buys
	case 1:
		k.TakerBuyVolume, k.TakerBuyQuoteVolume = k.Volume, k.QuoteVolume
	case 2:
		k.TakerBuyVolume, k.TakerBuyQuoteVolume = messages.Decimal128{Lo: 7}, 0.25
	}
	if seed%11 == 0 {
		k.Volume.Hi = seed // beyond 64 bits
	}
	return k
}

// oneTradeBar is a bar made by one trade: flat, quote volume = p·q.
func oneTradeBar(sym string, iv messages.Interval, open int64, price, qty messages.Decimal, id int64) messages.Kline {
	return messages.Kline{
		Symbol: sym, Interval: iv, OpenTime: open, CloseTime: iv.CloseTime(open),
		Open: price, High: price, Low: price, Close: price,
		Volume: messages.Decimal128{Lo: uint64(qty)}, QuoteVolume: messages.MulFloat(price, qty),
		TradeCount: 1, FirstTradeID: id, LastTradeID: id, Closed: true,
	}
}

func emptyRun(sym string, iv messages.Interval, open int64, price messages.Decimal, repeat int64) messages.Kline {
	return messages.Kline{
		Symbol: sym, Interval: iv, OpenTime: open, CloseTime: iv.CloseTime(open),
		Open: price, High: price, Low: price, Close: price,
		FirstTradeID: messages.NoTradeID, LastTradeID: messages.NoTradeID, Closed: true, Repeat: repeat,
	}
}

const t0 = int64(1_700_000_000_000) // aligned to the minute below

func TestChunkRoundTrip(t *testing.T) {
	m := messages.Interval1m
	base := m.Align(t0)
	at := func(i int64) int64 { return base + i*60_000 }
	month := messages.Interval1M.Align(t0)
	cases := []struct {
		name    string
		iv      messages.Interval
		entries []messages.Kline
		bars    int64
	}{
		{"one traded bar", m, []messages.Kline{tradedBar("A", m, at(0), 5)}, 1},
		{"one-trade bar (derived quote)", m, []messages.Kline{oneTradeBar("A", m, at(0), 123456789, 1000, 42)}, 1},
		{"bars then a run then a bar", m, []messages.Kline{
			tradedBar("A", m, at(0), 1), emptyRun("A", m, at(1), 1_000_000_005, 1000), tradedBar("A", m, at(1002), 2),
		}, 1003},
		{"a hole (skip)", m, []messages.Kline{tradedBar("A", m, at(0), 3), tradedBar("A", m, at(50), 4)}, 2},
		{"a run first", m, []messages.Kline{emptyRun("A", m, at(0), 0, 0), emptyRun("A", m, at(1), 7, 3)}, 5},
		{"calendar months", messages.Interval1M, []messages.Kline{
			tradedBar("A", messages.Interval1M, month, 9), emptyRun("A", messages.Interval1M, messages.Interval1M.Advance(month, 1), 1, 13),
			tradedBar("A", messages.Interval1M, messages.Interval1M.Advance(month, 20), 10),
		}, 16},
		{"extreme values", m, []messages.Kline{{
			Symbol: "A", Interval: m, OpenTime: at(0), CloseTime: m.CloseTime(at(0)),
			Open: math.MaxUint64, High: math.MaxUint64, Low: 0, Close: 1,
			Volume: messages.Decimal128{Hi: math.MaxUint64, Lo: math.MaxUint64}, QuoteVolume: math.Inf(1),
			TakerBuyVolume: messages.Decimal128{Hi: 1}, TakerBuyQuoteVolume: math.NaN(),
			TradeCount: math.MaxInt64, FirstTradeID: math.MinInt64, LastTradeID: math.MaxInt64, Closed: true,
		}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b chunkBuilder
			buildChunk(&b, tc.iv, tc.entries)
			if b.bars != tc.bars {
				t.Fatalf("bars = %d, want %d", b.bars, tc.bars)
			}
			key := appendChunkKey(nil, "A", tc.iv, tc.entries[0].OpenTime)
			got, err := decodeChunk(key, "A", tc.iv, tc.entries[0].OpenTime, b.appendPayload(nil), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := messages.ExpandRuns(nil, tc.entries...)
			gotBars := messages.ExpandRuns(nil, got...)
			if !sameBars(gotBars, want) {
				t.Fatalf("round trip:\n got %v\nwant %v", gotBars, want)
			}
			if last := want[len(want)-1].OpenTime; b.last != last {
				t.Fatalf("last = %d, want %d", b.last, last)
			}
		})
	}
}

// sameBars compares bars field by field, floats by their bits (NaN too).
func sameBars(a, b []messages.Kline) bool {
	return slices.EqualFunc(a, b, func(x, y messages.Kline) bool {
		if math.Float64bits(x.QuoteVolume) != math.Float64bits(y.QuoteVolume) ||
			math.Float64bits(x.TakerBuyQuoteVolume) != math.Float64bits(y.TakerBuyQuoteVolume) {
			return false
		}
		x.QuoteVolume, y.QuoteVolume, x.TakerBuyQuoteVolume, y.TakerBuyQuoteVolume = 0, 0, 0, 0
		return x == y
	})
}

func TestChunkRunExtendsInPlace(t *testing.T) {
	m := messages.Interval1m
	base := m.Align(t0)
	var b chunkBuilder
	b.reset(m)
	b.add(ptr(tradedBar("A", m, base, 1)))
	for i := int64(1); i <= 100; i++ {
		b.add(ptr(emptyRun("A", m, base+i*60_000, 7, 0)))
	}
	if b.entries != 2 || b.bars != 101 {
		t.Fatalf("entries %d bars %d, want 2 and 101: a run of empty bars at one price is one entry", b.entries, b.bars)
	}
	if b.size() > 30 {
		t.Fatalf("size %d: a run should cost a few bytes", b.size())
	}
}

func ptr[T any](v T) *T { return &v }

func TestChunkDecodeRejectsCorruption(t *testing.T) {
	m := messages.Interval1m
	base := m.Align(t0)
	var b chunkBuilder
	buildChunk(&b, m, []messages.Kline{tradedBar("A", m, base, 1), emptyRun("A", m, base+60_000, 9, 5), tradedBar("A", m, base+7*60_000, 2)})
	good := b.appendPayload(nil)
	key := appendChunkKey(nil, "A", m, base)
	for _, tc := range []struct {
		name string
		p    []byte
	}{
		{"empty", nil},
		{"version", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-3]},
		{"trailing byte", append(slices.Clone(good), 0)},
		{"bars off by one", func() []byte { p := slices.Clone(good); p[1]++; return p }()},
		{"unknown entry kind", func() []byte {
			_, off, _ := parseChunkHeader(good)
			p := slices.Clone(good)
			p[off] |= 3
			return p
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeChunk(key, "A", m, base, tc.p, nil)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *CorruptError", err)
			}
			if !strings.Contains(ce.Key, "chunk/A/1m") {
				t.Fatalf("error %q does not name the chunk key", err)
			}
		})
	}
}

// FuzzChunkDecode: any payload decodes to an error or to entries that
// re-encode to a valid chunk; never a panic.
func FuzzChunkDecode(f *testing.F) {
	m := messages.Interval1m
	base := m.Align(t0)
	var b chunkBuilder
	buildChunk(&b, m, []messages.Kline{tradedBar("A", m, base, 1), emptyRun("A", m, base+60_000, 9, 5), tradedBar("A", m, base+7*60_000, 2),
		oneTradeBar("A", m, base+9*60_000, 5, 6, 7), tradedBar("A", m, base+100*60_000, 33)})
	f.Add(b.appendPayload(nil), uint8(m))
	buildChunk(&b, messages.Interval1M, []messages.Kline{tradedBar("A", messages.Interval1M, messages.Interval1M.Align(t0), 4)})
	f.Add(b.appendPayload(nil), uint8(messages.Interval1M))
	f.Add([]byte{1, 1, 1, 0, 1, 0, 0}, uint8(m))
	f.Fuzz(func(t *testing.T, p []byte, ivb uint8) {
		iv := messages.Interval(ivb%uint8(messages.Interval1M)) + 1
		first := iv.Align(t0)
		key := appendChunkKey(nil, "A", iv, first)
		entries, err := decodeChunk(key, "A", iv, first, p, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		prev := int64(math.MinInt64)
		for _, e := range entries {
			if e.OpenTime <= prev || e.Repeat > 0 && !e.ValidRun() {
				t.Fatalf("decoded entries out of order or an invalid run: %+v", e)
			}
			prev = e.LastOpenTime()
		}
	})
}

type seriesKey struct {
	symbol string
	iv     messages.Interval
}

// barModel is the reference: every bar of every series, by open time.
type barModel map[seriesKey]map[int64]messages.Kline

func (m barModel) put(ks ...messages.Kline) {
	for _, k := range messages.ExpandRuns(nil, ks...) {
		key := seriesKey{k.Symbol, k.Interval}
		if m[key] == nil {
			m[key] = map[int64]messages.Kline{}
		}
		m[key][k.OpenTime] = k
	}
}

func (m barModel) query(sym string, iv messages.Interval, start, end int64, limit int) []messages.Kline {
	var out []messages.Kline
	for t, k := range m[seriesKey{sym, iv}] {
		if t >= start && t <= end {
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OpenTime < out[j].OpenTime })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// TestShardBarsMatchModel: random streams of bars, runs, corrections,
// holes, writes and restarts (with the puts since the last write replayed,
// as the WAL does) give exactly the model's bars for every range query.
func TestShardBarsMatchModel(t *testing.T) {
	for _, mode := range []string{"durable-memory-backend", "memory-only", "memory-only-retention"} {
		t.Run(mode, func(t *testing.T) {
			rapid.Check(t, func(rt *rapid.T) { checkShardBarsModel(t, rt, mode) })
		})
	}
}

func checkShardBarsModel(t *testing.T, rt *rapid.T, mode string) {
	var store *Store
	retention := 0
	switch mode {
	case "durable-memory-backend":
		var err error
		store, err = Open(context.Background(), Config{InMemory: true, GCInterval: -1})
		if err != nil {
			rt.Fatal(err)
		}
		defer store.Close()
	case "memory-only-retention":
		retention = rapid.IntRange(1, 40).Draw(rt, "retention")
	}
	newBars := func() *ShardBars {
		b := NewShardBars(store, retention)
		b.sealBytes = rapid.IntRange(8, 200).Draw(rt, "sealBytes")
		return b
	}
	bars := newBars()
	model := barModel{}
	var unwritten []messages.Kline // puts since the last WriteDirty
	syms := []string{"AAA", "BB"}
	ivs := []messages.Interval{messages.Interval1m, messages.Interval1h, messages.Interval1M}
	last := map[seriesKey]int64{}
	steps := rapid.IntRange(1, 120).Draw(rt, "steps")
	for i := range steps {
		sym := rapid.SampledFrom(syms).Draw(rt, "sym")
		iv := rapid.SampledFrom(ivs).Draw(rt, "iv")
		key := seriesKey{sym, iv}
		next := iv.Align(t0)
		if l, ok := last[key]; ok {
			next = iv.Next(l)
		}
		switch op := rapid.IntRange(0, 9).Draw(rt, "op"); {
		case op <= 3: // the next bar, maybe after a hole
			open := iv.Advance(next, int64(rapid.IntRange(0, 2).Draw(rt, "hole")*rapid.IntRange(0, 1).Draw(rt, "holeOn")))
			k := tradedBar(sym, iv, open, uint64(rapid.IntRange(0, 1<<20).Draw(rt, "seed")))
			put(rt, bars, model, &unwritten, k)
			last[key] = open
		case op <= 5: // a run after the last bar
			n := int64(rapid.IntRange(0, 300).Draw(rt, "run"))
			k := emptyRun(sym, iv, next, messages.Decimal(rapid.IntRange(0, 3).Draw(rt, "price")), n)
			put(rt, bars, model, &unwritten, k)
			last[key] = k.LastOpenTime()
		case op == 6: // a correction of an earlier bar (inside a run or not)
			l, ok := last[key]
			if !ok {
				continue
			}
			back := int64(rapid.IntRange(0, 400).Draw(rt, "back"))
			open := max(iv.Advance(l, -back), iv.Align(t0))
			var k messages.Kline
			if rapid.Bool().Draw(rt, "correctionIsRun") {
				k = emptyRun(sym, iv, open, messages.Decimal(rapid.IntRange(0, 3).Draw(rt, "cprice")), int64(rapid.IntRange(0, 20).Draw(rt, "crun")))
				if k.LastOpenTime() > l {
					last[key] = k.LastOpenTime()
				}
			} else {
				k = tradedBar(sym, iv, open, uint64(i)*7919)
			}
			put(rt, bars, model, &unwritten, k)
		case op == 7: // a snapshot: store what is dirty
			if _, err := bars.WriteDirty(context.Background()); err != nil {
				rt.Fatal(err)
			}
			unwritten = unwritten[:0]
		case op == 8 && store != nil: // a crash: heads are lost, the WAL replays
			bars = newBars()
			replay := slices.Clone(unwritten)
			unwritten = unwritten[:0]
			for _, k := range replay {
				put(rt, bars, model, &unwritten, k)
			}
		default: // a query
			checkQuery(rt, bars, model, sym, iv, retention)
		}
	}
	for _, sym := range syms {
		for _, iv := range ivs {
			checkQuery(rt, bars, model, sym, iv, retention)
		}
	}
}

func put(rt *rapid.T, b *ShardBars, m barModel, unwritten *[]messages.Kline, k messages.Kline) {
	if err := b.Put([]messages.Kline{k}); err != nil {
		rt.Fatalf("Put %+v: %v", k, err)
	}
	m.put(k)
	*unwritten = append(*unwritten, k)
}

func checkQuery(rt *rapid.T, b *ShardBars, m barModel, sym string, iv messages.Interval, retention int) {
	start := iv.Align(t0) + int64(rapid.IntRange(-5, 500).Draw(rt, "qstart"))*iv.Fixed()/2
	if iv.Fixed() == 0 {
		start = iv.Advance(iv.Align(t0), int64(rapid.IntRange(-2, 300).Draw(rt, "qstartM")))
	}
	end := start + int64(rapid.IntRange(0, 1<<30).Draw(rt, "qlen"))
	if rapid.Bool().Draw(rt, "qall") {
		start, end = 0, math.MaxInt64
	}
	limit := rapid.SampledFrom([]int{0, 1, 7, 1000}).Draw(rt, "limit")
	got, err := b.Klines(sym, iv, start, end, limit, nil)
	if err != nil {
		rt.Fatalf("Klines: %v", err)
	}
	want := m.query(sym, iv, start, end, limit)
	if retention > 0 {
		// A memory-only node keeps at least the last retention bars of a
		// series; whatever it answers is the model's.
		series := m.query(sym, iv, 0, math.MaxInt64, 0)
		kept := series[max(0, len(series)-retention):]
		gotAll, _ := b.Klines(sym, iv, start, end, 0, nil)
		byOpen := map[int64]messages.Kline{}
		for _, k := range gotAll {
			byOpen[k.OpenTime] = k
		}
		for _, k := range kept {
			if k.OpenTime < start || k.OpenTime > end {
				continue
			}
			if g, ok := byOpen[k.OpenTime]; !ok || !sameBars([]messages.Kline{g}, []messages.Kline{k}) {
				rt.Fatalf("%s %s [%d,%d]: retained bar %d lost or wrong", sym, iv, start, end, k.OpenTime)
			}
		}
		for _, g := range gotAll {
			w, ok := m[seriesKey{sym, iv}][g.OpenTime]
			if !ok || !sameBars([]messages.Kline{g}, []messages.Kline{w}) {
				rt.Fatalf("%s %s: bar %d differs from the model", sym, iv, g.OpenTime)
			}
		}
		return
	}
	if !sameBars(got, want) {
		for i := range min(len(got), len(want)) {
			if !sameBars(got[i:i+1], want[i:i+1]) {
				rt.Logf("first difference at %d:\n got %+v\nwant %+v", i, got[i], want[i])
				break
			}
		}
		rt.Fatalf("%s %s [%d,%d] limit %d:\n got %d bars %v\nwant %d bars %v", sym, iv, start, end, limit, len(got), opensOf(got), len(want), opensOf(want))
	}
}

func opensOf(ks []messages.Kline) string {
	if len(ks) > 12 {
		return fmt.Sprint(opensOf(ks[:6]), " ... ", opensOf(ks[len(ks)-6:]))
	}
	out := make([]int64, len(ks))
	for i := range ks {
		out[i] = ks[i].OpenTime
	}
	return fmt.Sprint(out)
}

// TestShardBarsOpenBar: PutDelta records each series' open bar; a closed
// bar at or after it clears it (the bar closed, or the symbol was
// removed), and the next Delta's open bar replaces it.
func TestShardBarsOpenBar(t *testing.T) {
	m := messages.Interval1m
	base := m.Align(t0)
	open := func(at int64) messages.Kline {
		k := tradedBar("A", m, at, 3)
		k.Closed = false
		return k
	}
	b := NewShardBars(nil, 0)
	if _, ok := b.OpenBar("A", m); ok {
		t.Fatal("an open bar before any PutDelta")
	}
	if err := b.PutDelta(nil, []messages.Kline{open(base)}); err != nil {
		t.Fatal(err)
	}
	if k, ok := b.OpenBar("A", m); !ok || k.OpenTime != base {
		t.Fatalf("open bar %+v, %v", k, ok)
	}
	// The bar closes and the next one opens, in one Delta.
	if err := b.PutDelta([]messages.Kline{tradedBar("A", m, base, 3)}, []messages.Kline{open(base + messages.Minute)}); err != nil {
		t.Fatal(err)
	}
	if k, ok := b.OpenBar("A", m); !ok || k.OpenTime != base+messages.Minute {
		t.Fatalf("after the roll: open bar %+v, %v", k, ok)
	}
	// Removed: its open bar comes as a closed one, and no open bar follows.
	if err := b.PutDelta([]messages.Kline{tradedBar("A", m, base+messages.Minute, 4)}, nil); err != nil {
		t.Fatal(err)
	}
	if k, ok := b.OpenBar("A", m); ok {
		t.Fatalf("after the symbol's last bar closed: open bar %+v", k)
	}
	if err := b.PutDelta(nil, []messages.Kline{tradedBar("A", m, base, 3)}); err == nil {
		t.Fatal("a closed bar accepted as an open one")
	}
}
