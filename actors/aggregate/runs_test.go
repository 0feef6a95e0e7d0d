package aggregate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// entry is what a test expects of one Delta.Closed entry.
type entry struct {
	iv     messages.Interval
	open   string // RFC 3339
	repeat int64
	empty  bool
}

func (e entry) String() string {
	return fmt.Sprintf("%s@%s×%d(empty=%v)", e.iv, e.open, e.repeat, e.empty)
}

func entriesOf(ks []messages.Kline) []entry {
	var out []entry
	for _, k := range ks {
		out = append(out, entry{k.Interval, messagesTime(k.OpenTime), k.Repeat, k.Empty()})
	}
	return out
}

func messagesTime(t int64) string {
	return time.UnixMilli(t).UTC().Format(time.RFC3339)
}

// TestCoreRollEmitsRuns: a roll emits the closed bar and one run for the
// whole gap, or a single run when the closed bar is an empty placeholder.
func TestCoreRollEmitsRuns(t *testing.T) {
	m1, h1, mo := messages.Interval1m, messages.Interval1h, messages.Interval1M
	tests := []struct {
		name  string
		ivs   []messages.Interval
		trade string   // the symbol's only trade
		ticks []string // earlier ticks, their output dropped
		tick  string   // the tick whose output is checked
		want  []entry
	}{
		{
			name: "gap of 0", ivs: []messages.Interval{m1},
			trade: "2024-01-01T00:00:05Z", tick: "2024-01-01T00:01:00Z",
			want: []entry{{m1, "2024-01-01T00:00:00Z", 0, false}},
		},
		{
			name: "gap of 1", ivs: []messages.Interval{m1},
			trade: "2024-01-01T00:00:05Z", tick: "2024-01-01T00:02:30Z",
			want: []entry{{m1, "2024-01-01T00:00:00Z", 0, false}, {m1, "2024-01-01T00:01:00Z", 0, true}},
		},
		{
			name: "gap of many", ivs: []messages.Interval{m1, h1},
			trade: "2024-01-01T00:00:05Z", tick: "2024-01-01T05:00:00Z",
			want: []entry{
				{m1, "2024-01-01T00:00:00Z", 0, false}, {m1, "2024-01-01T00:01:00Z", 298, true},
				{h1, "2024-01-01T00:00:00Z", 0, false}, {h1, "2024-01-01T01:00:00Z", 3, true},
			},
		},
		{
			name: "empty closed bar heads the run", ivs: []messages.Interval{m1},
			trade: "2024-01-01T00:00:05Z", ticks: []string{"2024-01-01T00:01:00Z"}, tick: "2024-01-01T00:05:59Z",
			want: []entry{{m1, "2024-01-01T00:01:00Z", 3, true}},
		},
		{
			name: "empty closed bar, gap of 0", ivs: []messages.Interval{m1},
			trade: "2024-01-01T00:00:05Z", ticks: []string{"2024-01-01T00:01:00Z"}, tick: "2024-01-01T00:02:00Z",
			want: []entry{{m1, "2024-01-01T00:01:00Z", 0, true}},
		},
		{
			name: "calendar month", ivs: []messages.Interval{mo},
			trade: "2024-01-15T00:00:00Z", tick: "2024-06-03T00:00:00Z",
			want: []entry{{mo, "2024-01-01T00:00:00Z", 0, false}, {mo, "2024-02-01T00:00:00Z", 3, true}},
		},
		{
			name: "calendar month, empty closed bar", ivs: []messages.Interval{mo},
			trade: "2024-01-15T00:00:00Z", ticks: []string{"2024-02-10T00:00:00Z"}, tick: "2025-03-01T00:00:00Z",
			want: []entry{{mo, "2024-02-01T00:00:00Z", 12, true}},
		},
		{
			name: "tick inside the open bar", ivs: []messages.Interval{m1, h1},
			trade: "2024-01-01T00:00:05Z", tick: "2024-01-01T00:00:59.999Z",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, lateness := range []int64{0, 3 * messages.Minute} {
				c, err := New(Config{Intervals: tt.ivs, AllowedLateness: lateness})
				if err != nil {
					t.Fatal(err)
				}
				tr := trade("X", 1, tt.trade, "5", "1", false)
				if o := c.Apply(&tr); o != Applied {
					t.Fatal(o)
				}
				for _, at := range tt.ticks {
					c.Tick(ms(at))
				}
				c.Release(c.Ready())
				c.Tick(ms(tt.tick))
				d := c.Ready()
				got := entriesOf(d.Closed)
				if !slices.Equal(got, tt.want) {
					t.Fatalf("lateness %d: closed entries\n got %v\nwant %v", lateness, got, tt.want)
				}
				// Expanded, the entries are the gap-filled bars one by one:
				// consecutive, closed, and empty ones at the trade's price.
				for _, iv := range tt.ivs {
					var bars []messages.Kline
					for _, k := range d.Closed {
						if k.Interval == iv {
							bars = messages.ExpandRuns(bars, k)
						}
					}
					open, _ := c.OpenBar("X", iv)
					for i, k := range bars {
						next := open.OpenTime
						if i+1 < len(bars) {
							next = bars[i+1].OpenTime
						}
						if k.Repeat != 0 || !k.Closed || iv.Next(k.OpenTime) != next || k.CloseTime != next-1 || k.Close != tr.Price {
							t.Fatalf("%s bar %d of %d: %+v (next bar at %d)", iv, i, len(bars), k, next)
						}
						if k.Empty() && (k.Open != tr.Price || k.High != tr.Price || k.Low != tr.Price) {
							t.Fatalf("%s gap bar %d: %+v", iv, i, k)
						}
					}
				}
				c.Release(d)
			}
		})
	}
}

