package messages

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klinecast/klinecast/internal/testkit"
)

const binanceAggTrade = `{"e":"aggTrade","E":123456789,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true,"M":true}`

func TestParseAggTradeJSON(t *testing.T) {
	want := Trade{Symbol: "BNBBTC", AggID: 12345, Price: 100000, Quantity: 100 * 1e8, FirstID: 100, LastID: 105, Time: 123456785, BuyerMaker: true, EventTime: 123456789}
	tests := []struct {
		name string
		in   string
		want Trade
	}{
		{"binance", binanceAggTrade, want},
		{"reordered keys and whitespace", " \n{ \"T\" : 123456785 , \"m\":true,\"q\":\"100\",\"p\":\"0.001\",\"a\":12345,\"s\":\"BNBBTC\",\"E\":123456789,\"l\":105,\"f\":100}\r\n", want},
		{"unknown keys skipped", `{"x":{"y":[1,2,{"z":null}],"w":"\"}"},"e":"aggTrade","E":123456789,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true,"M":true,"X":-1.5e-3}`, want},
		{"lower-case symbol", `{"s":"bnbbtc","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true,"E":123456789}`, want},
		{"escaped symbol, key and event type", `{"e":"aggTr\u0061de","\u0073":"bnb\u0062tc","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":123456785,"m":true,"E":123456789}`, want},
		{"f and l absent, m absent", `{"s":"BNBBTC","a":1,"p":"1","q":"2","T":3}`, Trade{Symbol: "BNBBTC", AggID: 1, Price: 1e8, Quantity: 2e8, FirstID: NoTradeID, LastID: NoTradeID, Time: 3}},
		{"f and l null", `{"s":"BNBBTC","a":1,"p":"1","q":"2","T":3,"f":null,"l":null}`, Trade{Symbol: "BNBBTC", AggID: 1, Price: 1e8, Quantity: 2e8, FirstID: NoTradeID, LastID: NoTradeID, Time: 3}},
		{"8 fraction digits, trailing zeros beyond", `{"s":"A","a":1,"p":"0.00000001","q":"1.1234567800","T":3}`, Trade{Symbol: "A", AggID: 1, Price: 1, Quantity: 112345678, FirstID: NoTradeID, LastID: NoTradeID, Time: 3}},
		{"max decimal", `{"s":"A","a":1,"p":"184467440737.09551615","q":"0","T":3}`, Trade{Symbol: "A", AggID: 1, Price: MaxDecimal, FirstID: NoTradeID, LastID: NoTradeID, Time: 3}},
		{"int64 extremes", `{"s":"A","a":9223372036854775807,"p":"1","q":"1","T":-9223372036854775808}`, Trade{Symbol: "A", AggID: 1<<63 - 1, Price: 1e8, Quantity: 1e8, FirstID: NoTradeID, LastID: NoTradeID, Time: -1 << 63}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, intern := range []SymbolInterner{nil, NewSymbolCache(0)} {
				var got Trade
				got.Symbol = "garbage"
				if err := ParseAggTradeJSON([]byte(tc.in), &got, intern); err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Fatalf("got  %+v\nwant %+v", got, tc.want)
				}
			}
		})
	}
}

