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

	// Repeat > 0 makes this value a run: the bar itself followed by Repeat
	// more bars of its series, one per period, each equal to it but for
	// its open and close time. Only a bar no trade touched (a gap fill:
	// O=H=L=C, zero volumes and count, NoTradeID) may repeat, so a day of
	// a quiet symbol's 1m bars is one value, not 1,440. Runs travel inside
	// the node (the core's Delta, the bar series and their chunks); every
	// reader outside it sees each bar (ExpandRuns), and the wire codecs
	// encode a single bar (they ignore Repeat).
	Repeat int64
}

// Bars returns how many bars k stands for: 1 + Repeat.
func (k *Kline) Bars() int64 { return 1 + k.Repeat }

// LastOpenTime returns the open time of the last bar k stands for.
func (k *Kline) LastOpenTime() int64 { return k.Interval.Advance(k.OpenTime, k.Repeat) }

// ValidRun reports whether k may repeat: no trade touched it.
func (k *Kline) ValidRun() bool {
	return k.TradeCount == 0 && k.Open == k.High && k.Open == k.Low && k.Open == k.Close &&
		k.Volume == (Decimal128{}) && k.TakerBuyVolume == (Decimal128{}) &&
		k.QuoteVolume == 0 && k.TakerBuyQuoteVolume == 0 &&
		k.FirstTradeID == NoTradeID && k.LastTradeID == NoTradeID
}

// ExpandRuns appends to dst every bar that ks stand for, runs expanded into
// their bars (each with Repeat 0), in order.
func ExpandRuns(dst []Kline, ks ...Kline) []Kline {
	for i := range ks {
		k := ks[i]
		n := k.Repeat
		k.Repeat = 0
		for j := int64(0); ; j++ {
			dst = append(dst, k)
			if j == n {
				break
			}
			k.OpenTime = k.Interval.Next(k.OpenTime)
			k.CloseTime = k.Interval.CloseTime(k.OpenTime)
		}
	}
	return dst
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