// TestCoreTickAcrossLongGap: a tick 90 days on rolls every series of every
// symbol in at most two entries (one once the open bars are placeholders),
// and keeps in recent only the bars inside the lateness window.
func TestCoreTickAcrossLongGap(t *testing.T) {
	const nsym = 50
	const lateness = 2 * messages.Minute
	ivs := messages.DefaultIntervals()
	c, err := New(Config{Intervals: ivs, AllowedLateness: lateness})
	if err != nil {
		t.Fatal(err)
	}
	at := ms("2024-01-01T00:00:05Z")
	for i := range nsym {
		tr := trade(fmt.Sprintf("S%03d", i), 1, "2024-01-01T00:00:05Z", "5", "1", false)
		c.Apply(&tr)
	}
	c.Release(c.Ready())
	opens := make([]int64, len(ivs)) // S000's open bars before the tick
	for i, iv := range ivs {
		o, _ := c.OpenBar("S000", iv)
		opens[i] = o.OpenTime
	}
	for round, want := range []int{2, 1} { // closed bar + run, then a run of the placeholder
		at += 90 * messages.Day
		c.Tick(at)
		d := c.Ready()
		per := map[seriesKey]int{}
		bars := 0
		for _, k := range d.Closed {
			per[seriesKey{k.Symbol, k.Interval}]++
			bars += int(k.Bars())
		}
		if len(per) != nsym*len(ivs) {
			t.Fatalf("round %d: %d series closed bars, want %d", round, len(per), nsym*len(ivs))
		}
		for sk, n := range per {
			if n != want {
				t.Fatalf("round %d: %v has %d entries, want %d", round, sk, n, want)
			}
		}
		// 90 days of every interval: 129,600 1m bars and so on.
		wantBars := 0
		for i, iv := range ivs {
			o, _ := c.OpenBar("S000", iv)
			for open := opens[i]; open < o.OpenTime; open = iv.Next(open) {
				wantBars++
			}
			opens[i] = o.OpenTime
		}
		if bars != nsym*wantBars {
			t.Fatalf("round %d: runs stand for %d bars, want %d", round, bars, nsym*wantBars)
		}
		c.Release(d)
		// recent (pruned by the tick): per symbol and interval, the bars
		// a late trade can reach, closing within the lateness window
		// before the latest open bar; not the 90 days.
		lateBefore := int64(0)
		for _, iv := range ivs {
			o, _ := c.OpenBar("S000", iv)
			lateBefore = max(lateBefore, o.OpenTime)
		}
		perSym := 0
		for _, iv := range ivs {
			o, _ := c.OpenBar("S000", iv)
			for open := iv.Align(o.OpenTime - 100*messages.Day); open < o.OpenTime; open = iv.Next(open) {
				if iv.CloseTime(open) >= lateBefore-lateness {
					perSym++
				}
			}
		}
		if len(c.recent) != nsym*perSym {
			t.Fatalf("round %d: recent holds %d bars, want %d", round, len(c.recent), nsym*perSym)
		}
	}
}

