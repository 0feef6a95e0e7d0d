package aggregate

import (
	"flag"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/klinecast/klinecast/messages"
)

// TestMain runs the property tests with 10,000 cases unless -rapid.checks
// or RAPID_CHECKS says otherwise (rapid's own default is 100).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set && os.Getenv("RAPID_CHECKS") == "" {
		if err := flag.Set("rapid.checks", "10000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// boundaryStarts are start times just before week, month, leap-day and year
// boundaries, so random walks cross them.
var boundaryStarts = []string{
	"2024-02-29T23:50:00Z", // Thursday, end of a leap February
	"2024-03-31T22:30:00Z", // Sunday and month end: Monday 1 April follows
	"2023-12-31T23:59:30Z", // Sunday, year end
	"2024-01-07T23:58:00Z", // Sunday → Monday
	"2021-06-15T12:00:00Z",
}

// collector keeps the latest version of every bar seen in Deltas and checks
// that nothing changes after it was closed.
type collector struct {
	bars   map[messages.KlineKey]messages.Kline
	closed map[messages.KlineKey]bool
}

func newCollector() *collector {
	return &collector{bars: map[messages.KlineKey]messages.Kline{}, closed: map[messages.KlineKey]bool{}}
}

// fataler is what testing.T and rapid.T share.
type fataler interface {
	Fatalf(format string, args ...any)
}

// drain takes one Delta and records its bars, runs expanded. It checks
// what Delta promises: runs are empty bars; the entries of one series come
// in order of open time, but for corrections (allowed only with
// allowCorrections), single bars that were closed before.
func (c *collector) drain(t fataler, core *Core, allowCorrections bool) {
	d := core.Ready()
	c.add(t, d, allowCorrections)
	core.Release(d)
}

// add records d's bars (see drain).
func (c *collector) add(t fataler, d *Delta, allowCorrections bool) {
	end := map[seriesKey]int64{} // per series, the last bar of its latest in-order entry
	for _, e := range d.Closed {
		if e.Repeat < 0 || e.Repeat > 0 && !e.ValidRun() {
			t.Fatalf("invalid run: %+v", e)
		}
		sk := seriesKey{e.Symbol, e.Interval}
		if last, ok := end[sk]; ok && e.OpenTime <= last {
			if e.Repeat != 0 || !c.closed[e.Key()] {
				t.Fatalf("entry out of order (after a bar at %d) and not a correction: %+v", last, e)
			}
		} else {
			end[sk] = e.LastOpenTime()
		}
		for _, k := range messages.ExpandRuns(nil, e) {
			if !k.Closed {
				t.Fatalf("bar in Closed not marked closed: %+v", k)
			}
			if c.closed[k.Key()] && !allowCorrections {
				t.Fatalf("bar closed twice: %+v", k.Key())
			}
			c.closed[k.Key()] = true
			c.bars[k.Key()] = k
		}
	}
	for _, k := range d.Open {
		if k.Closed || k.Repeat != 0 {
			t.Fatalf("bar in Open marked closed or a run: %+v", k)
		}
		if c.closed[k.Key()] {
			t.Fatalf("open update after close: %+v", k.Key())
		}
		c.bars[k.Key()] = k
	}
}

type seriesKey struct {
	sym string
	iv  messages.Interval
}

// series groups the collected bars per symbol and interval, by open time.
func (c *collector) series() map[seriesKey][]messages.Kline {
	out := map[seriesKey][]messages.Kline{}
	for k, b := range c.bars {
		sk := seriesKey{k.Symbol, k.Interval}
		out[sk] = append(out[sk], b)
	}
	for _, s := range out {
		slices.SortFunc(s, func(a, b messages.Kline) int { return int(a.OpenTime - b.OpenTime) })
	}
	return out
}

// tradeSource draws trades with per-symbol increasing ids.
type tradeSource struct {
	now     int64
	nextAgg map[string]int64
	nextRaw map[string]int64
	trades  map[string][]messages.Trade
	// rawGap leaves unused raw trade ids between consecutive trades, for
	// late trades drawn later (drawLate).
	rawGap int64
}

func (s *tradeSource) draw(rt *rapid.T, syms []string, maxJump int64) messages.Trade {
	sym := rapid.SampledFrom(syms).Draw(rt, "sym")
	var jump int64
	switch rapid.IntRange(0, 9).Draw(rt, "jumpKind") {
	case 0:
		jump = rapid.Int64Range(0, maxJump).Draw(rt, "bigJump")
	case 1, 2:
		jump = rapid.Int64Range(0, 120_000).Draw(rt, "jump")
	default:
		jump = rapid.Int64Range(0, 1500).Draw(rt, "smallJump")
	}
	s.now += jump
	price := messages.Decimal(rapid.OneOf(
		rapid.Uint64Range(1, 1000),                  // memecoin-like 1e-8 scale prices
		rapid.Uint64Range(99_000_000, 101_000_000),  // around 1.0, often equal
		rapid.Uint64Range(1, 1_000_000_000_000_000), // up to 1e7 units
	).Draw(rt, "price"))
	qty := messages.Decimal(rapid.OneOf(
		rapid.Uint64Range(0, 1_000_000),
		rapid.Uint64Range(0, uint64(messages.MaxDecimal)), // ~1.8e11 units: sums need 128 bits
	).Draw(rt, "qty"))
	first := s.nextRaw[sym]
	last := first + rapid.Int64Range(0, 5).Draw(rt, "raw")
	s.nextRaw[sym] = last + 1 + s.rawGap
	t := messages.Trade{
		Symbol: sym, AggID: s.nextAgg[sym], Price: price, Quantity: qty,
		FirstID: first, LastID: last, Time: s.now, BuyerMaker: rapid.Bool().Draw(rt, "m"),
	}
	s.nextAgg[sym]++
	s.trades[sym] = append(s.trades[sym], t)
	return t
}

// drawLate draws a late trade of sym at time at (before the symbol's open
// bars), for a test that compares the core with the reference model, whose
// bars are sorted by time. Its raw trade ids lie between those of the
// trades around it in time (it takes half of the unused ids there), so the
// core, which orders a late trade by its ids, agrees with the reference.
// Its price is the price prevailing at its time (that of the latest trade
// before it): a late trade then never changes a bar's close, and the gap
// bars the core filled after a bar it amends keep the fill the reference
// computes (the core amends only the bar a late trade falls in). ok is
// false when the ids around at are used up.
func (s *tradeSource) drawLate(rt *rapid.T, sym string, at int64) (t messages.Trade, ok bool) {
	ts := s.trades[sym]
	lo, hi := int64(-1), s.nextRaw[sym]
	var prev *messages.Trade
	for i := range ts {
		tr := &ts[i]
		if tr.Time <= at { // the late trade has the largest aggregate id: it sorts after equal times
			lo = max(lo, tr.LastID)
			if prev == nil || tr.Time > prev.Time || tr.Time == prev.Time && tr.AggID > prev.AggID {
				prev = tr
			}
		} else {
			hi = min(hi, tr.FirstID)
		}
	}
	first := lo + (hi-lo)/2
	last := first + rapid.Int64Range(0, 2).Draw(rt, "lateRaw")
	if first <= lo || last >= hi {
		return t, false
	}
	price := messages.Decimal(rapid.Uint64Range(1, 1000).Draw(rt, "latePrice")) // before every trade: any price
	if prev != nil {
		price = prev.Price
	}
	t = messages.Trade{
		Symbol: sym, AggID: s.nextAgg[sym], Price: price,
		Quantity: messages.Decimal(rapid.Uint64Range(0, uint64(messages.MaxDecimal)).Draw(rt, "lateQty")),
		FirstID:  first, LastID: last, Time: at, BuyerMaker: rapid.Bool().Draw(rt, "lateM"),
	}
	s.nextAgg[sym]++
	return t, true
}

// TestCoreMatchesReference drives the core with random trades (several
// symbols, gaps up to weeks, boundaries), event-clock ticks, ticks far
// ahead (long runs of gap bars), late trades (often inside such a run),
// duplicates and flushes at random points, and compares every bar of every
// interval, runs expanded, with the sort-and-group reference.
func TestCoreMatchesReference(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ivs := messages.AllIntervals()
		maxJump, maxFar := 10*messages.Minute, 20*messages.Minute
		latenesses := []int64{0, 90_000, 10 * messages.Minute}
		if rapid.Bool().Draw(rt, "longGaps") {
			// Gaps of weeks: drop the short periods, whose gap-filled bars
			// would run into the millions (in the reference and in the
			// expanded output; the core emits runs).
			ivs = ivs[messages.Interval1h-1:]
			maxJump, maxFar = 40*messages.Day, 90*messages.Day
			latenesses = []int64{0, 10 * messages.Minute, 6 * messages.Hour}
		}
		lateness := rapid.SampledFrom(latenesses).Draw(rt, "lateness")
		core, err := New(Config{Intervals: ivs, AllowedLateness: lateness})
		if err != nil {
			rt.Fatal(err)
		}
		start := ms(rapid.SampledFrom(boundaryStarts).Draw(rt, "start"))
		syms := []string{"AAA", "BBB", "CCC"}[:rapid.IntRange(1, 3).Draw(rt, "nsym")]
		src := &tradeSource{now: start, nextAgg: map[string]int64{}, nextRaw: map[string]int64{}, trades: map[string][]messages.Trade{}, rawGap: 1 << 30}
		col := newCollector()
		steps := rapid.IntRange(1, 60).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 11).Draw(rt, "action") {
			case 7:
				core.Tick(src.now) // event clock: the largest trade time so far
			case 8:
				sym := rapid.SampledFrom(syms).Draw(rt, "dupSym")
				if ts := src.trades[sym]; len(ts) > 0 {
					dup := ts[rapid.IntRange(0, len(ts)-1).Draw(rt, "dup")]
					if o := core.Apply(&dup); o != Duplicate {
						rt.Fatalf("re-applied trade: outcome %v, want duplicate", o)
					}
				}
			case 9:
				col.drain(rt, core, lateness > 0)
			case 10:
				// The clock runs far ahead of the trades: every series
				// rolls across a long gap.
				src.now += rapid.Int64Range(0, maxFar).Draw(rt, "farTick")
				core.Tick(src.now)
			case 11:
				sym := rapid.SampledFrom(syms).Draw(rt, "lateSym")
				if lateness == 0 || len(src.trades[sym]) == 0 {
					continue
				}
				// Just before the open bars, or beyond the window.
				s := &core.syms[core.index[sym]]
				at := s.lateBefore - rapid.Int64Range(1, lateness+lateness/4).Draw(rt, "lateBy")
				tr, ok := src.drawLate(rt, sym, at)
				if !ok {
					continue
				}
				o := core.Apply(&tr)
				// Accepted within the window, unless before a first bar.
				first := src.trades[sym][0].Time
				want := Applied
				for _, iv := range ivs {
					if at < iv.Align(first) {
						want = LateDropped
					}
				}
				if s.lateBefore-at > lateness {
					want = LateDropped
				}
				if o != want {
					rt.Fatalf("late trade %+v (%d ms before the open bars): outcome %v, want %v", tr, s.lateBefore-at, o, want)
				}
				if o == Applied {
					src.trades[sym] = append(src.trades[sym], tr)
				}
			default:
				tr := src.draw(rt, syms, maxJump)
				if o := core.Apply(&tr); o != Applied {
					rt.Fatalf("trade %+v: outcome %v", tr, o)
				}
			}
		}
		col.drain(rt, core, lateness > 0)
		series := col.series()
		for _, sym := range syms {
			for _, iv := range ivs {
				got := series[seriesKey{sym, iv}]
				want := refKlines(src.trades[sym], iv, core.Watermark())
				if len(got) != len(want) {
					rt.Fatalf("%s %s: %d bars, want %d", sym, iv, len(got), len(want))
				}
				for i := range got {
					if d := diffBar(got[i], want[i]); d != "" {
						rt.Fatalf("%s %s bar %d (%s): %s", sym, iv, i, time.UnixMilli(want[i].open).UTC(), d)
					}
					if closed := i < len(got)-1; got[i].Closed != closed {
						rt.Fatalf("%s %s bar %d: closed=%v, want %v", sym, iv, i, got[i].Closed, closed)
					}
				}
			}
		}
	})
}

