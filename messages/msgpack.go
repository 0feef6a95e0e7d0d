package messages

// Hand-written msgpack codecs for Trade, Kline and TradeBatch.
//
// They exist because the WAL and the publisher encode every trade and every
// bar update: reflection-based encoding costs allocations and map lookups per
// value, this costs neither. The same bytes are produced and accepted by
// github.com/vmihailenco/msgpack/v5 through the CustomEncoder/CustomDecoder
// methods at the end of this file.
//
// # Byte format
//
// Each value is a msgpack array of its fields in a fixed order (no field
// names, so a new field is a new array length and must be handled explicitly
// by a future decoder; today's decoders reject any other length).
//
//	Trade      fixarray(9)  [s, a, p, q, f, l, T, m, E]
//	  s  str     Symbol
//	  a  int     AggID
//	  p  uint    Price (Decimal, 1e-8 units)
//	  q  uint    Quantity (Decimal, 1e-8 units)
//	  f  int     FirstID (NoTradeID = -1 when unknown)
//	  l  int     LastID
//	  T  int     Time (ms)
//	  m  bool    BuyerMaker
//	  E  int     EventTime (ms, 0 if unknown)
//
//	Kline      array16(18)  [symbol, interval, open_time, close_time,
//	                         open, high, low, close,
//	                         volume_hi, volume_lo, quote_volume,
//	                         taker_buy_volume_hi, taker_buy_volume_lo,
//	                         taker_buy_quote_volume,
//	                         count, first_trade_id, last_trade_id, closed]
//	  symbol                       str
//	  interval                     uint (0..255; the Interval code, not its name)
//	  open_time, close_time        int (ms)
//	  open, high, low, close       uint (Decimal)
//	  volume_hi, volume_lo         uint, uint (Decimal128 Hi and Lo words)
//	  quote_volume                 float64
//	  taker_buy_volume_hi/_lo      uint, uint (Decimal128)
//	  taker_buy_quote_volume       float64
//	  count, first_trade_id,
//	  last_trade_id                int
//	  closed                       bool
//
//	TradeBatch fixarray(4)  [seq uint, tick_before int, tick_after int,
//	                         trades array(n) of Trade]
//
// Integers are written in the smallest msgpack form (positive fixint,
// uint8/16/32/64 for non-negative values; negative fixint, int8/16/32/64 for
// negative ones), so WAL records stay small: a BTCUSDT trade is 57 bytes,
// against ~165 as aggTrade JSON. Decoders accept every integer form whose
// value fits the field (vmihailenco's default fixed-width int64/uint64
// included), float32 or float64 for floats, and fixstr or str8/16/32 for the
// symbol, so bytes written by other msgpack encoders decode too.
// Floats are always written as float64. Decoding never panics: truncated or
// mistyped input yields a *DecodeError naming the field and byte offset.
//
// Decoding does not validate the values (a zero price decodes fine): that is
// Trade.Validate's job, and keeping the codec symmetric means everything the
// encoder can write, the decoder reads back bit for bit.

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// msgpack type codes used here (https://github.com/msgpack/msgpack/blob/master/spec.md).
const (
	mpNil      = 0xc0
	mpFalse    = 0xc2
	mpTrue     = 0xc3
	mpFloat32  = 0xca
	mpFloat64  = 0xcb
	mpUint8    = 0xcc
	mpUint16   = 0xcd
	mpUint32   = 0xce
	mpUint64   = 0xcf
	mpInt8     = 0xd0
	mpInt16    = 0xd1
	mpInt32    = 0xd2
	mpInt64    = 0xd3
	mpStr8     = 0xd9
	mpStr16    = 0xda
	mpStr32    = 0xdb
	mpArray16  = 0xdc
	mpArray32  = 0xdd
	mpFixArray = 0x90
	mpFixStr   = 0xa0
)

// Array lengths of the three records.
const (
	tradeMsgpackFields = 9
	klineMsgpackFields = 18
	batchMsgpackFields = 4
)

// minTradeMsgpackSize is the smallest possible encoded Trade (array header,
// empty symbol, seven one-byte ints and a bool). A batch header announcing
// more trades than len(rest)/minTradeMsgpackSize is rejected before any
// allocation, so a hostile 5-byte input cannot make the decoder allocate
// gigabytes.
const minTradeMsgpackSize = 1 + 1 + 7 + 1

