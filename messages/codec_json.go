package messages

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// A small hand-written JSON scanner shared by the aggTrade and kline
// parsers. It exists because encoding/json allocates per call, matches keys
// case-insensitively (Binance's "t"/"T", "e"/"E", "q"/"Q" would collide) and
// cannot report which field failed at which byte. It accepts exactly RFC 8259
// JSON; strings are returned as views of the input, and only decoded when
// they contain escapes.

// maxJSONDepth bounds nesting in skipped values so that hostile input like
// [[[[... cannot exhaust the stack.
const maxJSONDepth = 64

type jsonScan struct {
	b      []byte // input; offsets in errors are indexes into b
	i      int
	format string
}

func (s *jsonScan) fail(field string, at int, err error) error {
	return &DecodeError{Format: s.format, Field: field, Offset: at, Err: err}
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte, or 0 at the end of input.
func (s *jsonScan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// describe names the JSON value starting at at, for error messages.
func (s *jsonScan) describe(at int) string {
	if at >= len(s.b) {
		return "end of input"
	}
	switch c := s.b[at]; {
	case c == '"':
		return "a string"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a bool"
	case c == 'n':
		return "null"
	default:
		return fmt.Sprintf("%q", c)
	}
}

func (s *jsonScan) unexpected(field string, want string) error {
	if s.i >= len(s.b) {
		return s.fail(field, s.i, fmt.Errorf("%w: want %s", ErrTruncated, want))
	}
	return s.fail(field, s.i, fmt.Errorf("%w: want %s, found %s", ErrSyntax, want, s.describe(s.i)))
}

func (s *jsonScan) wrongType(field string, want string) error {
	if s.i >= len(s.b) {
		return s.fail(field, s.i, fmt.Errorf("%w: want %s", ErrTruncated, want))
	}
	return s.fail(field, s.i, fmt.Errorf("%w: want %s, found %s", ErrWrongType, want, s.describe(s.i)))
}

// expect consumes byte c (after whitespace).
func (s *jsonScan) expect(c byte, field, want string) error {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return nil
	}
	return s.unexpected(field, want)
}

// str reads a string starting at s.i and returns its raw contents (between
// the quotes) and whether it holds escapes. Escapes are validated here.
func (s *jsonScan) str(field string) (raw []byte, esc bool, err error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, s.wrongType(field, "a string")
	}
	start := s.i + 1
	for i := start; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			s.i = i + 1
			return s.b[start:i], esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(s.b) {
				return nil, false, s.fail(field, i, fmt.Errorf("%w: unterminated string", ErrTruncated))
			}
			switch s.b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(s.b) {
					return nil, false, s.fail(field, i, fmt.Errorf("%w: unterminated string", ErrTruncated))
				}
				for _, h := range s.b[i+2 : i+6] {
					if unhex(h) < 0 {
						return nil, false, s.fail(field, i, fmt.Errorf("%w: bad \\u escape", ErrSyntax))
					}
				}
				i += 5
			default:
				return nil, false, s.fail(field, i, fmt.Errorf("%w: bad escape \\%c", ErrSyntax, s.b[i+1]))
			}
		case c < 0x20:
			return nil, false, s.fail(field, i, fmt.Errorf("%w: control character 0x%02x in string", ErrSyntax, c))
		}
	}
	return nil, false, s.fail(field, len(s.b), fmt.Errorf("%w: unterminated string", ErrTruncated))
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return rune(unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3]))
}

// appendUnescaped appends the decoded form of raw string contents (already
// validated by str) to dst. Lone surrogates become U+FFFD, as encoding/json does.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if r >= 0xd800 && r < 0xdc00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2 := hex4(raw[i+3 : i+7]); r2 >= 0xdc00 && r2 < 0xe000 {
					r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
					i += 6
				}
			}
			if r >= 0xd800 && r < 0xe000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

// number reads a JSON number (strict grammar) and returns its text.
func (s *jsonScan) number(field string) ([]byte, error) {
	start, i, b := s.i, s.i, s.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		s.i = i
		return nil, s.unexpected(field, "a digit")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return nil, s.unexpected(field, "a fraction digit")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.i = i
			return nil, s.unexpected(field, "an exponent digit")
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	s.i = i
	return b[start:i], nil
}

