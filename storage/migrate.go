package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// Upgrading a format-1 data dir
//
// Format 1 stored every closed bar under a key of its own ('k' | len |
// symbol | interval | open time) holding a kline record (kind 2, the bar's
// msgpack). Format 2 stores bars as chunks (chunk_store.go) and has no 'k'
// key. Open upgrades a format-1 data dir in place before it returns
// (upgradeFormat1), one series (symbol, interval) at a time:
//
//  1. the series' bars are read in open-time order and put into a
//     ShardBars bound to the store, which stores them as chunks
//     (WriteDirty, fsynced whatever the durability);
//  2. only then are the series' 'k' keys deleted, in batches.
//
// meta/format becomes 2 once no 'k' key is left. A crash (or an error) at
// any point leaves format 1 and 'k' keys for what is not converted yet;
// the next Open starts over with the series left. A series interrupted
// between 1 and 2 still has its 'k' keys: its bars are put again, over the
// chunks already stored (ShardBars amends them, which changes nothing), so
// the upgrade is idempotent.

// The stages of a series' conversion at which Config's test hook is
// called.
const (
	upgradeWritten = "written" // its chunks are stored, its 'k' keys still there
	upgradeDeleted = "deleted" // its 'k' keys are deleted too
)

// upgradeHooks are test seams of the upgrade; zero in production.
type upgradeHooks struct {
	// after, if set, is called at each stage of each series with the
	// number of series converted before this one; an error stops the
	// upgrade (Open fails with it).
	after func(stage string, series int) error
	// progressEvery replaces upgradeProgressEvery when non-zero; negative
	// logs progress after every series.
	progressEvery time.Duration
	// skip leaves a format-1 dir as it is (tests that build or damage one).
	skip bool
}

const (
	upgradeProgressEvery = 5 * time.Second
	upgradePageBars      = 4096    // bars read per iterator
	upgradeFlushBytes    = 1 << 20 // store a series' chunks once this many are pending
	upgradeDeleteBatch   = 8192    // 'k' keys deleted per write
)

// legacySeries is one (symbol, interval) with 'k' keys.
type legacySeries struct {
	symbol string
	iv     messages.Interval
}

// upgradeStats counts what the upgrade did.
type upgradeStats struct {
	series, bars, chunks, keys, skipped int
}

// upgradeFormat1 converts a format-1 data dir's per-bar klines into chunks
// and then records format 2. It runs in Open, with the committer started
// and nothing else using the Store.
func (s *Store) upgradeFormat1(ctx context.Context) error {
	began := time.Now()
	series, err := s.legacySeriesList(ctx)
	if err != nil {
		return fmt.Errorf("storage: upgrading the data dir to format %d: %w", formatVersion, err)
	}
	every := upgradeProgressEvery
	if d := s.cfg.upgrade.progressEvery; d != 0 {
		every = d
	}
	var st upgradeStats
	if len(series) > 0 {
		s.log.Info("upgrading data dir from storage format 1 to 2: converting per-bar klines into chunks (once; the node starts when done)",
			"dir", s.cfg.Dir, "series", len(series))
	}
	lastLog := time.Now()
	for i, ls := range series {
		if err := s.upgradeSeries(ctx, ls, i, &st); err != nil {
			return fmt.Errorf("storage: upgrading the data dir to format %d: %s %s: %w (format 1 kept: the next start resumes the upgrade)", formatVersion, ls.symbol, ls.iv, err)
		}
		st.series++
		if now := time.Now(); every < 0 || now.Sub(lastLog) >= every {
			lastLog = now
			s.log.Info("upgrading data dir", "series_done", st.series, "series_total", len(series),
				"bars_converted", st.bars, "chunks_written", st.chunks, "elapsed", now.Sub(began).Round(time.Millisecond))
		}
	}
	// INVARIANT: format 2 is recorded only when no 'k' key is left.
	var left bool
	if err := s.read(func() error {
		it := s.be.iter(iterOptions{prefix: []byte{prefixKline}})
		defer it.close()
		it.seek([]byte{prefixKline})
		left = it.valid()
		return nil
	}); err != nil {
		return err
	}
	if left {
		return fmt.Errorf("storage: upgrading the data dir to format %d: kline keys are left after converting every series", formatVersion)
	}
	if err := s.write(ctx, []kvOp{{key: metaFormatKey, val: u64Record(kindMeta, metaFormatKey, formatVersion)}}, spaceAny, true, nil); err != nil {
		return fmt.Errorf("storage: upgrading the data dir: recording format %d: %w", formatVersion, err)
	}
	s.log.Info("data dir upgraded to storage format 2", "dir", s.cfg.Dir, "series", st.series, "bars_converted", st.bars,
		"chunks_written", st.chunks, "kline_keys_deleted", st.keys, "corrupt_bars_skipped", st.skipped,
		"took", time.Since(began).Round(time.Millisecond))
	return nil
}