// TestCoreSnapshotRestoreMatches checks that snapshotting and restoring at
// random points changes no output: a restored core continues exactly like
// the original.
//
// rapid.Check replays every testdata/rapid/TestCoreSnapshotRestoreMatches/
// TestCoreSnapshotRestoreMatches-*.fail file before drawing new cases (it
// globs them by test name; a file from another rapid format version is
// skipped with a logged "ignoring fail file"), so the committed failure is
// a regression case of every run.
func TestCoreSnapshotRestoreMatches(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ivs := []messages.Interval{messages.Interval1m, messages.Interval5m, messages.Interval1h, messages.Interval1w, messages.Interval1M}
		cfg := Config{Intervals: ivs, AllowedLateness: rapid.SampledFrom([]int64{0, 90_000}).Draw(rt, "lateness")}
		a, _ := New(cfg)
		b, _ := New(cfg)
		src := &tradeSource{now: ms(rapid.SampledFrom(boundaryStarts).Draw(rt, "start")), nextAgg: map[string]int64{}, nextRaw: map[string]int64{}, trades: map[string][]messages.Trade{}}
		colA, colB := newCollector(), newCollector()
		for range rapid.IntRange(1, 50).Draw(rt, "steps") {
			switch rapid.IntRange(0, 5).Draw(rt, "action") {
			case 0:
				a.Tick(src.now)
				b.Tick(src.now)
			case 1:
				colB.drain(rt, b, true)
				st := b.Snapshot()
				var err error
				if b, err = Restore(cfg, st); err != nil {
					rt.Fatal(err)
				}
			default:
				tr := src.draw(rt, []string{"AAA", "BBB"}, 3*messages.Hour)
				if rapid.IntRange(0, 4).Draw(rt, "late") == 0 {
					tr.Time -= rapid.Int64Range(0, 200_000).Draw(rt, "lateBy")
				}
				oa, ob := a.Apply(&tr), b.Apply(&tr)
				if oa != ob {
					rt.Fatalf("outcomes differ: %v vs %v", oa, ob)
				}
			}
		}
		colA.drain(rt, a, true)
		colB.drain(rt, b, true)
		requireSameBars(rt, colA, colB, "after restores")
	})
}

