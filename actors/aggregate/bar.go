package aggregate

import "github.com/klinecast/klinecast/messages"

// contribution is what one trade adds to every bar it falls in, computed
// once per trade rather than once per interval.
type contribution struct {
	qty         messages.Decimal
	quote       float64 // p·q
	takerBuy    bool
	count       int64 // raw trades
	first, last int64 // raw trade id range (the aggregate id when unknown)
}

func contributionOf(t *messages.Trade) contribution {
	first, last := t.FirstID, t.LastID
	if first < 0 {
		// No raw ids: the aggregate id is the best identity there is.
		first, last = t.AggID, t.AggID
	}
	return contribution{
		qty:      t.Quantity,
		quote:    messages.MulFloat(t.Price, t.Quantity),
		takerBuy: !t.BuyerMaker,
		count:    t.RawCount(),
		first:    first,
		last:     last,
	}
}

// add adds the contribution's sums to b: volumes, quote volumes, raw trade
// count and the trade-id range. It does not touch open/high/low/close (the
// caller decides those, by arrival order in the Core and by trade order in
// Offline). The caller has checked that the volume sums cannot overflow.
//
// INVARIANT: b.Volume ≥ b.TakerBuyVolume and both only grow within a bar.
func (c *contribution) add(b *messages.Kline) {
	b.Volume, _ = b.Volume.Add(c.qty)
	b.QuoteVolume += c.quote
	if c.takerBuy {
		b.TakerBuyVolume, _ = b.TakerBuyVolume.Add(c.qty)
		b.TakerBuyQuoteVolume += c.quote
	}
	if b.TradeCount == 0 || c.first < b.FirstTradeID {
		b.FirstTradeID = c.first
	}
	if b.TradeCount == 0 || c.last > b.LastTradeID {
		b.LastTradeID = c.last
	}
	b.TradeCount += c.count
}

// fits reports whether adding q to b's volume sums cannot overflow. Volume
// is the larger of the two sums, so checking it covers both.
func fits(b *messages.Kline, q messages.Decimal) bool {
	_, ok := b.Volume.Add(q)
	return ok
}

// emptyBar returns a placeholder bar opening at open: no trades, OHLC at the
// previous close (SPEC §2, gap filling and clock-opened bars).
func emptyBar(symbol string, iv messages.Interval, open int64, prevClose messages.Decimal) messages.Kline {
	return messages.Kline{
		Symbol:       symbol,
		Interval:     iv,
		OpenTime:     open,
		CloseTime:    iv.CloseTime(open),
		Open:         prevClose,
		High:         prevClose,
		Low:          prevClose,
		Close:        prevClose,
		FirstTradeID: messages.NoTradeID,
		LastTradeID:  messages.NoTradeID,
	}
}

// maxIntervals is the number of distinct periods (messages.Interval1s to
// messages.Interval1M): a symbol never has more open bars than this.
const maxIntervals = int(messages.Interval1M)
