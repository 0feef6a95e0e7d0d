package messages

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/klinecast/klinecast/internal/testkit"
)

func TestTradeMsgpackRoundTrip(t *testing.T) {
	for i, tr := range edgeTrades(t) {
		b := AppendTradeMsgpack([]byte("prefix"), &tr)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("%d: prefix clobbered", i)
		}
		b = append(b[len("prefix"):], 0xAA) // a trailing byte must come back as rest
		var got Trade
		rest, err := DecodeTradeMsgpack(b, &got)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got != tr {
			t.Fatalf("%d: got %+v want %+v", i, got, tr)
		}
		if !bytes.Equal(rest, []byte{0xAA}) {
			t.Fatalf("%d: rest = %x", i, rest)
		}
	}
}

// The documented layout, byte for byte, for one trade.
func TestTradeMsgpackGolden(t *testing.T) {
	tr := Trade{Symbol: "BTC", AggID: 1, Price: 300, Quantity: 70000, FirstID: NoTradeID, LastID: NoTradeID, Time: 1_700_000_000_000, BuyerMaker: true, EventTime: 0}
	got := hex.EncodeToString(AppendTradeMsgpack(nil, &tr))
	want := "99" + // fixarray(9)
		"a3425443" + // "BTC"
		"01" + // a
		"cd012c" + // p = 300 (uint16)
		"ce00011170" + // q = 70000 (uint32)
		"ff" + "ff" + // f, l = -1 (negative fixint)
		"cf0000018bcfe56800" + // T (uint64)
		"c3" + // m
		"00" // E
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestKlineMsgpackRoundTrip(t *testing.T) {
	for i, k := range edgeKlines(t) {
		b := AppendKlineMsgpack(nil, &k)
		var got Kline
		rest, err := DecodeKlineMsgpack(b, &got)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got != k || len(rest) != 0 {
			t.Fatalf("%d: got %+v rest %x, want %+v", i, got, rest, k)
		}
	}
}

func TestTradeBatchMsgpackRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 70000} {
		tb := TradeBatch{Seq: uint64(n) * 1e12}
		edges := edgeTrades(t)
		for i := range n {
			tb.Trades = append(tb.Trades, edges[i%len(edges)])
		}
		b := AppendTradeBatchMsgpack(nil, &tb)
		var got TradeBatch
		if err := DecodeTradeBatchMsgpack(b, &got); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got.Seq != tb.Seq || len(got.Trades) != n {
			t.Fatalf("n=%d: got seq %d len %d", n, got.Seq, len(got.Trades))
		}
		for i := range tb.Trades {
			if got.Trades[i] != tb.Trades[i] {
				t.Fatalf("n=%d: trade %d: got %+v want %+v", n, i, got.Trades[i], tb.Trades[i])
			}
		}
	}
}

func TestTradeBatchMsgpackReusesCapacity(t *testing.T) {
	src := TradeBatch{Seq: 7, Trades: []Trade{sampleTrade(t), sampleTrade(t), sampleTrade(t)}}
	b := AppendTradeBatchMsgpack(nil, &src)
	dst := TradeBatch{Trades: make([]Trade, 1, 8)}
	before := &dst.Trades[:1][0]
	if err := DecodeTradeBatchMsgpack(b, &dst); err != nil {
		t.Fatal(err)
	}
	if &dst.Trades[0] != before || len(dst.Trades) != 3 {
		t.Fatalf("capacity not reused (len %d)", len(dst.Trades))
	}
	// Shrinking: a smaller batch reuses the same array.
	small := TradeBatch{Seq: 8, Trades: src.Trades[:1]}
	if err := DecodeTradeBatchMsgpack(AppendTradeBatchMsgpack(nil, &small), &dst); err != nil {
		t.Fatal(err)
	}
	if &dst.Trades[0] != before || len(dst.Trades) != 1 || dst.Seq != 8 {
		t.Fatalf("shrink: len %d seq %d", len(dst.Trades), dst.Seq)
	}
}

