package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// Summary describes a store's contents (klinecast inspect, the dashboard).
type Summary struct {
	Dir           string
	FormatVersion uint64
	// LastSeq is the largest sequence number ever assigned; DurableSeq the
	// last one recorded as fsynced (equal to LastSeq after a clean Close).
	LastSeq, DurableSeq uint64
	// LSMBytes and VlogBytes are badger's on-disk sizes (refreshed by
	// badger about once a minute while running; 0 in memory).
	LSMBytes, VlogBytes int64
	// Recovered reports that Inspect had to open the directory read-write
	// because badger needed crash recovery (the node did not shut down
	// cleanly); badger then truncated its own log, as serve would have.
	Recovered bool

	Symbols []SymbolSummary // sorted by symbol
	// Intervals totals the stored bars per interval, by interval.
	Intervals []IntervalSummary
	// LegacyKlines counts the per-bar kline keys of a format-1 data dir,
	// which the next Open converts into chunks (0 in format 2).
	LegacyKlines int

	WAL         []ShardWAL     // shards with WAL records, by shard
	Snapshots   []SnapshotInfo // by shard
	Checkpoints []Checkpoint   // by consumer
}

// SymbolSummary lists a symbol's stored bars per interval.
type SymbolSummary struct {
	Symbol string
	Series []SeriesSummary // by interval
}

// SeriesSummary describes the stored bars of one (symbol, interval): its
// chunks as stored (bars a node held in memory only are not there).
type SeriesSummary struct {
	Interval messages.Interval
	// Bars counts the bars the chunks stand for, runs of empty bars
	// expanded; Runs the run entries among them (each one entry however
	// many empty bars it stands for).
	Bars   int64
	Runs   int64
	Chunks int
	// Bytes is the size of the chunk values (envelopes included).
	Bytes               int64
	FirstOpen, LastOpen int64 // open times (ms) of the first and last bar
	// Corrupt counts chunks failing their checksum or decoding (their
	// bars are not counted; a query over them fails).
	Corrupt int
}

// IntervalSummary totals the stored bars of one interval over every
// symbol.
type IntervalSummary struct {
	Interval messages.Interval
	Series   int
	Chunks   int
	Bars     int64 // runs expanded
	Runs     int64 // run entries
	Bytes    int64 // chunk values
	// BytesPerBar is Bytes / Bars (0 without bars).
	BytesPerBar float64
	Corrupt     int
}

// ShardWAL describes one shard's WAL.
type ShardWAL struct {
	Shard             int
	Records           int
	Trades            int
	Bytes             int64
	FirstSeq, LastSeq uint64
	// Corrupt counts records failing their checksum or decoding (replay
	// would truncate or refuse them).
	Corrupt int
}

// SnapshotInfo describes one shard snapshot.
type SnapshotInfo struct {
	Shard      int
	CoveredSeq uint64
	Bytes      int // blob size
	SavedAt    time.Time
}

// Summary scans the store: every WAL record is read and decoded (to count
// trades and corrupt records) and every bar chunk too (to count bars and
// runs), so it costs about as much as a replay. Not for hot paths.
func (s *Store) Summary(ctx context.Context) (Summary, error) {
	var sum Summary
	err := s.read(func() error {
		var err error
		sum, err = s.summary(ctx)
		return err
	})
	sum.Dir = s.cfg.Dir
	return sum, err
}

func (s *Store) summary(ctx context.Context) (Summary, error) {
	var sum Summary
	if err := s.be.get(metaFormatKey, func(v []byte) error {
		var err error
		sum.FormatVersion, err = decodeU64Record(metaFormatKey, v, kindMeta)
		return err
	}); err != nil && !errors.Is(err, errNotFound) {
		return sum, err
	}
	if sum.FormatVersion != 0 {
		if err := checkFormatVersion(s.cfg.Dir, sum.FormatVersion); err != nil {
			return sum, err
		}
	}
	last, durable, err := s.recoverSeqs(ctx)
	if err != nil {
		return sum, err
	}
	sum.LastSeq, sum.DurableSeq = last, durable
	if sz, ok := s.be.(sizeBackend); ok {
		sum.LSMBytes, sum.VlogBytes = sz.size()
	}
	if sum.Symbols, err = s.chunkSummary(ctx); err != nil {
		return sum, err
	}
	sum.Intervals = intervalTotals(sum.Symbols)
	if sum.LegacyKlines, err = s.countLegacyKlines(ctx); err != nil {
		return sum, err
	}
	if sum.WAL, err = s.walSummary(ctx); err != nil {
		return sum, err
	}
	if sum.Snapshots, err = s.snapshotSummary(); err != nil {
		return sum, err
	}
	if sum.Checkpoints, err = s.checkpoints(); err != nil {
		return sum, err
	}
	return sum, nil
}

