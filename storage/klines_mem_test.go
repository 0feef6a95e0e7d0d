package storage

import (
	"fmt"
	"github.com/klinecast/klinecast/internal/testkit"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/klinecast/klinecast/messages"
)

// testBar is a closed 1m-style bar of sym opening at t; v tells versions
// (corrections) of the same bar apart.
func testBar(sym string, iv messages.Interval, t int64, v int64) messages.Kline {
	return messages.Kline{Symbol: sym, Interval: iv, OpenTime: t, CloseTime: t + 59_999, TradeCount: v, Closed: true}
}

func openTimes(ks []messages.Kline) []int64 {
	ts := make([]int64, len(ks))
	for i, k := range ks {
		ts[i] = k.OpenTime
	}
	return ts
}

func TestMemKlineStoreTable(t *testing.T) {
	const m1, m5 = messages.Interval1m, messages.Interval5m
	// seq returns bars of "A" 1m opening at ts (version 1).
	seq := func(ts ...int64) []messages.Kline {
		ks := make([]messages.Kline, len(ts))
		for i, ts := range ts {
			ks[i] = testBar("A", m1, ts, 1)
		}
		return ks
	}
	upTo := func(n int) []int64 { // 0, 1, ..., n-1
		ts := make([]int64, n)
		for i := range ts {
			ts[i] = int64(i)
		}
		return ts
	}
	type query struct {
		sym        string
		iv         messages.Interval
		start, end int64
		limit      int
	}
	all := query{"A", m1, -1 << 62, 1 << 62, 0}
	tests := []struct {
		name string
		puts [][]messages.Kline
		q    query
		want []int64 // open times
		ver  map[int64]int64
	}{
		{name: "empty", q: all, want: []int64{}},
		{name: "append", puts: [][]messages.Kline{seq(1, 2, 3), seq(4), seq(5, 6)}, q: all, want: []int64{1, 2, 3, 4, 5, 6}},
		{name: "append across blocks", puts: [][]messages.Kline{seq(upTo(300)...)}, q: all, want: upTo(300)},
		{
			name: "correction replaces",
			puts: [][]messages.Kline{seq(1, 2, 3), {testBar("A", m1, 2, 7)}, {testBar("A", m1, 3, 8)}, {testBar("A", m1, 1, 9)}},
			q:    all, want: []int64{1, 2, 3}, ver: map[int64]int64{1: 9, 2: 7, 3: 8},
		},
		{
			name: "correction in an old block",
			puts: [][]messages.Kline{seq(upTo(200)...), {testBar("A", m1, 5, 2), testBar("A", m1, 150, 3), testBar("A", m1, 127, 4)}},
			q:    all, want: upTo(200), ver: map[int64]int64{5: 2, 150: 3, 127: 4, 0: 1, 199: 1},
		},
		{name: "insert in the middle", puts: [][]messages.Kline{seq(10, 20, 30), seq(15), seq(5), seq(25)}, q: all, want: []int64{5, 10, 15, 20, 25, 30}},
		{
			name: "insert at the front of a long series",
			puts: [][]messages.Kline{seq(slices.Collect(func(yield func(int64) bool) {
				for i := int64(1); i <= 200; i++ {
					yield(2 * i)
				}
			})...), seq(1, 3, 399, 129)},
			q:    query{"A", m1, 0, 10, 0},
			want: []int64{1, 2, 3, 4, 6, 8, 10},
		},
		{name: "one batch out of order", puts: [][]messages.Kline{seq(3, 1, 2, 2, 0)}, q: all, want: []int64{0, 1, 2, 3}},
		{name: "range inclusive", puts: [][]messages.Kline{seq(upTo(100)...)}, q: query{"A", m1, 10, 20, 0}, want: upTo(21)[10:]},
		{name: "range between bars", puts: [][]messages.Kline{seq(10, 20, 30, 40)}, q: query{"A", m1, 11, 39, 0}, want: []int64{20, 30}},
		{name: "range before all", puts: [][]messages.Kline{seq(10, 20)}, q: query{"A", m1, 0, 9, 0}, want: []int64{}},
		{name: "range after all", puts: [][]messages.Kline{seq(10, 20)}, q: query{"A", m1, 21, 100, 0}, want: []int64{}},
		{name: "range empty start>end", puts: [][]messages.Kline{seq(10, 20)}, q: query{"A", m1, 20, 10, 0}, want: []int64{}},
		{name: "limit", puts: [][]messages.Kline{seq(upTo(100)...)}, q: query{"A", m1, 10, 1000, 5}, want: []int64{10, 11, 12, 13, 14}},
		{name: "limit across blocks", puts: [][]messages.Kline{seq(upTo(300)...)}, q: query{"A", m1, 2, 1000, 150}, want: upTo(152)[2:]},
		{name: "limit larger than range", puts: [][]messages.Kline{seq(upTo(10)...)}, q: query{"A", m1, 8, 1000, 5}, want: []int64{8, 9}},
		{name: "limit exactly a block boundary", puts: [][]messages.Kline{seq(upTo(100)...)}, q: query{"A", m1, 0, 1000, 63}, want: upTo(63)},
		{
			name: "series apart by interval and symbol",
			puts: [][]messages.Kline{{testBar("A", m1, 1, 1), testBar("A", m5, 2, 1), testBar("A", m1, 3, 1), testBar("B", m1, 4, 1)}},
			q:    all, want: []int64{1, 3},
		},
		{name: "unknown series", puts: [][]messages.Kline{seq(1)}, q: query{"B", m1, 0, 10, 0}, want: []int64{}},
		{name: "unknown interval", puts: [][]messages.Kline{seq(1)}, q: query{"A", m5, 0, 10, 0}, want: []int64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := NewMemKlines()
			for _, p := range tc.puts {
				if err := s.PutKlines(p); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Klines(tc.q.sym, tc.q.iv, tc.q.start, tc.q.end, tc.q.limit, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ts := openTimes(got); !slices.Equal(ts, tc.want) {
				t.Fatalf("open times %v, want %v", ts, tc.want)
			}
			for _, k := range got {
				if k.Symbol != tc.q.sym || k.Interval != tc.q.iv {
					t.Fatalf("bar of %s %s in %s %s", k.Symbol, k.Interval, tc.q.sym, tc.q.iv)
				}
				if v, ok := tc.ver[k.OpenTime]; ok && k.TradeCount != v {
					t.Errorf("bar %d: version %d, want %d", k.OpenTime, k.TradeCount, v)
				}
			}
		})
	}
}

// TestMemKlineStoreAppendsToDst checks that Klines appends to dst and
// that limit counts the bars it appends, not what dst held already (as
// the KlineStore contract and storage.Store do).
func TestMemKlineStoreAppendsToDst(t *testing.T) {
	s := NewMemKlines()
	for i := range int64(10) {
		s.PutKlines([]messages.Kline{testBar("A", messages.Interval1m, i, 1)})
	}
	dst := []messages.Kline{testBar("Z", messages.Interval1h, 99, 1)}
	got, _ := s.Klines("A", messages.Interval1m, 3, 100, 4, dst)
	if ts := openTimes(got); !slices.Equal(ts, []int64{99, 3, 4, 5, 6}) {
		t.Fatalf("open times %v, want [99 3 4 5 6]", ts)
	}
}

// klineModel is the reference: each series a sorted slice, rebuilt by
// brute force.
type klineModel map[seriesKey][]messages.Kline

func (m klineModel) put(ks []messages.Kline) {
	for _, k := range ks {
		key := seriesKey{k.Symbol, k.Interval}
		bars := m[key]
		i := slices.IndexFunc(bars, func(b messages.Kline) bool { return b.OpenTime >= k.OpenTime })
		switch {
		case i < 0:
			bars = append(bars, k)
		case bars[i].OpenTime == k.OpenTime:
			bars[i] = k
		default:
			bars = slices.Insert(bars, i, k)
		}
		m[key] = bars
	}
}

func (m klineModel) klines(sym string, iv messages.Interval, start, end int64, limit int) []messages.Kline {
	var out []messages.Kline
	for _, b := range m[seriesKey{sym, iv}] {
		if b.OpenTime >= start && b.OpenTime <= end && (limit <= 0 || len(out) < limit) {
			out = append(out, b)
		}
	}
	return out
}

func TestMemKlineStoreModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := NewMemKlines()
		m := klineModel{}
		syms := []string{"A", "B", "C"}
		ivs := []messages.Interval{messages.Interval1m, messages.Interval1h}
		// Per series, the next open time of an append; most puts append,
		// some correct or insert before it.
		next := map[seriesKey]int64{}
		version := int64(0)
		genBar := func(t *rapid.T, sym string) messages.Kline {
			iv := rapid.SampledFrom(ivs).Draw(t, "iv")
			key := seriesKey{sym, iv}
			version++
			var ot int64
			switch kind := rapid.IntRange(0, 9).Draw(t, "kind"); {
			case kind < 6 || next[key] == 0: // the next bar, maybe after a gap
				ot = next[key] + 2*rapid.Int64Range(0, 3).Draw(t, "gap")
				next[key] = ot + 2
			case kind < 8: // a correction of an earlier bar (or a miss: an insert)
				ot = rapid.Int64Range(0, next[key]/2-1).Draw(t, "old") * 2
			default: // an insert between bars (odd open times are never appended)
				ot = rapid.Int64Range(0, next[key]/2).Draw(t, "between")*2 - 1
			}
			return testBar(sym, iv, ot, version)
		}
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				// A Delta: runs of one symbol.
				var ks []messages.Kline
				for range rapid.IntRange(1, 3).Draw(t, "runs") {
					sym := rapid.SampledFrom(syms).Draw(t, "sym")
					if rapid.Bool().Draw(t, "copy") {
						// Another string with the same bytes: the store
						// finds series by string identity first.
						sym = strings.Clone(sym)
					}
					for range rapid.IntRange(1, 40).Draw(t, "bars") {
						ks = append(ks, genBar(t, sym))
					}
				}
				if err := s.PutKlines(ks); err != nil {
					t.Fatal(err)
				}
				m.put(ks)
			},
			"query": func(t *rapid.T) {
				sym := rapid.SampledFrom(syms).Draw(t, "sym")
				iv := rapid.SampledFrom(ivs).Draw(t, "iv")
				hi := next[seriesKey{sym, iv}] + 4
				start := rapid.Int64Range(-3, hi).Draw(t, "start")
				end := rapid.Int64Range(start-2, hi).Draw(t, "end")
				limit := rapid.IntRange(-1, 70).Draw(t, "limit")
				got, err := s.Klines(sym, iv, start, end, limit, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := m.klines(sym, iv, start, end, limit)
				if !slices.Equal(got, want) {
					t.Fatalf("Klines(%s, %s, %d, %d, %d):\n got %v\nwant %v", sym, iv, start, end, limit, openTimes(got), openTimes(want))
				}
			},
			"": func(t *rapid.T) { // every series in full
				for key, want := range m {
					got, _ := s.Klines(key.symbol, key.iv, -1<<62, 1<<62, 0, nil)
					if !slices.Equal(got, want) {
						t.Fatalf("%s %s:\n got %v\nwant %v", key.symbol, key.iv, openTimes(got), openTimes(want))
					}
				}
			},
		})
	})
}