// Through the reflection library: Marshal/Unmarshal of the values, of
// pointers, and nested inside other types.
func TestMsgpackLibraryRoundTrip(t *testing.T) {
	tr := sampleTrade(t)
	k := sampleKline(t)
	tb := TradeBatch{Seq: 42, Trades: edgeTrades(t)}

	for _, v := range []any{tr, &tr} {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, AppendTradeMsgpack(nil, &tr)) {
			t.Fatalf("library bytes differ from AppendTradeMsgpack")
		}
		var got Trade
		if err := msgpack.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got != tr {
			t.Fatalf("got %+v", got)
		}
	}

	b, err := msgpack.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var gotK Kline
	if err := msgpack.Unmarshal(b, &gotK); err != nil || gotK != k {
		t.Fatalf("kline: %v %+v", err, gotK)
	}

	b, err = msgpack.Marshal(&tb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, AppendTradeBatchMsgpack(nil, &tb)) {
		t.Fatalf("library batch bytes differ")
	}
	var gotB TradeBatch
	if err := msgpack.Unmarshal(b, &gotB); err != nil {
		t.Fatal(err)
	}
	if gotB.Seq != tb.Seq || len(gotB.Trades) != len(tb.Trades) {
		t.Fatalf("batch: %+v", gotB)
	}
	for i := range tb.Trades {
		if gotB.Trades[i] != tb.Trades[i] {
			t.Fatalf("batch trade %d", i)
		}
	}

	// Nested: a struct holding our types and a slice of them.
	type envelope struct {
		Name   string
		Trades []Trade
		Bar    *Kline
	}
	env := envelope{Name: "x", Trades: []Trade{tr, tr}, Bar: &k}
	b, err = msgpack.Marshal(&env)
	if err != nil {
		t.Fatal(err)
	}
	var gotEnv envelope
	if err := msgpack.Unmarshal(b, &gotEnv); err != nil {
		t.Fatal(err)
	}
	if gotEnv.Name != "x" || len(gotEnv.Trades) != 2 || gotEnv.Trades[1] != tr || *gotEnv.Bar != k {
		t.Fatalf("envelope: %+v", gotEnv)
	}

	// Garbage through the library is an error, not a panic.
	if err := msgpack.Unmarshal([]byte{0x93, 0x01, 0x02, 0x03}, &got0); err == nil {
		t.Fatal("short array accepted")
	}
}

var got0 Trade