// legacySeriesList lists the series with 'k' keys, one seek per series.
// A malformed 'k' key is corruption; with Config.Repair it is deleted.
func (s *Store) legacySeriesList(ctx context.Context) ([]legacySeries, error) {
	var out []legacySeries
	var bad [][]byte
	err := s.read(func() error {
		it := s.be.iter(iterOptions{prefix: []byte{prefixKline}})
		defer it.close()
		for it.seek([]byte{prefixKline}); it.valid(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := it.key()
			sym, iv, _, ok := parseKlineKey(key)
			if !ok || checkSeries(string(sym), iv) != nil {
				if !s.cfg.Repair {
					return fmt.Errorf("%w; restart with --repair to delete it", corruptf(key, "malformed kline key"))
				}
				bad = append(bad, slices.Clone(key))
				it.next()
				continue
			}
			out = append(out, legacySeries{symbol: string(sym), iv: iv})
			// Past every key of the series: its prefix, then 0xff beyond
			// any 8-byte open time.
			it.seek(append(appendKlineSeriesPrefix(nil, string(sym), iv), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range bad {
		s.log.Warn("repair: deleting a malformed kline key", "key", formatKey(k))
	}
	if len(bad) > 0 {
		ops := make([]kvOp, len(bad))
		for i, k := range bad {
			ops[i] = kvOp{key: k, del: true}
		}
		if err := s.write(ctx, ops, spaceAny, true, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// upgradeSeries converts one series: its chunks are stored (fsynced)
// before any of its 'k' keys is deleted.
func (s *Store) upgradeSeries(ctx context.Context, ls legacySeries, done int, st *upgradeStats) error {
	b := NewShardBars(s, 0)
	prefix := appendKlineSeriesPrefix(nil, ls.symbol, ls.iv)
	from := prefix
	var page []messages.Kline
	for {
		var next []byte
		var err error
		page, next, err = s.legacyPage(prefix, from, page[:0], st)
		if err != nil {
			return err
		}
		if err := b.Put(page); err != nil {
			return err
		}
		st.bars += len(page)
		if next == nil || b.PendingBytes() >= upgradeFlushBytes {
			n, err := b.WriteDirty(ctx)
			if err != nil {
				return err
			}
			st.chunks += n
		}
		if next == nil {
			break
		}
		from = next
	}
	if s.cfg.Durability == DurabilityNone {
		// The chunks must be durable before the bars they replace are
		// deleted, whatever the node's durability.
		if err := s.syncNow(); err != nil {
			return fmt.Errorf("%w: fsync: %w", ErrUnavailable, err)
		}
	}
	if err := s.upgradeHook(upgradeWritten, done); err != nil {
		return err
	}
	for {
		var dels []kvOp
		if err := s.read(func() error {
			it := s.be.iter(iterOptions{prefix: prefix})
			defer it.close()
			for it.seek(prefix); it.valid() && len(dels) < upgradeDeleteBatch; it.next() {
				dels = append(dels, kvOp{key: slices.Clone(it.key()), del: true})
			}
			return nil
		}); err != nil {
			return err
		}
		if len(dels) == 0 {
			break
		}
		if err := s.write(ctx, dels, spaceAny, true, nil); err != nil {
			return fmt.Errorf("deleting %d kline keys: %w", len(dels), err)
		}
		st.keys += len(dels)
	}
	return s.upgradeHook(upgradeDeleted, done)
}

func (s *Store) upgradeHook(stage string, done int) error {
	if f := s.cfg.upgrade.after; f != nil {
		return f(stage, done)
	}
	return nil
}

// legacyPage appends to dst up to upgradePageBars bars of the series
// whose keys are at or after from, decoded from their 'k' records, and
// returns where the next page starts (nil: the series is done). A corrupt
// record, or a bar a chunk cannot hold, fails with a *CorruptError naming
// its key, unless Config.Repair: then it is skipped with a warning (and
// deleted with the series' keys).
func (s *Store) legacyPage(prefix, from []byte, dst []messages.Kline, st *upgradeStats) ([]messages.Kline, []byte, error) {
	var next []byte
	var skipped [][]byte
	err := s.read(func() error {
		it := s.be.iter(iterOptions{prefix: prefix})
		defer it.close()
		n := 0
		for it.seek(from); it.valid(); it.next() {
			key := it.key()
			if n == upgradePageBars {
				next = slices.Clone(key)
				return nil
			}
			n++
			var k messages.Kline
			err := it.value(func(v []byte) error { return decodeKlineRecord(key, v, &k) })
			if err == nil {
				if cerr := checkBar(&k); cerr != nil {
					err = corruptf(key, "a format-1 bar that no chunk can hold: %v", cerr)
				}
			}
			if err != nil {
				if !errors.Is(err, ErrCorrupt) || !s.cfg.Repair {
					if errors.Is(err, ErrCorrupt) {
						err = fmt.Errorf("%w; restart with --repair to skip it (the bar is lost)", err)
					}
					return err
				}
				skipped = append(skipped, slices.Clone(key))
				continue
			}
			dst = append(dst, k)
		}
		return nil
	})
	for _, k := range skipped {
		s.log.Warn("repair: skipping a corrupt format-1 bar; it is deleted with its series' other kline keys", "key", formatKey(k))
	}
	st.skipped += len(skipped)
	return dst, next, err
}
