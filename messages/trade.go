package messages

import (
	"errors"
	"fmt"
)

// Trade is one aggregate trade, the input of the aggregation core. Its
// wire shape is Binance's aggTrade event (SPEC §1).
type Trade struct {
	Symbol     string  // "BTCUSDT"; never empty in a valid trade
	AggID      int64   // aggregate trade id `a`; increases per symbol
	Price      Decimal // `p`
	Quantity   Decimal // `q`
	FirstID    int64   // first raw trade id `f`, NoTradeID if unknown
	LastID     int64   // last raw trade id `l`, NoTradeID if unknown
	Time       int64   // trade time `T`, ms since the epoch, UTC
	BuyerMaker bool    // `m`: the buyer was the maker, so the taker sold
	EventTime  int64   // event time `E` (ms), 0 if unknown; informational only
}

// NoTradeID marks an absent raw trade id, and is what empty bars report as
// their first and last trade id (as Binance does).
const NoTradeID = int64(-1)

// Validity bounds of SPEC §2.
const (
	// MinTradeTime is 2000-01-01T00:00:00Z: anything older is a unit or
	// parsing mistake, not a trade.
	MinTradeTime = int64(946684800000)
	// MaxFutureSkew is how far beyond the receiver's clock a trade time may lie.
	MaxFutureSkew = Hour
)

// Sentinel trade validation errors; Validate wraps them with the field.
var (
	ErrInvalidTrade = errors.New("messages: invalid trade")
)

// RawCount returns the number of raw trades in t: l − f + 1 when both ids are
// known, else 1 (SPEC §1, trade_count).
func (t *Trade) RawCount() int64 {
	if t.FirstID >= 0 && t.LastID >= t.FirstID {
		return t.LastID - t.FirstID + 1
	}
	return 1
}

// TakerBuy reports whether the taker bought (Binance `m == false`).
func (t *Trade) TakerBuy() bool { return !t.BuyerMaker }

// Validate checks t against SPEC §2. nowMs is the receiver's wall clock in
// ms; pass 0 to skip the future check (offline files). The error names the
// field at fault and wraps ErrInvalidTrade.
func (t *Trade) Validate(nowMs int64) error {
	if err := ValidateSymbol(t.Symbol); err != nil {
		return err
	}
	return t.ValidateFields(nowMs)
}

// ValidateSymbol checks a symbol name (Validate's field s check). Callers
// that see the same symbol many times may check it once and then use
// ValidateFields.
func ValidateSymbol(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: field s: empty symbol", ErrInvalidTrade)
	case len(s) > MaxSymbolLen:
		return fmt.Errorf("%w: field s: symbol longer than %d bytes", ErrInvalidTrade, MaxSymbolLen)
	case !validSymbol(s):
		return fmt.Errorf("%w: field s: symbol %q has characters outside A-Z 0-9 _ - .", ErrInvalidTrade, s)
	}
	return nil
}

// ValidateFields is Validate without the symbol check.
func (t *Trade) ValidateFields(nowMs int64) error {
	if t.FieldsValid(nowMs) {
		return nil
	}
	switch {
	case t.Price == 0:
		return fmt.Errorf("%w: field p: price must be positive", ErrInvalidTrade)
	case t.AggID < 0:
		return fmt.Errorf("%w: field a: negative aggregate trade id %d", ErrInvalidTrade, t.AggID)
	case t.Time < MinTradeTime:
		return fmt.Errorf("%w: field T: time %d is before 2000-01-01", ErrInvalidTrade, t.Time)
	case nowMs > 0 && t.Time > nowMs+MaxFutureSkew:
		return fmt.Errorf("%w: field T: time %d is more than 1h in the future", ErrInvalidTrade, t.Time)
	case (t.FirstID < 0) != (t.LastID < 0):
		return fmt.Errorf("%w: fields f/l: only one of first (%d) and last (%d) trade id given", ErrInvalidTrade, t.FirstID, t.LastID)
	case t.LastID < t.FirstID:
		return fmt.Errorf("%w: fields f/l: last trade id %d is before first %d", ErrInvalidTrade, t.LastID, t.FirstID)
	}
	return nil
}

// FieldsValid reports whether ValidateFields(nowMs) would return nil: the
// same checks without building an error, small enough to inline into a
// per-trade loop.
func (t *Trade) FieldsValid(nowMs int64) bool {
	return t.Price != 0 && t.AggID >= 0 && t.Time >= MinTradeTime && (nowMs <= 0 || t.Time <= nowMs+MaxFutureSkew) &&
		(t.FirstID < 0) == (t.LastID < 0) && t.LastID >= t.FirstID
}

// MaxSymbolLen bounds symbol names (keys and wire frames stay small).
const MaxSymbolLen = 32

func validSymbol(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// NormalizeSymbol upper-cases a symbol as stream names use lower case
// ("btcusdt@kline_1m") and everything else upper case.
func NormalizeSymbol(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// TradeBatch is a group of trades travelling together (ingest → shard, WAL
// record). Seq is the WAL sequence number once the batch is durable, 0 before.
// TickBefore and TickAfter are the clock times (ms, 0 = none) the shard
// ticked to before and after applying the trades: recording them makes a
// replay of the WAL take exactly the decisions (late or not) the live shard
// took.
type TradeBatch struct {
	Seq        uint64
	TickBefore int64
	TickAfter  int64
	Trades     []Trade
}
