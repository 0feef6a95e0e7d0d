package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/messages"
)

func TestParseRetention(t *testing.T) {
	day := 24 * time.Hour
	good := []struct {
		in   string
		want Retention
		text string // String() of the result
	}{
		{"", Retention{}, ""},
		{"  ", Retention{}, ""},
		{"1m=2d", Retention{messages.Interval1m: 2 * day}, "1m=2d"},
		{"1s=7d,1m=365d", Retention{messages.Interval1s: 7 * day, messages.Interval1m: 365 * day}, "1s=1w,1m=365d"},
		{" 1h = 12h , 1d=1w", Retention{messages.Interval1h: 12 * time.Hour, messages.Interval1d: 7 * day}, "1h=12h,1d=1w"},
		{"1M=520w,1s=90s", Retention{messages.Interval1M: 520 * 7 * day, messages.Interval1s: 90 * time.Second}, "1s=90s,1M=520w"},
		{"5m=60m", Retention{messages.Interval5m: time.Hour}, "5m=1h"},
	}
	for _, c := range good {
		got, err := ParseRetention(c.in)
		if err != nil {
			t.Errorf("ParseRetention(%q): %v", c.in, err)
			continue
		}
		if len(got) != len(c.want) {
			t.Errorf("ParseRetention(%q) = %v, want %v", c.in, got, c.want)
		}
		for iv, d := range c.want {
			if got[iv] != d {
				t.Errorf("ParseRetention(%q)[%s] = %v, want %v", c.in, iv, got[iv], d)
			}
		}
		if s := got.String(); s != c.text {
			t.Errorf("ParseRetention(%q).String() = %q, want %q", c.in, s, c.text)
		}
		if again, err := ParseRetention(got.String()); err != nil || again.String() != got.String() {
			t.Errorf("%q does not round-trip: %v, %v", got.String(), again, err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("ParseRetention(%q).Validate(): %v", c.in, err)
		}
		var r Retention
		if err := r.UnmarshalText([]byte(c.in)); err != nil || r.String() != c.text {
			t.Errorf("UnmarshalText(%q) = %v, %v", c.in, r, err)
		}
	}
	bad := []struct {
		in, says string
	}{
		{"1x=7d", "unknown interval"},
		{"1m", "want INTERVAL=DURATION"},
		{"=7d", "unknown interval"},
		{"1m=", "missing duration"},
		{"1m=7", "missing unit"},
		{"1m=7y", `unknown or missing unit "y"`},
		{"1m=7D", `unknown or missing unit "D"`},
		{"1m=0d", "positive whole number"},
		{"1m=-1d", "positive whole number"},
		{"1m=1.5d", "positive whole number"},
		{"1m=d", "positive whole number"},
		{"1m=2d,1m=3d", "listed twice"},
		{"1m=2d,", "want INTERVAL=DURATION"},
		{"1m=99999999999999w", "too long"},
		{"1m=2d;1h=3d", "unknown or missing unit"},
	}
	for _, c := range bad {
		r, err := ParseRetention(c.in)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseRetention(%q) = %v, %v; want an error saying %q", c.in, r, err, c.says)
		}
	}
	if err := (Retention{0: time.Hour}).Validate(); !errors.Is(err, messages.ErrUnknownInterval) {
		t.Errorf("Validate of interval 0: %v", err)
	}
	if err := (Retention{messages.Interval1m: -time.Hour}).Validate(); err == nil {
		t.Error("Validate of a negative duration succeeded")
	}
}

// chunkSpans returns the first and last open time of every stored chunk of
// (symbol, iv).
func chunkSpans(t *testing.T, s *Store, symbol string, iv messages.Interval) [][2]int64 {
	t.Helper()
	var out [][2]int64
	for _, kv := range dumpPrefix(t, s, prefixChunk) {
		sym, kiv, first, _ := parseChunkKey(kv.key)
		if string(sym) != symbol || kiv != iv {
			continue
		}
		last, err := s.chunkLastOpen(kv.key, iv, first)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, [2]int64{first, last})
	}
	return out
}

