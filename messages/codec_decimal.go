package messages

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// Number helpers for the text codecs. They return bare sentinel errors and
// never let their argument escape, so a decoder can hand them views of
// stack buffers without the buffer moving to the heap; the caller adds the
// field, position and text to the error on the failure path only.

// mul128 returns v·m and whether it fit.
func mul128(v Decimal128, m uint64) (Decimal128, bool) {
	hi1, lo := bits.Mul64(v.Lo, m)
	hi2, lo2 := bits.Mul64(v.Hi, m)
	hi, c := bits.Add64(hi1, lo2, 0)
	return Decimal128{Hi: hi, Lo: lo}, hi2 == 0 && c == 0
}

// parseDecimal128 parses the decimal grammar of klinecast (plain digits,
// optional '.', at most 8 significant fraction digits, no sign but a
// leading '+') into a 128-bit fixed-point value; parseDecimal narrows it.
func parseDecimal128[T string | []byte](s T) (Decimal128, error) {
	n := len(s)
	if n == 0 {
		return Decimal128{}, ErrDecimalSyntax
	}
	i := 0
	switch s[0] {
	case '-':
		if n > 1 && (s[1] >= '0' && s[1] <= '9' || s[1] == '.') {
			return Decimal128{}, ErrDecimalNegative
		}
		return Decimal128{}, ErrDecimalSyntax
	case '+':
		i = 1
	case 'N', 'n', 'I', 'i':
		return Decimal128{}, ErrDecimalNotFinite
	}
	var acc Decimal128
	digits := 0
	for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
		var ok bool
		if acc, ok = mul128(acc, 10); !ok {
			return Decimal128{}, ErrDecimalRange
		}
		if acc, ok = acc.Add(Decimal(s[i] - '0')); !ok {
			return Decimal128{}, ErrDecimalRange
		}
		digits++
	}
	var frac uint64
	fracDigits := 0
	if i < n && s[i] == '.' {
		i++
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			if fracDigits < Scale {
				frac = frac*10 + uint64(s[i]-'0')
			} else if s[i] != '0' {
				return Decimal128{}, ErrDecimalPrecision
			}
			fracDigits++
		}
	}
	if i != n || digits+fracDigits == 0 {
		return Decimal128{}, ErrDecimalSyntax
	}
	for k := min(fracDigits, Scale); k < Scale; k++ {
		frac *= 10
	}
	acc, ok := mul128(acc, scaleFactor)
	if !ok {
		return Decimal128{}, ErrDecimalRange
	}
	if acc, ok = acc.Add(Decimal(frac)); !ok {
		return Decimal128{}, ErrDecimalRange
	}
	return acc, nil
}

// parseFloatDecimal parses a quote volume: a plain non-negative decimal
// ("2434.19055334"), no sign, exponent, NaN or infinity, and finite after
// rounding. The syntax is checked here because strconv.ParseFloat accepts
// "Inf", "1e5", "0x1p3" and "1_000", none of which Binance ever sends.
func parseFloatDecimal(b []byte) (float64, error) {
	digits, dot, frac := 0, false, 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			digits++
			if dot {
				// Like Decimal: at most 8 significant fraction digits, so
				// that parse → AppendFloat('f', 8) → parse is lossless.
				if frac++; frac > Scale && c != '0' {
					return 0, fmt.Errorf("%w: %q", ErrDecimalPrecision, string(b))
				}
			}
		case c == '.' && !dot && i > 0:
			dot = true
		default:
			return 0, fmt.Errorf("%w: %q is not a plain decimal", ErrDecimalSyntax, string(b))
		}
	}
	if digits == 0 || b[len(b)-1] == '.' {
		return 0, fmt.Errorf("%w: %q is not a plain decimal", ErrDecimalSyntax, string(b))
	}
	// string(b) here does not allocate for short inputs: strconv does not
	// retain its argument, so the compiler uses a stack buffer.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: %q", ErrDecimalRange, string(b))
	}
	return f, nil
}

// parseInt64 parses an optionally negative decimal integer (CSV fields).
func parseInt64(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, ErrSyntax
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, ErrSyntax
		}
		if v > (math.MaxUint64-9)/10 {
			return 0, ErrNumberRange
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case !neg && v <= math.MaxInt64:
		return int64(v), nil
	case neg && v <= 1<<63:
		return -int64(v), nil
	}
	return 0, ErrNumberRange
}

// microsThreshold: a timestamp at or above 1e15 has 16 digits and is in
// microseconds (Binance's spot public data switched to µs in 2025); in ms it
// would be the year 33658.
const microsThreshold = 1_000_000_000_000_000

// nanosThreshold: 19-digit values would be nanoseconds, which no Binance file
// uses; they are rejected rather than guessed at (and converting them once
// would leave a value that a second parse would convert again).
const nanosThreshold = 1_000_000_000_000_000_000

// normalizeMillis converts a µs timestamp to ms (floor) and leaves ms alone.
func normalizeMillis(t int64) (int64, error) {
	switch {
	case t >= nanosThreshold:
		return 0, fmt.Errorf("%w: timestamp %d has 19 digits; want ms (13) or µs (16)", ErrNumberRange, t)
	case t >= microsThreshold:
		return t / 1000, nil
	}
	return t, nil
}