// requireSameBars checks that two collectors hold the same bars, exactly
// except the quote volumes: float sums that a restore may group
// differently (SPEC §1 allows 1e-9 relative).
func requireSameBars(t fataler, colA, colB *collector, what string) {
	if len(colA.bars) != len(colB.bars) {
		t.Fatalf("%d bars vs %d %s", len(colA.bars), len(colB.bars), what)
	}
	for k, ka := range colA.bars {
		kb := colB.bars[k]
		if !floatClose(ka.QuoteVolume, kb.QuoteVolume) || !floatClose(ka.TakerBuyQuoteVolume, kb.TakerBuyQuoteVolume) {
			t.Fatalf("bar %+v quote volumes differ %s:\n%+v\n%+v", k, what, ka, kb)
		}
		ka.QuoteVolume, ka.TakerBuyQuoteVolume = kb.QuoteVolume, kb.TakerBuyQuoteVolume
		if ka != kb {
			t.Fatalf("bar %+v differs %s:\n%+v\n%+v", k, what, ka, kb)
		}
	}
}

func floatClose(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

func trade(sym string, agg int64, at string, price string, qty string, buyerMaker bool) messages.Trade {
	p, err := messages.ParseDecimal(price)
	if err != nil {
		panic(err)
	}
	q, err := messages.ParseDecimal(qty)
	if err != nil {
		panic(err)
	}
	return messages.Trade{Symbol: sym, AggID: agg, Price: p, Quantity: q, FirstID: agg * 10, LastID: agg*10 + 1, Time: ms(at), BuyerMaker: buyerMaker}
}

func TestCoreLateTrades(t *testing.T) {
	ivs := []messages.Interval{messages.Interval1m, messages.Interval1h}
	tests := []struct {
		name     string
		lateness int64
		late     messages.Trade
		want     Outcome
		// expected 1m bar at 00:00 after the late trade (nil: unchanged)
		wantHigh, wantClose string
		wantCount           int64
	}{
		{"dropped without lateness", 0, trade("X", 3, "2024-01-01T00:00:50Z", "7", "1", true), LateDropped, "", "", 0},
		{"dropped beyond lateness", 30_000, trade("X", 3, "2024-01-01T00:00:10Z", "7", "1", true), LateDropped, "", "", 0},
		{"amends closed bar", 120_000, trade("X", 3, "2024-01-01T00:00:50Z", "7", "1", true), Applied, "7.00000000", "7.00000000", 6},
		{"earlier than the bar's trades keeps the close", 120_000, messages.Trade{Symbol: "X", AggID: 3, Price: 700000000, Quantity: 1, FirstID: 1, LastID: 1, Time: ms("2024-01-01T00:00:01Z")}, Applied, "7.00000000", "6.00000000", 5},
		{"before first bar", 3_600_000, trade("X", 3, "2023-12-31T23:59:00Z", "7", "1", true), LateDropped, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{Intervals: ivs, AllowedLateness: tt.lateness})
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range []messages.Trade{
				trade("X", 1, "2024-01-01T00:00:05Z", "5", "1", false),
				trade("X", 2, "2024-01-01T00:00:30Z", "6", "2", false),
			} {
				if o := c.Apply(&tr); o != Applied {
					t.Fatalf("setup trade %d: %v", tr.AggID, o)
				}
			}
			// The clock (other symbols' trades) closes the 00:00 minute;
			// this symbol's next trade arrives after that.
			c.Tick(ms("2024-01-01T00:01:05Z"))
			col := newCollector()
			col.drain(t, c, true)
			before := col.bars[messages.KlineKey{Symbol: "X", Interval: messages.Interval1m, OpenTime: ms("2024-01-01T00:00:00Z")}]
			late := tt.late
			if o := c.Apply(&late); o != tt.want {
				t.Fatalf("late trade: outcome %v, want %v", o, tt.want)
			}
			if tt.want == Applied {
				if o := c.Apply(&late); o != Duplicate { // a retried batch
					t.Fatalf("late trade applied again: outcome %v, want duplicate", o)
				}
			}
			d := c.Ready()
			defer c.Release(d)
			if tt.want != Applied {
				if !d.Empty() {
					t.Fatalf("dropped trade produced output: %+v", d)
				}
				if info, _ := c.Symbol("X"); info.LateDropped != 1 {
					t.Fatalf("late drops = %d, want 1", info.LateDropped)
				}
				return
			}
			if len(d.Closed) != 1 {
				t.Fatalf("corrections: %d, want 1", len(d.Closed))
			}
			fix := d.Closed[0]
			if fix.OpenTime != before.OpenTime || !fix.Closed || fix.High.String() != tt.wantHigh || fix.Close.String() != tt.wantClose || fix.TradeCount != tt.wantCount {
				t.Fatalf("correction %+v", fix)
			}
			// The 1h bar is still open and takes the trade as an update.
			var hour []messages.Kline
			for _, k := range d.Open {
				if k.Interval == messages.Interval1h {
					hour = append(hour, k)
				}
			}
			if len(hour) != 1 || hour[0].High.String() != "7.00000000" {
				t.Fatalf("open updates %+v", d.Open)
			}
		})
	}
}