// TestEnforceRetention: a series of 10 days of 1m bars (an hour is one
// traded bar and a run of 59 empty ones) under a 2-day retention loses
// exactly the chunks whose bars all open before the cutoff, stored or in
// memory; other series and intervals are untouched.
func TestEnforceRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		m := messages.Interval1m
		base := messages.Interval1d.Align(t0)
		var hours []messages.Kline
		var price messages.Decimal
		for h := range int64(10 * 24) {
			open := base + h*messages.Hour
			k := tradedBar("R", m, open, uint64(h)+1)
			price = k.Close
			hours = append(hours, k, emptyRun("R", m, open+messages.Minute, price, 58))
		}
		// A few hours per chunk; nine days stored, the last one in memory
		// only (sealed chunks and the head).
		b := storeSealed(t, s, 200, hours[:2*9*24]...)
		if err := b.Put(hours[2*9*24:]); err != nil {
			t.Fatal(err)
		}
		// A correction of an old stored chunk: a new version of it in
		// memory, dropped with the stored one.
		fix := hours[10]
		fix.High++
		hours[10] = fix
		if err := b.Put([]messages.Kline{fix}); err != nil {
			t.Fatal(err)
		}
		// Untouched: another symbol of the same interval with a hole of
		// its own, and another interval.
		other := []messages.Kline{tradedBar("S", m, base, 1), tradedBar("S", m, base+9*messages.Day, 2)}
		hourly := []messages.Kline{tradedBar("R", messages.Interval1h, base, 3)}
		if err := b.Put(append(other, hourly...)); err != nil {
			t.Fatal(err)
		}
		end := int64(1) << 62
		before, err := b.Klines("R", m, 0, end, 0, nil)
		if err != nil || len(before) != 10*24*60 {
			t.Fatalf("before: %d bars, %v", len(before), err)
		}
		last := before[len(before)-1].OpenTime
		cutoff := last - 2*messages.Day
		var stale int // stored chunks all before the cutoff
		for _, sp := range chunkSpans(t, s, "R", m) {
			if sp[1] < cutoff {
				stale++
			}
		}
		if stale < 10 {
			t.Fatalf("only %d stored chunks before the cutoff: the test tests little", stale)
		}
		b.mu.RLock()
		var memStale int
		for _, c := range b.lookup("R", m).chunks {
			if c.last < cutoff {
				memStale++
			}
		}
		b.mu.RUnlock()
		if memStale != 1 {
			t.Fatalf("%d chunks before the cutoff in memory, want the corrected one", memStale)
		}
		pending := b.PendingBytes()

		r := Retention{m: 2 * 24 * time.Hour, messages.Interval1d: time.Hour}
		n, err := b.EnforceRetention(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if n != stale {
			t.Fatalf("EnforceRetention removed %d chunks, want %d (the corrected one counted once)", n, stale)
		}
		// Only chunks entirely before the cutoff went; the first one left
		// reaches it.
		spans := chunkSpans(t, s, "R", m)
		if len(spans) == 0 || spans[0][1] < cutoff || spans[0][0] > cutoff {
			t.Fatalf("stored chunks after retention: %v (cutoff %d)", spans[:min(3, len(spans))], cutoff)
		}
		if b.PendingBytes() >= pending {
			t.Fatalf("pending bytes %d -> %d: dropped chunks still counted", pending, b.PendingBytes())
		}
		check := func(b *ShardBars, what string) {
			t.Helper()
			// Recent ranges answer as before.
			for _, from := range []int64{cutoff, cutoff + messages.Hour + 7*messages.Minute, last - 30*messages.Minute} {
				got, err := b.Klines("R", m, from, end, 0, nil)
				i := (from - base) / messages.Minute
				if err != nil || !sameBars(got, before[i:]) {
					t.Fatalf("%s: Klines from %d: %d bars, want %d (%v)", what, from, len(got), len(before[i:]), err)
				}
			}
			// Old ranges are empty; the range before the cutoff holds
			// at most the start of the chunk that straddles it.
			if got, err := b.Klines("R", m, 0, cutoff-12*messages.Hour, 0, nil); err != nil || len(got) != 0 {
				t.Fatalf("%s: old range: %d bars (%v)", what, len(got), err)
			}
			got, err := b.Klines("R", m, 0, cutoff-1, 0, nil)
			if err != nil || len(got) > 0 && (got[0].OpenTime < spans[0][0] || !sameBars(got, before[(got[0].OpenTime-base)/messages.Minute:][:len(got)])) {
				t.Fatalf("%s: before the cutoff: %d bars from %v", what, len(got), opens(got[:min(1, len(got))]))
			}
			for _, q := range []struct {
				sym  string
				iv   messages.Interval
				want []messages.Kline
			}{{"S", m, other}, {"R", messages.Interval1h, hourly}} {
				if got, err := b.Klines(q.sym, q.iv, 0, end, 0, nil); err != nil || !sameBars(got, q.want) {
					t.Fatalf("%s: %s %s touched: %d bars (%v)", what, q.sym, q.iv, len(got), err)
				}
			}
		}
		check(b, "after retention")
		// What is written next does not bring the deleted chunks back.
		if _, err := b.WriteDirty(ctx); err != nil {
			t.Fatal(err)
		}
		check(b, "after the next write")
		check(NewShardBars(s, 0), "store only")
		if again, err := b.EnforceRetention(ctx, r); err != nil || again != 0 {
			t.Fatalf("a second run removed %d chunks (%v)", again, err)
		}
	})
}

