package main

// An independent reference for `klinecast aggregate`, used by the
// acceptance test. It shares nothing with the code under test beyond the
// file formats: it parses the aggTrades CSV itself into exact rationals
// (big.Rat), sums with math/big integers, aligns bars with its own
// time.Time logic (not messages.Interval.Align), fills gaps itself, and
// parses the kline CSV output itself.
//
// Sums are kept as big.Int counts of fixed units (1e-8 for prices and
// quantities, 1e-16 for their products) rather than big.Rat: exactly the
// same values, as every input has at most 8 fraction digits (checked when
// parsing), without a GCD per addition, which made the test several times
// slower.

import (
	"bufio"
	"cmp"
	"fmt"
	"math"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refTrade is one parsed aggTrades row.
type refTrade struct {
	aggID       int64
	price, qty  *big.Int // in 1e-8 units
	pq          *big.Int // price × quantity, in 1e-16 units
	first, last int64
	ms          int64
	buyerMaker  bool
}

// refUnit returns 1e8: one unit is 1e8 fixed-point ticks.
func refUnit() *big.Int { return big.NewInt(100_000_000) }

// refFixed parses a decimal string exactly and returns it in 1e-8 units;
// ok is false if it is not a decimal or has more than 8 fraction digits.
func refFixed(s string) (*big.Int, bool) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, false
	}
	r.Mul(r, new(big.Rat).SetInt(refUnit()))
	if !r.IsInt() {
		return nil, false
	}
	return new(big.Int).Set(r.Num()), true
}

// refFormat formats v (in units of 10^-scale) with exactly 8 fraction
// digits; scale must be 8.
func refFormat(v *big.Int) string {
	s := v.String()
	if len(s) <= 8 {
		s = strings.Repeat("0", 9-len(s)) + s
	}
	return s[:len(s)-8] + "." + s[len(s)-8:]
}

// refFloat returns v·10^-16 as the nearest float64.
func refFloat(v *big.Int) float64 {
	f, _ := new(big.Rat).SetFrac(v, new(big.Int).Mul(refUnit(), refUnit())).Float64()
	return f
}

