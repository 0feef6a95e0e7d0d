package messages

import (
	"bytes"
	"fmt"
	"strconv"
)

// Binance aggTrade events:
//
//	{"e":"aggTrade","E":123,"s":"BTCUSDT","a":1,"p":"0.001","q":"100","f":100,"l":105,"T":123,"m":true,"M":true}
//
// Keys may come in any order and are case-sensitive ("e" and "E" are
// different fields). Unknown keys are skipped. s, a, p, q and T are
// required; f and l are optional (absent or null → NoTradeID); e, if present,
// must be "aggTrade"; E defaults to 0 and m to false. Prices and quantities
// must be strings: a JSON number is rejected, because a float on the way
// would break exactness. The symbol is upper-cased.
//
// Parsing checks syntax and types only; Trade.Validate checks the values
// (positive price, time window, id order).

const aggTradeJSONFormat = "aggTrade JSON"

// Bits of the fields seen in one object, to detect missing and duplicate keys.
const (
	atSeenE uint16 = 1 << iota
	atSeenEventTime
	atSeenS
	atSeenA
	atSeenP
	atSeenQ
	atSeenF
	atSeenL
	atSeenT
	atSeenM
	atRequired = atSeenS | atSeenA | atSeenP | atSeenQ | atSeenT
)

// ParseAggTradeJSON parses one aggTrade event; b must hold exactly one JSON
// object (surrounding whitespace allowed). It does not allocate on success
// when intern returns cached strings; with a nil intern the symbol string is
// the only allocation. Errors are *DecodeError values naming the field and
// byte offset. On error *t is unspecified.
func ParseAggTradeJSON(b []byte, t *Trade, intern SymbolInterner) error {
	s := jsonScan{b: b, format: aggTradeJSONFormat}
	s.ws()
	if err := s.aggTrade(t, intern); err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return s.fail("", s.i, fmt.Errorf("%w after the object", ErrTrailingData))
	}
	return nil
}

// aggTrade parses one object at s.i.
func (s *jsonScan) aggTrade(t *Trade, intern SymbolInterner) error {
	objAt := s.i
	if err := s.openObject(""); err != nil {
		return err
	}
	*t = Trade{FirstID: NoTradeID, LastID: NoTradeID}
	var seen uint16
	var keyBuf [32]byte
	first := true
	for {
		key, keyAt, more, err := s.nextKey("", &first, &keyBuf)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		var bit uint16
		var name string
		switch string(key) {
		case "e":
			bit, name = atSeenE, "e"
			err = s.eventType(name, "aggTrade")
		case "E":
			bit, name = atSeenEventTime, "E"
			t.EventTime, err = s.int64(name)
		case "s":
			bit, name = atSeenS, "s"
			t.Symbol, err = s.symbol(name, intern)
		case "a":
			bit, name = atSeenA, "a"
			t.AggID, err = s.int64(name)
		case "p":
			bit, name = atSeenP, "p"
			t.Price, err = s.decimal(name)
		case "q":
			bit, name = atSeenQ, "q"
			t.Quantity, err = s.decimal(name)
		case "f":
			bit, name = atSeenF, "f"
			if !s.null() {
				t.FirstID, err = s.int64(name)
			}
		case "l":
			bit, name = atSeenL, "l"
			if !s.null() {
				t.LastID, err = s.int64(name)
			}
		case "T":
			bit, name = atSeenT, "T"
			t.Time, err = s.int64(name)
		case "m":
			bit, name = atSeenM, "m"
			t.BuyerMaker, err = s.bool(name)
		default:
			// "M" (ignore) and anything Binance adds later.
			if err = s.skipValue("", 0); err != nil {
				if de, ok := err.(*DecodeError); ok {
					de.Field = string(key)
				}
			}
		}
		if err != nil {
			return err
		}
		if seen&bit != 0 {
			return s.fail(name, keyAt, ErrDuplicateField)
		}
		seen |= bit
	}
	if missing := atRequired &^ seen; missing != 0 {
		return s.fail(aggTradeFieldName(missing), objAt, ErrMissingField)
	}
	return nil
}

// aggTradeFieldName names the first field whose bit is set in m.
func aggTradeFieldName(m uint16) string {
	for i, name := range [...]string{"e", "E", "s", "a", "p", "q", "f", "l", "T", "m"} {
		if m&(1<<i) != 0 {
			return name
		}
	}
	return "?"
}

// symbol reads a symbol string, upper-cases it and interns it. The common
// case (already upper case, no escapes) hands the input bytes straight to
// the interner.
func (s *jsonScan) symbol(field string, intern SymbolInterner) (string, error) {
	raw, esc, err := s.str(field)
	if err != nil {
		return "", err
	}
	if !esc && !hasLower(raw) {
		return internBytes(intern, raw), nil
	}
	return symbolSlow(raw, esc, intern), nil
}

func hasLower(b []byte) bool {
	for _, c := range b {
		if c >= 'a' && c <= 'z' {
			return true
		}
	}
	return false
}

// symbolSlow unescapes and upper-cases into a scratch buffer. It is a
// separate function so that the buffer is only set up on this rare path,
// and it calls a *SymbolCache directly: through the interface the buffer
// would escape to the heap, through the concrete type it stays on the stack.
func symbolSlow(raw []byte, esc bool, intern SymbolInterner) string {
	if c, ok := intern.(*SymbolCache); ok && c != nil {
		var buf [64]byte
		return c.Intern(upperSymbol(buf[:0], raw, esc))
	}
	return symbolSlowGeneric(raw, esc, intern)
}

