package storage

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/klinecast/klinecast/messages"
)

var (
	ivs1m5m = []messages.Interval{messages.Interval1m, messages.Interval5m}
	ivs1m1h = []messages.Interval{messages.Interval1m, messages.Interval1h}
)

// reopen closes s and opens cfg's data dir again.
func reopen(t *testing.T, s *Store, cfg Config) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openStore(t, cfg)
}

func requireMismatch(t *testing.T, err error, wants ...string) *LayoutMismatchError {
	t.Helper()
	var lerr *LayoutMismatchError
	if !errors.Is(err, ErrLayoutMismatch) || !errors.As(err, &lerr) {
		t.Fatalf("err = %v, want a *LayoutMismatchError wrapping ErrLayoutMismatch", err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	return lerr
}

// TestLayoutRecordedAndEnforced: a new data dir records the first layout
// durably; after a restart the same layout (intervals in any order) is
// accepted and any other is refused, naming what differs and the flags to
// start with.
func TestLayoutRecordedAndEnforced(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, onBadger, "")
	s := openStore(t, cfg)
	if _, ok, err := s.Layout(); ok || err != nil {
		t.Fatalf("new store: layout recorded %v, %v", ok, err)
	}
	want := Layout{Shards: 64, Intervals: []messages.Interval{messages.Interval5m, messages.Interval1m, messages.Interval5m}}
	if err := s.CheckLayout(ctx, want); err != nil {
		t.Fatalf("first CheckLayout: %v", err)
	}
	s = reopen(t, s, cfg)
	got, ok, err := s.Layout()
	if err != nil || !ok {
		t.Fatalf("after restart: layout recorded %v, %v", ok, err)
	}
	if got.Shards != 64 || !equalIntervals(got.Intervals, ivs1m5m) || got.FormatVersion != FormatVersion {
		t.Fatalf("recorded layout %v", got)
	}
	if err := s.CheckLayout(ctx, Layout{Shards: 64, Intervals: []messages.Interval{messages.Interval5m, messages.Interval1m}, FormatVersion: FormatVersion}); err != nil {
		t.Fatalf("same layout refused: %v", err)
	}

	err = s.CheckLayout(ctx, Layout{Shards: 32, Intervals: ivs1m5m})
	lerr := requireMismatch(t, err, cfg.Dir, "written with 64 shards and intervals 1m,5m", "configured with 32 shards:", "--shards 64", "empty --data-dir")
	if lerr.Stored.Shards != 64 || lerr.Want.Shards != 32 || lerr.Legacy {
		t.Errorf("error fields %+v", lerr)
	}
	if strings.Contains(err.Error(), "--intervals") {
		t.Errorf("intervals did not change, but the error names them: %v", err)
	}
	requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 64, Intervals: ivs1m1h}),
		"configured with intervals 1m,1h:", "--intervals 1m,5m")
	requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 8, Intervals: ivs1m1h}),
		"configured with 8 shards and intervals 1m,1h:", "--shards 64 --intervals 1m,5m")
	requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 64, Intervals: ivs1m5m, FormatVersion: FormatVersion + 1}), "format")

	// A refusal records nothing.
	if got, _, _ := s.Layout(); got.Shards != 64 {
		t.Fatalf("layout changed to %v by a refused check", got)
	}
}

func TestLayoutArguments(t *testing.T) {
	s := openStore(t, testConfig(t, inMemory, ""))
	ctx := context.Background()
	for _, l := range []Layout{
		{Shards: 0, Intervals: ivs1m5m},
		{Shards: MaxShard + 2, Intervals: ivs1m5m},
		{Shards: 4},
		{Shards: 4, Intervals: []messages.Interval{0}},
	} {
		if err := s.CheckLayout(ctx, l); err == nil || errors.Is(err, ErrLayoutMismatch) {
			t.Errorf("CheckLayout(%v) = %v, want an argument error", l, err)
		}
	}
	if _, ok, _ := s.Layout(); ok {
		t.Fatal("an invalid layout was recorded")
	}
}

// TestLayoutRecordFailsUnavailable: if the record cannot be made durable
// (its fsync fails), CheckLayout fails with ErrUnavailable; a retry once
// the fault is gone succeeds.
func TestLayoutRecordFailsUnavailable(t *testing.T) {
	f := &switchFault{op: FaultSync, err: errInjected}
	cfg := testConfig(t, onBadger, "")
	cfg.Faults = f
	s := openStore(t, cfg)
	f.on.Store(true)
	err := s.CheckLayout(context.Background(), Layout{Shards: 4, Intervals: ivs1m5m})
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errInjected) {
		t.Fatalf("CheckLayout with failing fsync: %v", err)
	}
	f.on.Store(false)
	if err := s.CheckLayout(context.Background(), Layout{Shards: 4, Intervals: ivs1m5m}); err != nil {
		t.Fatalf("after the fault cleared: %v", err)
	}
}