// refReadAggTrades parses an aggTrades CSV file: an optional header, ms or
// µs (16 digits) times.
func refReadAggTrades(t *testing.T, path string) []refTrade {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []refTrade
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(sc.Text(), ",")
		if line == 1 && fields[0] == "agg_trade_id" {
			continue
		}
		if len(fields) != 8 {
			t.Fatalf("%s:%d: %d fields", path, line, len(fields))
		}
		var tr refTrade
		var ok1, ok2 bool
		tr.price, ok1 = refFixed(fields[1])
		tr.qty, ok2 = refFixed(fields[2])
		ints := make([]int64, 0, 4)
		for _, i := range []int{0, 3, 4, 5} {
			v, err := strconv.ParseInt(fields[i], 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %v", path, line, err)
			}
			ints = append(ints, v)
		}
		if !ok1 || !ok2 {
			t.Fatalf("%s:%d: bad decimal", path, line)
		}
		tr.pq = new(big.Int).Mul(tr.price, tr.qty)
		tr.aggID, tr.first, tr.last, tr.ms = ints[0], ints[1], ints[2], ints[3]
		if len(fields[5]) >= 16 {
			tr.ms = tr.ms / 1000 // µs → ms, floor (times are positive)
		}
		tr.buyerMaker = fields[6] == "true" || fields[6] == "True"
		out = append(out, tr)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// refSort returns the trades in (time, aggregate id) order: the order that
// decides which trade opens and which closes a bar.
func refSort(trades []refTrade) []refTrade {
	sorted := slices.Clone(trades)
	slices.SortFunc(sorted, func(a, b refTrade) int {
		return cmp.Or(cmp.Compare(a.ms, b.ms), cmp.Compare(a.aggID, b.aggID))
	})
	return sorted
}

// refInterval is an interval's name and Go duration (0 for the
// calendar-aligned 3d, 1w and 1M, handled by refAlign).
type refInterval struct {
	name string
	d    time.Duration
}

// refIntervals returns the 16 intervals.
func refIntervals() []refInterval {
	return []refInterval{
		{"1s", time.Second}, {"1m", time.Minute}, {"3m", 3 * time.Minute}, {"5m", 5 * time.Minute},
		{"15m", 15 * time.Minute}, {"30m", 30 * time.Minute}, {"1h", time.Hour}, {"2h", 2 * time.Hour},
		{"4h", 4 * time.Hour}, {"6h", 6 * time.Hour}, {"8h", 8 * time.Hour}, {"12h", 12 * time.Hour},
		{"1d", 24 * time.Hour}, {"3d", 0}, {"1w", 0}, {"1M", 0},
	}
}

// refAlign returns the open time of the bar of interval name that holds
// ms, and the open time of the following bar.
func refAlign(name string, d time.Duration, ms int64) (open, next time.Time) {
	tm := time.UnixMilli(ms).UTC()
	day := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
	switch name {
	case "1M":
		open = time.Date(tm.Year(), tm.Month(), 1, 0, 0, 0, 0, time.UTC)
		return open, open.AddDate(0, 1, 0)
	case "1w":
		// Weeks start on Monday: go back (weekday+6)%7 days.
		open = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		return open, open.AddDate(0, 0, 7)
	case "3d":
		epoch := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
		days := int(day.Sub(epoch).Hours() / 24)
		open = epoch.AddDate(0, 0, days-days%3)
		return open, open.AddDate(0, 0, 3)
	}
	// time.Truncate counts from the zero time, a midnight UTC, so for
	// periods dividing a day it floors to the period within the UTC day.
	open = tm.Truncate(d)
	return open, open.Add(d)
}

// refBar is one reference bar, all sums exact.
type refBar struct {
	open, next        time.Time
	o, h, l, c        *big.Int // 1e-8 units
	vol, takerVol     *big.Int // 1e-8 units
	quote, takerQuote *big.Int // 1e-16 units
	count             int64

	// The exact fields formatted with 8 fraction digits, and the quote
	// volumes as floats, computed once per bar (gap bars share them).
	text            [6]string // open, high, low, close, volume, taker_buy_volume
	quoteF, takerQF float64
}

// finish fills the derived fields.
func (b *refBar) finish() {
	for i, v := range []*big.Int{b.o, b.h, b.l, b.c, b.vol, b.takerVol} {
		b.text[i] = refFormat(v)
	}
	b.quoteF, b.takerQF = refFloat(b.quote), refFloat(b.takerQuote)
}

// refKlines computes every bar of one interval from trades sorted by
// refSort.
func refKlines(sorted []refTrade, name string, d time.Duration) []*refBar {
	byOpen := map[int64]*refBar{} // by open time in ms
	for _, tr := range sorted {
		open, next := refAlign(name, d, tr.ms)
		b := byOpen[open.UnixMilli()]
		if b == nil {
			b = &refBar{open: open, next: next, o: tr.price, h: tr.price, l: tr.price,
				vol: new(big.Int), quote: new(big.Int), takerVol: new(big.Int), takerQuote: new(big.Int)}
			byOpen[open.UnixMilli()] = b
		}
		// Trades are in (time, agg id) order: the last one closes the bar.
		b.c = tr.price
		if tr.price.Cmp(b.h) > 0 {
			b.h = tr.price
		}
		if tr.price.Cmp(b.l) < 0 {
			b.l = tr.price
		}
		b.vol.Add(b.vol, tr.qty)
		b.quote.Add(b.quote, tr.pq)
		if !tr.buyerMaker {
			b.takerVol.Add(b.takerVol, tr.qty)
			b.takerQuote.Add(b.takerQuote, tr.pq)
		}
		b.count += tr.last - tr.first + 1
	}
	first, _ := refAlign(name, d, sorted[0].ms)
	last, _ := refAlign(name, d, sorted[len(sorted)-1].ms)
	var out []*refBar
	for open := first; !open.After(last); {
		b := byOpen[open.UnixMilli()]
		if b == nil {
			// A gap: an empty bar at the previous close.
			prev := out[len(out)-1].c
			_, next := refAlign(name, d, open.UnixMilli())
			zero := new(big.Int)
			pb := out[len(out)-1]
			b = &refBar{open: open, next: next, o: prev, h: prev, l: prev, c: prev,
				vol: zero, quote: zero, takerVol: zero, takerQuote: zero}
			b.text = [6]string{pb.text[3], pb.text[3], pb.text[3], pb.text[3], "0.00000000", "0.00000000"}
		} else {
			b.finish()
		}
		out = append(out, b)
		open = b.next
	}
	return out
}

// isDecimal8 reports whether s is a decimal printed with exactly 8 fraction
// digits and no exponent or sign: what Binance files hold and what must
// come out (no float noise such as "1e-05").
func isDecimal8(s string) bool {
	dot := strings.IndexByte(s, '.')
	if dot < 1 || len(s)-dot-1 != 8 {
		return false
	}
	for i := range len(s) {
		if i != dot && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// refCompareFile checks a kline CSV file against the reference bars:
// the number of rows and the first and last bars exactly; per row open and
// close time, OHLC, volume, taker buy volume and trade count exactly; quote
// volumes within 1e-9 relative, plus half a unit of the 8th decimal that the
// file format rounds to.
func refCompareFile(t *testing.T, path string, want []*refBar) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("%s: %d rows, want %d", path, len(lines), len(want))
		if len(lines) > 0 && len(want) > 0 {
			t.Errorf("%s: first row %s, want open %s; last row %s, want open %s", path,
				lines[0], want[0].open.Format(time.RFC3339), lines[len(lines)-1], want[len(want)-1].open.Format(time.RFC3339))
		}
		return
	}
	bad := 0
	fail := func(i int, format string, args ...any) {
		bad++
		if bad <= 10 {
			t.Errorf("%s row %d (open %s): %s\n  got: %s", path, i+1, want[i].open.Format(time.RFC3339), fmt.Sprintf(format, args...), lines[i])
		}
	}
	for i, line := range lines {
		w := want[i]
		f := strings.Split(line, ",")
		if len(f) != 12 {
			fail(i, "%d columns, want 12", len(f))
			continue
		}
		if got := f[0]; got != strconv.FormatInt(w.open.UnixMilli(), 10) {
			fail(i, "open_time %s, want %d", got, w.open.UnixMilli())
		}
		if got := f[6]; got != strconv.FormatInt(w.next.UnixMilli()-1, 10) {
			fail(i, "close_time %s, want %d", got, w.next.UnixMilli()-1)
		}
		for j, c := range []struct {
			col  int
			name string
		}{{1, "open"}, {2, "high"}, {3, "low"}, {4, "close"}, {5, "volume"}, {9, "taker_buy_volume"}} {
			if f[c.col] != w.text[j] {
				fail(i, "%s %s, want %s", c.name, f[c.col], w.text[j])
			}
		}
		if got := f[8]; got != strconv.FormatInt(w.count, 10) {
			fail(i, "count %s, want %d", got, w.count)
		}
		for _, c := range []struct {
			col  int
			name string
			want float64
			v    *big.Int
		}{{7, "quote_volume", w.quoteF, w.quote}, {10, "taker_buy_quote_volume", w.takerQF, w.takerQuote}} {
			got, err := strconv.ParseFloat(f[c.col], 64)
			if err != nil || !isDecimal8(f[c.col]) || math.Abs(got-c.want) > 1e-9*c.want+0.5e-8 {
				fail(i, "%s %s, want %s (±1e-9 relative)", c.name, f[c.col], new(big.Rat).SetFrac(c.v, new(big.Int).Mul(refUnit(), refUnit())).FloatString(16))
			}
		}
		if f[11] != "0" {
			fail(i, "ignore column %q, want 0", f[11])
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d bad rows in all", path, bad)
	}
}
