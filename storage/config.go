package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Durability says when AppendBatch returns relative to the fsync of its
// record (SPEC §4). The zero value is DurabilitySync, the safe default.
type Durability uint8

const (
	// DurabilitySync: AppendBatch returns after the record is fsynced.
	// Concurrent appends share one write and one fsync (group commit).
	DurabilitySync Durability = iota
	// DurabilityBatch: AppendBatch returns once the record is written;
	// a background fsync runs every Config.SyncInterval. A power loss can
	// lose the last interval of acknowledged batches (a process crash
	// cannot: the data is in the OS page cache).
	DurabilityBatch
	// DurabilityNone: no fsync until Close. For benchmarks and replays
	// that can be redone.
	DurabilityNone
)

var durabilityNames = [...]string{"sync", "batch", "none"}

// String returns "sync", "batch" or "none".
func (d Durability) String() string {
	if int(d) < len(durabilityNames) {
		return durabilityNames[d]
	}
	return fmt.Sprintf("Durability(%d)", uint8(d))
}

// ParseDurability parses the String form.
func ParseDurability(s string) (Durability, error) {
	for i, n := range durabilityNames {
		if n == s {
			return Durability(i), nil
		}
	}
	return 0, fmt.Errorf("storage: unknown durability %q (want sync, batch or none)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (d Durability) MarshalText() ([]byte, error) {
	if int(d) >= len(durabilityNames) {
		return nil, fmt.Errorf("storage: invalid durability %d", uint8(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler (so flag.TextVar works).
func (d *Durability) UnmarshalText(b []byte) error {
	v, err := ParseDurability(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Config configures a Store. Build one with DefaultConfig or
// DefaultLocalConfig, adjust fields, and pass it to Open, which copies it:
// later changes have no effect. Every zero value means "the default" as
// documented per field, so Config{Dir: d} is valid.
type Config struct {
	// Dir is the data directory (--data-dir). Open creates it if needed; it
	// holds klinecast.lock and the badger files under db/. Required unless
	// InMemory.
	Dir string

	// InMemory keeps everything in memory (no Dir, no files, nothing
	// survives Close). For tests of other packages; durability settings
	// are then accepted but have nothing to sync.
	InMemory bool

	// Durability selects the WAL fsync policy. Zero: DurabilitySync.
	Durability Durability

	// SyncInterval is the fsync period of DurabilityBatch. Zero: 10ms.
	// Negative is invalid. Ignored in the other modes.
	SyncInterval time.Duration

	// Repair makes WAL replay delete corrupt records found in the middle
	// of a shard's log (with a warning naming each key) instead of failing
	// with ErrCorrupt. A torn tail is always truncated, Repair or not.
	Repair bool

	// Logger receives warnings (torn tails, repairs, low disk, failed
	// fsyncs) with keys shard, key, seq, dir, err; badger's own messages
	// come through it too, its info level demoted to debug. Nil: discard.
	Logger *slog.Logger

	// MemoryBudget is the memory, in bytes, badger may use for memtables
	// and caches. It is split as: memtable = budget/8 (× 3 memtables),
	// block cache = budget/4, index cache = budget/8; the remaining quarter
	// is headroom for iterators, compactions and the arena overhead.
	// Zero: 64 MiB. Minimum 8 MiB.
	MemoryBudget int64

	// ValueLogFileSize is the size in bytes of one badger value-log file.
	// WAL records above 1 KiB live in the value log; space returns to the
	// file system when value-log GC rewrites a file. Zero: 64 MiB.
	// Range 1 MiB .. 2 GiB-1.
	ValueLogFileSize int64

	// DiskReserve is the free space, in bytes, below which WAL appends and
	// bar chunk writes (ShardBars.WriteDirty) fail with ErrUnavailable (snapshots and checkpoints until
	// half of it, deletes always). badger writes through memory-mapped,
	// sparsely allocated files, so a truly full disk crashes the process
	// with SIGBUS instead of returning ENOSPC: the reserve is how klinecast
	// turns a full disk into 503s. Zero: 2×ValueLogFileSize +
	// 12×memtable size + 32 MiB (256 MiB with the defaults). Negative:
	// no check. The check needs statfs (Linux); elsewhere it is skipped.
	DiskReserve int64

	// GCInterval is how often value-log GC runs (one file rewrite at most
	// per run, while appends wait). Zero: 1 minute. Negative: never.
	GCInterval time.Duration

	// GCDiscardRatio is the fraction of a value-log file that must be
	// garbage before GC rewrites it. Zero: 0.5. Range (0, 1).
	GCDiscardRatio float64

	// QueueDepth bounds the requests waiting for the committer. A full
	// queue blocks writers (back-pressure) until their context is done.
	// Zero: 1024.
	QueueDepth int

	// MaxGroupBytes bounds the payload bytes of one group commit. Zero: 8 MiB.
	MaxGroupBytes int

	// Faults, when non-nil, is consulted before every write and fsync and
	// can fail them (tests of ErrUnavailable handling). Nil in production.
	Faults FaultInjector

	// upgrade are test seams of the format-1 upgrade (migrate.go).
	upgrade upgradeHooks
}

// Defaults used for zero Config fields.
const (
	DefaultSyncInterval     = 10 * time.Millisecond
	DefaultMemoryBudget     = 64 << 20
	DefaultValueLogFileSize = 64 << 20
	DefaultGCInterval       = time.Minute
	DefaultGCDiscardRatio   = 0.5
	DefaultQueueDepth       = 1024
	DefaultMaxGroupBytes    = 8 << 20
	minMemoryBudget         = 8 << 20
	numMemtables            = 3
	valueThreshold          = 1 << 10
)

// DefaultConfig returns the production configuration for a data directory:
// sync durability, 64 MiB memory budget, 64 MiB value-log files.
func DefaultConfig(dir string) Config {
	c := Config{Dir: dir}
	c.setDefaults()
	return c
}

// DefaultLocalConfig returns a configuration for tests and laptops: the
// minimum memory budget (8 MiB), 1 MiB value-log files, a 16 MiB disk
// reserve and no background GC.
func DefaultLocalConfig(dir string) Config {
	c := Config{
		Dir:              dir,
		MemoryBudget:     minMemoryBudget,
		ValueLogFileSize: 1 << 20,
		DiskReserve:      16 << 20,
		GCInterval:       -1,
	}
	c.setDefaults()
	return c
}

// memTableSize is the badger memtable size derived from MemoryBudget.
func (c *Config) memTableSize() int64 { return c.MemoryBudget / 8 }

func (c *Config) setDefaults() {
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.MemoryBudget == 0 {
		c.MemoryBudget = DefaultMemoryBudget
	}
	if c.ValueLogFileSize == 0 {
		c.ValueLogFileSize = DefaultValueLogFileSize
	}
	if c.DiskReserve == 0 {
		c.DiskReserve = 2*c.ValueLogFileSize + 4*numMemtables*c.memTableSize() + 32<<20
	}
	if c.GCInterval == 0 {
		c.GCInterval = DefaultGCInterval
	}
	if c.GCDiscardRatio == 0 {
		c.GCDiscardRatio = DefaultGCDiscardRatio
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.MaxGroupBytes == 0 {
		c.MaxGroupBytes = DefaultMaxGroupBytes
	}
}

// Validate reports the first invalid field, after applying the defaults of
// zero fields to a copy (c itself is not modified).
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Dir == "" && !c.InMemory {
		errs = append(errs, errors.New("Dir is required (or set InMemory)"))
	}
	if int(c.Durability) >= len(durabilityNames) {
		errs = append(errs, fmt.Errorf("Durability %d is not sync, batch or none", uint8(c.Durability)))
	}
	if c.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("SyncInterval %v is negative", c.SyncInterval))
	}
	if c.MemoryBudget < minMemoryBudget {
		errs = append(errs, fmt.Errorf("MemoryBudget %d is below the minimum %d", c.MemoryBudget, minMemoryBudget))
	}
	if c.ValueLogFileSize < 1<<20 || c.ValueLogFileSize >= 2<<30 {
		errs = append(errs, fmt.Errorf("ValueLogFileSize %d outside [1 MiB, 2 GiB)", c.ValueLogFileSize))
	}
	if c.GCDiscardRatio <= 0 || c.GCDiscardRatio >= 1 {
		errs = append(errs, fmt.Errorf("GCDiscardRatio %v outside (0, 1)", c.GCDiscardRatio))
	}
	if c.QueueDepth < 1 {
		errs = append(errs, fmt.Errorf("QueueDepth %d must be positive", c.QueueDepth))
	}
	if c.MaxGroupBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxGroupBytes %d must be positive", c.MaxGroupBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: invalid config: %w", err)
	}
	return nil
}
