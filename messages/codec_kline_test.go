package messages

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/klinecast/klinecast/internal/testkit"
)

// Binance's documented /api/v3/klines row.
const binanceKlineRow = `[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"]`

const binanceKlineEvent = `{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}`

func TestKlineEventJSON(t *testing.T) {
	want := Kline{Symbol: "BNBBTC", Interval: Interval1m, OpenTime: 1672515780000, CloseTime: 1672515839999,
		Open: 100000, Close: 200000, High: 250000, Low: 150000, Volume: Decimal128{Lo: 1000e8}, TradeCount: 100,
		QuoteVolume: 1, TakerBuyVolume: Decimal128{Lo: 500e8}, TakerBuyQuoteVolume: 0.5, FirstTradeID: 100, LastTradeID: 200}
	var k Kline
	e, seq, err := ParseKlineEventJSON([]byte(binanceKlineEvent), &k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k != want || e != 1672515782136 || seq != 0 {
		t.Fatalf("got %+v E %d seq %d", k, e, seq)
	}

	// Our own output, with seq, parses back; it is valid JSON with Binance's keys.
	for i, k := range edgeKlines(t) {
		if !k.Interval.Valid() {
			continue
		}
		b := AppendKlineEventJSON(nil, &k, 1700000000001, uint64(i)*1e18)
		if !json.Valid(b) {
			t.Fatalf("%d: invalid JSON %s", i, b)
		}
		var got Kline
		e, seq, err := ParseKlineEventJSON(b, &got, NewSymbolCache(0))
		if err != nil {
			t.Fatalf("%d: %v\n%s", i, err, b)
		}
		if got != k || e != 1700000000001 || seq != uint64(i)*1e18 {
			t.Fatalf("%d: got %+v E %d seq %d\nwant %+v\n%s", i, got, e, seq, k, b)
		}
		if i == 0 && strings.Contains(string(b), `"seq"`) {
			t.Fatalf("seq 0 not omitted: %s", b)
		}
	}

	k = sampleKline(t)
	got := string(AppendKlineEventJSON(nil, &k, 1499040000123, 77))
	wantJSON := `{"e":"kline","E":1499040000123,"s":"BTCUSDT","seq":77,"k":{"t":1499040000000,"T":1499040059999,"s":"BTCUSDT","i":"1m","f":100,"L":407,"o":"0.01634790","c":"0.01577100","h":"0.80000000","l":"0.01575800","v":"148976.11427815","n":308,"x":true,"q":"2434.19055334","V":"1756.87402397","Q":"28.46694368","B":"0"}}`
	if got != wantJSON {
		t.Fatalf("got  %s\nwant %s", got, wantJSON)
	}
}

func TestParseKlineEventJSONVariants(t *testing.T) {
	// Symbol only at the top level / only inside, lower case; f/L absent.
	in := strings.Replace(binanceKlineEvent, `"s":"BNBBTC","i"`, `"i"`, 1)
	var k Kline
	if _, _, err := ParseKlineEventJSON([]byte(in), &k, nil); err != nil || k.Symbol != "BNBBTC" {
		t.Fatalf("outer symbol only: %v %q", err, k.Symbol)
	}
	in = strings.Replace(binanceKlineEvent, `"s":"BNBBTC","k"`, `"k"`, 1)
	in = strings.Replace(in, `"s":"BNBBTC"`, `"s":"bnbbtc"`, 1)
	in = strings.Replace(in, `"f":100,"L":200,`, ``, 1)
	if _, _, err := ParseKlineEventJSON([]byte(in), &k, nil); err != nil || k.Symbol != "BNBBTC" || k.FirstTradeID != NoTradeID || k.LastTradeID != NoTradeID {
		t.Fatalf("inner symbol only: %v %+v", err, k)
	}
}

func TestParseKlineEventJSONErrors(t *testing.T) {
	rep := func(old, new string) string { return strings.Replace(binanceKlineEvent, old, new, 1) }
	tests := []struct {
		name    string
		in      string
		field   string
		wantErr error
	}{
		{"empty", "", "", ErrTruncated},
		{"array", "[]", "", ErrWrongType},
		{"truncated", binanceKlineEvent[:100], "k", ErrTruncated},
		{"wrong event", rep(`"e":"kline"`, `"e":"aggTrade"`), "e", ErrBadValue},
		{"missing k", `{"e":"kline","s":"A"}`, "k", ErrMissingField},
		{"k not object", `{"e":"kline","k":[1]}`, "k", ErrWrongType},
		{"missing symbol", strings.Replace(rep(`"s":"BNBBTC","k"`, `"k"`), `"s":"BNBBTC",`, ``, 1), "s", ErrMissingField},
		{"symbol mismatch", rep(`"s":"BNBBTC","k"`, `"s":"ETHBTC","k"`), "s", ErrBadValue},
		{"missing open", rep(`"o":"0.0010",`, ``), "k.o", ErrMissingField},
		{"missing x", rep(`"x":false,`, ``), "k.x", ErrMissingField},
		{"duplicate h", rep(`"h":"0.0025"`, `"h":"0.0025","h":"1"`), "k.h", ErrDuplicateField},
		{"open as number", rep(`"o":"0.0010"`, `"o":0.0010`), "k.o", ErrWrongType},
		{"open NaN", rep(`"o":"0.0010"`, `"o":"NaN"`), "k.o", ErrDecimalNotFinite},
		{"high negative", rep(`"h":"0.0025"`, `"h":"-0.0025"`), "k.h", ErrDecimalNegative},
		{"low 9 digits", rep(`"l":"0.0015"`, `"l":"0.000000001"`), "k.l", ErrDecimalPrecision},
		{"volume oversized", rep(`"v":"1000"`, `"v":"1`+strings.Repeat("0", 40)+`"`), "k.v", ErrDecimalRange},
		{"quote Infinity", rep(`"q":"1.0000"`, `"q":"Infinity"`), "k.q", ErrDecimalSyntax},
		{"quote exponent", rep(`"q":"1.0000"`, `"q":"1e3"`), "k.q", ErrDecimalSyntax},
		{"quote 9 digits", rep(`"q":"1.0000"`, `"q":"0.123456789"`), "k.q", ErrDecimalPrecision},
		{"quote negative", rep(`"Q":"0.500"`, `"Q":"-0.5"`), "k.Q", ErrDecimalSyntax},
		{"quote overflow", rep(`"Q":"0.500"`, `"Q":"1`+strings.Repeat("0", 400)+`"`), "k.Q", ErrDecimalRange},
		{"quote as number", rep(`"Q":"0.500"`, `"Q":0.5`), "k.Q", ErrWrongType},
		{"bad interval", rep(`"i":"1m"`, `"i":"2m"`), "k.i", ErrUnknownInterval},
		{"count as string", rep(`"n":100`, `"n":"100"`), "k.n", ErrWrongType},
		{"x as string", rep(`"x":false`, `"x":"false"`), "k.x", ErrWrongType},
		{"seq negative", rep(`"e":"kline"`, `"e":"kline","seq":-1`), "seq", ErrNumberRange},
		{"seq oversized", rep(`"e":"kline"`, `"e":"kline","seq":18446744073709551616`), "seq", ErrNumberRange},
		{"trailing", binanceKlineEvent + "}", "", ErrTrailingData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k Kline
			_, _, err := ParseKlineEventJSON([]byte(tc.in), &k, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != tc.field || de.Offset < 0 || de.Offset > len(tc.in) {
				t.Fatalf("bad DecodeError (want field %q): %#v", tc.field, err)
			}
		})
	}
}

func TestKlineRowJSON(t *testing.T) {
	want := sampleKline(t)
	want.CloseTime = 1499644799999
	want.FirstTradeID, want.LastTradeID = NoTradeID, NoTradeID
	var k Kline
	if err := ParseKlineRowJSON([]byte(binanceKlineRow), &k, "BTCUSDT", Interval1m); err != nil {
		t.Fatal(err)
	}
	if k != want {
		t.Fatalf("got  %+v\nwant %+v", k, want)
	}
	if got := string(AppendKlineRowJSON(nil, &k)); got != binanceKlineRow {
		t.Fatalf("got  %s\nwant %s", got, binanceKlineRow)
	}
	// Whitespace is fine.
	spaced := " [ 1499040000000 , \"0.01634790\",\"0.80000000\",\"0.01575800\",\"0.01577100\",\"148976.11427815\",1499644799999,\"2434.19055334\",308,\"1756.87402397\",\"28.46694368\",\"0\" ]\n"
	if err := ParseKlineRowJSON([]byte(spaced), &k, "BTCUSDT", Interval1m); err != nil || k != want {
		t.Fatalf("spaced: %v", err)
	}
	for i, e := range edgeKlines(t) {
		e.FirstTradeID, e.LastTradeID, e.Closed = NoTradeID, NoTradeID, true
		b := AppendKlineRowJSON(nil, &e)
		if !json.Valid(b) {
			t.Fatalf("%d: invalid JSON %s", i, b)
		}
		var got Kline
		if err := ParseKlineRowJSON(b, &got, e.Symbol, e.Interval); err != nil || got != e {
			t.Fatalf("%d: %v\ngot  %+v\nwant %+v", i, err, got, e)
		}
	}
}

func TestParseKlineRowJSONErrors(t *testing.T) {
	rep := func(old, new string) string { return strings.Replace(binanceKlineRow, old, new, 1) }
	tests := []struct {
		name    string
		in      string
		field   string
		wantErr error
	}{
		{"object", `{}`, "", ErrWrongType},
		{"empty array", `[]`, "open_time", ErrWrongType},
		{"11 elements", rep(`,"0"]`, `]`), "ignore", ErrSyntax},
		{"13 elements", rep(`,"0"]`, `,"0",1]`), "", ErrSyntax},
		{"open_time string", rep(`1499040000000`, `"1499040000000"`), "open_time", ErrWrongType},
		{"open number", rep(`"0.01634790"`, `0.01634790`), "open", ErrWrongType},
		{"close NaN", rep(`"0.01577100"`, `"NaN"`), "close", ErrDecimalNotFinite},
		{"volume negative", rep(`"148976.11427815"`, `"-1"`), "volume", ErrDecimalNegative},
		{"count fraction", rep(`308`, `308.5`), "count", ErrWrongType},
		{"quote volume Infinity", rep(`"2434.19055334"`, `"Infinity"`), "quote_volume", ErrDecimalSyntax},
		{"truncated", binanceKlineRow[:50], "low", ErrTruncated},
		{"trailing", binanceKlineRow + ",", "", ErrTrailingData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k Kline
			err := ParseKlineRowJSON([]byte(tc.in), &k, "X", Interval1m)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Field != tc.field {
				t.Fatalf("bad DecodeError (want field %q): %v", tc.field, err)
			}
		})
	}
}

