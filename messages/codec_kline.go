package messages

import (
	"fmt"
	"strconv"
)

// The three Binance kline shapes:
//
//	WS event   {"e":"kline","E":E,"s":"BTCUSDT","seq":N,"k":{"t":..,"T":..,"s":"BTCUSDT","i":"1m",
//	            "f":..,"L":..,"o":"..","c":"..","h":"..","l":"..","v":"..","n":..,"x":false,
//	            "q":"..","V":"..","Q":"..","B":"0"}}
//	REST row   [open_time,"open","high","low","close","volume",close_time,"quote_volume",count,
//	            "taker_buy_volume","taker_buy_quote_volume","0"]
//	CSV line   open_time,open,high,low,close,volume,close_time,quote_volume,count,
//	           taker_buy_volume,taker_buy_quote_volume,ignore
//
// Prices and volumes are written exactly with 8 fraction digits
// (Decimal.Append, Decimal128.Append); quote volumes, which are float64 sums,
// with strconv 'f' and 8 fraction digits, as Binance prints them. "seq" is
// klinecast's extension (SPEC §5), omitted when 0. The row and CSV shapes
// carry no symbol, interval, trade ids or is_closed: their parsers take the
// symbol and interval as arguments, set the ids to NoTradeID and Closed to
// true (Binance's files hold closed bars only; for a REST response the
// caller knows whether the last row is the open bar).

const klineEventFormat = "kline event JSON"

// AppendKlineEventJSON appends k as a Binance kline WebSocket event.
// eventTime is "E" (ms); seq is the stream sequence, omitted when 0.
func AppendKlineEventJSON(b []byte, k *Kline, eventTime int64, seq uint64) []byte {
	b = append(b, `{"e":"kline","E":`...)
	b = strconv.AppendInt(b, eventTime, 10)
	b = append(b, `,"s":`...)
	b = appendJSONString(b, k.Symbol)
	if seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, seq, 10)
	}
	b = append(b, `,"k":{"t":`...)
	b = strconv.AppendInt(b, k.OpenTime, 10)
	b = append(b, `,"T":`...)
	b = strconv.AppendInt(b, k.CloseTime, 10)
	b = append(b, `,"s":`...)
	b = appendJSONString(b, k.Symbol)
	b = append(b, `,"i":"`...)
	b = append(b, k.Interval.String()...)
	b = append(b, `","f":`...)
	b = strconv.AppendInt(b, k.FirstTradeID, 10)
	b = append(b, `,"L":`...)
	b = strconv.AppendInt(b, k.LastTradeID, 10)
	b = append(b, `,"o":"`...)
	b = k.Open.Append(b)
	b = append(b, `","c":"`...)
	b = k.Close.Append(b)
	b = append(b, `","h":"`...)
	b = k.High.Append(b)
	b = append(b, `","l":"`...)
	b = k.Low.Append(b)
	b = append(b, `","v":"`...)
	b = k.Volume.Append(b)
	b = append(b, `","n":`...)
	b = strconv.AppendInt(b, k.TradeCount, 10)
	if k.Closed {
		b = append(b, `,"x":true,"q":"`...)
	} else {
		b = append(b, `,"x":false,"q":"`...)
	}
	b = appendFloat8(b, k.QuoteVolume)
	b = append(b, `","V":"`...)
	b = k.TakerBuyVolume.Append(b)
	b = append(b, `","Q":"`...)
	b = appendFloat8(b, k.TakerBuyQuoteVolume)
	return append(b, `","B":"0"}}`...)
}

// Bits of the kline body fields seen.
const (
	kSeenOpenTime uint32 = 1 << iota
	kSeenCloseTime
	kSeenSymbol
	kSeenInterval
	kSeenFirst
	kSeenLast
	kSeenOpen
	kSeenClose
	kSeenHigh
	kSeenLow
	kSeenVolume
	kSeenCount
	kSeenClosed
	kSeenQuote
	kSeenTakerVolume
	kSeenTakerQuote
	kSeenIgnore
	kRequired = kSeenOpenTime | kSeenCloseTime | kSeenInterval | kSeenOpen | kSeenClose | kSeenHigh |
		kSeenLow | kSeenVolume | kSeenCount | kSeenClosed | kSeenQuote | kSeenTakerVolume | kSeenTakerQuote
)

var klineBodyFieldNames = [...]string{"k.t", "k.T", "k.s", "k.i", "k.f", "k.L", "k.o", "k.c", "k.h", "k.l", "k.v", "k.n", "k.x", "k.q", "k.V", "k.Q", "k.B"}

