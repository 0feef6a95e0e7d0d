package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
)

// Fuzz targets. Each one checks that the decoder never panics, that errors
// are the documented types, and that whatever decodes successfully survives
// encode → decode unchanged. The f.Add seeds and testdata/fuzz/<Target>
// (regression inputs found by fuzzing) run as ordinary tests with `go test`.

func FuzzParseAggTradeJSON(f *testing.F) {
	f.Add([]byte(binanceAggTrade))
	f.Add([]byte(`{"s":"btcusdt","a":1,"p":"1","q":"2","T":3}`))
	f.Add([]byte(`{"\u0073":"b\u0074c","a":-1,"p":"0.00000001","q":"184467440737.09551615","T":3,"f":null,"l":null,"x":[{"y":1e5}]}`))
	f.Add([]byte(`{"s":"A","a":1,"p":1.5,"q":"2","T":1}`))
	f.Add([]byte(`{"s":"A","a":1,"p":"NaN","q":"Infinity","T":1}`))
	f.Add([]byte(`{"s":"A","a":99999999999999999999,"p":"1","q":"2","T":1}`))
	f.Add([]byte(`{"s":"A\"\\\/\b\f\n\r\t\ud83d\ude00","a":1,"p":"1","q":"2","T":1}`))
	f.Add([]byte(`{"s":"A","a":1,"p":"1","q":"2","T":1`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr, tr2 Trade
		err := ParseAggTradeJSON(data, &tr, nil)
		err2 := ParseAggTradeJSON(data, &tr2, NewSymbolCache(0))
		if (err == nil) != (err2 == nil) {
			t.Fatalf("interner changes the outcome: %v vs %v", err, err2)
		}
		if err != nil {
			checkDecodeError(t, err, len(data))
			return
		}
		if tr != tr2 {
			t.Fatalf("interner changes the result: %+v vs %+v", tr, tr2)
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		enc := AppendAggTradeJSON(nil, &tr)
		var back Trade
		if err := ParseAggTradeJSON(enc, &back, nil); err != nil {
			t.Fatalf("re-parse of %s: %v", enc, err)
		}
		if back != tr {
			t.Fatalf("round trip: %+v != %+v via %s", back, tr, enc)
		}
		// The other wire forms carry the same trade too.
		mp := AppendTradeMsgpack(nil, &tr)
		var fromMP Trade
		if rest, err := DecodeTradeMsgpack(mp, &fromMP); err != nil || len(rest) != 0 || fromMP != tr {
			t.Fatalf("msgpack round trip: %v %+v", err, fromMP)
		}
	})
}

func FuzzDecodeAggTradeBatch(f *testing.F) {
	f.Add([]byte("[" + binanceAggTrade + "," + binanceAggTrade + "]"))
	f.Add([]byte(binanceAggTrade + "\r\n\n" + binanceAggTrade + "\n"))
	f.Add([]byte(`[{"s":"A"},42,"x",{"s":"B","a":1,"p":"1","q":"2","T":3}]`))
	f.Add([]byte(`[{"s":"A","a":1,"p":"1","q":"2","T":3},`))
	f.Add([]byte("{\"s\":\"A\"}\n{garbage\n{\"s\":\"B\",\"a\":1,\"p\":\"1\",\"q\":\"2\",\"T\":3} x\n"))
	f.Add([]byte(`hello`))
	f.Add([]byte(`  `))
	f.Fuzz(func(t *testing.T, body []byte) {
		next := 0
		cache := NewSymbolCache(0)
		err := DecodeAggTradeBatch(body, cache, func(index int, tr *Trade, err error) error {
			if index != next {
				t.Fatalf("index %d, want %d", index, next)
			}
			next++
			if err != nil {
				checkDecodeError(t, err, len(body))
				return nil
			}
			enc := AppendAggTradeJSON(nil, tr)
			var back Trade
			if err := ParseAggTradeJSON(enc, &back, cache); err != nil || back != *tr {
				t.Fatalf("item %d round trip: %v %+v != %+v", index, err, back, *tr)
			}
			return nil
		})
		if err != nil {
			checkDecodeError(t, err, len(body))
			return
		}
		// A body accepted as a JSON array is valid JSON.
		if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' && !json.Valid(body) {
			t.Fatalf("accepted invalid JSON array %q", body)
		}
	})
}