// TestDeleteChunksBefore: the store side of retention, chunk boundaries
// and holes included.
func TestDeleteChunksBefore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		m := messages.Interval1m
		base := m.Align(t0)
		at := func(i int64) int64 { return base + i*messages.Minute }
		// Chunks [0..9] [10..19] [20..24] hole [40..49] [50..59].
		write := func() {
			for _, r := range [][2]int64{{0, 9}, {10, 19}, {20, 24}, {40, 49}, {50, 59}} {
				var ks []messages.Kline
				for i := r[0]; i <= r[1]; i++ {
					ks = append(ks, tradedBar("D", m, at(i), uint64(i)))
				}
				cb := chunkBuilder{}
				buildChunk(&cb, m, ks)
				key := appendChunkKey(nil, "D", m, cb.first)
				if err := s.writeChunks(ctx, []kvOp{{key: key, val: chunkRecord(key, &cb)}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, c := range []struct {
			cutoff int64
			want   []int64 // first open times deleted
		}{
			{at(0), nil},
			{at(9), nil},                             // [0..9] holds a bar at the cutoff
			{at(10), []int64{at(0)}},                 // the next chunk opens at the cutoff
			{at(24), []int64{at(0), at(10)}},         // [20..24] holds it
			{at(25), []int64{at(0), at(10), at(20)}}, // in the hole: by the header
			{at(39), []int64{at(0), at(10), at(20)}},
			{at(55), []int64{at(0), at(10), at(20), at(40)}},
			{at(60), []int64{at(0), at(10), at(20), at(40), at(50)}}, // every bar before it
		} {
			write()
			got, err := s.deleteChunksBefore(ctx, "D", m, c.cutoff)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("cutoff %d: deleted %v, want %v", c.cutoff, got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("cutoff %d: deleted %v, want %v", c.cutoff, got, c.want)
				}
			}
			left := chunkSpans(t, s, "D", m)
			if len(left) != 5-len(c.want) || len(left) > 0 && left[0][1] < c.cutoff {
				t.Fatalf("cutoff %d: left %v", c.cutoff, left)
			}
		}
		// A corrupt chunk whose header must be read fails the call.
		write()
		key := appendChunkKey(nil, "D", m, at(20))
		v := rawGet(t, s, key)
		v[10] ^= 0xff
		rawPut(t, s, key, v)
		if _, err := s.deleteChunksBefore(ctx, "D", m, at(30)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("over a corrupt chunk: %v", err)
		}
	})
}

// TestEnforceRetentionConcurrent: retention runs (on the storage writer)
// while the shard puts bars and writes them and queries read; run with
// -race. Recent bars are always there.
func TestEnforceRetentionConcurrent(t *testing.T) {
	s := openStore(t, testConfig(t, inMemory, ""))
	ctx := context.Background()
	m := messages.Interval1m
	base := m.Align(t0)
	b := NewShardBars(s, 0)
	b.sealBytes = 128
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range int64(n) {
			if err := b.Put([]messages.Kline{tradedBar("C", m, base+i*messages.Minute, uint64(i))}); err != nil {
				t.Error(err)
				return
			}
			if i%100 == 0 {
				if _, err := b.WriteDirty(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	r := Retention{m: time.Hour}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := b.EnforceRetention(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := b.Klines("C", m, 0, 1<<62, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 0 {
			last := got[len(got)-1].OpenTime
			tail, _ := b.Klines("C", m, last-30*messages.Minute, last, 0, nil)
			if len(tail) != 31 && last-30*messages.Minute >= base {
				t.Fatalf("the last half hour has %d bars", len(tail))
			}
		}
	}
	if _, err := b.EnforceRetention(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Klines("C", m, 0, 1<<62, 0, nil)
	if len(got) < 61 || len(got) > 200 || got[len(got)-1].OpenTime != base+(n-1)*messages.Minute {
		t.Fatalf("after retention: %d bars", len(got))
	}
}
