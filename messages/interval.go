package messages

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Interval is a K-line period. The zero value is invalid; the valid values
// are the 16 periods Binance offers, in increasing length.
type Interval uint8

// The periods of SPEC §1.
const (
	Interval1s Interval = iota + 1
	Interval1m
	Interval3m
	Interval5m
	Interval15m
	Interval30m
	Interval1h
	Interval2h
	Interval4h
	Interval6h
	Interval8h
	Interval12h
	Interval1d
	Interval3d
	Interval1w
	Interval1M
)

// Millisecond lengths of the fixed periods.
const (
	Second = int64(1000)
	Minute = 60 * Second
	Hour   = 60 * Minute
	Day    = 24 * Hour
	Week   = 7 * Day
)

// mondayOffset is the offset of the first Monday (1970-01-05) from the
// epoch, a Thursday: weeks are aligned to it, not to the epoch.
const mondayOffset = 4 * Day

var intervalNames = [...]string{"", "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}

var intervalLengths = [...]int64{0, Second, Minute, 3 * Minute, 5 * Minute, 15 * Minute, 30 * Minute, Hour, 2 * Hour, 4 * Hour, 6 * Hour, 8 * Hour, 12 * Hour, Day, 3 * Day, Week, 0}

// AllIntervals lists every period in increasing length.
func AllIntervals() []Interval {
	out := make([]Interval, 0, len(intervalNames)-1)
	for i := Interval1s; i <= Interval1M; i++ {
		out = append(out, i)
	}
	return out
}

// DefaultIntervals returns the default per-node set (SPEC §1).
func DefaultIntervals() []Interval {
	return []Interval{Interval1m, Interval5m, Interval15m, Interval30m, Interval1h, Interval4h, Interval1d, Interval1w}
}

// ErrUnknownInterval is returned by ParseInterval.
var ErrUnknownInterval = errors.New("messages: unknown interval")

// ParseInterval parses a Binance interval name ("1m", "1M", "1w"...). Names are
// case-sensitive: "1m" is a minute and "1M" a month.
func ParseInterval(s string) (Interval, error) {
	for i := Interval1s; i <= Interval1M; i++ {
		if intervalNames[i] == s {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%w %q (want one of %s)", ErrUnknownInterval, s, strings.Join(intervalNames[1:], ","))
}

// ParseIntervals parses a comma-separated list, rejecting duplicates, and
// returns the intervals sorted by length.
func ParseIntervals(s string) ([]Interval, error) {
	var seen [len(intervalNames)]bool
	for _, part := range strings.Split(s, ",") {
		iv, err := ParseInterval(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		if seen[iv] {
			return nil, fmt.Errorf("messages: interval %s listed twice", iv)
		}
		seen[iv] = true
	}
	var out []Interval
	for i := Interval1s; i <= Interval1M; i++ {
		if seen[i] {
			out = append(out, i)
		}
	}
	return out, nil
}

// FormatIntervals is the inverse of ParseIntervals.
func FormatIntervals(ivs []Interval) string {
	names := make([]string, len(ivs))
	for i, iv := range ivs {
		names[i] = iv.String()
	}
	return strings.Join(names, ",")
}

// Valid reports whether iv is one of the 16 periods.
func (iv Interval) Valid() bool { return iv >= Interval1s && iv <= Interval1M }

// String returns the Binance name of the interval.
func (iv Interval) String() string {
	if !iv.Valid() {
		return fmt.Sprintf("Interval(%d)", uint8(iv))
	}
	return intervalNames[iv]
}

// Fixed returns the interval's length in ms, or 0 for the calendar month.
func (iv Interval) Fixed() int64 {
	if !iv.Valid() {
		return 0
	}
	return intervalLengths[iv]
}

// Align returns the open time (ms, UTC) of the bar that contains t.
func (iv Interval) Align(t int64) int64 {
	switch iv {
	case Interval1M:
		tm := time.UnixMilli(t).UTC()
		return time.Date(tm.Year(), tm.Month(), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	case Interval1w:
		return floorTo(t-mondayOffset, Week) + mondayOffset
	default:
		return floorTo(t, intervalLengths[iv])
	}
}

// Next returns the open time of the bar after the one opening at open
// (open must be aligned).
func (iv Interval) Next(open int64) int64 {
	if iv == Interval1M {
		tm := time.UnixMilli(open).UTC()
		return time.Date(tm.Year(), tm.Month()+1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	}
	return open + intervalLengths[iv]
}

// Periods returns how many bars of iv lie from the bar opening at a to the
// one opening at b (both aligned, a <= b): 0 when a == b.
func (iv Interval) Periods(a, b int64) int64 {
	if iv == Interval1M {
		ta, tb := time.UnixMilli(a).UTC(), time.UnixMilli(b).UTC()
		return int64(tb.Year()-ta.Year())*12 + int64(tb.Month()-ta.Month())
	}
	return (b - a) / intervalLengths[iv]
}

// Advance returns the open time n bars after the bar opening at open (n < 0:
// before it); open must be aligned.
func (iv Interval) Advance(open, n int64) int64 {
	if iv == Interval1M {
		return time.UnixMilli(open).UTC().AddDate(0, int(n), 0).UnixMilli()
	}
	return open + n*intervalLengths[iv]
}

// CloseTime returns the close time of the bar opening at open: the next
// bar's open minus 1 ms, as Binance reports it.
func (iv Interval) CloseTime(open int64) int64 { return iv.Next(open) - 1 }

// floorTo floors t to a multiple of n, also for negative t.
func floorTo(t, n int64) int64 {
	r := t % n
	if r < 0 {
		r += n
	}
	return t - r
}