// TestMemKlineStoreAllocs: putting the next closed bar of an existing
// series allocates only when its partition needs a new slab (about one
// malloc per 4096 bars), while the series grows as in the steady state.
func TestMemKlineStoreAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("allocation counts differ under -cover")
	}
	s := NewMemKlines()
	const nsym = 1000
	bars := make([]messages.Kline, nsym)
	for i := range bars {
		bars[i] = testBar("SYM"+strconv.Itoa(i), messages.Interval1m, 0, 1)
	}
	rounds := func(n int) func() {
		return func() {
			for range n {
				for i := range bars {
					s.PutKlines(bars[i : i+1])
					bars[i].OpenTime += 60_000
				}
			}
		}
	}
	rounds(1)() // warm-up: every series exists, with one bar
	// Growing series: bars 2 to 200 of each (every block size).
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rounds(199)()
	runtime.ReadMemStats(&m1)
	grow := float64(m1.Mallocs-m0.Mallocs) / (199 * nsym)
	// The steady state: Allocs calls f once more to warm up, so this is
	// bars 301 to 400.
	steady := float64(testkit.Allocs(rounds(100), 1)) / (100 * nsym)
	t.Logf("allocations per bar: %.5f growing, %.5f steady", grow, steady)
	if grow >= 0.01 || steady >= 0.01 {
		t.Fatalf("allocations per bar put: %.5f growing, %.5f steady, want < 0.01", grow, steady)
	}
	// A correction and a query allocate nothing.
	correction := []messages.Kline{testBar("SYM3", messages.Interval1m, 60_000*50, 2)}
	testkit.RequireNoAllocs(t, "correction", 100, func() { s.PutKlines(correction) })
	dst := make([]messages.Kline, 0, 1000)
	testkit.RequireNoAllocs(t, "query", 100, func() {
		dst, _ = s.Klines("SYM5", messages.Interval1m, 60_000*100, 60_000*1000, 500, dst[:0])
	})
	if len(dst) != 300 {
		t.Errorf("query: %d bars, want 300", len(dst))
	}
}

