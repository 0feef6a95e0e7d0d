package messages

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// Scale is the number of fraction digits every Decimal and Decimal128 carries.
const Scale = 8

// scaleFactor is 10^Scale: one unit is scaleFactor ticks.
const scaleFactor = 100_000_000

// Decimal is an exact, non-negative fixed-point number with 8 fraction digits,
// stored as a count of 1e-8 units. It holds one trade's price or quantity:
// up to 184,467,440,737.09551615 units, enough for a 1e11-unit trade, which
// an int64 at the same scale (9.2e10) could not hold.
//
// The zero value is 0.
type Decimal uint64

// MaxDecimal is the largest representable Decimal.
const MaxDecimal = Decimal(math.MaxUint64)

// Errors returned by ParseDecimal. They are wrapped with the offending text;
// match them with errors.Is.
var (
	ErrDecimalSyntax    = errors.New("messages: invalid decimal syntax")
	ErrDecimalNegative  = errors.New("messages: negative decimal")
	ErrDecimalRange     = errors.New("messages: decimal out of range")
	ErrDecimalPrecision = errors.New("messages: more than 8 fraction digits")
	ErrDecimalNotFinite = errors.New("messages: NaN or infinite decimal")
)

// ParseDecimal parses a plain decimal string such as "42283.58" or
// "0.00000001". Exponents, signs other than a leading '+', NaN and infinities
// are rejected; fraction digits beyond the eighth must be zeros.
func ParseDecimal(s string) (Decimal, error) {
	d, err := parseDecimal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", err, s)
	}
	return d, nil
}

// ParseDecimalBytes is ParseDecimal for a byte slice; it does not allocate on success.
func ParseDecimalBytes(b []byte) (Decimal, error) {
	d, err := parseDecimal(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", err, b)
	}
	return d, nil
}

func parseDecimal[T string | []byte](s T) (Decimal, error) {
	// One grammar for both widths (parseDecimal128); a Decimal is the
	// values whose scaled form fits 64 bits.
	d, err := parseDecimal128(s)
	if err != nil {
		return 0, err
	}
	if d.Hi != 0 {
		return 0, ErrDecimalRange
	}
	return Decimal(d.Lo), nil
}

// DecimalFromFloat converts a float to the nearest Decimal. It exists for
// synthetic data generation and tests, never for parsing wire data.
func DecimalFromFloat(f float64) (Decimal, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, ErrDecimalNotFinite
	}
	if f < 0 {
		return 0, ErrDecimalNegative
	}
	v := math.Round(f * scaleFactor)
	if v >= math.MaxUint64 {
		return 0, ErrDecimalRange
	}
	return Decimal(v), nil
}

// Float64 returns the nearest float64 (for quote volumes and display only).
func (d Decimal) Float64() float64 { return float64(d) / scaleFactor }

// String formats d with exactly 8 fraction digits, as Binance does ("0.01634790").
func (d Decimal) String() string { return string(d.Append(nil)) }

// Append appends the String form of d to b.
func (d Decimal) Append(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(d)/scaleFactor, 10)
	return appendFrac(b, uint64(d)%scaleFactor)
}

func appendFrac(b []byte, frac uint64) []byte {
	var buf [Scale + 1]byte
	buf[0] = '.'
	for i := Scale; i >= 1; i-- {
		buf[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(b, buf[:]...)
}

// MarshalText implements encoding.TextMarshaler.
func (d Decimal) MarshalText() ([]byte, error) { return d.Append(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Decimal) UnmarshalText(b []byte) error {
	v, err := ParseDecimalBytes(b)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Decimal128 is an exact, non-negative 128-bit fixed-point amount with 8
// fraction digits: the sum type for volumes. It holds up to 3.4e30 units, so
// a day of 1e16 units of a memecoin is nowhere near its limit; Add reports
// overflow instead of wrapping.
//
// The zero value is 0.
type Decimal128 struct {
	Hi, Lo uint64
}

// ErrOverflow reports that a sum would not fit its representation.
var ErrOverflow = errors.New("messages: arithmetic overflow")

// Add returns v + d and whether the result fit (false means overflow; the
// returned value is then unspecified and must not be used).
func (v Decimal128) Add(d Decimal) (Decimal128, bool) {
	lo, c := bits.Add64(v.Lo, uint64(d), 0)
	hi, c2 := bits.Add64(v.Hi, 0, c)
	return Decimal128{Hi: hi, Lo: lo}, c2 == 0
}

// AddWide returns v + w and whether the result fit.
func (v Decimal128) AddWide(w Decimal128) (Decimal128, bool) {
	lo, c := bits.Add64(v.Lo, w.Lo, 0)
	hi, c2 := bits.Add64(v.Hi, w.Hi, c)
	return Decimal128{Hi: hi, Lo: lo}, c2 == 0
}

// IsZero reports whether v is 0.
func (v Decimal128) IsZero() bool { return v.Hi == 0 && v.Lo == 0 }

// Cmp compares v and w and returns -1, 0 or +1.
func (v Decimal128) Cmp(w Decimal128) int {
	switch {
	case v.Hi < w.Hi:
		return -1
	case v.Hi > w.Hi:
		return 1
	case v.Lo < w.Lo:
		return -1
	case v.Lo > w.Lo:
		return 1
	}
	return 0
}

// Float64 returns the nearest float64 of v (display only).
func (v Decimal128) Float64() float64 {
	return (float64(v.Hi)*(1<<64) + float64(v.Lo)) / scaleFactor
}

// Big returns v scaled by 1e8 as a big.Int (for tests and tools).
func (v Decimal128) Big() *big.Int {
	b := new(big.Int).SetUint64(v.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(v.Lo))
}

// String formats v with exactly 8 fraction digits.
func (v Decimal128) String() string { return string(v.Append(nil)) }

// Append appends the String form of v to b.
func (v Decimal128) Append(b []byte) []byte {
	qHi := v.Hi / scaleFactor
	r := v.Hi % scaleFactor
	qLo, frac := bits.Div64(r, v.Lo, scaleFactor)
	if qHi == 0 {
		b = strconv.AppendUint(b, qLo, 10)
	} else {
		q := new(big.Int).SetUint64(qHi)
		q.Lsh(q, 64).Or(q, new(big.Int).SetUint64(qLo))
		b = q.Append(b, 10)
	}
	return appendFrac(b, frac)
}

// ParseDecimal128 parses a plain decimal string into a Decimal128 (used by
// the kline decoders; volumes may exceed Decimal's range). The syntax and
// precision rules are ParseDecimal's.
func ParseDecimal128(s string) (Decimal128, error) {
	d, err := parseDecimal128(s)
	if err != nil {
		return Decimal128{}, fmt.Errorf("%w: %q", err, s)
	}
	return d, nil
}

// MulFloat returns p·q as a float64 in units (p and q are both 1e-8 scaled),
// computed from the exact 128-bit product so that the only rounding is the
// final conversion.
func MulFloat(p, q Decimal) float64 {
	hi, lo := bits.Mul64(uint64(p), uint64(q))
	const inv = 1.0 / (scaleFactor * scaleFactor)
	if hi == 0 && lo < 1<<63 {
		// The common case; a signed conversion is one instruction.
		return float64(int64(lo)) * inv
	}
	return (float64(hi)*(1<<64) + float64(lo)) * inv
}
