package messages

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klinecast/klinecast/internal/testkit"
)

func readAllCSV(t *testing.T, in string, symbol string) ([]Trade, []error) {
	t.Helper()
	r := NewAggTradeCSVReader(strings.NewReader(in), symbol)
	r.File = "f.csv"
	var trades []Trade
	var errs []error
	for range 1000 {
		var tr Trade
		err := r.Next(&tr)
		if err == io.EOF {
			return trades, errs
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		trades = append(trades, tr)
	}
	t.Fatal("no EOF")
	return nil, nil
}

func TestAggTradeCSVReader(t *testing.T) {
	row := Trade{Symbol: "BTCUSDT", AggID: 26129, Price: 1633102, Quantity: 470443515, FirstID: 27781, LastID: 27781, Time: 1498793709153, BuyerMaker: true}
	row2 := Trade{Symbol: "BTCUSDT", AggID: 26130, Price: 1633102, Quantity: 100000000, FirstID: 27782, LastID: 27790, Time: 1498793709154}
	tests := []struct {
		name string
		in   string
		want []Trade
	}{
		{"no header, 8 columns, True/False", "26129,0.01633102,4.70443515,27781,27781,1498793709153,True,True\n26130,0.01633102,1,27782,27790,1498793709154,False,True\n", []Trade{row, row2}},
		{"header, 7 columns, lower-case", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n26129,0.01633102,4.70443515,27781,27781,1498793709153,true\n26130,0.01633102,1.00000000,27782,27790,1498793709154,false\n", []Trade{row, row2}},
		{"CRLF, no final newline", "26129,0.01633102,4.70443515,27781,27781,1498793709153,true\r\n26130,0.01633102,1,27782,27790,1498793709154,false", []Trade{row, row2}},
		{"µs timestamps", "26129,0.01633102,4.70443515,27781,27781,1498793709153123,true,true\n26130,0.01633102,1,27782,27790,1498793709154999,false,true\n", []Trade{row, row2}},
		{"blank lines", "\n\r\n26129,0.01633102,4.70443515,27781,27781,1498793709153,true\n\n26130,0.01633102,1,27782,27790,1498793709154,false\n\n", []Trade{row, row2}},
		{"empty file", "", nil},
		{"header only", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\r\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := readAllCSV(t, tc.in, "btcusdt")
			if len(errs) != 0 {
				t.Fatal(errs)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAggTradeCSVReaderErrors(t *testing.T) {
	good := "1,0.5,2,10,12,1700000000000,true"
	tests := []struct {
		name    string
		row     string
		field   string
		wantErr error
	}{
		{"too few columns", "1,0.5,2,10,12,1700000000000", "", ErrSyntax},
		{"too many columns", good + ",true,x", "", ErrSyntax},
		{"bad id", "x1,0.5,2,10,12,1700000000000,true", "agg_trade_id", ErrSyntax},
		{"id overflow", "99999999999999999999,0.5,2,10,12,1700000000000,true", "agg_trade_id", ErrNumberRange},
		{"price NaN", "1,NaN,2,10,12,1700000000000,true", "price", ErrDecimalNotFinite},
		{"price negative", "1,-0.5,2,10,12,1700000000000,true", "price", ErrDecimalNegative},
		{"price 9 digits", "1,0.123456789,2,10,12,1700000000000,true", "price", ErrDecimalPrecision},
		{"price empty", "1,,2,10,12,1700000000000,true", "price", ErrDecimalSyntax},
		{"quantity exponent", "1,0.5,1e3,10,12,1700000000000,true", "quantity", ErrDecimalSyntax},
		{"quantity quoted", `1,0.5,"2",10,12,1700000000000,true`, "quantity", ErrDecimalSyntax},
		{"first id", "1,0.5,2,ten,12,1700000000000,true", "first_trade_id", ErrSyntax},
		{"last id", "1,0.5,2,10,,1700000000000,true", "last_trade_id", ErrSyntax},
		{"time", "1,0.5,2,10,12,17e11,true", "transact_time", ErrSyntax},
		{"time in ns", "1,0.5,2,10,12,1700000000000000000,true", "transact_time", ErrNumberRange},
		{"bool", "1,0.5,2,10,12,1700000000000,yes", "is_buyer_maker", ErrSyntax},
		{"bool TRUE", "1,0.5,2,10,12,1700000000000,TRUE", "is_buyer_maker", ErrSyntax},
		{"best match", "1,0.5,2,10,12,1700000000000,true,1", "is_best_match", ErrSyntax},
		{"spaces", "1, 0.5,2,10,12,1700000000000,true", "price", ErrDecimalSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bad row is on line 3 after a header and a good row; the
			// reader carries on after it.
			in := "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n" + good + "\n" + tc.row + "\r\n" + good + "\n"
			got, errs := readAllCSV(t, in, "X")
			if len(got) != 2 || len(errs) != 1 {
				t.Fatalf("got %d trades, errors %v", len(got), errs)
			}
			err := errs[0]
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != 3 || pe.Field != tc.field || pe.File != "f.csv" {
				t.Fatalf("bad ParseError %#v", err)
			}
			prefix := "f.csv:3: "
			if tc.field != "" {
				prefix += tc.field + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("message %q lacks prefix %q", err.Error(), prefix)
			}
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    ParseError
		want string
	}{
		{ParseError{File: "a.csv", Line: 7, Field: "price", Err: ErrSyntax}, "a.csv:7: price: messages: syntax error"},
		{ParseError{Line: 7, Field: "price", Err: ErrSyntax}, "line 7: price: messages: syntax error"},
		{ParseError{File: "a.csv", Err: ErrSyntax}, "a.csv: messages: syntax error"},
		{ParseError{Field: "open", Err: ErrSyntax}, "open: messages: syntax error"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q want %q", got, tc.want)
		}
	}
}

// Lines longer than the bufio buffer, and a reader that returns one byte
// at a time, still work.
func TestAggTradeCSVReaderLongLinesAndSlowReader(t *testing.T) {
	long := "1,0.5" + strings.Repeat("0", aggTradeCSVBufSize) + ",2,10,12,1700000000000,true\n"
	in := long + "2,0.5,2,10,12,1700000000000,false\n"
	r := NewAggTradeCSVReader(iotest.OneByteReader(strings.NewReader(in)), "X")
	var tr Trade
	if err := r.Next(&tr); err != nil || tr.Price != 50000000 {
		t.Fatalf("long line: %v %+v", err, tr)
	}
	if err := r.Next(&tr); err != nil || tr.AggID != 2 || r.Line() != 2 {
		t.Fatalf("after long line: %v %+v line %d", err, tr, r.Line())
	}
	if err := r.Next(&tr); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	// A read error is reported with the line it happened on.
	boom := errors.New("boom")
	r = NewAggTradeCSVReader(io.MultiReader(strings.NewReader("1,0.5,2,10,12,1700000000000,true\n"), iotest.ErrReader(boom)), "X")
	if err := r.Next(&tr); err != nil {
		t.Fatal(err)
	}
	if err := r.Next(&tr); !errors.Is(err, boom) {
		t.Fatalf("want boom, got %v", err)
	}
}

func TestAggTradeCSVRoundTrip(t *testing.T) {
	var buf []byte
	var want []Trade
	for _, tr := range edgeTrades(t) {
		if tr.Symbol == "" {
			continue
		}
		tr.Symbol = "ETHUSDT"
		tr.EventTime = 0
		if tr.Time >= microsThreshold || tr.AggID < 0 {
			continue // µs-looking times are converted by design
		}
		want = append(want, tr)
		buf = AppendAggTradeCSV(buf, &tr)
	}
	got, errs := readAllCSV(t, string(buf), "ethusdt")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v\n%s", got, want, buf)
	}
	tr := sampleTrade(t)
	if line := string(AppendAggTradeCSV(nil, &tr)); line != "3012345678,42283.58000000,0.00123000,4100000000,4100000004,1700000000123,true,true\n" {
		t.Fatalf("line %q", line)
	}
}

func TestAggTradeCSVAllocs(t *testing.T) {
	tr := sampleTrade(t)
	var data []byte
	for range 2000 {
		data = AppendAggTradeCSV(data, &tr)
	}
	r := NewAggTradeCSVReader(bytes.NewReader(data), "BTCUSDT")
	var out Trade
	testkit.RequireNoAllocs(t, "AggTradeCSVReader.Next", 1000, func() {
		if err := r.Next(&out); err != nil {
			panic(err)
		}
	})
	buf := make([]byte, 0, 256)
	testkit.RequireNoAllocs(t, "AppendAggTradeCSV", 100, func() { buf = AppendAggTradeCSV(buf[:0], &tr) })
}

func BenchmarkAggTradeCSVReader(b *testing.B) {
	tr := sampleTrade(b)
	var data []byte
	const rows = 10000
	for i := range rows {
		tr.AggID++
		tr.BuyerMaker = i%3 == 0
		data = AppendAggTradeCSV(data, &tr)
	}
	b.SetBytes(int64(len(data)) / rows)
	b.ReportAllocs()
	rd := bytes.NewReader(data)
	r := NewAggTradeCSVReader(rd, "BTCUSDT")
	var out Trade
	for b.Loop() {
		if err := r.Next(&out); err == io.EOF {
			rd.Reset(data)
			continue
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendAggTradeCSV(b *testing.B) {
	tr := sampleTrade(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAggTradeCSV(buf[:0], &tr)
	}
	b.SetBytes(int64(len(buf)))
}