// ---- encoding ----

func mpAppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, mpUint32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpUint64), v)
	}
}

func mpAppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return mpAppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v)) // negative fixint 0xe0..0xff
	case v >= math.MinInt8:
		return append(b, mpInt8, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, mpInt16), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, mpInt32), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, mpInt64), uint64(v))
	}
}

func mpAppendFloat(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, mpFloat64), math.Float64bits(v))
}

func mpAppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, mpTrue)
	}
	return append(b, mpFalse)
}

func mpAppendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, mpFixStr|byte(n))
	case n <= math.MaxUint8:
		b = append(b, mpStr8, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, mpStr16), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, mpStr32), uint32(n))
	}
	return append(b, s...)
}

func mpAppendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, mpFixArray|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, mpArray16), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, mpArray32), uint32(n))
	}
}

// AppendTradeMsgpack appends the msgpack encoding of t (see the byte format
// above) to b. It does not allocate when b has room for 70 bytes plus the
// symbol.
func AppendTradeMsgpack(b []byte, t *Trade) []byte {
	b = append(b, mpFixArray|tradeMsgpackFields)
	b = mpAppendStr(b, t.Symbol)
	b = mpAppendInt(b, t.AggID)
	b = mpAppendUint(b, uint64(t.Price))
	b = mpAppendUint(b, uint64(t.Quantity))
	b = mpAppendInt(b, t.FirstID)
	b = mpAppendInt(b, t.LastID)
	b = mpAppendInt(b, t.Time)
	b = mpAppendBool(b, t.BuyerMaker)
	return mpAppendInt(b, t.EventTime)
}

// AppendTradeBatchMsgpack appends the msgpack encoding of tb to b.
func AppendTradeBatchMsgpack(b []byte, tb *TradeBatch) []byte {
	b = append(b, mpFixArray|batchMsgpackFields)
	b = mpAppendUint(b, tb.Seq)
	b = mpAppendInt(b, tb.TickBefore)
	b = mpAppendInt(b, tb.TickAfter)
	b = mpAppendArrayLen(b, len(tb.Trades))
	for i := range tb.Trades {
		b = AppendTradeMsgpack(b, &tb.Trades[i])
	}
	return b
}

// AppendKlineMsgpack appends the msgpack encoding of k to b.
func AppendKlineMsgpack(b []byte, k *Kline) []byte {
	b = append(b, mpArray16, 0, klineMsgpackFields)
	b = mpAppendStr(b, k.Symbol)
	b = mpAppendUint(b, uint64(k.Interval))
	b = mpAppendInt(b, k.OpenTime)
	b = mpAppendInt(b, k.CloseTime)
	b = mpAppendUint(b, uint64(k.Open))
	b = mpAppendUint(b, uint64(k.High))
	b = mpAppendUint(b, uint64(k.Low))
	b = mpAppendUint(b, uint64(k.Close))
	b = mpAppendUint(b, k.Volume.Hi)
	b = mpAppendUint(b, k.Volume.Lo)
	b = mpAppendFloat(b, k.QuoteVolume)
	b = mpAppendUint(b, k.TakerBuyVolume.Hi)
	b = mpAppendUint(b, k.TakerBuyVolume.Lo)
	b = mpAppendFloat(b, k.TakerBuyQuoteVolume)
	b = mpAppendInt(b, k.TradeCount)
	b = mpAppendInt(b, k.FirstTradeID)
	b = mpAppendInt(b, k.LastTradeID)
	return mpAppendBool(b, k.Closed)
}

// ---- decoding ----

// mpDec is a cursor over msgpack input. It lives on the caller's stack; its
// methods return bare values and build a *DecodeError only on failure.
type mpDec struct {
	b      []byte
	i      int
	format string
}

func (d *mpDec) fail(field string, at int, err error) error {
	return &DecodeError{Format: d.format, Field: field, Offset: at, Err: err}
}

func (d *mpDec) truncated(field string) error { return d.fail(field, len(d.b), ErrTruncated) }