// int64 reads a JSON integer that must fit an int64. Fractions and exponents
// are rejected (ids and times are integers on the wire).
func (s *jsonScan) int64(field string) (int64, error) {
	at := s.i
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, s.wrongType(field, "an integer")
	}
	num, err := s.number(field)
	if err != nil {
		return 0, err
	}
	neg := num[0] == '-'
	digits := num
	if neg {
		digits = num[1:]
	}
	var v uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, s.fail(field, at, fmt.Errorf("%w: want an integer, found %s", ErrWrongType, string(num)))
		}
		if v > (math.MaxUint64-9)/10 {
			return 0, s.fail(field, at, fmt.Errorf("%w: %s does not fit int64", ErrNumberRange, string(num)))
		}
		v = v*10 + uint64(c-'0')
	}
	switch {
	case !neg && v <= math.MaxInt64:
		return int64(v), nil
	case neg && v <= 1<<63:
		return -int64(v), nil // -1<<63 wraps to itself, as intended
	}
	return 0, s.fail(field, at, fmt.Errorf("%w: %s does not fit int64", ErrNumberRange, string(num)))
}

// uint64 reads a non-negative JSON integer.
func (s *jsonScan) uint64(field string) (uint64, error) {
	at := s.i
	if c := s.peek(); c < '0' || c > '9' {
		if c == '-' {
			return 0, s.fail(field, at, fmt.Errorf("%w: negative value", ErrNumberRange))
		}
		return 0, s.wrongType(field, "a non-negative integer")
	}
	num, err := s.number(field)
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, s.fail(field, at, fmt.Errorf("%w: want an integer, found %s", ErrWrongType, string(num)))
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, s.fail(field, at, fmt.Errorf("%w: %s does not fit uint64", ErrNumberRange, string(num)))
		}
		v = v*10 + d
	}
	return v, nil
}

func (s *jsonScan) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

func (s *jsonScan) bool(field string) (bool, error) {
	switch {
	case s.literal("true"):
		return true, nil
	case s.literal("false"):
		return false, nil
	}
	return false, s.wrongType(field, "true or false")
}

// null consumes a null literal if one is next.
func (s *jsonScan) null() bool { return s.literal("null") }

// skipValue skips any JSON value, checking its grammar.
func (s *jsonScan) skipValue(field string, depth int) error {
	s.ws()
	if s.i >= len(s.b) {
		return s.unexpected(field, "a value")
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, err := s.str(field)
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, err := s.number(field)
		return err
	case c == 't' || c == 'f':
		_, err := s.bool(field)
		return err
	case c == 'n':
		if s.null() {
			return nil
		}
		return s.unexpected(field, "a value")
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return s.fail(field, s.i, fmt.Errorf("%w: nesting deeper than %d", ErrSyntax, maxJSONDepth))
		}
		s.i++
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		s.ws()
		if s.peek() == closer {
			s.i++
			return nil
		}
		for {
			if c == '{' {
				s.ws()
				if _, _, err := s.str(field); err != nil {
					return err
				}
				if err := s.expect(':', field, "':'"); err != nil {
					return err
				}
			}
			if err := s.skipValue(field, depth+1); err != nil {
				return err
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
			case closer:
				s.i++
				return nil
			default:
				return s.unexpected(field, "',' or '"+string(closer)+"'")
			}
		}
	}
	return s.unexpected(field, "a value")
}