// TestMemKlineStoreConcurrent: puts and queries of one partition from
// several goroutines (for -race).
func TestMemKlineStoreConcurrent(t *testing.T) {
	s := NewMemKlines()
	var wg sync.WaitGroup
	for g := range 4 {
		sym := fmt.Sprint("S", g)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range int64(2000) {
				s.PutKlines([]messages.Kline{testBar(sym, messages.Interval1m, i, 1)})
			}
		}()
		go func() {
			defer wg.Done()
			for range 500 {
				ks, _ := s.Klines(sym, messages.Interval1m, 0, 1<<62, 100, nil)
				for i := 1; i < len(ks); i++ {
					if ks[i].OpenTime <= ks[i-1].OpenTime {
						panic("not ascending")
					}
				}
			}
		}()
	}
	wg.Wait()
	for g := range 4 {
		if ks, _ := s.Klines(fmt.Sprint("S", g), messages.Interval1m, 0, 1<<62, 0, nil); len(ks) != 2000 {
			t.Fatalf("S%d: %d bars, want 2000", g, len(ks))
		}
	}
}

// BenchmarkMemKlineStorePut measures storing closed bars:
//   - next: the next bar of each of 1000 long-lived series, one per call
//     (the steady state);
//   - fresh: a new store filled with an hour of 1000 symbols' 1m, 5m, 15m
//     and 1h bars in Delta-like runs (77,000 bars), the shape of the
//     pipeline benchmark's closed bars.
//
// allocs/bar is exact (runtime.MemStats), where allocs/op rounds down.
func BenchmarkMemKlineStorePut(b *testing.B) {
	const nsym = 1000
	syms := make([]string, nsym)
	for i := range syms {
		syms[i] = "SYM" + strconv.Itoa(i) + "USDT"
	}
	allocsPerBar := func(b *testing.B, bars int, run func()) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		b.ResetTimer()
		run()
		b.StopTimer()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(bars), "allocs/bar")
		b.ReportMetric(float64(bars)/b.Elapsed().Seconds(), "bars/s")
	}
	b.Run("next", func(b *testing.B) {
		s := NewMemKlines()
		bars := make([]messages.Kline, nsym)
		for i := range bars {
			bars[i] = testBar(syms[i], messages.Interval1m, 0, 1)
		}
		step := func(i int) {
			j := i % nsym
			s.PutKlines(bars[j : j+1])
			bars[j].OpenTime += 60_000
		}
		for i := range 128 * nsym { // past the growing blocks
			step(i)
		}
		b.ReportAllocs()
		allocsPerBar(b, b.N, func() {
			for i := range b.N {
				step(i)
			}
		})
	})
	b.Run("fresh", func(b *testing.B) {
		// Deltas of 50 symbols each: per symbol a run of its bars of
		// the minute (1m, and 5m/15m/1h when they close).
		var deltas [][]messages.Kline
		n := 0
		for minute := range int64(60) {
			for s0 := 0; s0 < nsym; s0 += 50 {
				var d []messages.Kline
				for _, sym := range syms[s0 : s0+50] {
					t := minute * 60_000
					d = append(d, testBar(sym, messages.Interval1m, t, 1))
					for _, p := range []struct {
						iv messages.Interval
						m  int64
					}{{messages.Interval5m, 5}, {messages.Interval15m, 15}, {messages.Interval1h, 60}} {
						if (minute+1)%p.m == 0 {
							d = append(d, testBar(sym, p.iv, (minute+1-p.m)*60_000, 1))
						}
					}
				}
				n += len(d)
				deltas = append(deltas, d)
			}
		}
		b.ReportAllocs()
		allocsPerBar(b, b.N*n, func() {
			for range b.N {
				s := NewMemKlines()
				for _, d := range deltas {
					s.PutKlines(d)
				}
			}
		})
	})
}

