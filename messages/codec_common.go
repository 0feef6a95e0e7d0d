package messages

import (
	"errors"
	"fmt"
)

// Sentinel errors of the wire codecs. Decoders wrap them in a *DecodeError
// (msgpack, JSON) or a *ParseError (CSV) that names the field and position;
// match them with errors.Is.
var (
	// ErrTruncated: the input ended inside a value.
	ErrTruncated = errors.New("messages: truncated input")
	// ErrWrongType: a value of another type than the field's was found
	// (a JSON number where a decimal string is expected, a msgpack string
	// where an integer is expected, ...).
	ErrWrongType = errors.New("messages: wrong type")
	// ErrSyntax: the input is not well-formed (JSON grammar, CSV columns).
	ErrSyntax = errors.New("messages: syntax error")
	// ErrMissingField: a required field is absent.
	ErrMissingField = errors.New("messages: missing required field")
	// ErrDuplicateField: a field appears twice in one object.
	ErrDuplicateField = errors.New("messages: duplicate field")
	// ErrNumberRange: an integer does not fit its field.
	ErrNumberRange = errors.New("messages: number out of range")
	// ErrTrailingData: bytes follow a complete value where none may.
	ErrTrailingData = errors.New("messages: trailing data")
	// ErrBadValue: a well-typed value that the field does not allow (an
	// event type other than the expected one, an unknown interval name,
	// a non-finite quote volume, ...).
	ErrBadValue = errors.New("messages: bad value")
)

// DecodeError reports where a binary or JSON decoder stopped: the format,
// the field being decoded and the byte offset in the caller's input. It is
// only built on the failure path, so successful decodes never allocate for it.
type DecodeError struct {
	Format string // "msgpack trade", "aggTrade JSON", ...
	Field  string // the field being decoded ("p", "open_time", "[3].q"), "" for framing
	Offset int    // byte offset in the input where the problem was found
	Err    error  // wraps one of the sentinel errors above or a Decimal error
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: at byte %d: %v", e.Format, e.Offset, e.Err)
	}
	return fmt.Sprintf("%s: field %s at byte %d: %v", e.Format, e.Field, e.Offset, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// SymbolInterner maps symbol bytes to a string equal to string(b), ideally
// one shared by every decode of the same symbol so that steady-state decoding
// allocates nothing. Intern must not retain b: decoders pass views of their
// input or of scratch buffers.
type SymbolInterner interface {
	Intern(b []byte) string
}

// InternFunc adapts a function to SymbolInterner.
type InternFunc func(b []byte) string

// Intern calls f(b).
func (f InternFunc) Intern(b []byte) string { return f(b) }

// DefaultSymbolCacheLimit bounds a SymbolCache created with limit <= 0.
const DefaultSymbolCacheLimit = 1 << 16

// SymbolCache is a simple map-backed SymbolInterner. It stops remembering new
// symbols after its limit (it then allocates per call but stays correct), so
// untrusted input full of random symbols cannot grow it without bound.
// It is not safe for concurrent use: give each decoding goroutine its own,
// or wrap a shared one with a lock.
//
// The zero value is ready to use with DefaultSymbolCacheLimit.
type SymbolCache struct {
	m     map[string]string
	limit int
}

// NewSymbolCache returns a cache remembering at most limit symbols
// (DefaultSymbolCacheLimit if limit <= 0).
func NewSymbolCache(limit int) *SymbolCache {
	return &SymbolCache{limit: limit}
}

// Intern returns the cached string equal to b, caching it if there is room.
func (c *SymbolCache) Intern(b []byte) string {
	// The map lookup with string(b) is recognised by the compiler and
	// does not allocate.
	if s, ok := c.m[string(b)]; ok {
		return s
	}
	s := string(b)
	limit := c.limit
	if limit <= 0 {
		limit = DefaultSymbolCacheLimit
	}
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if len(c.m) < limit {
		c.m[s] = s
	}
	return s
}

// Len returns the number of cached symbols.
func (c *SymbolCache) Len() int { return len(c.m) }

// internBytes returns string(b) through intern when there is one.
func internBytes(intern SymbolInterner, b []byte) string {
	if intern != nil {
		return intern.Intern(b)
	}
	return string(b)
}

// bytesEqualString compares without allocating (the compiler does not
// materialise string(b) for a comparison).
func bytesEqualString(b []byte, s string) bool { return string(b) == s }