func (d *mpDec) wrongType(field string, at int, want string) error {
	return d.fail(field, at, fmt.Errorf("%w: want %s, found msgpack code 0x%02x", ErrWrongType, want, d.b[at]))
}

// need reports whether n more bytes follow position i.
func (d *mpDec) need(n int) bool { return len(d.b)-d.i >= n }

// be reads an n-byte big-endian unsigned integer (n is 1, 2, 4 or 8; the
// caller checked that n bytes follow).
func (d *mpDec) be(n int) uint64 {
	p := d.b[d.i:]
	d.i += n
	switch n {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	default:
		return binary.BigEndian.Uint64(p)
	}
}

// integer reads any msgpack integer as its two's-complement bits plus
// whether it is negative.
func (d *mpDec) integer(field string) (v uint64, neg bool, err error) {
	if !d.need(1) {
		return 0, false, d.truncated(field)
	}
	at := d.i
	c := d.b[at]
	if c <= 0x7f {
		d.i++
		return uint64(c), false, nil
	}
	if c >= 0xe0 {
		d.i++
		return uint64(int64(int8(c))), true, nil
	}
	var n int
	switch c {
	case mpUint8, mpInt8:
		n = 1
	case mpUint16, mpInt16:
		n = 2
	case mpUint32, mpInt32:
		n = 4
	case mpUint64, mpInt64:
		n = 8
	default:
		return 0, false, d.wrongType(field, at, "an integer")
	}
	if !d.need(n + 1) {
		d.i = len(d.b)
		return 0, false, d.truncated(field)
	}
	d.i++
	v = d.be(n)
	if c >= mpInt8 { // signed: sign-extend
		shift := uint(64 - 8*n)
		s := int64(v<<shift) >> shift
		return uint64(s), s < 0, nil
	}
	return v, false, nil
}

func (d *mpDec) uint(field string) (uint64, error) {
	// Fast path, inlined: positive fixint.
	if d.i < len(d.b) && d.b[d.i] <= 0x7f {
		d.i++
		return uint64(d.b[d.i-1]), nil
	}
	return d.uintSlow(field)
}

func (d *mpDec) uintSlow(field string) (uint64, error) {
	at := d.i
	v, neg, err := d.integer(field)
	if err != nil {
		return 0, err
	}
	if neg {
		return 0, d.fail(field, at, fmt.Errorf("%w: negative value %d for an unsigned field", ErrNumberRange, int64(v)))
	}
	return v, nil
}

func (d *mpDec) int(field string) (int64, error) {
	// Fast path, inlined: positive and negative fixint.
	if d.i < len(d.b) {
		if c := d.b[d.i]; c <= 0x7f || c >= 0xe0 {
			d.i++
			return int64(int8(c)), nil
		}
	}
	return d.intSlow(field)
}

func (d *mpDec) intSlow(field string) (int64, error) {
	at := d.i
	v, neg, err := d.integer(field)
	if err != nil {
		return 0, err
	}
	if !neg && v > math.MaxInt64 {
		return 0, d.fail(field, at, fmt.Errorf("%w: %d does not fit int64", ErrNumberRange, v))
	}
	return int64(v), nil
}

func (d *mpDec) float(field string) (float64, error) {
	if !d.need(1) {
		return 0, d.truncated(field)
	}
	at := d.i
	switch d.b[at] {
	case mpFloat64:
		d.i++
		if !d.need(8) {
			return 0, d.truncated(field)
		}
		return math.Float64frombits(d.be(8)), nil
	case mpFloat32:
		d.i++
		if !d.need(4) {
			return 0, d.truncated(field)
		}
		return float64(math.Float32frombits(uint32(d.be(4)))), nil
	}
	return 0, d.wrongType(field, at, "a float")
}

func (d *mpDec) bool(field string) (bool, error) {
	if !d.need(1) {
		return false, d.truncated(field)
	}
	switch d.b[d.i] {
	case mpTrue:
		d.i++
		return true, nil
	case mpFalse:
		d.i++
		return false, nil
	}
	return false, d.wrongType(field, d.i, "a bool")
}