// Bytes written by the generic library (fixed-width ints, float32, str8)
// decode too: the decoder accepts every integer form.
func TestMsgpackAcceptsOtherEncoders(t *testing.T) {
	tr := edgeTrades(t)[3]
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	// Default encoder: int64 as int64 (0xd3), uint64 as uint64 (0xcf).
	if err := enc.Encode([]any{tr.Symbol, tr.AggID, uint64(tr.Price), uint64(tr.Quantity), tr.FirstID, tr.LastID, tr.Time, tr.BuyerMaker, tr.EventTime}); err != nil {
		t.Fatal(err)
	}
	var got Trade
	if _, err := DecodeTradeMsgpack(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got != tr {
		t.Fatalf("got %+v want %+v", got, tr)
	}

	k := sampleKline(t)
	buf.Reset()
	enc.UseCompactInts(true)
	if err := enc.Encode([]any{k.Symbol, uint8(k.Interval), k.OpenTime, k.CloseTime, uint64(k.Open), uint64(k.High), uint64(k.Low), uint64(k.Close),
		k.Volume.Hi, k.Volume.Lo, float32(2.5), k.TakerBuyVolume.Hi, k.TakerBuyVolume.Lo, k.TakerBuyQuoteVolume,
		int8(k.TradeCount % 100), k.FirstTradeID, k.LastTradeID, k.Closed}); err != nil {
		t.Fatal(err)
	}
	var gk Kline
	if _, err := DecodeKlineMsgpack(buf.Bytes(), &gk); err != nil {
		t.Fatal(err)
	}
	if gk.QuoteVolume != 2.5 || gk.TradeCount != 8 || gk.Volume != k.Volume {
		t.Fatalf("got %+v", gk)
	}

	// And our bytes decode with the generic library into plain values.
	var vals []any
	if err := msgpack.Unmarshal(AppendTradeMsgpack(nil, &tr), &vals); err != nil {
		t.Fatal(err)
	}
	if len(vals) != 9 || vals[0] != tr.Symbol {
		t.Fatalf("generic decode: %v", vals)
	}
}

func TestMsgpackTruncated(t *testing.T) {
	tr := edgeTrades(t)[3]
	k := edgeKlines(t)[1]
	tb := TradeBatch{Seq: 1 << 40, Trades: edgeTrades(t)}
	cases := []struct {
		name   string
		full   []byte
		decode func([]byte) error
	}{
		{"trade", AppendTradeMsgpack(nil, &tr), func(b []byte) error { var x Trade; _, err := DecodeTradeMsgpack(b, &x); return err }},
		{"kline", AppendKlineMsgpack(nil, &k), func(b []byte) error { var x Kline; _, err := DecodeKlineMsgpack(b, &x); return err }},
		{"batch", AppendTradeBatchMsgpack(nil, &tb), func(b []byte) error { var x TradeBatch; return DecodeTradeBatchMsgpack(b, &x) }},
	}
	for _, c := range cases {
		if err := c.decode(c.full); err != nil {
			t.Fatalf("%s: full input: %v", c.name, err)
		}
		for n := range len(c.full) {
			err := c.decode(c.full[:n])
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s: prefix %d/%d: err = %v, want ErrTruncated", c.name, n, len(c.full), err)
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Offset > n {
				t.Fatalf("%s: prefix %d: bad DecodeError %#v", c.name, n, err)
			}
		}
	}
}

func TestMsgpackErrors(t *testing.T) {
	tr := sampleTrade(t)
	good := AppendTradeMsgpack(nil, &tr)
	// Offsets inside good: 0 header, 1 symbol (a7 + 7 bytes), 9 a, ...
	withByte := func(at int, c byte) []byte {
		b := bytes.Clone(good)
		b[at] = c
		return b
	}
	mOff := len(good) - len(mpAppendInt(nil, tr.EventTime)) - 1
	tests := []struct {
		name      string
		in        []byte
		wantErr   error
		wantField string
		wantOff   int
	}{
		{"empty", nil, ErrTruncated, "", 0},
		{"not an array", []byte{0x01}, ErrWrongType, "", 0},
		{"array too short", []byte{0x93, 1, 2, 3}, ErrWrongType, "", 0},
		{"array too long", append([]byte{0x9a}, good[1:]...), ErrWrongType, "", 0},
		{"symbol is int", withByte(1, 0x07), ErrWrongType, "s", 1},
		{"a is string", withByte(9, 0xa1), ErrWrongType, "a", 9},
		{"a is nil", withByte(9, mpNil), ErrWrongType, "a", 9},
		{"p negative", append(append([]byte{0x99, 0xa1, 'X', 0x01}, 0xff), good[len(good)-20:]...), ErrNumberRange, "p", 4},
		{"a overflows int64", append([]byte{0x99, 0xa1, 'X', 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0}, good[len(good)-20:]...), ErrNumberRange, "a", 3},
		{"m not bool", withByte(mOff, 0x01), ErrWrongType, "m", mOff},
		{"string length beyond input", []byte{0x99, 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, ErrTruncated, "s", 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Trade
			_, err := DecodeTradeMsgpack(tc.in, &got)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("not a *DecodeError: %T", err)
			}
			if de.Field != tc.wantField || de.Offset != tc.wantOff {
				t.Fatalf("field %q offset %d, want %q %d (%v)", de.Field, de.Offset, tc.wantField, tc.wantOff, err)
			}
			if !strings.Contains(err.Error(), "byte") {
				t.Fatalf("message lacks offset: %v", err)
			}
		})
	}
}

func TestTradeBatchMsgpackErrors(t *testing.T) {
	tb := TradeBatch{Seq: 3, Trades: []Trade{sampleTrade(t), sampleTrade(t)}}
	good := AppendTradeBatchMsgpack(nil, &tb)
	var dst TradeBatch
	// Hostile count: 2^32-1 trades announced in a tiny input.
	err := DecodeTradeBatchMsgpack([]byte{0x94, 0x01, 0x00, 0x00, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x99}, &dst)
	if !errors.Is(err, ErrTruncated) || cap(dst.Trades) != 0 {
		t.Fatalf("hostile count: %v (cap %d)", err, cap(dst.Trades))
	}
	// Trailing data.
	if err := DecodeTradeBatchMsgpack(append(bytes.Clone(good), 0), &dst); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("trailing: %v", err)
	}
	// A bad second trade names its index.
	bad := bytes.Clone(good)
	second := 5 + len(AppendTradeMsgpack(nil, &tb.Trades[0])) // fixarray, seq, two ticks, array length
	bad[second+1] = 0x05                                      // its symbol is now an int
	err = DecodeTradeBatchMsgpack(bad, &dst)
	var de *DecodeError
	if !errors.As(err, &de) || de.Field != "trades[1].s" || de.Offset != second+1 {
		t.Fatalf("bad item: %v", err)
	}
}