// ParseKlineEventJSON parses a kline WebSocket event (as written by
// AppendKlineEventJSON or Binance) into k and returns its "E" and "seq" (0
// when absent). The symbol may be given at the top level, in "k" or both
// (they must then agree); it is upper-cased. "f"/"L" are optional
// (NoTradeID), "B" and unknown keys are ignored. Errors are *DecodeError
// values naming the field ("k.o", "seq", ...) and byte offset.
func ParseKlineEventJSON(b []byte, k *Kline, intern SymbolInterner) (eventTime int64, seq uint64, err error) {
	s := jsonScan{b: b, format: klineEventFormat}
	s.ws()
	objAt := s.i
	if err := s.openObject(""); err != nil {
		return 0, 0, err
	}
	*k = Kline{FirstTradeID: NoTradeID, LastTradeID: NoTradeID}
	var outerSym string
	var outerSymAt int
	var seen uint8 // 1 e, 2 E, 4 s, 8 seq, 16 k
	var kseen uint32
	var keyBuf [32]byte
	first := true
	for {
		key, keyAt, more, err := s.nextKey("", &first, &keyBuf)
		if err != nil {
			return 0, 0, err
		}
		if !more {
			break
		}
		var bit uint8
		var name string
		switch string(key) {
		case "e":
			bit, name = 1, "e"
			err = s.eventType(name, "kline")
		case "E":
			bit, name = 2, "E"
			eventTime, err = s.int64(name)
		case "s":
			bit, name = 4, "s"
			outerSymAt = s.i
			outerSym, err = s.symbol(name, intern)
		case "seq":
			bit, name = 8, "seq"
			seq, err = s.uint64(name)
		case "k":
			bit, name = 16, "k"
			kseen, err = s.klineBody(k, intern)
		default:
			if err = s.skipValue("", 0); err != nil {
				if de, ok := err.(*DecodeError); ok {
					de.Field = string(key)
				}
			}
		}
		if err != nil {
			return 0, 0, err
		}
		if seen&bit != 0 {
			return 0, 0, s.fail(name, keyAt, ErrDuplicateField)
		}
		seen |= bit
	}
	innerSym := kseen&kSeenSymbol != 0
	outerHas := seen&4 != 0
	switch {
	case seen&16 == 0:
		return 0, 0, s.fail("k", objAt, ErrMissingField)
	case !innerSym && !outerHas:
		return 0, 0, s.fail("s", objAt, ErrMissingField)
	case !innerSym:
		k.Symbol = outerSym
	case outerHas && outerSym != k.Symbol:
		return 0, 0, s.fail("s", outerSymAt, fmt.Errorf("%w: symbol %q differs from k.s %q", ErrBadValue, outerSym, k.Symbol))
	}
	s.ws()
	if s.i != len(b) {
		return 0, 0, s.fail("", s.i, fmt.Errorf("%w after the object", ErrTrailingData))
	}
	return eventTime, seq, nil
}

// klineBody parses the "k" object and reports which fields it saw.
func (s *jsonScan) klineBody(k *Kline, intern SymbolInterner) (uint32, error) {
	objAt := s.i
	if err := s.openObject("k"); err != nil {
		return 0, err
	}
	var seen uint32
	var keyBuf [32]byte
	first := true
	for {
		key, keyAt, more, err := s.nextKey("k", &first, &keyBuf)
		if err != nil {
			return 0, err
		}
		if !more {
			break
		}
		if len(key) != 1 {
			if err := s.skipValue("k", 0); err != nil {
				return 0, err
			}
			continue
		}
		var bit uint32
		switch key[0] {
		case 't':
			bit = kSeenOpenTime
			k.OpenTime, err = s.int64("k.t")
		case 'T':
			bit = kSeenCloseTime
			k.CloseTime, err = s.int64("k.T")
		case 's':
			bit = kSeenSymbol
			k.Symbol, err = s.symbol("k.s", intern)
		case 'i':
			bit = kSeenInterval
			k.Interval, err = s.interval("k.i")
		case 'f':
			bit = kSeenFirst
			if !s.null() {
				k.FirstTradeID, err = s.int64("k.f")
			}
		case 'L':
			bit = kSeenLast
			if !s.null() {
				k.LastTradeID, err = s.int64("k.L")
			}
		case 'o':
			bit = kSeenOpen
			k.Open, err = s.decimal("k.o")
		case 'c':
			bit = kSeenClose
			k.Close, err = s.decimal("k.c")
		case 'h':
			bit = kSeenHigh
			k.High, err = s.decimal("k.h")
		case 'l':
			bit = kSeenLow
			k.Low, err = s.decimal("k.l")
		case 'v':
			bit = kSeenVolume
			k.Volume, err = s.decimal128("k.v")
		case 'n':
			bit = kSeenCount
			k.TradeCount, err = s.int64("k.n")
		case 'x':
			bit = kSeenClosed
			k.Closed, err = s.bool("k.x")
		case 'q':
			bit = kSeenQuote
			k.QuoteVolume, err = s.floatString("k.q")
		case 'V':
			bit = kSeenTakerVolume
			k.TakerBuyVolume, err = s.decimal128("k.V")
		case 'Q':
			bit = kSeenTakerQuote
			k.TakerBuyQuoteVolume, err = s.floatString("k.Q")
		case 'B':
			bit = kSeenIgnore
			err = s.skipValue("k.B", 0)
		default:
			err = s.skipValue("k", 0)
		}
		if err != nil {
			return 0, err
		}
		if seen&bit != 0 {
			return 0, s.fail(klineFieldName(bit), keyAt, ErrDuplicateField)
		}
		seen |= bit
	}
	if missing := kRequired &^ seen; missing != 0 {
		return 0, s.fail(klineFieldName(missing), objAt, ErrMissingField)
	}
	return seen, nil
}