func TestCoreFixedSymbolsAndRemoval(t *testing.T) {
	c, err := New(Config{Intervals: []messages.Interval{messages.Interval1m}, Symbols: []string{"btcusdt"}})
	if err != nil {
		t.Fatal(err)
	}
	tr := trade("ETHUSDT", 1, "2024-01-01T00:00:05Z", "5", "1", false)
	if o := c.Apply(&tr); o != UnknownSymbol {
		t.Fatalf("unknown symbol: %v", o)
	}
	tr = trade("BTCUSDT", 1, "2024-01-01T00:00:05Z", "5", "1", false)
	if o := c.Apply(&tr); o != Applied {
		t.Fatalf("known symbol: %v", o)
	}
	if !c.RemoveSymbol("BTCUSDT") {
		t.Fatal("RemoveSymbol reported no state")
	}
	d := c.Ready()
	if len(d.Open) != 0 || len(d.Closed) != 1 || !d.Closed[0].Closed || d.Closed[0].Volume.String() != "1.00000000" {
		t.Fatalf("removal must finalize the open bar, got %+v", d)
	}
	c.Release(d)
	if got := c.Symbols(nil); len(got) != 0 {
		t.Fatalf("symbols after removal: %v", got)
	}
	// The symbol may trade again and starts afresh (ids included).
	tr = trade("BTCUSDT", 1, "2024-01-01T00:02:05Z", "6", "1", false)
	if o := c.Apply(&tr); o != Applied {
		t.Fatalf("re-added symbol: %v", o)
	}
	if k, _ := c.OpenBar("BTCUSDT", messages.Interval1m); k.OpenTime != ms("2024-01-01T00:02:00Z") || k.Open.String() != "6.00000000" {
		t.Fatalf("re-added bar %+v", k)
	}
}