// openObject consumes the '{' of an object; then call nextKey until it
// reports no more members. (An iterator rather than a callback keeps the
// parsers free of closures and indirect calls.)
func (s *jsonScan) openObject(field string) error {
	if err := s.expect('{', field, "'{'"); err != nil {
		if s.i < len(s.b) && !isSpace(s.b[s.i]) {
			return s.wrongType(field, "an object")
		}
		return err
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// nextKey reads the separator before the next member and its key, leaving
// s.i at the value. first must be true for the first call of an object.
// Keys with escapes are decoded into buf; an escaped key longer than buf
// comes back empty, which matches no known key (all of ours are short).
func (s *jsonScan) nextKey(field string, first *bool, buf *[32]byte) (key []byte, keyAt int, more bool, err error) {
	s.ws()
	if *first {
		*first = false
		if s.peek() == '}' {
			s.i++
			return nil, 0, false, nil
		}
	} else {
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil, 0, false, nil
		default:
			return nil, 0, false, s.unexpected(field, "',' or '}'")
		}
	}
	keyAt = s.i
	if s.peek() != '"' {
		return nil, keyAt, false, s.unexpected(field, "an object key")
	}
	key, esc, err := s.str(field)
	if err != nil {
		return nil, keyAt, false, err
	}
	if esc {
		if len(key) > len(buf) {
			key = buf[:0]
		} else {
			key = appendUnescaped(buf[:0], key)
		}
	}
	if err := s.expect(':', field, "':'"); err != nil {
		return nil, keyAt, false, err
	}
	s.ws()
	return key, keyAt, true, nil
}

// decimalString reads a JSON string holding a decimal, unescaped into buf
// if needed; a JSON number is a type error (Binance sends prices and
// volumes as strings so that no float ever touches them). at is the
// string's offset, for errors.
func (s *jsonScan) decimalString(field string, buf []byte) (raw []byte, at int, err error) {
	at = s.i
	raw, esc, err := s.str(field)
	if err != nil {
		if s.i < len(s.b) && s.b[s.i] != '"' {
			return nil, at, s.wrongType(field, "a decimal string")
		}
		return nil, at, err
	}
	if esc {
		raw = appendUnescaped(buf[:0], raw)
	}
	return raw, at, nil
}

// decimal reads a decimal string.
func (s *jsonScan) decimal(field string) (Decimal, error) {
	var buf [40]byte
	raw, at, err := s.decimalString(field, buf[:])
	if err != nil {
		return 0, err
	}
	d, err := parseDecimal(raw)
	if err != nil {
		return 0, s.fail(field, at, fmt.Errorf("%w: %q", err, string(raw)))
	}
	return d, nil
}

// decimal128 reads a decimal string into a Decimal128.
func (s *jsonScan) decimal128(field string) (Decimal128, error) {
	var buf [48]byte
	raw, at, err := s.decimalString(field, buf[:])
	if err != nil {
		return Decimal128{}, err
	}
	d, err := parseDecimal128(raw)
	if err != nil {
		return Decimal128{}, s.fail(field, at, fmt.Errorf("%w: %q", err, string(raw)))
	}
	return d, nil
}

// floatString reads a non-negative, finite float written as a plain decimal
// string (quote volumes).
func (s *jsonScan) floatString(field string) (float64, error) {
	var buf [48]byte
	raw, at, err := s.decimalString(field, buf[:])
	if err != nil {
		return 0, err
	}
	f, err := parseFloatDecimal(raw)
	if err != nil {
		return 0, s.fail(field, at, err)
	}
	return f, nil
}

// eventType reads the "e" string and checks that it equals want.
func (s *jsonScan) eventType(field, want string) error {
	at := s.i
	raw, esc, err := s.str(field)
	if err != nil {
		return err
	}
	var buf [32]byte
	if esc && len(raw) <= len(buf) {
		raw = appendUnescaped(buf[:0], raw)
	}
	if string(raw) != want {
		return s.fail(field, at, fmt.Errorf("%w: event type %q, want %q", ErrBadValue, string(raw), want))
	}
	return nil
}

// appendJSONString appends s as a JSON string literal. Bytes >= 0x20 other
// than '"' and '\\' are copied as they are (symbols are ASCII; anything else
// round-trips byte for byte through str/appendUnescaped).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloat8 formats a quote volume as Binance does, with 8 fraction
// digits, and without float noise: the shortest decimal that reads back as
// v, padded with zeros ("123456789.12300000", not the "…12299999" that
// rounding v's exact binary value to 8 places gives). Only when the
// shortest form needs more than 8 fraction digits is v rounded to 8.
func appendFloat8(b []byte, v float64) []byte {
	start := len(b)
	b = strconv.AppendFloat(b, v, 'f', -1, 64)
	dot := bytes.IndexByte(b[start:], '.')
	if dot < 0 {
		return append(b, ".00000000"...)
	}
	frac := len(b) - start - dot - 1
	if frac > Scale {
		return strconv.AppendFloat(b[:start], v, 'f', Scale, 64)
	}
	return append(b, "00000000"[:Scale-frac]...)
}