// TestMsgpackCorruptionNoPanic damages every byte of a kline and a trade
// batch record in turn (with bytes that are msgpack type markers) and
// decodes the result as each type. The decoders' contract (msgpack.go):
// never panic; on failure return a *DecodeError naming its format and an
// offset inside the input, wrapping one of the package's sentinels; on
// success the value is one the encoder can write, and writing it and
// decoding that gives the same value again (compared by the re-encoded
// bytes, so that a NaN quote volume compares equal to itself). Decoding
// does not validate values, so a damaged number may decode successfully.
func TestMsgpackCorruptionNoPanic(t *testing.T) {
	k := sampleKline(t)
	tb := TradeBatch{Seq: 9, Trades: edgeTrades(t)}
	inputs := [][]byte{AppendKlineMsgpack(nil, &k), AppendTradeBatchMsgpack(nil, &tb)}
	sentinels := []error{ErrTruncated, ErrWrongType, ErrSyntax, ErrMissingField, ErrDuplicateField, ErrNumberRange, ErrTrailingData, ErrBadValue}
	checkErr := func(what string, b []byte, err error) {
		t.Helper()
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("%s: error %v (%T) is not a *DecodeError", what, err, err)
		}
		if !strings.HasPrefix(de.Format, "msgpack ") || de.Offset < 0 || de.Offset > len(b) {
			t.Fatalf("%s: error %q: format %q, offset %d outside the %d-byte input", what, err, de.Format, de.Offset, len(b))
		}
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		// Decimal errors are the other documented cause.
		for _, s := range []error{ErrDecimalSyntax, ErrDecimalNegative, ErrDecimalRange, ErrDecimalPrecision, ErrDecimalNotFinite} {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("%s: error %q wraps no sentinel", what, err)
	}
	var decodedOK, failed int
	for _, in := range inputs {
		for i := range in {
			for _, c := range []byte{0x00, 0x7f, 0x90, 0xa0, 0xc0, 0xcf, 0xd3, 0xdb, 0xdc, 0xdd, 0xff} {
				b := bytes.Clone(in)
				b[i] = c
				what := fmt.Sprintf("byte %d of %d set to %#x", i, len(in), c)

				var kk Kline
				if rest, err := DecodeKlineMsgpack(b, &kk); err != nil {
					checkErr("kline, "+what, b, err)
					failed++
				} else {
					if len(rest) > len(b) {
						t.Fatalf("kline, %s: rest longer than the input", what)
					}
					enc := AppendKlineMsgpack(nil, &kk)
					var again Kline
					if r, err := DecodeKlineMsgpack(enc, &again); err != nil || len(r) != 0 || !bytes.Equal(AppendKlineMsgpack(nil, &again), enc) {
						t.Fatalf("kline, %s: decoded %+v does not round-trip (%v)", what, kk, err)
					}
					decodedOK++
				}

				var bb TradeBatch
				if err := DecodeTradeBatchMsgpack(b, &bb); err != nil {
					checkErr("batch, "+what, b, err)
					failed++
				} else {
					enc := AppendTradeBatchMsgpack(nil, &bb)
					var again TradeBatch
					if err := DecodeTradeBatchMsgpack(enc, &again); err != nil || !bytes.Equal(AppendTradeBatchMsgpack(nil, &again), enc) {
						t.Fatalf("batch, %s: decoded %+v does not round-trip (%v)", what, bb, err)
					}
					decodedOK++
				}

				var tt Trade
				if _, err := DecodeTradeMsgpack(b, &tt); err != nil {
					checkErr("trade, "+what, b, err)
					failed++
				} else {
					enc := AppendTradeMsgpack(nil, &tt)
					var again Trade
					if r, err := DecodeTradeMsgpack(enc, &again); err != nil || len(r) != 0 || again != tt {
						t.Fatalf("trade, %s: decoded %+v does not round-trip (%v)", what, tt, err)
					}
					decodedOK++
				}
			}
		}
	}
	// Both outcomes occur: damage to a value's bytes often still decodes,
	// damage to the framing never does.
	if decodedOK == 0 || failed == 0 {
		t.Fatalf("%d decoded, %d failed: the corruption does not exercise both paths", decodedOK, failed)
	}
}