func TestCoreInvalidAndOverflow(t *testing.T) {
	c, _ := New(Config{Intervals: []messages.Interval{messages.Interval1m}})
	for _, tr := range []messages.Trade{
		{Symbol: "", AggID: 1, Price: 1, Quantity: 1, Time: ms("2024-01-01T00:00:00Z")},
		{Symbol: "X", AggID: 1, Price: 0, Quantity: 1, Time: ms("2024-01-01T00:00:00Z")},
		{Symbol: "X", AggID: 1, Price: 1, Quantity: 1, Time: 12345},
		{Symbol: "X", AggID: -5, Price: 1, Quantity: 1, Time: ms("2024-01-01T00:00:00Z")},
	} {
		if o := c.Apply(&tr); o != Invalid {
			t.Errorf("%+v: outcome %v, want invalid", tr, o)
		}
	}
	if c.HasReady() {
		t.Fatal("invalid trades produced output")
	}
	// Push one bar's volume to the edge of 128 bits: the next trade must be
	// refused, not wrapped.
	tr := messages.Trade{Symbol: "X", AggID: 1, Price: 1, Quantity: messages.MaxDecimal, FirstID: -1, LastID: -1, Time: ms("2024-01-01T00:00:00Z")}
	c.Apply(&tr)
	c.bars[0].Volume.Hi = 1 << 62
	tr.AggID = 2
	if o := c.Apply(&tr); o != Applied {
		t.Fatalf("second trade: outcome %v", o)
	}
	c.Release(c.Ready()) // folds: the bar now holds more than 2^126 units·1e-8
	tr.AggID = 3
	if o := c.Apply(&tr); o != Overflow {
		t.Fatalf("overflow: outcome %v", o)
	}
}