// chunkSummary decodes every stored chunk's entries to sum up each
// series.
func (s *Store) chunkSummary(ctx context.Context) ([]SymbolSummary, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixChunk}})
	defer it.close()
	var out []SymbolSummary
	n := 0
	var k messages.Kline
	for it.seek([]byte{prefixChunk}); it.valid(); it.next() {
		if n++; n&255 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		key := it.key()
		sym, iv, first, ok := parseChunkKey(key)
		if !ok {
			return nil, corruptf(key, "malformed chunk key")
		}
		if len(out) == 0 || out[len(out)-1].Symbol != string(sym) {
			out = append(out, SymbolSummary{Symbol: string(sym)})
		}
		ss := &out[len(out)-1]
		if len(ss.Series) == 0 || ss.Series[len(ss.Series)-1].Interval != iv {
			ss.Series = append(ss.Series, SeriesSummary{Interval: iv, FirstOpen: first})
		}
		se := &ss.Series[len(ss.Series)-1]
		se.Chunks++
		if err := it.value(func(v []byte) error {
			se.Bytes += int64(len(v))
			p, err := openRecord(key, v, kindChunk)
			if err != nil {
				se.Corrupt++
				return nil
			}
			var r chunkReader
			if err := r.init(key, ss.Symbol, iv, first, p); err != nil {
				se.Corrupt++
				return nil
			}
			var bars, runs int64
			for r.more() {
				if err := r.entry(&k); err != nil {
					se.Corrupt++
					return nil
				}
				if k.ValidRun() { // the builder encodes every such entry as a run
					runs++
				}
				bars += k.Bars()
			}
			se.Bars += bars
			se.Runs += runs
			se.LastOpen = r.lastOpen()
			return nil
		}); err != nil {
			return nil, fmt.Errorf("storage: reading %s: %w", formatKey(key), err)
		}
	}
	// Keys order symbols by length first; present them by name.
	sortByName(out)
	return out, nil
}

// intervalTotals sums the series of every symbol per interval.
func intervalTotals(syms []SymbolSummary) []IntervalSummary {
	var by [messages.Interval1M + 1]IntervalSummary
	for _, sym := range syms {
		for _, se := range sym.Series {
			if !se.Interval.Valid() {
				continue
			}
			t := &by[se.Interval]
			t.Interval = se.Interval
			t.Series++
			t.Chunks += se.Chunks
			t.Bars += se.Bars
			t.Runs += se.Runs
			t.Bytes += se.Bytes
			t.Corrupt += se.Corrupt
		}
	}
	var out []IntervalSummary
	for _, t := range by {
		if t.Series == 0 {
			continue
		}
		if t.Bars > 0 {
			t.BytesPerBar = float64(t.Bytes) / float64(t.Bars)
		}
		out = append(out, t)
	}
	return out
}