func FuzzAggTradeCSV(f *testing.F) {
	f.Add([]byte("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n26129,0.01633102,4.70443515,27781,27781,1498793709153,True,True\n"))
	f.Add([]byte("1,0.5,2,10,12,1700000000000123,false\r\n\r\n2,1,1,-1,-1,1,true"))
	f.Add([]byte("1,NaN,2,10,12,1,true\n1,-1,2,10,12,1,true\n1,0.123456789,2,10,12,1,true\n"))
	f.Add([]byte("99999999999999999999,1,1,1,1,1,true\n1,1,1,1,1,9999999999999999999,true\n"))
	f.Add([]byte("x\n1,1\n,,,,,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newAggTradeCSVReaderSize(bytes.NewReader(data), "btcusdt", 32)
		r.File = "fuzz.csv"
		lastLine := 0
		for range 10000 {
			var tr Trade
			err := r.Next(&tr)
			if err == io.EOF {
				return
			}
			if r.Line() < lastLine {
				t.Fatalf("line went back from %d to %d", lastLine, r.Line())
			}
			lastLine = r.Line()
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.File != "fuzz.csv" || pe.Line != r.Line() {
					t.Fatalf("bad error %#v", err)
				}
				continue
			}
			if tr.Symbol != "BTCUSDT" || tr.Time >= microsThreshold {
				t.Fatalf("bad trade %+v", tr)
			}
			line := AppendAggTradeCSV(nil, &tr)
			r2 := newAggTradeCSVReaderSize(bytes.NewReader(line), "BTCUSDT", 16)
			var back Trade
			if err := r2.Next(&back); err != nil || back != tr {
				t.Fatalf("round trip via %q: %v %+v != %+v", line, err, back, tr)
			}
		}
		t.Fatal("more than 10000 rows from a fuzz input")
	})
}

func FuzzDecodeTradeBatchMsgpack(f *testing.F) {
	tb := TradeBatch{Seq: 77, Trades: edgeTrades(f)}
	f.Add(AppendTradeBatchMsgpack(nil, &tb))
	f.Add(AppendTradeBatchMsgpack(nil, &TradeBatch{}))
	one := sampleTrade(f)
	f.Add(AppendTradeBatchMsgpack(nil, &TradeBatch{Seq: 1, Trades: []Trade{one}}))
	f.Add([]byte{0x94, 0x01, 0x00, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x99})
	f.Add([]byte{0x94, 0x00, 0x00, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x90})
	f.Fuzz(func(t *testing.T, data []byte) {
		var got TradeBatch
		if err := DecodeTradeBatchMsgpack(data, &got); err != nil {
			checkDecodeError(t, err, len(data))
			return
		}
		enc := AppendTradeBatchMsgpack(nil, &got)
		// Decode again into a batch that already holds other trades, to
		// exercise capacity and symbol reuse.
		back := TradeBatch{Trades: append(make([]Trade, 0, len(got.Trades)+3), Trade{Symbol: "OTHER"}, sampleTrade(t))}
		if err := DecodeTradeBatchMsgpack(enc, &back); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if back.Seq != got.Seq || len(back.Trades) != len(got.Trades) {
			t.Fatalf("round trip: seq %d/%d len %d/%d", back.Seq, got.Seq, len(back.Trades), len(got.Trades))
		}
		for i := range got.Trades {
			if back.Trades[i] != got.Trades[i] {
				t.Fatalf("trade %d: %+v != %+v", i, back.Trades[i], got.Trades[i])
			}
		}
		if !bytes.Equal(AppendTradeBatchMsgpack(nil, &back), enc) {
			t.Fatal("encoding not stable")
		}
	})
}