func klineFieldName(m uint32) string {
	for i, name := range klineBodyFieldNames {
		if m&(1<<i) != 0 {
			return name
		}
	}
	return "k"
}

// interval reads an interval name string ("1m", "1M", ...).
func (s *jsonScan) interval(field string) (Interval, error) {
	at := s.i
	raw, _, err := s.str(field)
	if err != nil {
		return 0, err
	}
	if iv := lookupInterval(raw); iv != 0 {
		return iv, nil
	}
	return 0, s.fail(field, at, fmt.Errorf("%w %q", ErrUnknownInterval, string(raw)))
}

// lookupInterval is ParseInterval for bytes, without allocating; 0 if unknown.
func lookupInterval(b []byte) Interval {
	for i := Interval1s; i <= Interval1M; i++ {
		if string(b) == intervalNames[i] {
			return i
		}
	}
	return 0
}

// AppendKlineRowJSON appends k as a /api/v3/klines row (a JSON array).
func AppendKlineRowJSON(b []byte, k *Kline) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, k.OpenTime, 10)
	b = append(b, ',', '"')
	b = k.Open.Append(b)
	b = append(b, '"', ',', '"')
	b = k.High.Append(b)
	b = append(b, '"', ',', '"')
	b = k.Low.Append(b)
	b = append(b, '"', ',', '"')
	b = k.Close.Append(b)
	b = append(b, '"', ',', '"')
	b = k.Volume.Append(b)
	b = append(b, '"', ',')
	b = strconv.AppendInt(b, k.CloseTime, 10)
	b = append(b, ',', '"')
	b = appendFloat8(b, k.QuoteVolume)
	b = append(b, '"', ',')
	b = strconv.AppendInt(b, k.TradeCount, 10)
	b = append(b, ',', '"')
	b = k.TakerBuyVolume.Append(b)
	b = append(b, '"', ',', '"')
	b = appendFloat8(b, k.TakerBuyQuoteVolume)
	return append(b, `","0"]`...)
}

// klineColumns names the row and CSV columns in order.
var klineColumns = [...]string{"open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"}

const klineRowFormat = "kline row JSON"

// ParseKlineRowJSON parses one /api/v3/klines row (exactly one JSON array of
// 12 elements) into k, with the given symbol and interval. Errors are
// *DecodeError values naming the column and byte offset.
func ParseKlineRowJSON(b []byte, k *Kline, symbol string, iv Interval) error {
	s := jsonScan{b: b, format: klineRowFormat}
	s.ws()
	if s.peek() != '[' {
		return s.wrongType("", "an array")
	}
	s.i++
	*k = Kline{Symbol: symbol, Interval: iv, FirstTradeID: NoTradeID, LastTradeID: NoTradeID, Closed: true}
	for col, name := range klineColumns {
		if col > 0 {
			if err := s.expect(',', name, "',' (a kline row has 12 elements)"); err != nil {
				return err
			}
		}
		s.ws()
		var err error
		switch col {
		case 0:
			k.OpenTime, err = s.int64(name)
		case 1:
			k.Open, err = s.decimal(name)
		case 2:
			k.High, err = s.decimal(name)
		case 3:
			k.Low, err = s.decimal(name)
		case 4:
			k.Close, err = s.decimal(name)
		case 5:
			k.Volume, err = s.decimal128(name)
		case 6:
			k.CloseTime, err = s.int64(name)
		case 7:
			k.QuoteVolume, err = s.floatString(name)
		case 8:
			k.TradeCount, err = s.int64(name)
		case 9:
			k.TakerBuyVolume, err = s.decimal128(name)
		case 10:
			k.TakerBuyQuoteVolume, err = s.floatString(name)
		case 11:
			err = s.skipValue(name, 0)
		}
		if err != nil {
			return err
		}
	}
	if err := s.expect(']', "", "']' (a kline row has 12 elements)"); err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return s.fail("", s.i, fmt.Errorf("%w after the row", ErrTrailingData))
	}
	return nil
}