func TestKlineCSV(t *testing.T) {
	line := "1499040000000,0.01634790,0.80000000,0.01575800,0.01577100,148976.11427815,1499644799999,2434.19055334,308,1756.87402397,28.46694368,0\n"
	want := sampleKline(t)
	want.CloseTime = 1499644799999
	want.FirstTradeID, want.LastTradeID = NoTradeID, NoTradeID
	var k Kline
	for _, in := range []string{line, strings.TrimSuffix(line, "\n"), strings.TrimSuffix(line, "\n") + "\r\n"} {
		if err := ParseKlineCSV([]byte(in), "BTCUSDT", Interval1m, &k); err != nil {
			t.Fatal(err)
		}
		if k != want {
			t.Fatalf("got  %+v\nwant %+v", k, want)
		}
	}
	if got := string(AppendKlineCSV(nil, &k)); got != line {
		t.Fatalf("got  %q\nwant %q", got, line)
	}
	// µs times (Binance's 2025+ spot files).
	us := strings.Replace(strings.Replace(line, "1499040000000", "1499040000000000", 1), "1499644799999", "1499644799999999", 1)
	if err := ParseKlineCSV([]byte(us), "BTCUSDT", Interval1m, &k); err != nil || k != want {
		t.Fatalf("µs: %v %+v", err, k)
	}
	for i, e := range edgeKlines(t) {
		e.FirstTradeID, e.LastTradeID, e.Closed = NoTradeID, NoTradeID, true
		if e.OpenTime >= microsThreshold || e.CloseTime >= microsThreshold {
			continue
		}
		var got Kline
		if err := ParseKlineCSV(AppendKlineCSV(nil, &e), e.Symbol, e.Interval, &got); err != nil || got != e {
			t.Fatalf("%d: %v\ngot  %+v\nwant %+v", i, err, got, e)
		}
	}
	if !IsCSVHeader([]byte(KlineCSVHeader)) || IsCSVHeader([]byte(line)) {
		t.Fatal("IsCSVHeader")
	}
}