// TestCoreLateTradeInsideRun: a late trade that falls in a bar of a run
// amends that bar alone and re-emits it as a single bar; the bars around
// it keep their values, and a restored core does the same.
func TestCoreLateTradeInsideRun(t *testing.T) {
	m1, h1 := messages.Interval1m, messages.Interval1h
	cfg := Config{Intervals: []messages.Interval{m1, h1}, AllowedLateness: 10 * messages.Minute}
	for _, drainFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("run in an earlier delta=%v", drainFirst), func(t *testing.T) {
			c, _ := New(cfg)
			tr := trade("X", 1, "2024-01-01T00:00:05Z", "5", "1", false)
			c.Apply(&tr)
			c.Tick(ms("2024-01-01T05:00:10Z"))
			col := newCollector()
			if drainFirst {
				col.drain(t, c, true)
			}
			// The window reaches back to 04:50: ten 1m bars and the 04:00
			// hour, not the five hours of the runs.
			if len(c.recent) != 11 {
				t.Fatalf("recent holds %d bars, want 11", len(c.recent))
			}
			r, err := Restore(cfg, c.Snapshot())
			if err != nil {
				t.Fatal(err)
			}
			if len(r.recent) != 11 {
				t.Fatalf("restored recent holds %d bars, want 11", len(r.recent))
			}
			if drainFirst {
				r.Release(r.Ready())
			}
			var want []entry
			for i, core := range []*Core{c, r} {
				late := trade("X", 2, "2024-01-01T04:55:30Z", "5", "2", true)
				if o := core.Apply(&late); o != Applied {
					t.Fatalf("core %d: late trade inside the run: %v", i, o)
				}
				if o := core.Apply(&late); o != Duplicate { // a retried batch
					t.Fatalf("core %d: late trade applied again: %v", i, o)
				}
				tooLate := trade("X", 3, "2024-01-01T04:49:59Z", "5", "2", true)
				if o := core.Apply(&tooLate); o != LateDropped {
					t.Fatalf("core %d: trade before the window: %v", i, o)
				}
				if i == 1 {
					d := core.Ready()
					if got := entriesOf(d.Closed); !slices.Equal(got, want) {
						t.Fatalf("restored core: closed entries %v, want %v", got, want)
					}
					core.Release(d)
					break
				}
				d := core.Ready()
				n := len(d.Closed)
				want = entriesOf(d.Closed[n-2:])
				if !slices.Equal(want, []entry{{m1, "2024-01-01T04:55:00Z", 0, false}, {h1, "2024-01-01T04:00:00Z", 0, false}}) {
					t.Fatalf("corrections %v", want)
				}
				for _, k := range d.Closed[n-2:] {
					if k.TradeCount != 2 || k.Volume.String() != "2.00000000" || !k.Closed || k.Open != tr.Price || k.Close != tr.Price {
						t.Fatalf("correction %+v", k)
					}
				}
				if drainFirst && n != 2 {
					t.Fatalf("closed entries %d, want the 2 corrections", n)
				}
				// Expanded in order, the correction replaces the bar of
				// the run (emitted in this Delta or an earlier one).
				col.add(t, d, true)
				core.Release(d)
			}
			series := col.series()
			for _, k := range series[seriesKey{"X", m1}] {
				want := int64(0)
				if k.OpenTime == ms("2024-01-01T00:00:00Z") || k.OpenTime == ms("2024-01-01T04:55:00Z") {
					want = 2
				}
				if k.TradeCount != want {
					t.Fatalf("bar %s: %d trades, want %d", messagesTime(k.OpenTime), k.TradeCount, want)
				}
			}
			if n := len(series[seriesKey{"X", m1}]); n != 301 { // 00:00 to 05:00
				t.Fatalf("%d 1m bars, want 301", n)
			}
		})
	}
}

// TestCoreTickAcrossGapAllocatesNothing: rolling every symbol across a long
// gap costs no allocation once the buffers are sized.
func TestCoreTickAcrossGapAllocatesNothing(t *testing.T) {
	c, at := gapCore(t, 100, 0)
	testkit.RequireNoAllocs(t, "Tick+Ready+Release across 90 days", 50, func() {
		at += 90 * messages.Day
		c.Tick(at)
		c.Release(c.Ready())
	})
}

// gapCore returns a core with nsym symbols of the default intervals that
// each traded once and then rolled across two long gaps (so both Delta
// buffers are sized), and its clock.
func gapCore(tb testing.TB, nsym int, lateness int64) (*Core, int64) {
	tb.Helper()
	c, err := New(Config{Intervals: messages.DefaultIntervals(), AllowedLateness: lateness})
	if err != nil {
		tb.Fatal(err)
	}
	at := ms("2024-01-01T00:00:05Z")
	for i := range nsym {
		tr := messages.Trade{Symbol: fmt.Sprintf("SYM%05dUSDT", i), AggID: 1, Price: 100_000_000, Quantity: 1, FirstID: 1, LastID: 1, Time: at}
		c.Apply(&tr)
	}
	c.Release(c.Ready())
	for range 3 {
		at += 90 * messages.Day
		c.Tick(at)
		c.Release(c.Ready())
	}
	return c, at
}

// BenchmarkTickAcrossGap: 2,000 quiet symbols × the 8 default intervals,
// each tick jumping 90 days (129,600 1m bars per symbol): the cost is one
// run per series, not one bar per period.
func BenchmarkTickAcrossGap(b *testing.B) {
	for _, lateness := range []int64{0, messages.Minute} {
		b.Run(fmt.Sprintf("lateness=%dms", lateness), func(b *testing.B) {
			c, at := gapCore(b, 2000, lateness)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				at += 90 * messages.Day
				c.Tick(at)
				c.Release(c.Ready())
			}
			b.ReportMetric(float64(b.N*2000*8)/b.Elapsed().Seconds(), "series/s")
		})
	}
}