// str returns a view of the string bytes inside the input.
func (d *mpDec) str(field string) ([]byte, error) {
	if !d.need(1) {
		return nil, d.truncated(field)
	}
	at := d.i
	c := d.b[at]
	var n uint64
	switch {
	case c&0xe0 == mpFixStr:
		d.i++
		n = uint64(c & 0x1f)
	case c == mpStr8, c == mpStr16, c == mpStr32:
		w := 1 << (c - mpStr8) // 1, 2, 4 length bytes
		d.i++
		if !d.need(w) {
			return nil, d.truncated(field)
		}
		n = d.be(w)
	default:
		return nil, d.wrongType(field, at, "a string")
	}
	if uint64(len(d.b)-d.i) < n {
		return nil, d.truncated(field)
	}
	s := d.b[d.i : d.i+int(n)]
	d.i += int(n)
	return s, nil
}

func (d *mpDec) arrayLen(field string) (int, error) {
	if !d.need(1) {
		return 0, d.truncated(field)
	}
	at := d.i
	c := d.b[at]
	switch {
	case c&0xf0 == mpFixArray:
		d.i++
		return int(c & 0x0f), nil
	case c == mpArray16, c == mpArray32:
		w := 2 << (c - mpArray16) // 2 or 4 length bytes
		d.i++
		if !d.need(w) {
			return 0, d.truncated(field)
		}
		return int(d.be(w)), nil
	}
	return 0, d.wrongType(field, at, "an array")
}

// header reads an array header and checks its length.
func (d *mpDec) header(field string, want int) error {
	at := d.i
	n, err := d.arrayLen(field)
	if err != nil {
		return err
	}
	if n != want {
		return d.fail(field, at, fmt.Errorf("%w: array of %d fields, want %d", ErrWrongType, n, want))
	}
	return nil
}

// symbol decodes the symbol string. hint and hint2 are strings the caller
// expects (the symbol that occupied the same slot before, the previous
// trade's): when the bytes match one it is reused, which makes decoding
// allocation-free in steady state even without an interner.
func (d *mpDec) symbol(field string, intern SymbolInterner, hint, hint2 string) (string, error) {
	s, err := d.str(field)
	if err != nil {
		return "", err
	}
	if hint != "" && bytesEqualString(s, hint) {
		return hint, nil
	}
	if hint2 != "" && bytesEqualString(s, hint2) {
		return hint2, nil
	}
	return internBytes(intern, s), nil
}

func (d *mpDec) trade(t *Trade, intern SymbolInterner, hint, hint2 string) error {
	if err := d.header("", tradeMsgpackFields); err != nil {
		return err
	}
	var err error
	if t.Symbol, err = d.symbol("s", intern, hint, hint2); err != nil {
		return err
	}
	if t.AggID, err = d.int("a"); err != nil {
		return err
	}
	var u uint64
	if u, err = d.uint("p"); err != nil {
		return err
	}
	t.Price = Decimal(u)
	if u, err = d.uint("q"); err != nil {
		return err
	}
	t.Quantity = Decimal(u)
	if t.FirstID, err = d.int("f"); err != nil {
		return err
	}
	if t.LastID, err = d.int("l"); err != nil {
		return err
	}
	if t.Time, err = d.int("T"); err != nil {
		return err
	}
	if t.BuyerMaker, err = d.bool("m"); err != nil {
		return err
	}
	t.EventTime, err = d.int("E")
	return err
}

// DecodeTradeMsgpack decodes one Trade from the start of b and returns the
// bytes after it. Only the symbol string allocates; use
// DecodeTradeMsgpackInterned to avoid that too. On error *t is partially
// written and must not be used.
func DecodeTradeMsgpack(b []byte, t *Trade) (rest []byte, err error) {
	return DecodeTradeMsgpackInterned(b, t, nil)
}

// DecodeTradeMsgpackInterned is DecodeTradeMsgpack with a symbol interner
// (nil allocates a string per call unless t.Symbol already holds the same symbol).
func DecodeTradeMsgpackInterned(b []byte, t *Trade, intern SymbolInterner) (rest []byte, err error) {
	d := mpDec{b: b, format: "msgpack trade"}
	if err := d.trade(t, intern, t.Symbol, ""); err != nil {
		return b, err
	}
	return b[d.i:], nil
}

