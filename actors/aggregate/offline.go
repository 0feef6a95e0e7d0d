package aggregate

import (
	"fmt"
	"slices"

	"github.com/klinecast/klinecast/messages"
)

// Offline aggregates one symbol's trades given in any order into complete,
// closed bars for every configured interval. It backs `klinecast aggregate`,
// whose input files may be shuffled: open and close are the prices of the
// earliest and latest trade by (time, aggregate id), not by arrival.
//
// Memory is proportional to the number of bars, never to the number of
// trades. Offline is not safe for concurrent use.
type Offline struct {
	symbol    string
	intervals []messages.Interval
	bars      []map[int64]*offlineBar // per interval, keyed by open time
}

// offlineBar is a bar plus the (time, aggregate id) order keys of the trades
// that set its open and close.
type offlineBar struct {
	k              messages.Kline
	openT, openA   int64
	closeT, closeA int64
}

// NewOffline returns an Offline for symbol over intervals (in any order;
// duplicates are ignored).
func NewOffline(symbol string, intervals []messages.Interval) *Offline {
	ivs := slices.Clone(intervals)
	slices.Sort(ivs)
	ivs = slices.Compact(ivs)
	o := &Offline{symbol: symbol, intervals: ivs, bars: make([]map[int64]*offlineBar, len(ivs))}
	for i := range o.bars {
		o.bars[i] = make(map[int64]*offlineBar)
	}
	return o
}

// Intervals returns the intervals, sorted by length.
func (o *Offline) Intervals() []messages.Interval { return o.intervals }

// Bars returns the number of non-empty bars held across all intervals.
func (o *Offline) Bars() int {
	n := 0
	for _, m := range o.bars {
		n += len(m)
	}
	return n
}

// Add adds one trade. The trade's symbol is ignored (the file has none);
// the caller has validated it. Add fails only on volume overflow, before
// changing anything.
func (o *Offline) Add(t *messages.Trade) error {
	var bars [maxIntervals]*offlineBar
	for i, iv := range o.intervals {
		open := iv.Align(t.Time)
		b := o.bars[i][open]
		if b == nil {
			b = &offlineBar{k: emptyBar(o.symbol, iv, open, 0)}
			b.k.Closed = true
			o.bars[i][open] = b
		}
		if !fits(&b.k, t.Quantity) {
			return fmt.Errorf("aggregate: %s %s bar %d: %w: volume", o.symbol, iv, open, messages.ErrOverflow)
		}
		bars[i] = b
	}
	add := contributionOf(t)
	for i := range o.intervals {
		b := bars[i]
		k := &b.k
		if k.TradeCount == 0 {
			k.Open, k.High, k.Low, k.Close = t.Price, t.Price, t.Price, t.Price
			b.openT, b.openA, b.closeT, b.closeA = t.Time, t.AggID, t.Time, t.AggID
		} else {
			k.High = max(k.High, t.Price)
			k.Low = min(k.Low, t.Price)
			if before(t.Time, t.AggID, b.openT, b.openA) {
				k.Open, b.openT, b.openA = t.Price, t.Time, t.AggID
			}
			if before(b.closeT, b.closeA, t.Time, t.AggID) {
				k.Close, b.closeT, b.closeA = t.Price, t.Time, t.AggID
			}
		}
		add.add(k)
	}
	return nil
}

func before(t1, a1, t2, a2 int64) bool { return t1 < t2 || t1 == t2 && a1 < a2 }

// Klines returns the closed bars of iv in ascending open time, from the
// first trade's bar to the last trade's bar, with the gaps filled by empty
// bars at the previous close. It returns nil for an interval that was not
// configured or when no trade was added.
func (o *Offline) Klines(iv messages.Interval) []messages.Kline {
	i := slices.Index(o.intervals, iv)
	if i < 0 || len(o.bars[i]) == 0 {
		return nil
	}
	opens := make([]int64, 0, len(o.bars[i]))
	for open := range o.bars[i] {
		opens = append(opens, open)
	}
	slices.Sort(opens)
	out := make([]messages.Kline, 0, len(opens))
	for _, open := range opens {
		if n := len(out); n > 0 {
			prev := out[n-1]
			for next := iv.Next(prev.OpenTime); next < open; next = iv.Next(next) {
				gap := emptyBar(o.symbol, iv, next, prev.Close)
				gap.Closed = true
				out = append(out, gap)
			}
		}
		out = append(out, o.bars[i][open].k)
	}
	return out
}
