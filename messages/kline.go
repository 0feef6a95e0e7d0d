package messages

// Kline is one candlestick bar of one symbol and interval (SPEC §1).
type Kline struct {
	Symbol    string
	Interval  Interval
	OpenTime  int64 // ms, aligned to Interval
	CloseTime int64 // Interval.CloseTime(OpenTime)

	Open, High, Low, Close Decimal

	Volume              Decimal128 // Σ q, exact
	QuoteVolume         float64    // Σ p·q
	TakerBuyVolume      Decimal128 // Σ q over trades with m == false, exact
	TakerBuyQuoteVolume float64    // Σ p·q over trades with m == false

	TradeCount   int64 // raw trades: Σ (l − f + 1)
	FirstTradeID int64 // NoTradeID for an empty bar
	LastTradeID  int64 // NoTradeID for an empty bar

	Closed bool // the bar is final (or a correction of a final bar)
}

// Empty reports whether no trade has contributed to k (a gap-filled or
// clock-opened placeholder bar).
func (k *Kline) Empty() bool { return k.TradeCount == 0 }

// Key identifies a bar: (symbol, interval, open time).
type KlineKey struct {
	Symbol   string
	Interval Interval
	OpenTime int64
}

// Key returns the bar's identity.
func (k *Kline) Key() KlineKey {
	return KlineKey{Symbol: k.Symbol, Interval: k.Interval, OpenTime: k.OpenTime}
}