func TestMsgpackAllocs(t *testing.T) {
	tr := sampleTrade(t)
	k := sampleKline(t)
	tb := TradeBatch{Seq: 1, Trades: make([]Trade, 100)}
	for i := range tb.Trades {
		tb.Trades[i] = tr
		tb.Trades[i].AggID += int64(i)
	}
	buf := make([]byte, 0, 1<<16)
	cache := NewSymbolCache(0)

	tradeBytes := AppendTradeMsgpack(nil, &tr)
	klineBytes := AppendKlineMsgpack(nil, &k)
	batchBytes := AppendTradeBatchMsgpack(nil, &tb)
	var dt Trade
	var dk Kline
	var db TradeBatch

	checks := []struct {
		name string
		fn   func()
	}{
		{"AppendTradeMsgpack", func() { buf = AppendTradeMsgpack(buf[:0], &tr) }},
		{"AppendKlineMsgpack", func() { buf = AppendKlineMsgpack(buf[:0], &k) }},
		{"AppendTradeBatchMsgpack", func() { buf = AppendTradeBatchMsgpack(buf[:0], &tb) }},
		{"DecodeTradeMsgpackInterned", func() {
			dt = Trade{}
			if _, err := DecodeTradeMsgpackInterned(tradeBytes, &dt, cache); err != nil {
				panic(err)
			}
		}},
		{"DecodeKlineMsgpackInterned", func() {
			dk = Kline{}
			if _, err := DecodeKlineMsgpackInterned(klineBytes, &dk, cache); err != nil {
				panic(err)
			}
		}},
		// Without an interner the symbol already in place is reused.
		{"DecodeTradeMsgpack reuse", func() {
			if _, err := DecodeTradeMsgpack(tradeBytes, &dt); err != nil {
				panic(err)
			}
		}},
		{"DecodeTradeBatchMsgpack steady state", func() {
			if err := DecodeTradeBatchMsgpack(batchBytes, &db); err != nil {
				panic(err)
			}
		}},
	}
	for _, c := range checks {
		c.fn() // warm up: grow db, fill the cache
		testkit.RequireNoAllocs(t, c.name, 100, c.fn)
	}
	if dk != k || dt != tr {
		t.Fatal("decoded values differ")
	}
}

func TestSymbolCacheLimit(t *testing.T) {
	c := NewSymbolCache(2)
	for _, s := range []string{"A", "B", "C", "A"} {
		if got := c.Intern([]byte(s)); got != s {
			t.Fatalf("Intern(%q) = %q", s, got)
		}
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	var zero SymbolCache
	if zero.Intern([]byte("X")) != "X" || zero.Len() != 1 {
		t.Fatal("zero value unusable")
	}
}

func TestMsgpackFloatBits(t *testing.T) {
	k := sampleKline(t)
	k.QuoteVolume = math.NaN()
	k.TakerBuyQuoteVolume = math.Inf(-1)
	var got Kline
	if _, err := DecodeKlineMsgpack(AppendKlineMsgpack(nil, &k), &got); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(got.QuoteVolume) || !math.IsInf(got.TakerBuyQuoteVolume, -1) {
		t.Fatalf("float bits not preserved: %v %v", got.QuoteVolume, got.TakerBuyQuoteVolume)
	}
}

func BenchmarkAppendTradeMsgpack(b *testing.B) {
	tr := sampleTrade(b)
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendTradeMsgpack(buf[:0], &tr)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeTradeMsgpack(b *testing.B) {
	tr := sampleTrade(b)
	in := AppendTradeMsgpack(nil, &tr)
	cache := NewSymbolCache(0)
	var out Trade
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		out.Symbol = ""
		if _, err := DecodeTradeMsgpackInterned(in, &out, cache); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendKlineMsgpack(b *testing.B) {
	k := sampleKline(b)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendKlineMsgpack(buf[:0], &k)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeKlineMsgpack(b *testing.B) {
	k := sampleKline(b)
	in := AppendKlineMsgpack(nil, &k)
	cache := NewSymbolCache(0)
	var out Kline
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		out.Symbol = ""
		if _, err := DecodeKlineMsgpackInterned(in, &out, cache); err != nil {
			b.Fatal(err)
		}
	}
}

// Per-trade cost of a 1000-trade WAL record.
func BenchmarkTradeBatchMsgpack(b *testing.B) {
	tb := TradeBatch{Seq: 1, Trades: make([]Trade, 1000)}
	for i := range tb.Trades {
		tb.Trades[i] = sampleTrade(b)
		tb.Trades[i].AggID += int64(i)
	}
	in := AppendTradeBatchMsgpack(nil, &tb)
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, len(in))
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendTradeBatchMsgpack(buf[:0], &tb)
		}
	})
	b.Run("decode", func(b *testing.B) {
		var out TradeBatch
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeTradeBatchMsgpack(in, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
