package messages

import (
	"math"
	"testing"
)

// Shared fixtures of the codec tests.

func mustDec(tb testing.TB, s string) Decimal {
	tb.Helper()
	d, err := ParseDecimal(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func mustDec128(tb testing.TB, s string) Decimal128 {
	tb.Helper()
	d, err := ParseDecimal128(s)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func sampleTrade(tb testing.TB) Trade {
	return Trade{
		Symbol:     "BTCUSDT",
		AggID:      3_012_345_678,
		Price:      mustDec(tb, "42283.58"),
		Quantity:   mustDec(tb, "0.00123"),
		FirstID:    4_100_000_000,
		LastID:     4_100_000_004,
		Time:       1_700_000_000_123,
		BuyerMaker: true,
		EventTime:  1_700_000_000_130,
	}
}

// edgeTrades covers every integer width and sign the encoder can choose.
func edgeTrades(tb testing.TB) []Trade {
	long := ""
	for len(long) < 300 {
		long += "ABCDEFGHIJ"
	}
	return []Trade{
		sampleTrade(tb),
		{},
		{Symbol: "X", FirstID: NoTradeID, LastID: NoTradeID},
		{Symbol: "ETH_USDT-PERP.X", AggID: math.MaxInt64, Price: MaxDecimal, Quantity: 1, FirstID: math.MinInt64, LastID: -33, Time: math.MinInt64, EventTime: math.MaxInt64},
		{Symbol: long[:31], AggID: 127, Price: 128, Quantity: 255, FirstID: 256, LastID: 65535, Time: 65536, EventTime: -32},
		{Symbol: long[:32], AggID: math.MaxUint32, Price: math.MaxUint32 + 1, Quantity: math.MaxUint16 + 1, FirstID: -129, LastID: -32769, Time: math.MinInt32 - 1, EventTime: -128},
		{Symbol: long[:256], AggID: 1, Price: 1, Quantity: 1, FirstID: -1, LastID: -1, Time: 1, BuyerMaker: true},
	}
}

func sampleKline(tb testing.TB) Kline {
	return Kline{
		Symbol:              "BTCUSDT",
		Interval:            Interval1m,
		OpenTime:            1_499_040_000_000,
		CloseTime:           1_499_040_059_999,
		Open:                mustDec(tb, "0.01634790"),
		High:                mustDec(tb, "0.80000000"),
		Low:                 mustDec(tb, "0.01575800"),
		Close:               mustDec(tb, "0.01577100"),
		Volume:              mustDec128(tb, "148976.11427815"),
		QuoteVolume:         2434.19055334,
		TakerBuyVolume:      mustDec128(tb, "1756.87402397"),
		TakerBuyQuoteVolume: 28.46694368,
		TradeCount:          308,
		FirstTradeID:        100,
		LastTradeID:         407,
		Closed:              true,
	}
}

func edgeKlines(tb testing.TB) []Kline {
	k := sampleKline(tb)
	huge := k
	huge.Symbol = "1000SHIBUSDT"
	huge.Interval = Interval1M
	huge.Volume = Decimal128{Hi: math.MaxUint64, Lo: math.MaxUint64}
	huge.TakerBuyVolume = Decimal128{Hi: 1, Lo: 0}
	huge.QuoteVolume = 1e300
	huge.TakerBuyQuoteVolume = 1e-8 // the smallest value the 8-digit text forms keep
	huge.Open, huge.High, huge.Low, huge.Close = MaxDecimal, MaxDecimal, 1, 0
	huge.TradeCount = math.MaxInt64
	huge.Closed = false
	empty := Kline{Symbol: "ETHBTC", Interval: Interval1s, OpenTime: 1_700_000_000_000, CloseTime: 1_700_000_000_999, FirstTradeID: NoTradeID, LastTradeID: NoTradeID}
	return []Kline{k, huge, empty, {}}
}
