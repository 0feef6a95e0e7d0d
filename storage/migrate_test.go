package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// The format-1 upgrade (migrate.go). Old-layout dirs are built with the
// legacy encoder below, which production code no longer has.

// legacyKlineKV encodes k as format 1 stored it: its own key, a kline
// record holding its msgpack.
func legacyKlineKV(k *messages.Kline) kvOp {
	key := appendKlineKey(nil, k.Symbol, k.Interval, k.OpenTime)
	val := beginRecord(nil, kindKline)
	val = messages.AppendKlineMsgpack(val, k)
	sealRecord(val, finishRecord(val), key)
	return kvOp{key: key, val: val}
}

// legacyBars returns the bars of a few series as a format-1 node stored
// them: one per period, the gap-filled empty bars one by one too, a hole
// where a symbol was gone.
func legacyBars() [][]messages.Kline {
	m, h, s1 := messages.Interval1m, messages.Interval1h, messages.Interval1s
	var out [][]messages.Kline
	series := func(sym string, iv messages.Interval, n int, pattern func(i int) string) {
		var ks []messages.Kline
		t := iv.Align(t0)
		var price messages.Decimal = 1_000_000_000
		for i := range n {
			switch pattern(i) {
			case "trade":
				k := tradedBar(sym, iv, t, uint64(i)*7+3)
				ks = append(ks, k)
				price = k.Close
			case "empty":
				ks = append(ks, emptyRun(sym, iv, t, price, 0))
			case "hole":
			}
			t = iv.Next(t)
		}
		out = append(out, ks)
	}
	// Mostly traded, with two gaps of empty bars.
	series("BTCUSDT", m, 3000, func(i int) string {
		if i%1000 >= 600 && i%1000 < 700 {
			return "empty"
		}
		return "trade"
	})
	// Quiet: a trade now and then, empty bars between.
	series("ETHUSDT", m, 2000, func(i int) string {
		if i%37 == 0 {
			return "trade"
		}
		return "empty"
	})
	series("ETHUSDT", h, 200, func(int) string { return "trade" })
	// Gone for a while (a hole), then back.
	series("A", s1, 500, func(i int) string {
		if i >= 100 && i < 300 {
			return "hole"
		}
		if i%5 == 0 {
			return "empty"
		}
		return "trade"
	})
	series("XRPUSDTLONGERNAME", messages.Interval1M, 30, func(i int) string {
		if i%4 == 1 {
			return "empty"
		}
		return "trade"
	})
	return out
}