// DecodeTradeBatchMsgpack decodes a whole TradeBatch record; b must hold
// exactly one. tb.Trades' capacity is reused, and so are the symbol strings
// already in it and the previous trade's symbol, so decoding the same
// symbols over and over allocates nothing once tb has grown.
func DecodeTradeBatchMsgpack(b []byte, tb *TradeBatch) error {
	return DecodeTradeBatchMsgpackInterned(b, tb, nil)
}

// DecodeTradeBatchMsgpackInterned is DecodeTradeBatchMsgpack with a symbol interner.
func DecodeTradeBatchMsgpackInterned(b []byte, tb *TradeBatch, intern SymbolInterner) error {
	d := mpDec{b: b, format: "msgpack trade batch"}
	if err := d.header("", batchMsgpackFields); err != nil {
		return err
	}
	seq, err := d.uint("seq")
	if err != nil {
		return err
	}
	before, err := d.int("tick_before")
	if err != nil {
		return err
	}
	after, err := d.int("tick_after")
	if err != nil {
		return err
	}
	at := d.i
	n, err := d.arrayLen("trades")
	if err != nil {
		return err
	}
	if n > (len(d.b)-d.i)/minTradeMsgpackSize {
		return d.fail("trades", at, fmt.Errorf("%w: %d trades announced, only %d bytes follow", ErrTruncated, n, len(d.b)-d.i))
	}
	// prev views the old contents (symbols to reuse) before they are overwritten.
	prev := tb.Trades[:cap(tb.Trades)]
	if n > cap(tb.Trades) {
		tb.Trades = make([]Trade, n)
	} else {
		tb.Trades = tb.Trades[:n]
	}
	tb.Seq, tb.TickBefore, tb.TickAfter = seq, before, after
	d.format = "msgpack trade batch item"
	for i := range n {
		// Reuse the symbol that sat in this slot before, or else the
		// previous trade's (a batch is usually one symbol).
		hint := ""
		if i < len(prev) {
			hint = prev[i].Symbol
		}
		hint2 := ""
		if i > 0 {
			hint2 = tb.Trades[i-1].Symbol
		}
		if err := d.trade(&tb.Trades[i], intern, hint, hint2); err != nil {
			var de *DecodeError
			if asDecodeError(err, &de) {
				if de.Field == "" {
					de.Field = fmt.Sprintf("trades[%d]", i)
				} else {
					de.Field = fmt.Sprintf("trades[%d].%s", i, de.Field)
				}
			}
			return err
		}
	}
	if d.i != len(d.b) {
		return d.fail("", d.i, fmt.Errorf("%w: %d bytes after the batch", ErrTrailingData, len(d.b)-d.i))
	}
	return nil
}

// asDecodeError is errors.As for our own concrete type without reflection.
func asDecodeError(err error, target **DecodeError) bool {
	de, ok := err.(*DecodeError)
	if ok {
		*target = de
	}
	return ok
}

// DecodeKlineMsgpack decodes one Kline from the start of b and returns the
// bytes after it. Only the symbol allocates (and not when k.Symbol already
// holds the same one); see DecodeKlineMsgpackInterned.
func DecodeKlineMsgpack(b []byte, k *Kline) (rest []byte, err error) {
	return DecodeKlineMsgpackInterned(b, k, nil)
}

// DecodeKlineMsgpackInterned is DecodeKlineMsgpack with a symbol interner.
func DecodeKlineMsgpackInterned(b []byte, k *Kline, intern SymbolInterner) (rest []byte, err error) {
	d := mpDec{b: b, format: "msgpack kline"}
	if err := d.kline(k, intern); err != nil {
		return b, err
	}
	return b[d.i:], nil
}