func TestParseKlineCSVErrors(t *testing.T) {
	line := "1499040000000,0.01634790,0.80000000,0.01575800,0.01577100,148976.11427815,1499644799999,2434.19055334,308,1756.87402397,28.46694368,0"
	col := func(i int, v string) string {
		f := strings.Split(line, ",")
		f[i] = v
		return strings.Join(f, ",")
	}
	tests := []struct {
		name    string
		in      string
		field   string
		wantErr error
	}{
		{"header", strings.TrimSpace(KlineCSVHeader), "open_time", ErrSyntax},
		{"11 columns", line[:strings.LastIndex(line, ",")], "", ErrSyntax},
		{"open_time", col(0, "x"), "open_time", ErrSyntax},
		{"open_time ns", col(0, "1499040000000000000"), "open_time", ErrNumberRange},
		{"open NaN", col(1, "NaN"), "open", ErrDecimalNotFinite},
		{"high negative", col(2, "-1"), "high", ErrDecimalNegative},
		{"low 9 digits", col(3, "0.000000001"), "low", ErrDecimalPrecision},
		{"close empty", col(4, ""), "close", ErrDecimalSyntax},
		{"volume", col(5, "1e5"), "volume", ErrDecimalSyntax},
		{"close_time", col(6, "99999999999999999999"), "close_time", ErrNumberRange},
		{"quote_volume", col(7, "inf"), "quote_volume", ErrDecimalSyntax},
		{"count", col(8, "3.5"), "count", ErrSyntax},
		{"taker_buy_volume", col(9, "-0"), "taker_buy_volume", ErrDecimalNegative},
		{"taker_buy_quote_volume", col(10, ""), "taker_buy_quote_volume", ErrDecimalSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var k Kline
			err := ParseKlineCSV([]byte(tc.in), "X", Interval1m, &k)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("bad ParseError (want field %q): %#v", tc.field, err)
			}
			pe.File, pe.Line = "BTCUSDT-1m.csv", 9
			if want := "BTCUSDT-1m.csv:9: "; !strings.HasPrefix(pe.Error(), want) {
				t.Fatalf("%q", pe.Error())
			}
		})
	}
}