func TestParseAggTradeJSONErrors(t *testing.T) {
	base := map[string]string{"e": `"aggTrade"`, "E": "1", "s": `"BTCUSDT"`, "a": "1", "p": `"1.5"`, "q": `"2"`, "f": "1", "l": "2", "T": "1700000000000", "m": "false"}
	with := func(k, v string) string { // base with k replaced (v == "" drops it)
		var parts []string
		for _, key := range []string{"e", "E", "s", "a", "p", "q", "f", "l", "T", "m"} {
			val := base[key]
			if key == k {
				if v == "" {
					continue
				}
				val = v
			}
			parts = append(parts, fmt.Sprintf("%q:%s", key, val))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	tests := []struct {
		name    string
		in      string
		field   string
		wantErr error
	}{
		{"empty", ``, "", ErrTruncated},
		{"not an object", `[1]`, "", ErrWrongType},
		{"truncated", `{"s":"BTCUSDT","a":1`, "", ErrTruncated},
		{"truncated string", `{"s":"BTCUS`, "s", ErrTruncated},
		{"missing colon", `{"s" "BTCUSDT"}`, "", ErrSyntax},
		{"trailing comma", `{"s":"A",}`, "", ErrSyntax},
		{"trailing data", with("", "") + `x`, "", ErrTrailingData},
		{"two objects", with("", "") + with("", ""), "", ErrTrailingData},
		{"missing s", with("s", ""), "s", ErrMissingField},
		{"missing a", with("a", ""), "a", ErrMissingField},
		{"missing p", with("p", ""), "p", ErrMissingField},
		{"missing q", with("q", ""), "q", ErrMissingField},
		{"missing T", with("T", ""), "T", ErrMissingField},
		{"duplicate p", `{"p":"1",` + with("", "")[1:], "p", ErrDuplicateField},
		{"wrong event", with("e", `"trade"`), "e", ErrBadValue},
		{"price as number", with("p", `1.5`), "p", ErrWrongType},
		{"quantity as number", with("q", `2`), "q", ErrWrongType},
		{"price null", with("p", `null`), "p", ErrWrongType},
		{"price NaN", with("p", `"NaN"`), "p", ErrDecimalNotFinite},
		{"price Infinity", with("p", `"Infinity"`), "p", ErrDecimalNotFinite},
		{"price negative", with("p", `"-1.5"`), "p", ErrDecimalNegative},
		{"price exponent", with("p", `"1e5"`), "p", ErrDecimalSyntax},
		{"price empty", with("p", `""`), "p", ErrDecimalSyntax},
		{"price 9 fraction digits", with("p", `"0.000000001"`), "p", ErrDecimalPrecision},
		{"price oversized", with("p", `"184467440737.09551616"`), "p", ErrDecimalRange},
		{"quantity huge", with("q", `"99999999999999999999999"`), "q", ErrDecimalRange},
		{"a as string", with("a", `"1"`), "a", ErrWrongType},
		{"a fractional", with("a", `1.5`), "a", ErrWrongType},
		{"a exponent", with("a", `1e3`), "a", ErrWrongType},
		{"a oversized", with("a", `9223372036854775808`), "a", ErrNumberRange},
		{"a very oversized", with("a", `99999999999999999999999999`), "a", ErrNumberRange},
		{"T leading zero", with("T", `01`), "", ErrSyntax},
		{"T negative oversized", with("T", `-9223372036854775809`), "T", ErrNumberRange},
		{"m as string", with("m", `"true"`), "m", ErrWrongType},
		{"m as 1", with("m", `1`), "m", ErrWrongType},
		{"s as number", with("s", `1`), "s", ErrWrongType},
		{"control char in symbol", with("s", "\"BTC\x01\""), "s", ErrSyntax},
		{"bad escape", with("s", `"BTC\x"`), "s", ErrSyntax},
		{"bad unknown value", `{"zz":tru}`, "zz", ErrWrongType},
		{"deep nesting", `{"zz":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "zz", ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Trade
			err := ParseAggTradeJSON([]byte(tc.in), &got, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("%T is not a *DecodeError", err)
			}
			if de.Field != tc.field {
				t.Fatalf("field %q, want %q (%v)", de.Field, tc.field, err)
			}
			if de.Offset < 0 || de.Offset > len(tc.in) {
				t.Fatalf("offset %d out of range (%v)", de.Offset, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("byte %d", de.Offset)) {
				t.Fatalf("message lacks offset: %v", err)
			}
		})
	}
}

// The offset points at the offending value.
func TestParseAggTradeJSONErrorOffset(t *testing.T) {
	in := `{"s":"BTCUSDT","a":1,"p":1.5,"q":"2","T":1}`
	err := ParseAggTradeJSON([]byte(in), new(Trade), nil)
	var de *DecodeError
	if !errors.As(err, &de) || de.Offset != strings.Index(in, "1.5") || de.Field != "p" {
		t.Fatalf("%v", err)
	}
	want := fmt.Sprintf("aggTrade JSON: field p at byte %d: messages: wrong type: want a decimal string, found a number", de.Offset)
	if err.Error() != want {
		t.Fatalf("message %q\nwant    %q", err.Error(), want)
	}
}

func TestAggTradeJSONRoundTrip(t *testing.T) {
	for i, tr := range edgeTrades(t) {
		tr.Symbol = NormalizeSymbol(tr.Symbol)
		b := AppendAggTradeJSON(nil, &tr)
		if !json.Valid(b) {
			t.Fatalf("%d: invalid JSON %s", i, b)
		}
		var got Trade
		if err := ParseAggTradeJSON(b, &got, nil); err != nil {
			t.Fatalf("%d: %v\n%s", i, err, b)
		}
		if got != tr {
			t.Fatalf("%d: got %+v want %+v\n%s", i, got, tr, b)
		}
	}
	tr := sampleTrade(t)
	tr.Symbol = "we\"ird\\sym\x01\u00e9"
	b := AppendAggTradeJSON(nil, &tr)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["s"] != tr.Symbol {
		t.Fatalf("escaping: %v %q", err, m["s"])
	}
	var got Trade
	if err := ParseAggTradeJSON(b, &got, nil); err != nil || got.Symbol != "WE\"IRD\\SYM\x01\u00e9" {
		t.Fatalf("escaped symbol: %v %q", err, got.Symbol)
	}
}

func TestAppendAggTradeJSONShape(t *testing.T) {
	tr := Trade{Symbol: "BNBBTC", AggID: 12345, Price: 100000, Quantity: 100 * 1e8, FirstID: 100, LastID: 105, Time: 123456785, BuyerMaker: true, EventTime: 123456789}
	got := string(AppendAggTradeJSON(nil, &tr))
	want := `{"e":"aggTrade","E":123456789,"s":"BNBBTC","a":12345,"p":"0.00100000","q":"100.00000000","f":100,"l":105,"T":123456785,"m":true,"M":true}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestDecodeAggTradeBatch(t *testing.T) {
	good := func(a int) string {
		return fmt.Sprintf(`{"e":"aggTrade","E":1,"s":"btcusdt","a":%d,"p":"1.5","q":"2","f":1,"l":2,"T":1700000000000,"m":false}`, a)
	}
	bad := `{"e":"aggTrade","s":"BTCUSDT","a":9,"p":1.5,"q":"2","T":1}` // p is a number
	type item struct {
		index int
		aggID int64
		field string // "" if ok
	}
	tests := []struct {
		name    string
		body    string
		want    []item
		wantErr error // structural
	}{
		{"empty", "", nil, nil},
		{"whitespace", " \n\t", nil, nil},
		{"empty array", " [ ] ", nil, nil},
		{"array", "[" + good(1) + "," + good(2) + "]", []item{{0, 1, ""}, {1, 2, ""}}, nil},
		{"array with bad item", "[" + good(1) + ",\n" + bad + "," + good(3) + "]", []item{{0, 1, ""}, {1, 0, "p"}, {2, 3, ""}}, nil},
		{"array with non-object", "[" + good(1) + `,42,"x",` + good(4) + "]", []item{{0, 1, ""}, {1, 0, ""}, {2, 0, ""}, {3, 4, ""}}, nil},
		{"array with missing field", `[{"s":"A"}]`, []item{{0, 0, "a"}}, nil},
		{"ndjson", good(1) + "\n" + good(2) + "\n", []item{{0, 1, ""}, {1, 2, ""}}, nil},
		{"ndjson crlf and blank lines", good(1) + "\r\n\r\n  \n" + good(2), []item{{0, 1, ""}, {1, 2, ""}}, nil},
		{"ndjson bad line continues", good(1) + "\n" + bad + "\n{garbage\n" + good(4) + "\n" + good(5) + " x\n", []item{{0, 1, ""}, {1, 0, "p"}, {2, 0, ""}, {3, 4, ""}, {4, 0, ""}}, nil},
		{"ndjson truncated last line", good(1) + "\n" + good(2)[:20], []item{{0, 1, ""}, {1, 0, "E"}}, nil},
		{"unterminated array", "[" + good(1) + "," + good(2), []item{{0, 1, ""}, {1, 2, ""}}, ErrTruncated},
		{"broken object in array", "[" + good(1) + `,{"s":"A" "a":1}]`, []item{{0, 1, ""}}, ErrSyntax},
		{"trailing comma", "[" + good(1) + ",]", []item{{0, 1, ""}}, ErrSyntax},
		{"missing comma", "[" + good(1) + good(2) + "]", []item{{0, 1, ""}}, ErrSyntax},
		{"data after array", "[" + good(1) + "] x", []item{{0, 1, ""}}, ErrTrailingData},
		{"not json", "hello", nil, ErrSyntax},
		{"csv", "1,2,3\n", nil, ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []item
			err := DecodeAggTradeBatch([]byte(tc.body), NewSymbolCache(0), func(index int, tr *Trade, err error) error {
				it := item{index: index}
				if err != nil {
					var de *DecodeError
					if !errors.As(err, &de) {
						t.Fatalf("item %d: %T is not a *DecodeError: %v", index, err, err)
					}
					if de.Offset < 0 || de.Offset > len(tc.body) {
						t.Fatalf("item %d: offset %d out of range", index, de.Offset)
					}
					it.field = de.Field
				} else {
					it.aggID = tr.AggID
					if tr.Symbol != "BTCUSDT" {
						t.Fatalf("symbol %q not normalised", tr.Symbol)
					}
				}
				got = append(got, it)
				return nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				var de *DecodeError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), "byte") {
					t.Fatalf("structural error without offset: %v", err)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("items %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeAggTradeBatchStopsOnCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	body := "[" + binanceAggTrade + "," + binanceAggTrade + "]"
	err := DecodeAggTradeBatch([]byte(body), nil, func(int, *Trade, error) error { n++; return stop })
	if err != stop || n != 1 {
		t.Fatalf("err %v n %d", err, n)
	}
}

func TestParseAggTradeJSONAllocs(t *testing.T) {
	cache := NewSymbolCache(0)
	var tr Trade
	for _, in := range []string{binanceAggTrade, strings.Replace(binanceAggTrade, "BNBBTC", "bnbbtc", 1)} {
		b := []byte(in)
		if err := ParseAggTradeJSON(b, &tr, cache); err != nil {
			t.Fatal(err)
		}
		testkit.RequireNoAllocs(t, "ParseAggTradeJSON "+in[:40]+"...", 200, func() {
			if err := ParseAggTradeJSON(b, &tr, cache); err != nil {
				panic(err)
			}
		})
	}
	// A batch of 100 costs no allocation per item.
	body := []byte("[" + strings.TrimSuffix(strings.Repeat(binanceAggTrade+",", 100), ",") + "]")
	fn := func(_ int, _ *Trade, err error) error { return err }
	const runs = 50
	n := testkit.Allocs(func() {
		if err := DecodeAggTradeBatch(body, cache, fn); err != nil {
			panic(err)
		}
	}, runs)
	if n > runs {
		t.Errorf("DecodeAggTradeBatch of 100: %d allocations in %d batches, want at most 1 per batch", n, runs)
	}
}

func BenchmarkParseAggTradeJSON(b *testing.B) {
	in := []byte(binanceAggTrade)
	cache := NewSymbolCache(0)
	var tr Trade
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseAggTradeJSON(in, &tr, cache); err != nil {
			b.Fatal(err)
		}
	}
}

// The reflection baseline, for comparison only.
func BenchmarkParseAggTradeEncodingJSON(b *testing.B) {
	in := []byte(binanceAggTrade)
	var v struct {
		E  string `json:"e"`
		Ev int64  `json:"E"`
		S  string `json:"s"`
		A  int64  `json:"a"`
		P  string `json:"p"`
		Q  string `json:"q"`
		F  int64  `json:"f"`
		L  int64  `json:"l"`
		T  int64  `json:"T"`
		M  bool   `json:"m"`
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := json.Unmarshal(in, &v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAggTradeJSON(b *testing.B) {
	tr := sampleTrade(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAggTradeJSON(buf[:0], &tr)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeAggTradeBatch(b *testing.B) {
	for _, form := range []string{"array", "ndjson"} {
		b.Run(form, func(b *testing.B) {
			var body []byte
			if form == "array" {
				body = []byte("[" + strings.TrimSuffix(strings.Repeat(binanceAggTrade+",", 1000), ",") + "]")
			} else {
				body = []byte(strings.Repeat(binanceAggTrade+"\n", 1000))
			}
			cache := NewSymbolCache(0)
			fn := func(_ int, _ *Trade, err error) error { return err }
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := DecodeAggTradeBatch(body, cache, fn); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
