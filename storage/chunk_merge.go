package storage

import (
	"github.com/klinecast/klinecast/messages"
)

// decodeChunk appends the entries (bars and runs) of the chunk under key
// to dst.
func decodeChunk(key []byte, symbol string, iv messages.Interval, first int64, p []byte, dst []messages.Kline) ([]messages.Kline, error) {
	var r chunkReader
	if err := r.init(key, symbol, iv, first, p); err != nil {
		return dst, err
	}
	for r.more() {
		var k messages.Kline
		if err := r.entry(&k); err != nil {
			return dst, err
		}
		dst = append(dst, k)
	}
	return dst, nil
}

// buildChunk encodes entries (sorted, disjoint) into b.
func buildChunk(b *chunkBuilder, iv messages.Interval, entries []messages.Kline) {
	b.reset(iv)
	for i := range entries {
		b.add(&entries[i])
	}
}

// clip returns the part of e with open times in [lo, hi] (both aligned),
// and whether there is one.
func clip(e messages.Kline, lo, hi int64) (messages.Kline, bool) {
	first, last := e.OpenTime, e.LastOpenTime()
	if last < lo || first > hi {
		return messages.Kline{}, false
	}
	if first < lo {
		e.Repeat -= e.Interval.Periods(first, lo)
		e.OpenTime = lo
		first = lo
	}
	if last > hi {
		e.Repeat -= e.Interval.Periods(hi, last)
	}
	e.CloseTime = e.Interval.CloseTime(e.OpenTime)
	return e, true
}

// mergeEntries returns entries (sorted by open time, disjoint) with e
// written over them: e's bars replace those they cover, the rest of a run
// e cuts stays on either side. dst's storage may be reused.
func mergeEntries(dst, entries []messages.Kline, e messages.Kline) []messages.Kline {
	dst = dst[:0]
	first, last := e.OpenTime, e.LastOpenTime()
	placed := false
	for _, x := range entries {
		xf, xl := x.OpenTime, x.LastOpenTime()
		if xl < first {
			dst = append(dst, x)
			continue
		}
		if xf < first {
			before, _ := clip(x, xf, prevOpen(x.Interval, first))
			dst = append(dst, before)
		}
		if !placed {
			dst = append(dst, e)
			placed = true
		}
		if xl > last {
			after, _ := clip(x, x.Interval.Next(last), xl)
			dst = append(dst, after)
		}
	}
	if !placed {
		dst = append(dst, e)
	}
	return dst
}

// prevOpen returns the open time of the bar before the one opening at t.
func prevOpen(iv messages.Interval, t int64) int64 { return iv.Advance(t, -1) }