// Decimal128 volumes beyond Decimal's range survive every text format.
func TestKlineHugeVolumeText(t *testing.T) {
	k := sampleKline(t)
	k.Volume = mustDec128(t, "12345678901234567890123.45678901")
	b := AppendKlineCSV(nil, &k)
	if !strings.Contains(string(b), ",12345678901234567890123.45678901,") {
		t.Fatalf("%s", b)
	}
	var got Kline
	if err := ParseKlineCSV(b, k.Symbol, k.Interval, &got); err != nil || got.Volume != k.Volume {
		t.Fatalf("%v %v", err, got.Volume)
	}
}

func BenchmarkKlineEventJSON(b *testing.B) {
	k := sampleKline(b)
	buf := AppendKlineEventJSON(nil, &k, 1, 2)
	b.Run("append", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendKlineEventJSON(buf[:0], &k, 1, 2)
		}
	})
	b.Run("parse", func(b *testing.B) {
		in := AppendKlineEventJSON(nil, &k, 1, 2)
		cache := NewSymbolCache(0)
		var out Kline
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := ParseKlineEventJSON(in, &out, cache); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkKlineRowJSON(b *testing.B) {
	in := []byte(binanceKlineRow)
	var k Kline
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseKlineRowJSON(in, &k, "BTCUSDT", Interval1m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKlineCSV(b *testing.B) {
	k := sampleKline(b)
	line := AppendKlineCSV(nil, &k)
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendKlineCSV(buf[:0], &k)
		}
	})
	b.Run("parse", func(b *testing.B) {
		var out Kline
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			if err := ParseKlineCSV(line, "BTCUSDT", Interval1m, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAppendFloat8HasNoFloatNoise(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0.00000000"},
		{1, "1.00000000"},
		{123456789.123, "123456789.12300000"}, // 'f',8 of the binary value: 123456789.12299999
		{2434.19055334, "2434.19055334"},
		{0.1 + 0.2, "0.30000000"}, // shortest form 0.30000000000000004: rounded to 8
		{1e-8, "0.00000001"},
		{98765432101.5, "98765432101.50000000"},
	}
	for _, tt := range tests {
		if got := string(appendFloat8(nil, tt.v)); got != tt.want {
			t.Errorf("appendFloat8(%v) = %s, want %s", tt.v, got, tt.want)
		}
	}
	// At most the buffer itself (if it escapes): never a second allocation.
	const runs = 100
	if n := testkit.Allocs(func() { appendFloat8(make([]byte, 0, 32), 123456789.123) }, runs); n > runs {
		t.Errorf("appendFloat8: %d allocations in %d calls, want at most 1 per call", n, runs)
	}
}