//go:noinline
func symbolSlowGeneric(raw []byte, esc bool, intern SymbolInterner) string {
	var buf [64]byte
	return internBytes(intern, upperSymbol(buf[:0], raw, esc))
}

// upperSymbol appends the unescaped, upper-cased symbol to dst.
func upperSymbol(dst, raw []byte, esc bool) []byte {
	if esc {
		dst = appendUnescaped(dst, raw)
	} else {
		dst = append(dst, raw...)
	}
	for i, c := range dst {
		if c >= 'a' && c <= 'z' {
			dst[i] = c - ('a' - 'A')
		}
	}
	return dst
}

// AppendAggTradeJSON appends t as a Binance aggTrade event. f and l are
// omitted when they are NoTradeID; "M" (Binance's ignored best-match flag)
// is always true.
func AppendAggTradeJSON(b []byte, t *Trade) []byte {
	b = append(b, `{"e":"aggTrade","E":`...)
	b = strconv.AppendInt(b, t.EventTime, 10)
	b = append(b, `,"s":`...)
	b = appendJSONString(b, t.Symbol)
	b = append(b, `,"a":`...)
	b = strconv.AppendInt(b, t.AggID, 10)
	b = append(b, `,"p":"`...)
	b = t.Price.Append(b)
	b = append(b, `","q":"`...)
	b = t.Quantity.Append(b)
	b = append(b, '"')
	if t.FirstID != NoTradeID {
		b = append(b, `,"f":`...)
		b = strconv.AppendInt(b, t.FirstID, 10)
	}
	if t.LastID != NoTradeID {
		b = append(b, `,"l":`...)
		b = strconv.AppendInt(b, t.LastID, 10)
	}
	b = append(b, `,"T":`...)
	b = strconv.AppendInt(b, t.Time, 10)
	if t.BuyerMaker {
		b = append(b, `,"m":true,"M":true}`...)
	} else {
		b = append(b, `,"m":false,"M":true}`...)
	}
	return b
}

// DecodeAggTradeBatch decodes an HTTP ingest body holding aggTrade events,
// either as one JSON array or as NDJSON (one object per line, blank lines
// allowed), and calls fn for every item in order with its index (blank lines
// do not count). A per-item problem (a bad or missing field, a non-object
// array element, a malformed NDJSON line) is passed to fn as err, with t
// unspecified, and decoding continues with the next item; if fn returns an
// error, decoding stops and that error is returned. A structural problem
// that makes the rest unreadable (an unterminated array, a body that is not
// JSON at all, trailing bytes after the array) is returned as a
// *DecodeError with its offset. An empty or all-whitespace body has no items.
//
// NDJSON items are bounded by their line, so a broken line never swallows
// the next one; pretty-printed multi-line objects need the array form.
//
// t points to one Trade reused for every item: copy it to keep it.
// Offsets in errors are relative to body.
func DecodeAggTradeBatch(body []byte, intern SymbolInterner, fn func(index int, t *Trade, err error) error) error {
	s := jsonScan{b: body, format: aggTradeJSONFormat}
	s.ws()
	if s.i == len(body) {
		return nil
	}
	var t Trade
	switch body[s.i] {
	case '[':
		return decodeAggTradeArray(&s, &t, intern, fn)
	case '{':
		return decodeAggTradeNDJSON(body, s.i, &t, intern, fn)
	}
	return s.fail("", s.i, fmt.Errorf("%w: body is neither a JSON array nor NDJSON objects (starts with %s)", ErrSyntax, s.describe(s.i)))
}

func decodeAggTradeArray(s *jsonScan, t *Trade, intern SymbolInterner, fn func(int, *Trade, error) error) error {
	s.i++ // '['
	s.ws()
	if s.peek() == ']' {
		s.i++
	} else {
		for index := 0; ; index++ {
			s.ws()
			start := s.i
			var itemErr error
			if s.peek() == '{' {
				itemErr = s.aggTrade(t, intern)
			} else {
				itemErr = s.fail("", start, fmt.Errorf("%w: array element is %s, want an object", ErrWrongType, s.describe(start)))
			}
			if itemErr != nil {
				// Resynchronise: the item must at least be well-formed
				// JSON, or nothing after it can be trusted.
				s.i = start
				if err := s.skipValue("", 0); err != nil {
					return err
				}
			}
			if err := fn(index, t, itemErr); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				continue
			case ']':
				s.i++
			default:
				return s.unexpected("", "',' or ']' after array element")
			}
			break
		}
	}
	s.ws()
	if s.i != len(s.b) {
		return s.fail("", s.i, fmt.Errorf("%w after the array", ErrTrailingData))
	}
	return nil
}

func decodeAggTradeNDJSON(body []byte, pos int, t *Trade, intern SymbolInterner, fn func(int, *Trade, error) error) error {
	index := 0
	for pos < len(body) {
		end := len(body)
		if nl := bytes.IndexByte(body[pos:], '\n'); nl >= 0 {
			end = pos + nl
		}
		// The scanner sees the input up to the end of this line only, so
		// offsets stay relative to body and a broken line cannot run on.
		s := jsonScan{b: body[:end], i: pos, format: aggTradeJSONFormat}
		s.ws()
		if s.i < end {
			err := s.aggTrade(t, intern)
			if err == nil {
				s.ws()
				if s.i != end {
					err = s.fail("", s.i, fmt.Errorf("%w after the object on its line", ErrTrailingData))
				}
			}
			if err := fn(index, t, err); err != nil {
				return err
			}
			index++
		}
		pos = end + 1
	}
	return nil
}
