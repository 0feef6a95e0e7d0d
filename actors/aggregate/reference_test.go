package aggregate

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// The reference model: sort trades by (time, aggregate id), group them by
// an independently computed bar open time, fill gaps, and sum with
// math/big. It shares no code with the core beyond the data types, so a
// bug in Interval.Align or in the core's arithmetic shows up as a mismatch.

// refAlign computes a bar's open time with time.Time arithmetic.
func refAlign(iv messages.Interval, t int64) int64 {
	tm := time.UnixMilli(t).UTC()
	day := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC)
	switch iv {
	case messages.Interval1M:
		return time.Date(tm.Year(), tm.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	case messages.Interval1w:
		back := (int(tm.Weekday()) + 6) % 7 // days since Monday
		return day.AddDate(0, 0, -back).UnixMilli()
	case messages.Interval3d:
		days := day.Unix() / 86400
		return time.Unix((days-days%3)*86400, 0).UnixMilli()
	case messages.Interval1d:
		return day.UnixMilli()
	}
	d := refLength(iv)
	return day.Add(tm.Sub(day).Truncate(d)).UnixMilli()
}

// refDurations are the fixed periods as time.ParseDuration reads them.
var refDurations = map[string]string{
	"1s": "1s", "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m",
	"1h": "1h", "2h": "2h", "4h": "4h", "6h": "6h", "8h": "8h", "12h": "12h",
	"1d": "24h", "3d": "72h", "1w": "168h",
}

// refLengths caches refLength: it is asked once per reference bar.
var refLengths sync.Map // messages.Interval → time.Duration

func refLength(iv messages.Interval) time.Duration {
	if d, ok := refLengths.Load(iv); ok {
		return d.(time.Duration)
	}
	d, err := time.ParseDuration(refDurations[iv.String()])
	if err != nil {
		panic(fmt.Sprintf("refLength(%s): %v", iv, err))
	}
	refLengths.Store(iv, d)
	return d
}

func refNext(iv messages.Interval, open int64) int64 {
	if iv == messages.Interval1M {
		return time.UnixMilli(open).UTC().AddDate(0, 1, 0).UnixMilli()
	}
	return open + refLength(iv).Milliseconds()
}

// refBar is the reference's bar: exact sums in big numbers.
type refBar struct {
	open               int64
	o, h, l, c         messages.Decimal
	vol, takerVol      *big.Int
	quote, takerQuote  *big.Rat
	count, first, last int64
	empty              bool
}

// refKlines returns the bars of one symbol and interval for trades (any
// order) from the first trade's bar to the bar containing until (or the
// last trade's bar, whichever is later).
func refKlines(trades []messages.Trade, iv messages.Interval, until int64) []refBar {
	if len(trades) == 0 {
		return nil
	}
	ts := slices.Clone(trades)
	slices.SortFunc(ts, func(a, b messages.Trade) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.AggID, b.AggID))
	})
	end := refAlign(iv, max(until, ts[len(ts)-1].Time))
	var out []refBar
	j := 0
	var prevClose messages.Decimal
	for open := refAlign(iv, ts[0].Time); open <= end; open = refNext(iv, open) {
		b := refBar{open: open, o: prevClose, h: prevClose, l: prevClose, c: prevClose,
			vol: new(big.Int), takerVol: new(big.Int), quote: new(big.Rat), takerQuote: new(big.Rat),
			first: messages.NoTradeID, last: messages.NoTradeID, empty: true}
		next := refNext(iv, open)
		for ; j < len(ts) && ts[j].Time < next; j++ {
			t := &ts[j]
			if b.empty {
				b.o, b.h, b.l = t.Price, t.Price, t.Price
				b.first = t.FirstID
				b.empty = false
			}
			b.h = max(b.h, t.Price)
			b.l = min(b.l, t.Price)
			b.c = t.Price
			b.last = t.LastID
			q := new(big.Int).SetUint64(uint64(t.Quantity))
			pq := new(big.Rat).SetFrac(new(big.Int).Mul(new(big.Int).SetUint64(uint64(t.Price)), q), big.NewInt(1e16))
			b.vol.Add(b.vol, q)
			b.quote.Add(b.quote, pq)
			if !t.BuyerMaker {
				b.takerVol.Add(b.takerVol, q)
				b.takerQuote.Add(b.takerQuote, pq)
			}
			b.count += t.LastID - t.FirstID + 1
		}
		prevClose = b.c
		out = append(out, b)
	}
	return out
}

// diffBar describes how k differs from the reference bar r ("" if equal).
// Quote volumes may differ by 1e-9 relative (SPEC §1).
func diffBar(k messages.Kline, r refBar) string {
	switch {
	case k.OpenTime != r.open:
		return fmt.Sprintf("open time %d, want %d", k.OpenTime, r.open)
	case k.CloseTime != refNext(k.Interval, r.open)-1:
		return fmt.Sprintf("close time %d, want %d", k.CloseTime, refNext(k.Interval, r.open)-1)
	case k.Open != r.o || k.High != r.h || k.Low != r.l || k.Close != r.c:
		return fmt.Sprintf("OHLC %s/%s/%s/%s, want %s/%s/%s/%s", k.Open, k.High, k.Low, k.Close, r.o, r.h, r.l, r.c)
	case k.Volume.Big().Cmp(r.vol) != 0:
		return fmt.Sprintf("volume %s, want %s", k.Volume.Big(), r.vol)
	case k.TakerBuyVolume.Big().Cmp(r.takerVol) != 0:
		return fmt.Sprintf("taker volume %s, want %s", k.TakerBuyVolume.Big(), r.takerVol)
	case k.TradeCount != r.count:
		return fmt.Sprintf("count %d, want %d", k.TradeCount, r.count)
	case k.FirstTradeID != r.first || k.LastTradeID != r.last:
		return fmt.Sprintf("trade ids %d..%d, want %d..%d", k.FirstTradeID, k.LastTradeID, r.first, r.last)
	case !closeEnough(k.QuoteVolume, r.quote):
		return fmt.Sprintf("quote volume %v, want %s", k.QuoteVolume, r.quote.FloatString(12))
	case !closeEnough(k.TakerBuyQuoteVolume, r.takerQuote):
		return fmt.Sprintf("taker quote volume %v, want %s", k.TakerBuyQuoteVolume, r.takerQuote.FloatString(12))
	}
	return ""
}

func closeEnough(got float64, want *big.Rat) bool {
	w, _ := want.Float64()
	if w == 0 {
		return got == 0
	}
	rel := (got - w) / w
	return rel <= 1e-9 && rel >= -1e-9
}
