package storage

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// Retention says how long a durable node keeps the closed bars of an
// interval: a series keeps the bars opening within the duration before its
// last bar's open time (older chunks are deleted by
// ShardBars.EnforceRetention). Intervals without an entry keep every bar.
// Its text form is "1s=7d,1m=365d": interval names, then a whole number
// with a unit s, m, h, d (24 h) or w (7 d).
type Retention map[messages.Interval]time.Duration

// retentionUnits are the units of the text form, largest first.
var retentionUnits = []struct {
	name string
	d    time.Duration
}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}

// ParseRetention parses the text form ("1s=7d,1m=365d"; empty: no
// retention). An unknown interval, an interval listed twice, or a
// duration that is not a positive whole number of a known unit is an
// error naming it.
func ParseRetention(s string) (Retention, error) {
	r := Retention{}
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, dur, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("storage: retention %q: want INTERVAL=DURATION, e.g. 1m=365d", item)
		}
		name, dur = strings.TrimSpace(name), strings.TrimSpace(dur)
		iv, err := messages.ParseInterval(name)
		if err != nil {
			return nil, fmt.Errorf("storage: retention %q: %w", item, err)
		}
		if _, dup := r[iv]; dup {
			return nil, fmt.Errorf("storage: retention: interval %s listed twice", iv)
		}
		d, err := parseRetentionDuration(dur)
		if err != nil {
			return nil, fmt.Errorf("storage: retention %q: %w", item, err)
		}
		r[iv] = d
	}
	return r, nil
}

func parseRetentionDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("missing duration (want a number and a unit s, m, h, d or w, e.g. 30d)")
	}
	i := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("0123456789+-.", r) })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], s[i:]
	var ud time.Duration
	for _, u := range retentionUnits {
		if u.name == unit {
			ud = u.d
		}
	}
	if ud == 0 {
		return 0, fmt.Errorf("duration %q: unknown or missing unit %q (want s, m, h, d or w)", s, unit)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive whole number of %s", s, unit)
	}
	if n > math.MaxInt64/int64(ud) {
		return 0, fmt.Errorf("duration %q is too long", s)
	}
	return time.Duration(n) * ud, nil
}

// String returns the text form, intervals in increasing length, each
// duration in the largest unit that divides it ("" for none).
func (r Retention) String() string {
	ivs := make([]messages.Interval, 0, len(r))
	for iv := range r {
		ivs = append(ivs, iv)
	}
	slices.Sort(ivs)
	parts := make([]string, len(ivs))
	for i, iv := range ivs {
		parts[i] = iv.String() + "=" + formatRetentionDuration(r[iv])
	}
	return strings.Join(parts, ",")
}

func formatRetentionDuration(d time.Duration) string {
	for _, u := range retentionUnits {
		if d%u.d == 0 && d != 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String() // not a whole number of seconds: Validate refuses it
}

// Validate reports an invalid interval or a duration that is not a
// positive whole number of seconds.
func (r Retention) Validate() error {
	for iv, d := range r {
		if !iv.Valid() {
			return fmt.Errorf("storage: retention: %w: code %d", messages.ErrUnknownInterval, uint8(iv))
		}
		if d <= 0 || d%time.Second != 0 {
			return fmt.Errorf("storage: retention of %s: %v, want a positive whole number of seconds", iv, d)
		}
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler (the text form).
func (r Retention) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (so flag.TextVar
// works).
func (r *Retention) UnmarshalText(b []byte) error {
	v, err := ParseRetention(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// EnforceRetention deletes, for every series whose interval has a
// retention, the chunks all of whose bars open before the cutoff: the
// series' last bar's open time minus the retention. Stored chunks are
// deleted from the store, and chunks in memory (not yet stored) dropped;
// the head, which holds the last bar, always stays. It reports how many
// chunks it removed. Only series this ShardBars holds are enforced: after
// a restart, a series is once a bar was put into it (a series that gets
// none does not grow either). Queries for ranges before the cutoff find
// nothing afterwards (or part of a chunk that straddles it).
//
// It reads and deletes without holding the lock that Put and queries
// take, so it may run on the shard's storage writer while they go on.
func (b *ShardBars) EnforceRetention(ctx context.Context, r Retention) (int, error) {
	if len(r) == 0 {
		return 0, nil
	}
	type target struct {
		s      *series
		cutoff int64
	}
	var targets []target
	b.mu.RLock()
	for _, sb := range b.mu.symbols {
		for _, s := range sb.byIv {
			if s == nil {
				continue
			}
			d, ok := r[s.iv]
			if !ok || d <= 0 || !s.hasLast {
				continue
			}
			targets = append(targets, target{s: s, cutoff: s.last - d.Milliseconds()})
		}
	}
	b.mu.RUnlock()
	removed := 0
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		var stored []int64
		if b.store != nil {
			var err error
			if stored, err = b.store.deleteChunksBefore(ctx, t.s.symbol, t.s.iv, t.cutoff); err != nil {
				return removed, fmt.Errorf("storage: retention of %s %s: %w", t.s.symbol, t.s.iv, err)
			}
		}
		removed += len(stored) + b.dropBefore(t.s, t.cutoff, stored)
	}
	return removed, nil
}

// dropBefore drops the sealed chunks in memory of s whose last bar opens
// before cutoff, and returns how many of them were not among stored (the
// chunks just deleted from the store, by first open time).
func (b *ShardBars) dropBefore(s *series, cutoff int64, stored []int64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for n < len(s.chunks) && s.chunks[n].last < cutoff {
		n++
	}
	if n == 0 {
		return 0
	}
	extra := 0
	for _, c := range s.chunks[:n] {
		if b.store != nil {
			b.mu.pending -= len(c.payload)
		} else {
			s.memBars -= c.bars
		}
		if _, found := slices.BinarySearch(stored, c.first); !found {
			extra++
		}
	}
	clear(s.chunks[:n])
	s.chunks = slices.Delete(s.chunks, 0, n)
	return extra
}