// AppendKlineCSV appends k as one Binance kline CSV line ending in '\n'.
// Times are in ms; "ignore" is 0.
func AppendKlineCSV(b []byte, k *Kline) []byte {
	b = strconv.AppendInt(b, k.OpenTime, 10)
	b = append(b, ',')
	b = k.Open.Append(b)
	b = append(b, ',')
	b = k.High.Append(b)
	b = append(b, ',')
	b = k.Low.Append(b)
	b = append(b, ',')
	b = k.Close.Append(b)
	b = append(b, ',')
	b = k.Volume.Append(b)
	b = append(b, ',')
	b = strconv.AppendInt(b, k.CloseTime, 10)
	b = append(b, ',')
	b = appendFloat8(b, k.QuoteVolume)
	b = append(b, ',')
	b = strconv.AppendInt(b, k.TradeCount, 10)
	b = append(b, ',')
	b = k.TakerBuyVolume.Append(b)
	b = append(b, ',')
	b = appendFloat8(b, k.TakerBuyQuoteVolume)
	return append(b, ",0\n"...)
}

// KlineCSVHeader is the optional header line of Binance's kline files.
const KlineCSVHeader = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n"

// IsCSVHeader reports whether line looks like a header: its first field is
// not a number. It serves both aggTrades and kline files.
func IsCSVHeader(line []byte) bool { return !startsWithNumber(trimCR(trimLF(line))) }

// ParseKlineCSV parses one kline CSV line (a trailing "\n" or "\r\n" is
// allowed) into k with the given symbol and interval. Times >= 1e15 are µs
// and are converted to ms, as in AggTradeCSVReader. Errors are *ParseError
// values with Field set to the column; the caller fills in File and Line.
func ParseKlineCSV(line []byte, symbol string, iv Interval, k *Kline) error {
	line = trimCR(trimLF(line))
	var f [12][]byte
	if n := csvFields(line, f[:]); n != len(f) {
		return &ParseError{Err: fmt.Errorf("%w: %d columns, want 12 (%s)", ErrSyntax, n, KlineCSVHeader[:len(KlineCSVHeader)-1])}
	}
	*k = Kline{Symbol: symbol, Interval: iv, FirstTradeID: NoTradeID, LastTradeID: NoTradeID, Closed: true}
	var err error
	col := 0
	fail := func(err error) error {
		return &ParseError{Field: klineColumns[col], Err: fmt.Errorf("%w: %q", err, string(f[col]))}
	}
	if k.OpenTime, err = parseInt64(f[0]); err != nil {
		return fail(err)
	}
	if k.OpenTime, err = normalizeMillis(k.OpenTime); err != nil {
		return &ParseError{Field: klineColumns[0], Err: err}
	}
	for col = 1; col <= 4; col++ {
		d, err := parseDecimal(f[col])
		if err != nil {
			return fail(err)
		}
		switch col {
		case 1:
			k.Open = d
		case 2:
			k.High = d
		case 3:
			k.Low = d
		case 4:
			k.Close = d
		}
	}
	col = 5
	if k.Volume, err = parseDecimal128(f[5]); err != nil {
		return fail(err)
	}
	col = 6
	if k.CloseTime, err = parseInt64(f[6]); err != nil {
		return fail(err)
	}
	if k.CloseTime, err = normalizeMillis(k.CloseTime); err != nil {
		return &ParseError{Field: klineColumns[6], Err: err}
	}
	col = 7
	if k.QuoteVolume, err = parseFloatDecimal(f[7]); err != nil {
		return &ParseError{Field: klineColumns[col], Err: err}
	}
	col = 8
	if k.TradeCount, err = parseInt64(f[8]); err != nil {
		return fail(err)
	}
	col = 9
	if k.TakerBuyVolume, err = parseDecimal128(f[9]); err != nil {
		return fail(err)
	}
	col = 10
	if k.TakerBuyQuoteVolume, err = parseFloatDecimal(f[10]); err != nil {
		return &ParseError{Field: klineColumns[col], Err: err}
	}
	return nil
}