// countLegacyKlines counts a format-1 dir's per-bar kline keys.
func (s *Store) countLegacyKlines(ctx context.Context) (int, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixKline}})
	defer it.close()
	n := 0
	for it.seek([]byte{prefixKline}); it.valid(); it.next() {
		if n++; n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func sortByName(ss []SymbolSummary) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && ss[j].Symbol < ss[j-1].Symbol; j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

func (s *Store) walSummary(ctx context.Context) ([]ShardWAL, error) {
	shards, err := s.walShards(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ShardWAL, 0, len(shards))
	var tb messages.TradeBatch
	for _, sh := range shards {
		w := ShardWAL{Shard: int(sh)}
		it := s.be.iter(iterOptions{prefix: walShardPrefix(sh)})
		for it.seek(walShardPrefix(sh)); it.valid(); it.next() {
			if w.Records&255 == 0 {
				if err := ctx.Err(); err != nil {
					it.close()
					return nil, err
				}
			}
			key := it.key()
			_, seq, _ := parseWALKey(key)
			if w.Records == 0 {
				w.FirstSeq = seq
			}
			w.LastSeq = seq
			w.Records++
			if err := it.value(func(v []byte) error {
				w.Bytes += int64(len(v))
				if _, _, err := decodeWALRecord(key, v, &tb); err != nil {
					w.Corrupt++
				} else {
					w.Trades += len(tb.Trades)
				}
				return nil
			}); err != nil {
				it.close()
				return nil, fmt.Errorf("storage: reading %s: %w", formatKey(key), err)
			}
		}
		it.close()
		out = append(out, w)
	}
	return out, nil
}

func (s *Store) snapshotSummary() ([]SnapshotInfo, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixSnapshot}})
	defer it.close()
	var out []SnapshotInfo
	for it.seek([]byte{prefixSnapshot}); it.valid(); it.next() {
		key := it.key()
		sh, ok := parseSnapshotKey(key)
		if !ok {
			return nil, corruptf(key, "malformed snapshot key")
		}
		if err := it.value(func(v []byte) error {
			covered, savedAt, blob, err := decodeSnapshotRecord(key, v)
			if err != nil {
				return err
			}
			out = append(out, SnapshotInfo{Shard: int(sh), CoveredSeq: covered, Bytes: len(blob), SavedAt: time.UnixMilli(savedAt).UTC()})
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Inspect summarises the data directory cfg.Dir of a stopped node without
// changing it. Pass the Config the node runs with (at least Dir and
// MemoryBudget: badger must size its memtables as the writer did); only
// Dir, MemoryBudget, ValueLogFileSize and Logger are used. It takes the directory lock shared (so it fails with
// ErrLocked while a node runs there) and opens badger read-only. If badger
// needs crash recovery first (the node was killed), Inspect opens it
// read-write instead, which lets badger truncate its own log exactly as
// the next serve would, and sets Summary.Recovered. klinecast-level repair
// (torn WAL tails) is never done by Inspect; Summary.WAL reports corrupt
// records instead.
func Inspect(ctx context.Context, cfg Config) (Summary, error) {
	cfg.InMemory = false
	cfg.GCInterval = -1
	cfg.Faults = nil
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg.setDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger, dir := cfg.Logger, cfg.Dir
	dbDir := filepath.Join(dir, badgerSubdir)
	if _, err := os.Stat(dbDir); err != nil {
		return Summary{}, fmt.Errorf("storage: %s is not a klinecast data directory: %w", dir, err)
	}
	lock, err := lockDir(dir, true)
	if err != nil {
		return Summary{}, err
	}
	recovered := false
	be, err := openBadger(&cfg, dbDir, true)
	if err != nil {
		// Read-only badger refuses a log that needs truncation. Upgrade to
		// an exclusive lock (no node may start meanwhile) and recover.
		lock.unlock()
		logger.Warn("read-only open failed; opening read-write to let badger recover its log", "dir", dir, "err", err)
		if lock, err = lockDir(dir, false); err != nil {
			return Summary{}, err
		}
		be, err = openBadger(&cfg, dbDir, false)
		if err != nil {
			lock.unlock()
			return Summary{}, fmt.Errorf("storage: opening %s: %w", dbDir, err)
		}
		recovered = true
	}
	s := &Store{cfg: cfg, log: logger, be: be, lock: lock}
	s.gate.idle.L = &s.gate.mu.Mutex
	sum, serr := s.summary(ctx)
	sum.Dir = dir
	sum.Recovered = recovered
	cerr := be.close()
	lerr := lock.unlock()
	if serr != nil {
		return sum, fmt.Errorf("storage: inspecting %s: %w", dir, serr)
	}
	return sum, errors.Join(cerr, lerr)
}