func (d *mpDec) kline(k *Kline, intern SymbolInterner) error {
	if err := d.header("", klineMsgpackFields); err != nil {
		return err
	}
	var err error
	if k.Symbol, err = d.symbol("symbol", intern, k.Symbol, ""); err != nil {
		return err
	}
	at := d.i
	u, err := d.uint("interval")
	if err != nil {
		return err
	}
	if u > math.MaxUint8 {
		return d.fail("interval", at, fmt.Errorf("%w: interval code %d", ErrNumberRange, u))
	}
	k.Interval = Interval(u)
	if k.OpenTime, err = d.int("open_time"); err != nil {
		return err
	}
	if k.CloseTime, err = d.int("close_time"); err != nil {
		return err
	}
	for _, f := range [...]struct {
		name string
		dst  *Decimal
	}{{"open", &k.Open}, {"high", &k.High}, {"low", &k.Low}, {"close", &k.Close}} {
		if u, err = d.uint(f.name); err != nil {
			return err
		}
		*f.dst = Decimal(u)
	}
	if k.Volume.Hi, err = d.uint("volume_hi"); err != nil {
		return err
	}
	if k.Volume.Lo, err = d.uint("volume_lo"); err != nil {
		return err
	}
	if k.QuoteVolume, err = d.float("quote_volume"); err != nil {
		return err
	}
	if k.TakerBuyVolume.Hi, err = d.uint("taker_buy_volume_hi"); err != nil {
		return err
	}
	if k.TakerBuyVolume.Lo, err = d.uint("taker_buy_volume_lo"); err != nil {
		return err
	}
	if k.TakerBuyQuoteVolume, err = d.float("taker_buy_quote_volume"); err != nil {
		return err
	}
	if k.TradeCount, err = d.int("count"); err != nil {
		return err
	}
	if k.FirstTradeID, err = d.int("first_trade_id"); err != nil {
		return err
	}
	if k.LastTradeID, err = d.int("last_trade_id"); err != nil {
		return err
	}
	k.Closed, err = d.bool("closed")
	return err
}

// ---- github.com/vmihailenco/msgpack/v5 integration ----
//
// The library calls these when a Trade, Kline or TradeBatch is marshalled
// directly or as part of a larger value. They write and read exactly the
// bytes of the Append/Decode functions above. Encoding uses value receivers
// so that msgpack.Marshal(trade) works on non-addressable values too.

var (
	_ msgpack.CustomEncoder = Trade{}
	_ msgpack.CustomDecoder = (*Trade)(nil)
	_ msgpack.CustomEncoder = Kline{}
	_ msgpack.CustomDecoder = (*Kline)(nil)
	_ msgpack.CustomEncoder = TradeBatch{}
	_ msgpack.CustomDecoder = (*TradeBatch)(nil)
)

// EncodeMsgpack implements msgpack.CustomEncoder.
func (t Trade) EncodeMsgpack(e *msgpack.Encoder) error {
	var buf [96]byte
	_, err := e.Writer().Write(AppendTradeMsgpack(buf[:0], &t))
	return err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (t *Trade) DecodeMsgpack(dec *msgpack.Decoder) error {
	raw, err := dec.DecodeRaw()
	if err != nil {
		return fmt.Errorf("messages: msgpack trade: %w", err)
	}
	rest, err := DecodeTradeMsgpack(raw, t)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return &DecodeError{Format: "msgpack trade", Offset: len(raw) - len(rest), Err: ErrTrailingData}
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (k Kline) EncodeMsgpack(e *msgpack.Encoder) error {
	var buf [192]byte
	_, err := e.Writer().Write(AppendKlineMsgpack(buf[:0], &k))
	return err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (k *Kline) DecodeMsgpack(dec *msgpack.Decoder) error {
	raw, err := dec.DecodeRaw()
	if err != nil {
		return fmt.Errorf("messages: msgpack kline: %w", err)
	}
	rest, err := DecodeKlineMsgpack(raw, k)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return &DecodeError{Format: "msgpack kline", Offset: len(raw) - len(rest), Err: ErrTrailingData}
	}
	return nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (tb TradeBatch) EncodeMsgpack(e *msgpack.Encoder) error {
	_, err := e.Writer().Write(AppendTradeBatchMsgpack(nil, &tb))
	return err
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (tb *TradeBatch) DecodeMsgpack(dec *msgpack.Decoder) error {
	raw, err := dec.DecodeRaw()
	if err != nil {
		return fmt.Errorf("messages: msgpack trade batch: %w", err)
	}
	return DecodeTradeBatchMsgpack(raw, tb)
}