func TestCoreClockRollsEverySymbol(t *testing.T) {
	c, _ := New(Config{Intervals: []messages.Interval{messages.Interval1m, messages.Interval1d}})
	for i, sym := range []string{"A", "B"} {
		tr := trade(sym, 1, "2024-01-01T00:00:05Z", "5", "1", i == 0)
		c.Apply(&tr)
	}
	c.Release(c.Ready())
	c.Tick(ms("2024-01-01T00:03:00.010Z")) // ticks at 00:01 and 00:02 were skipped
	c.Tick(ms("2024-01-01T00:03:00.010Z")) // repeated
	c.Tick(ms("2024-01-01T00:02:59Z"))     // stale
	d := c.Ready()
	defer c.Release(d)
	// Per symbol: the 00:00 bar, then gap bars 00:01 and 00:02 as one run.
	if len(d.Closed) != 4 {
		t.Fatalf("closed %d entries, want 4: %+v", len(d.Closed), d.Closed)
	}
	if n := len(messages.ExpandRuns(nil, d.Closed...)); n != 6 {
		t.Fatalf("closed %d bars, want 6: %+v", n, d.Closed)
	}
	// Open carries every open bar of a changed symbol; the new 1m bars are
	// placeholders at the previous close.
	if len(d.Open) != 4 {
		t.Fatalf("open updates %d, want 4", len(d.Open))
	}
	for _, k := range d.Open {
		if k.Interval == messages.Interval1d {
			continue
		}
		if k.OpenTime != ms("2024-01-01T00:03:00Z") || !k.Empty() || k.Open.String() != "5.00000000" {
			t.Fatalf("placeholder bar %+v", k)
		}
	}
}