// TestStoredBarKeepsEveryField: a bar read back from the store equals the
// bar stored, field for field. Every field of Kline is set to a distinct
// non-zero value by reflection, so a field added to Kline but not to
// storedBar fails here.
func TestStoredBarKeepsEveryField(t *testing.T) {
	var k messages.Kline
	v := reflect.ValueOf(&k).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("SYM" + strconv.Itoa(i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Uint8, reflect.Uint64:
			f.SetUint(uint64(1 + i))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.Struct: // Decimal128
			for j := range f.NumField() {
				g := f.Field(j)
				if !g.CanSet() {
					t.Fatalf("Kline.%s.%s: unexported, cannot fill", v.Type().Field(i).Name, f.Type().Field(j).Name)
				}
				g.SetUint(uint64(100*i + j + 1))
			}
		default:
			t.Fatalf("Kline.%s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	stored := toStoredBar(&k)
	if got := stored.kline(k.Symbol, k.Interval); got != k {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, k)
	}
	s := NewMemKlines()
	if err := s.PutKlines([]messages.Kline{k}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Klines(k.Symbol, k.Interval, k.OpenTime, k.OpenTime, 0, nil)
	if err != nil || len(got) != 1 || got[0] != k {
		t.Fatalf("Klines = %+v, %v; want [%+v]", got, err, k)
	}
}
