// Package storage owns everything klinecast keeps on disk: the trade WAL,
// the closed bars (chunked series, ShardBars), shard snapshots and
// consumer checkpoints (SPEC §4).
// It is a concrete facade, *Store, over a narrow key-value backend: badger
// (github.com/dgraph-io/badger/v4) in production, an in-memory B-tree for
// tests (Config.InMemory). Both pass the same conformance tests.
//
// # Imports
//
// storage imports the standard library, messages and third-party modules
// only. It must never import actors, cluster, cmd or any other klinecast
// package (enforced by TestImportsContract).
//
// # Using it
//
//	s, err := storage.Open(ctx, storage.DefaultConfig(dataDir)) // ErrLocked if in use; upgrades a format-1 dir first
//	err = s.CheckLayout(ctx, storage.Layout{Shards: n, Intervals: ivs}) // ErrLayoutMismatch: refuse to start
//	bars := storage.NewShardBars(s, 0)                // per shard: its closed bars
//	// recovery, per shard:
//	covered, blob, ok, err := s.LoadSnapshot(shard)   // restore the shard from blob
//	err = s.ReplayWAL(ctx, shard, covered, apply)     // then the WAL tail, in order (apply puts its closed bars again)
//	// ingest: durable before the 200
//	seq, err := s.AppendBatch(ctx, shard, &batch)     // ErrUnavailable -> 503
//	err = bars.Put(closedBars)                        // as the shard closes them: memory only, never waits for the disk
//	// snapshot (closed bars first, then the snapshot that covers them):
//	_, err = bars.WriteDirty(ctx)
//	err = s.SaveSnapshot(ctx, shard, lastAppliedSeq, encodedShardState)
//	_, err = s.TruncateWAL(ctx, shard, lastAppliedSeq)
//	n, err := bars.EnforceRetention(ctx, retention)   // now and then, after a snapshot
//	// serving, from any goroutine:
//	ks, err := bars.Klines(sym, iv, start, end, limit, ks[:0])
//	err = s.PutCheckpoint(ctx, consumer, ackedSeq)
//	h := s.Health()                                   // for the health monitor: ok/degraded/failed
//	err = s.Close()
//
// # Layout record
//
// WAL records and snapshots are per shard and snapshots hold the open bars
// of each interval, so a data dir must be read with the shard count and
// intervals it was written with: a node restarted with another --shards
// would otherwise replay shard 40's WAL into nothing, or load symbols into
// shards they no longer hash to. meta/layout records them (with the
// format version of meta/format). The node calls CheckLayout(ctx, want)
// after Open and before any recovery:
//
//   - a new data dir (no WAL record, snapshot, bar or checkpoint):
//     want is recorded and fsynced;
//   - a recorded layout: it must equal want (intervals as sets), else the
//     error wraps ErrLayoutMismatch, a *LayoutMismatchError whose message
//     names the dir, what it was written with, what differs, and the flags
//     to start with (or an empty --data-dir). A layout never changes once
//     recorded;
//   - a data dir written before layouts were recorded (data, no record):
//     its shard count is not stored anywhere, and shard numbers alone do
//     not prove it (a 64-shard node with few symbols may have WAL records
//     only below 32). But the previous version saved a snapshot of every
//     one of its shards each snapshot interval, so a complete round of
//     snapshots, exactly shards 0..n-1, shows it ran with n shards. want
//     is adopted (recorded, with a warning) only if snapshots exist for
//     exactly shards 0..want.Shards-1 and no shard at or beyond
//     want.Shards has a WAL record; a dir with only bars (chunks, or the
//     per-bar klines of a format-1 dir) and checkpoints (nothing per
//     shard) is adopted too. Anything else is
//     refused with ErrLayoutMismatch: data of shard k >= want.Shards ("at
//     least k+1 shards"), a complete round for fewer shards ("written with
//     m shards: start with --shards m"), or an incomplete round (the old
//     node never finished one: nothing proves the count; use an empty
//     data dir). The intervals of such a dir are not known: want's are
//     adopted; the shard's own snapshot decoding must refuse state it
//     cannot read.
//
// Layout() returns the recorded layout, if any.
//
// # Sequence numbers
//
// AppendBatch assigns each record a sequence number, global across shards:
// it starts at 1, strictly increases in commit order and never repeats,
// even after restarts or after every record was truncated (the high-water
// mark is stored in meta/seqs and recovered from the WAL keys and the
// snapshots' covered sequences, whichever is largest). Numbers are dense
// unless an append failed. Within one shard, records replay in sequence
// order. Appends are committed in the order they were queued: calls from
// one goroutine get increasing numbers, and AppendBatchAsync lets one
// goroutine (the ingest router) fix the WAL order without waiting for each
// fsync, while concurrent appends still share group commits.
//
// # Durability
//
// Config.Durability selects when AppendBatch returns:
//
//   - sync (default): after an fsync covering the record. Concurrent
//     appends are committed together: one backend write and one fsync per
//     group (group commit). A group is whatever queued while the previous
//     group was being written and fsynced, up to 1024 requests or
//     Config.MaxGroupBytes.
//   - batch: after the write; a background goroutine fsyncs every
//     Config.SyncInterval (default 10 ms) if anything was written. A power
//     loss can lose up to about one interval of acknowledged batches (a
//     process crash cannot: the data is in the page cache). If a periodic
//     fsync fails, appends fail with ErrUnavailable until one succeeds.
//   - none: no fsync until Close.
//
// Independently of the mode, SaveSnapshot, PutCheckpoint and
// DeleteCheckpoint are fsynced before they return, and ShardBars.WriteDirty,
// retention's deletions and TruncateWAL are fsynced unless the mode is
// none. Stats().DurableSeq is
// the last sequence known to be fsynced.
//
// # Failures
//
// A write that cannot be made durable fails with an error wrapping
// ErrUnavailable (and the underlying error, e.g. syscall.ENOSPC or EIO);
// ingest answers 503. Nothing acknowledged before is affected, reads keep
// working, and writes succeed again once the cause is gone: there is no
// sticky failed state except batch mode's (above), which clears at the
// next successful periodic fsync.
//
// When the write or fsync of a group fails, its appends fail and their
// records are deleted (best effort), so this process never replays them.
// After a crash such a record may still be present and replayed: a failed
// append means "not acknowledged", not "certainly absent"; a caller that
// needs exactly-once effects deduplicates (e.g. by aggregate trade id).
//
// Full disk: badger writes its value log and memtable log through
// memory-mapped, sparsely allocated files, so a truly full file system
// kills the process with SIGBUS inside badger instead of returning ENOSPC
// (verified on a full tmpfs). The Store therefore keeps a free-space
// reserve (Config.DiskReserve, default 2 value-log files + 12 memtables +
// 32 MiB = 256 MiB): below it, AppendBatch and ShardBars.WriteDirty fail with
// ErrUnavailable; below half of it SaveSnapshot and PutCheckpoint do too;
// deletions (TruncateWAL, retention) always proceed, since they are how
// space comes back. Free space is checked with statfs once per group commit (Linux;
// elsewhere the check is skipped).
//
// Health() reports this as a component state, cheaply (one fstatfs of
// the data dir, atomic loads; no allocation) and from any goroutine:
// HealthFailed while writes are refused or failing (closed; free space
// below the reserve, read afresh by each call; the last group write or
// fsync failed and no write has succeeded since; batch mode's failed
// periodic fsync), HealthDegraded when free space is below twice the
// reserve, HealthOK otherwise. StoreHealth also carries the time and text
// of the last failure (kept after recovery) and the free and reserve
// bytes.
//
// Config.Faults (a FaultInjector) fails writes and fsyncs on demand, for
// tests of these paths in this package and above it.
//
// # Recovery: torn tails and corruption
//
// badger recovers its own logs after a crash; what reaches this package is
// a record whose value fails its checksum or length check, or is empty
// (badger logs and swallows value-log read errors and returns an empty
// value; it also truncates its last value-log file at the first damaged
// entry on open, which empties every later value in that file).
//
// meta/seqs records the last sequence known to be fsynced, and Close sets
// it to the last sequence. When Open finds records beyond it (the previous
// run did not close cleanly), it walks every shard's log backwards from the
// end over those newer records and deletes the damaged ones up to the first
// good one: the torn tail. Each deletion is logged at warn level with the
// shard and the key. Then it fsyncs and records everything left as durable.
//
// Any other damaged WAL record is corruption, found by ReplayWAL: damaged
// records followed by a good one, or damaged records at the end of a
// shard's log at or below the last fsynced sequence (a torn write cannot
// hit data that was fsynced). ReplayWAL then fails with an error wrapping
// ErrCorrupt, whose *CorruptError names the first bad key; the message
// says to restart with --repair. With Config.Repair, those records are
// deleted (warning per key) and the replay continues; their trades are
// lost. Damaged records beyond the fsynced sequence at the end of a log
// that appear while running (only a test's fault hook makes those) are
// truncated as a torn tail by ReplayWAL too.
//
// Corrupt chunks, snapshots and checkpoints fail the read with a
// *CorruptError; Repair does not apply to them (it does to the per-bar
// klines of a format-1 dir being upgraded: see "Upgrading format 1").
//
// # Key formats
//
// One badger key space. The first byte names the family; integers are
// big-endian so that byte order is numeric order.
//
//	WAL record   'w' (0x77) | shard uint16 | seq uint64                  11 bytes
//	chunk        'b' (0x62) | len uint8 | symbol (len bytes) | interval uint8 | first_open uint64
//	kline        'k' (0x6b) | len uint8 | symbol (len bytes) | interval uint8 | open_time uint64
//	             (format-1 dirs only: one key per bar; Open converts them into chunks)
//	snapshot     's' (0x73) | shard uint16                                3 bytes
//	checkpoint   'c' (0x63) | consumer name (1..255 bytes, to the end of the key)
//	meta         'm' (0x6d) | name: "format" (format version), "seqs" (sequence counters),
//	                          "layout" (layout record)
//
// WAL keys sort by shard, then sequence: one shard's log is one contiguous
// range, replayed with one seek and a forward scan, and truncated as a
// prefix of that range.
//
// Chunk keys: the symbol is length-prefixed, so "BTC" and "BTCUSDT" never
// share a range; interval is messages.Interval's code (1 = 1s ... 16 = 1M);
// first_open is the int64 millisecond open time of the chunk's first bar
// XOR 1<<63 (sign bit flipped), so byte order is time order. One series is
// one contiguous key range; its chunks never overlap. A range query
// (symbol, interval, start..end) is one reverse seek for the chunk holding
// start plus a forward scan of the chunks opening up to end; Symbols
// skip-scans one seek per symbol. Format-1 kline keys were laid out the
// same way, one per bar.
//
// # Values
//
// Every value is an envelope:
//
//	offset  size  field
//	0       4     CRC-32C (Castagnoli), big-endian, of value[4:] followed by the key
//	4       1     kind: 1 WAL record, 2 kline (format 1 only), 3 snapshot,
//	              4 checkpoint, 5 meta, 6 chunk
//	5       4     payload length n, big-endian (must equal len(value) - 9)
//	9       n     payload
//
// The checksum covers the key, so a value stored or read under the wrong
// key (or a WAL record under another sequence) fails verification.
// Payloads:
//
//	WAL record   messages.AppendTradeBatchMsgpack of the batch (trades and
//	             clock ticks); its seq
//	             field is written as 0 and ignored: the key's seq is authoritative.
//	             At most min(64 MiB, ValueLogFileSize - 89) bytes.
//	chunk        the chunk payload of chunk.go ("Chunks"): version byte (1),
//	             bars, entries and span (uvarints), then the entries: bars
//	             as deltas from the previous bar, runs of empty bars as one
//	             entry. Symbol, interval and the first open time come from
//	             the key.
//	kline        (format 1 only) messages.AppendKlineMsgpack; symbol,
//	             interval and open time must match the key.
//	snapshot     covered_seq uint64 | saved_at int64 (unix ms) | blob (opaque)
//	checkpoint   seq uint64
//	meta/format  version uint64 (2; 1 before bars were chunked)
//	meta/seqs    last_assigned_seq uint64 | last_fsynced_seq uint64
//	meta/layout  shards uint32 | n uint8 | n interval codes (sorted, unique)
//
// # Bar series
//
// Closed bars live in ShardBars (series.go), one per shard: per series
// (symbol, interval) a head chunk in memory that takes the next bars, and
// sealed chunks (ChunkTargetBytes, 4 KiB) before it.
//
//   - Put takes closed bars and runs of empty bars (Kline.Repeat) in
//     memory only: the shard never waits for the disk. A bar after the
//     series' last is appended to the head (a run extends the previous run
//     in place); any other is an amendment (a late-trade correction, a
//     WAL replay over bars already stored): the chunks it touches, in
//     memory or read from the store, are decoded, the bar written over
//     them (splitting runs) and encoded again, a stored chunk moving to
//     memory as its new version. An amendment that changes nothing writes
//     nothing.
//   - WriteDirty stores every sealed chunk not yet stored and every head
//     changed since last stored, in one fsynced write; the shard calls it
//     right before SaveSnapshot, so the WAL a snapshot deletes never holds
//     the only copy of a closed bar. Stored sealed chunks leave memory. A
//     failed write keeps everything for the next call.
//   - After a restart a series' head is loaded (its latest stored chunk)
//     the first time a bar is put into it, and the WAL replay appends to
//     it or amends it.
//   - Klines reads the stored chunks of the range and lays those in
//     memory over them (a memory chunk replaces the stored one with the
//     same first open time), decoding only the chunks that hold the
//     range; runs come back expanded.
//
// A memory-only node (NewShardBars(nil, n)) keeps sealed chunks in memory,
// dropping the oldest once the later ones hold n bars.
//
// # Retention
//
// Retention ("1s=7d,1m=365d") bounds, per interval, how long a durable
// node keeps bars: ShardBars.EnforceRetention deletes, for each series in
// memory whose interval has one, the stored chunks all of whose bars open
// before the series' last bar's open time minus the retention
// (deleteChunksBefore: by the next chunk's key, or for the last chunk
// opening before the cutoff by its header), and drops such chunks from
// memory. The head never goes. Chunks straddling the cutoff stay whole.
// The actor layer runs it after a snapshot, at most once a minute per
// shard; a failure is logged, never fails the snapshot.
//
// # Upgrading format 1
//
// Format 1 stored one 'k' key per closed bar. Open upgrades such a data
// dir in place before it returns (migrate.go), logging at info level what
// it converts (progress every few seconds: series done of total, bars
// converted) and a summary. It converts one series at a time: the
// series' bars, read in open-time order, are put into a ShardBars bound to
// the Store and written (fsynced, whatever the durability); only then are
// its 'k' keys deleted, in batches. meta/format becomes 2 once no 'k' key
// is left. A crash or an error leaves format 1 with the 'k' keys of
// whatever was not finished, and the next Open resumes: a series whose
// chunks were (partly) written is put again over them, which amends
// nothing. A corrupt 'k' record stops the upgrade naming its key; with
// Config.Repair it is skipped with a warning. A data dir of a format newer
// than this build's is refused by Open and Inspect (never read), naming
// the version and saying this build is too old. Inspect never upgrades:
// it counts a format-1 dir's per-bar klines (Summary.LegacyKlines).
//
// # Concurrency
//
// Every method of *Store is safe for concurrent use. Writes (appends,
// chunks, snapshots, checkpoints, truncation, GC) are requests to a single
// committer goroutine through a bounded queue (Config.QueueDepth): a full
// queue blocks the caller until its context ends (back-pressure); once a
// request is queued it runs to completion whatever the context does.
// INVARIANT: the committer is the only writer, so no write can slip
// between a group's write and its fsync (badger's fsync covers only its
// current memtable and value-log files; a concurrent write could rotate
// them and leave the group unsynced). Value-log GC therefore runs inside
// the committer too (appends wait while it rewrites one file), and keeps
// an iterator open until its rewrite is fsynced, because badger deletes
// the old file right after rewriting it.
//
// Reads (chunks for ShardBars, LoadSnapshot, GetCheckpoint, ReplayWAL, Summary...) run
// on the caller's goroutine against a consistent view. ReplayWAL's callback
// runs on the caller's goroutine and may call other Store methods; the
// batch it receives is reused for the next record.
//
// Close stops admitting calls (later ones get ErrClosed), waits for those
// in progress (a running ReplayWAL included), executes everything queued,
// fsyncs, records the durable sequence and closes badger.
//
// Goroutines owned by a Store: the committer, the batch-mode fsync ticker
// and the value-log GC ticker; all end in Close. Locks: gate.mu (call
// admission) and syncMu (serialises fsyncs); neither is held while
// acquiring the other or during a queue wait.
//
// # Directory and locking
//
// Config.Dir holds klinecast.lock and badger's files under db/. Open takes
// an exclusive flock on klinecast.lock and writes its pid there; a second
// Open, from any process, fails with ErrLocked naming the directory and the
// holder's pid. The kernel drops the lock when the process dies, so kill
// -9 never leaves it stale. Inspect takes the lock shared.
//
// # Badger options
//
// Derived from Config.MemoryBudget B (default 64 MiB) instead of badger's
// server-sized defaults (5 × 64 MiB memtables, 256 MiB block cache, 1 GiB
// value-log files):
//
//	MemTableSize          B/8 (8 MiB), NumMemtables 3: at most 3 × B/8 of memtables
//	BlockCacheSize        B/4 (16 MiB; required because SSTs are Snappy-compressed)
//	IndexCacheSize        B/8 (8 MiB; bounds memory for table indexes and blooms)
//	NumLevelZeroTables    4, stall at 8 (less unflushed data than 5/15)
//	BaseTableSize         min(2 MiB, B/16)
//	ValueLogFileSize      Config.ValueLogFileSize (64 MiB)
//	ValueThreshold        1 KiB: WAL records of more than ~20 trades and
//	                      sealed bar chunks (~4 KiB) go to the value log,
//	                      written once and reclaimed by GC, instead of being
//	                      rewritten by every LSM compaction; small heads,
//	                      checkpoints and small records stay in the LSM
//	SyncWrites            false: durability comes from our own fsync policy
//	                      (db.Sync), not per badger write
//	DetectConflicts       false: the single committer never needs it
//	VerifyValueChecksum   false: our envelope's CRC-32C covers every value
//	MetricsEnabled        false: badger's metrics are process-global expvars
//	NumCompactors         2 (badger's minimum)
//	Logger                Config.Logger; badger's info level becomes debug
//
// Value-log GC runs every Config.GCInterval (1 min), rewriting at most one
// file whose garbage fraction is at least Config.GCDiscardRatio (0.5).
package storage