// TestLayoutLegacyDataDir: a data dir written before layouts were
// recorded (data, no record) is adopted only when its snapshots prove the
// shard count, and refused otherwise.
func TestLayoutLegacyDataDir(t *testing.T) {
	ctx := context.Background()
	// legacy writes what an older node with the given shards left: WAL
	// records on walShards, snapshots of snapShards.
	legacy := func(t *testing.T, walShards, snapShards []int) (Config, *Store) {
		t.Helper()
		cfg := testConfig(t, onBadger, "")
		s := openStore(t, cfg)
		var last uint64
		for i, sh := range walShards {
			seq, err := s.AppendBatch(ctx, sh, mkBatch("A", i, 2))
			if err != nil {
				t.Fatal(err)
			}
			last = seq
		}
		for _, sh := range snapShards {
			if err := s.SaveSnapshot(ctx, sh, min(last, 1), []byte("state")); err != nil {
				t.Fatal(err)
			}
		}
		return cfg, reopen(t, s, cfg)
	}
	all := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}

	t.Run("complete snapshot round is adopted", func(t *testing.T) {
		cfg, s := legacy(t, []int{3, 0, 7}, all(8))
		if err := s.CheckLayout(ctx, Layout{Shards: 8, Intervals: ivs1m5m}); err != nil {
			t.Fatalf("legacy dir with 8 snapshots refused for 8 shards: %v", err)
		}
		if got, ok, _ := s.Layout(); !ok || got.Shards != 8 {
			t.Fatalf("adopted layout not recorded: %v %v", got, ok)
		}
		if lines := recorderOf(cfg).matching("no layout record", "adopted"); len(lines) != 1 {
			t.Errorf("adoption not logged once: %q", lines)
		}
		// From now on it is an ordinary recorded layout.
		requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 16, Intervals: ivs1m5m}), "written with 8 shards")
	})
	t.Run("data beyond the shard count", func(t *testing.T) {
		_, s := legacy(t, []int{40}, all(8))
		lerr := requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 32, Intervals: ivs1m5m}),
			"no layout record", "shard 40", "at least 41 shards", "configured with 32 shards")
		if !lerr.Legacy || lerr.Stored.Shards != 41 {
			t.Errorf("error fields %+v", lerr)
		}
	})
	t.Run("fewer shards than configured", func(t *testing.T) {
		_, s := legacy(t, []int{1}, all(16))
		requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 64, Intervals: ivs1m5m}),
			"snapshots of shards 0..15", "written with 16 shards", "--shards 16")
		// The suggested restart works.
		if err := s.CheckLayout(ctx, Layout{Shards: 16, Intervals: ivs1m5m}); err != nil {
			t.Fatalf("restart with the suggested --shards 16: %v", err)
		}
	})
	t.Run("incomplete snapshot round", func(t *testing.T) {
		// WAL but no snapshot round yet: shards 0..7 cannot prove 8.
		_, s := legacy(t, []int{0, 5, 7}, []int{0, 5})
		requireMismatch(t, s.CheckLayout(ctx, Layout{Shards: 8, Intervals: ivs1m5m}),
			"snapshots of 2 shards", "does not prove")
		if _, ok, _ := s.Layout(); ok {
			t.Fatal("a refused legacy dir got a layout record")
		}
	})
	t.Run("bars only", func(t *testing.T) {
		cfg := testConfig(t, onBadger, "")
		s := openStore(t, cfg)
		k := messages.Kline{Symbol: "A", Interval: messages.Interval1m, OpenTime: 60_000, CloseTime: 119_999, Open: 1, High: 1, Low: 1, Close: 1, Closed: true}
		b := NewShardBars(s, 0)
		if err := b.Put([]messages.Kline{k}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.WriteDirty(ctx); err != nil {
			t.Fatal(err)
		}
		s = reopen(t, s, cfg)
		if _, _, other, err := s.layoutEvidence(ctx); err != nil || !other {
			t.Fatalf("stored chunks are not evidence of an older node: %v, %v", other, err)
		}
		if err := s.CheckLayout(ctx, Layout{Shards: 3, Intervals: ivs1m5m}); err != nil {
			t.Fatalf("klines do not depend on the shard count: %v", err)
		}
	})
}

func TestLayoutRecordCorrupt(t *testing.T) {
	s := openStore(t, testConfig(t, inMemory, ""))
	val := layoutRecord(Layout{Shards: 4, Intervals: ivs1m5m})
	val[len(val)-1] = 0 // interval code 0, checksum broken too
	rawPut(t, s, metaLayoutKey, val)
	if _, _, err := s.Layout(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt layout record: %v", err)
	}
	if err := s.CheckLayout(context.Background(), Layout{Shards: 4, Intervals: ivs1m5m}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("CheckLayout over a corrupt record: %v", err)
	}
}

func equalIntervals(a, b []messages.Interval) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
