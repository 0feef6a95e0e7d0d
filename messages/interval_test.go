package messages

import (
	"testing"
	"time"
)

// TestIntervalPeriodsAndAdvance: Periods and Advance agree with stepping
// Next one bar at a time, for fixed intervals and calendar months (across
// a year's end and a leap February), forwards and back.
func TestIntervalPeriodsAndAdvance(t *testing.T) {
	ms := func(y int, m time.Month, d int) int64 { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli() }
	cases := []struct {
		iv   Interval
		from int64
		n    int64
	}{
		{Interval1m, Interval1m.Align(ms(2024, 2, 28)), 0},
		{Interval1m, Interval1m.Align(ms(2024, 2, 28)), 1441},
		{Interval1h, Interval1h.Align(ms(2023, 12, 31)), 50},
		{Interval1w, Interval1w.Align(ms(2024, 1, 3)), 60},
		{Interval1M, ms(2023, 11, 1), 0},
		{Interval1M, ms(2023, 11, 1), 4},  // over the year's end and February 2024
		{Interval1M, ms(2020, 1, 1), 130}, // years of months
		{Interval1M, ms(2024, 3, 1), 1},   // after a leap February
		{Interval1s, Interval1s.Align(ms(2024, 6, 1)), 86_401},
	}
	for _, tc := range cases {
		want := tc.from
		for range tc.n {
			want = tc.iv.Next(want)
		}
		if got := tc.iv.Advance(tc.from, tc.n); got != want {
			t.Errorf("%s: Advance(%d, %d) = %d, want %d", tc.iv, tc.from, tc.n, got, want)
		}
		if got := tc.iv.Advance(want, -tc.n); got != tc.from {
			t.Errorf("%s: Advance(%d, %d) = %d, want %d", tc.iv, want, -tc.n, got, tc.from)
		}
		if got := tc.iv.Periods(tc.from, want); got != tc.n {
			t.Errorf("%s: Periods(%d, %d) = %d, want %d", tc.iv, tc.from, want, got, tc.n)
		}
	}
}