func FuzzDecodeKlineMsgpack(f *testing.F) {
	for _, k := range edgeKlines(f) {
		f.Add(AppendKlineMsgpack(nil, &k))
	}
	k := sampleKline(f)
	f.Add(AppendKlineMsgpack(nil, &k)[:40])
	f.Add([]byte{0xdc, 0x00, 0x12, 0xd9, 0x01, 'X'})
	f.Fuzz(func(t *testing.T, data []byte) {
		var got Kline
		rest, err := DecodeKlineMsgpack(data, &got)
		if err != nil {
			checkDecodeError(t, err, len(data))
			return
		}
		if !bytes.HasSuffix(data, rest) || len(rest) >= len(data) {
			t.Fatalf("rest is not a proper suffix")
		}
		enc := AppendKlineMsgpack(nil, &got)
		var back Kline
		if rest, err := DecodeKlineMsgpack(enc, &back); err != nil || len(rest) != 0 {
			t.Fatalf("re-decode: %v (rest %d)", err, len(rest))
		}
		// Compare encodings, not structs: NaN floats are never == themselves.
		if !bytes.Equal(AppendKlineMsgpack(nil, &back), enc) {
			t.Fatalf("round trip: %+v != %+v", back, got)
		}
		if math.Float64bits(back.QuoteVolume) != math.Float64bits(got.QuoteVolume) {
			t.Fatal("float bits changed")
		}
	})
}

func FuzzParseKlineEventJSON(f *testing.F) {
	f.Add([]byte(binanceKlineEvent))
	for i, k := range edgeKlines(f) {
		if k.Interval.Valid() {
			f.Add(AppendKlineEventJSON(nil, &k, 1700000000000, uint64(i)))
		}
	}
	f.Add([]byte(strings.Replace(binanceKlineEvent, `"s":"BNBBTC","k"`, `"s":"bnbbtc","seq":5,"k"`, 1)))
	f.Add([]byte(`{"e":"kline","k":{"t":1,"T":2,"s":"A","i":"1M","o":"1","c":"1","h":"1","l":"1","v":"1","n":1,"x":true,"q":"1e5","V":"1","Q":"1"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k Kline
		e, seq, err := ParseKlineEventJSON(data, &k, nil)
		if err != nil {
			checkDecodeError(t, err, len(data))
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		if !k.Interval.Valid() || math.IsNaN(k.QuoteVolume) || math.IsInf(k.QuoteVolume, 0) || k.QuoteVolume < 0 {
			t.Fatalf("accepted bad values %+v", k)
		}
		enc := AppendKlineEventJSON(nil, &k, e, seq)
		var back Kline
		e2, seq2, err := ParseKlineEventJSON(enc, &back, NewSymbolCache(0))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", enc, err)
		}
		if back != k || e2 != e || seq2 != seq {
			t.Fatalf("round trip: %+v (E %d seq %d) != %+v (E %d seq %d)\nvia %s", back, e2, seq2, k, e, seq, enc)
		}
		// The row and CSV forms keep everything they carry.
		want := k
		want.FirstTradeID, want.LastTradeID, want.Closed = NoTradeID, NoTradeID, true
		var row Kline
		if err := ParseKlineRowJSON(AppendKlineRowJSON(nil, &k), &row, k.Symbol, k.Interval); err != nil || row != want {
			t.Fatalf("row round trip: %v %+v", err, row)
		}
		if k.OpenTime >= 0 && k.OpenTime < microsThreshold && k.CloseTime >= 0 && k.CloseTime < microsThreshold {
			var csv Kline
			if err := ParseKlineCSV(AppendKlineCSV(nil, &k), k.Symbol, k.Interval, &csv); err != nil || csv != want {
				t.Fatalf("csv round trip: %v %+v", err, csv)
			}
		}
	})
}

// checkDecodeError asserts err is a *DecodeError with a sane offset and a
// message that says where.
func checkDecodeError(t *testing.T, err error, n int) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("%T is not a *DecodeError: %v", err, err)
	}
	if de.Offset < 0 || de.Offset > n {
		t.Fatalf("offset %d outside input of %d bytes: %v", de.Offset, n, err)
	}
	if de.Err == nil || !strings.Contains(err.Error(), "byte") {
		t.Fatalf("error lacks position or cause: %v", err)
	}
}