// writeFormat1Dir fills cfg's new data dir as a format-1 node left it:
// the bars under 'k' keys, meta/format 1.
func writeFormat1Dir(t *testing.T, cfg Config, series [][]messages.Kline) {
	t.Helper()
	cfg.Logger = nil
	s := openStore(t, cfg)
	var ops []kvOp
	for _, ks := range series {
		for i := range ks {
			ops = append(ops, legacyKlineKV(&ks[i]))
		}
	}
	ops = append(ops, kvOp{key: metaFormatKey, val: u64Record(kindMeta, metaFormatKey, 1)})
	if err := s.write(context.Background(), ops, spaceAny, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func storedFormat(t *testing.T, s *Store) uint64 {
	t.Helper()
	v, err := decodeU64Record(metaFormatKey, rawGet(t, s, metaFormatKey), kindMeta)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dumpPrefix returns every key and value under prefix.
func dumpPrefix(t *testing.T, s *Store, prefix byte) []kvOp {
	t.Helper()
	var out []kvOp
	err := s.read(func() error {
		it := s.be.iter(iterOptions{prefix: []byte{prefix}})
		defer it.close()
		for it.seek([]byte{prefix}); it.valid(); it.next() {
			key := bytes.Clone(it.key())
			if err := it.value(func(v []byte) error {
				out = append(out, kvOp{key: key, val: bytes.Clone(v)})
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireUpgraded checks that every bar of series reads back exactly and
// that no 'k' key is left in a format-2 dir.
func requireUpgraded(t *testing.T, s *Store, series [][]messages.Kline) {
	t.Helper()
	b := NewShardBars(s, 0)
	for _, ks := range series {
		got, err := b.Klines(ks[0].Symbol, ks[0].Interval, 0, 1<<62, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !sameBars(got, ks) {
			t.Fatalf("%s %s after the upgrade: %d bars %s, want %d %s", ks[0].Symbol, ks[0].Interval, len(got), opensOf(got), len(ks), opensOf(ks))
		}
	}
	if left := dumpPrefix(t, s, prefixKline); len(left) != 0 {
		t.Fatalf("%d kline keys left, first %s", len(left), formatKey(left[0].key))
	}
	if v := storedFormat(t, s); v != 2 {
		t.Fatalf("format %d after the upgrade", v)
	}
}

func TestUpgradeFormat1(t *testing.T) {
	series := legacyBars()
	cfg := testConfig(t, onBadger, "")
	writeFormat1Dir(t, cfg, series)
	sum, err := Inspect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, ks := range series {
		total += len(ks)
	}
	if sum.FormatVersion != 1 || sum.LegacyKlines != total || len(sum.Symbols) != 0 {
		t.Fatalf("inspect of the format-1 dir: format %d, %d legacy klines (want %d), %d symbols", sum.FormatVersion, sum.LegacyKlines, total, len(sum.Symbols))
	}

	cfg.upgrade.progressEvery = -1 // a progress line per series
	s := openStore(t, cfg)
	requireUpgraded(t, s, series)
	rec := recorderOf(cfg)
	if l := rec.matching("INFO", "upgrading data dir from storage format 1 to 2", "series=5"); len(l) != 1 {
		t.Errorf("start of the upgrade not logged once: %q", l)
	}
	if l := rec.matching("INFO", "upgrading data dir", "series_done=", "series_total=5", "bars_converted="); len(l) != 5 {
		t.Errorf("progress not logged per series: %q", l)
	}
	if l := rec.matching("INFO", "data dir upgraded to storage format 2", "series=5", fmt.Sprintf("bars_converted=%d", total), fmt.Sprintf("kline_keys_deleted=%d", total)); len(l) != 1 {
		t.Errorf("summary not logged once: %q", l)
	}
	// Gap bars became runs: far fewer entries than bars.
	sum, err = s.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.FormatVersion != 2 || sum.LegacyKlines != 0 {
		t.Fatalf("summary after the upgrade: format %d, %d legacy klines", sum.FormatVersion, sum.LegacyKlines)
	}
	var runs, bars int64
	for _, iv := range sum.Intervals {
		runs += iv.Runs
		bars += iv.Bars
	}
	if bars != int64(total) || runs < 40 || runs > 300 {
		t.Fatalf("after the upgrade: %d bars (want %d), %d runs", bars, total, runs)
	}
	// Once only: the next start finds format 2.
	before := len(rec.matching("upgrad"))
	s = reopen(t, s, cfg)
	if after := len(rec.matching("upgrad")); after != before {
		t.Fatalf("a format-2 dir was upgraded again: %q", rec.matching("upgrad"))
	}
	requireUpgraded(t, s, series)
}

// TestUpgradeInterrupted: an upgrade stopped at any point (after a series'
// chunks were written but before its 'k' keys were deleted; with part of
// them deleted; with only part of a series' chunks written) leaves format
// 1, and the next start finishes it with exactly the chunks an
// uninterrupted upgrade writes.
func TestUpgradeInterrupted(t *testing.T) {
	series := legacyBars()
	ref := testConfig(t, onBadger, "")
	writeFormat1Dir(t, ref, series)
	s := openStore(t, ref)
	want := dumpPrefix(t, s, prefixChunk)
	if len(want) < 20 {
		t.Fatalf("%d chunks: too few to test anything", len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	stop := errors.New("stopped by the test")
	for _, c := range []struct {
		name  string
		stage string
		at    int
		// damage changes the interrupted dir further, as a crash could
		// have left it (s is open on it, in format 1).
		damage func(t *testing.T, s *Store)
	}{
		{"between series", upgradeDeleted, 1, nil},
		{"chunks written, keys not deleted", upgradeWritten, 2, nil},
		{"keys partly deleted", upgradeWritten, 0, func(t *testing.T, s *Store) {
			// The first series in key order (A 1s) was converted; its
			// first keys (a deletion batch) are gone.
			keys := dumpPrefix(t, s, prefixKline)[:200]
			if sym, _, _, _ := parseKlineKey(keys[199].key); string(sym) != "A" {
				t.Fatalf("key order: %s", formatKey(keys[199].key))
			}
			ops := make([]kvOp, len(keys))
			for i, k := range keys {
				ops[i] = kvOp{key: k.key, del: true}
			}
			if err := s.write(context.Background(), ops, spaceAny, true, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"series partly written", upgradeDeleted, 0, func(t *testing.T, s *Store) {
			// BTCUSDT 1m and ETHUSDT 1m (the next series in key
			// order) have the chunks of their first 1,100 bars, stored
			// in two writes, sealed chunks and a head.
			for _, ks := range series[:2] {
				b := NewShardBars(s, 0)
				for _, part := range [][]messages.Kline{ks[:700], ks[700:1100]} {
					if err := b.Put(part); err != nil {
						t.Fatal(err)
					}
					if _, err := b.WriteDirty(context.Background()); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t, onBadger, "")
			writeFormat1Dir(t, cfg, series)
			cfg.upgrade.after = func(stage string, done int) error {
				if stage == c.stage && done == c.at {
					return stop
				}
				return nil
			}
			_, err := Open(context.Background(), cfg)
			if !errors.Is(err, stop) || !strings.Contains(err.Error(), "the next start resumes") {
				t.Fatalf("interrupted upgrade: %v", err)
			}
			cfg.upgrade.after = nil
			// Still format 1, with the 'k' keys of what is not done: open
			// it without upgrading (a test seam: the store's init alone).
			s := openFormat1(t, cfg)
			if v := storedFormat(t, s); v != 1 {
				t.Fatalf("format %d after an interrupted upgrade", v)
			}
			if len(dumpPrefix(t, s, prefixKline)) == 0 {
				t.Fatal("no kline key left after an interrupted upgrade")
			}
			if c.damage != nil {
				c.damage(t, s)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, cfg)
			requireUpgraded(t, s, series)
			got := dumpPrefix(t, s, prefixChunk)
			if len(got) != len(want) {
				t.Fatalf("%d chunks after a resumed upgrade, %d after an uninterrupted one", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i].key, want[i].key) || !bytes.Equal(got[i].val, want[i].val) {
					t.Fatalf("chunk %d differs: %s, want %s", i, formatKey(got[i].key), formatKey(want[i].key))
				}
			}
		})
	}
}

// openFormat1 opens cfg's data dir without upgrading it.
func openFormat1(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := openWithoutUpgrade(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openWithoutUpgrade(cfg Config) (*Store, error) {
	cfg.upgrade.skip = true
	return Open(context.Background(), cfg)
}

func TestUpgradeRefusesNewerFormat(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	s := openStore(t, cfg)
	storeBars(t, s, mkBar("A", messages.Interval1m, 0))
	rawPut(t, s, metaFormatKey, u64Record(kindMeta, metaFormatKey, 3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func() error{
		"Open":    func() error { _, err := Open(context.Background(), cfg); return err },
		"Inspect": func() error { _, err := Inspect(context.Background(), cfg); return err },
	} {
		err := open()
		if err == nil || !strings.Contains(err.Error(), "storage format 3") || !strings.Contains(err.Error(), "too old") || !strings.Contains(err.Error(), cfg.Dir) {
			t.Fatalf("%s of a format-3 dir: %v", name, err)
		}
	}
	// Untouched.
	s, err := openWithoutUpgrade(cfg)
	if err == nil {
		s.Close()
		t.Fatal("a format-3 dir opened")
	}
}

func TestUpgradeCorruptBar(t *testing.T) {
	series := legacyBars()[2:4] // ETHUSDT 1h, A 1s
	cfg := testConfig(t, onBadger, "")
	writeFormat1Dir(t, cfg, series)
	s := openFormat1(t, cfg)
	bad := series[0][10]
	key := appendKlineKey(nil, bad.Symbol, bad.Interval, bad.OpenTime)
	v := rawGet(t, s, key)
	v[len(v)-2] ^= 0x10
	rawPut(t, s, key, v)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), cfg)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Key != formatKey(key) || !strings.Contains(err.Error(), "--repair") {
		t.Fatalf("upgrade over a corrupt bar: %v", err)
	}
	cfg.Repair = true
	s = openStore(t, cfg)
	series[0] = append(series[0][:10:10], series[0][11:]...)
	requireUpgraded(t, s, series)
	if l := recorderOf(cfg).matching("WARN", "skipping a corrupt format-1 bar", formatKey(key)); len(l) != 1 {
		t.Fatalf("skipped bar not logged: %q", l)
	}
}

// TestUpgradeThenLayout: a format-1 dir from before layouts were recorded,
// with bars and checkpoints only, is upgraded and then adopted.
func TestUpgradeThenLayout(t *testing.T) {
	series := legacyBars()[:1]
	cfg := testConfig(t, onBadger, "")
	writeFormat1Dir(t, cfg, series)
	s := openStore(t, cfg)
	if err := s.CheckLayout(context.Background(), Layout{Shards: 4, Intervals: ivs1m5m}); err != nil {
		t.Fatalf("an upgraded dir with bars only: %v", err)
	}
	if l, ok, err := s.Layout(); err != nil || !ok || l.Shards != 4 || l.FormatVersion != 2 {
		t.Fatalf("layout %v %v %v", l, ok, err)
	}
	if l := recorderOf(cfg).matching("no layout record", "adopted"); len(l) != 1 {
		t.Fatalf("adoption not logged: %q", l)
	}
}

func TestUpgradeEmptyFormat1(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	writeFormat1Dir(t, cfg, nil)
	start := time.Now()
	s := openStore(t, cfg)
	if v := storedFormat(t, s); v != 2 {
		t.Fatalf("format %d", v)
	}
	if l := recorderOf(cfg).matching("upgrading data dir from"); len(l) != 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("an empty format-1 dir logged a conversion: %q", l)
	}
}
