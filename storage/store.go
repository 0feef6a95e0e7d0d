package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// formatVersion is the on-disk format of doc.go. Open upgrades a data dir
// of format 1 (migrate.go) and refuses any other.
const formatVersion = 2

// badgerSubdir holds badger's files inside Config.Dir.
const badgerSubdir = "db"

// Store is klinecast's durable state: the trade WAL, the closed bars (as
// chunks, written and read through ShardBars), shard snapshots and
// consumer checkpoints (doc.go). All methods are safe for concurrent use.
// Writes are executed by one committer goroutine in arrival order; reads
// run on the caller's goroutine against a consistent view.
type Store struct {
	cfg       Config
	log       *slog.Logger
	be        backend
	lock      *dirLock
	dbDir     string // "" when InMemory
	maxRecord int

	reqs          chan *op      // to the committer; closed by Close
	committerDone chan struct{} // closed when the committer has exited
	stop          chan struct{} // closed by Close: background loops exit
	bg            sync.WaitGroup
	clock         atomic.Int64 // the newest RecordClock (clock.go)

	// gate counts the calls using the backend; Close shuts it and waits
	// for them, so nothing touches a closed backend.
	gate gate

	// Owned by the committer goroutine (set up by Open before it starts).
	lastSeq  uint64
	keyArena []byte
	kvs      []kvOp
	delKeys  [][]byte

	// syncMu serialises fsyncs (committer, batch syncer, Close) and
	// guards syncedGen.
	syncMu    sync.Mutex
	syncedGen uint64
	writeGen  atomic.Uint64 // incremented after every successful backend write
	// committedSeq is the last sequence whose record has been written
	// (stats.lastSeq is the last assigned, possibly still being written).
	committedSeq atomic.Uint64

	syncErr  atomic.Pointer[error] // DurabilityBatch: last periodic fsync failed
	lowSpace atomic.Bool           // free space is below the reserve (for log transitions)

	// For Health: writeFailure is the failure of the last group write or
	// fsync (nil once a group succeeds); lastFailure the last failure of
	// any kind. Both are set by the committer and the sync loop.
	writeFailure atomic.Pointer[failure]
	lastFailure  atomic.Pointer[failure]
	disk         dirStat // the data dir's file system; zero when InMemory

	st stats

	opPool sync.Pool
}

// stats are the live counters behind Stats.
type stats struct {
	appends, trades, walBytes atomic.Uint64
	commits, fsyncs           atomic.Uint64
	failures, fsyncErrors     atomic.Uint64
	gcRewrites                atomic.Uint64
	lastSeq, durableSeq       atomic.Uint64
}

// Stats is a snapshot of the Store's counters since Open.
type Stats struct {
	Appends     uint64 // acknowledged AppendBatch calls
	Trades      uint64 // trades in them
	WALBytes    uint64 // value bytes of the WAL records written
	Commits     uint64 // backend writes by the committer (group commits)
	Fsyncs      uint64 // fsyncs attempted (group commits, batch ticker, snapshots, checkpoints, GC, Close)
	FsyncErrors uint64 // of which failed
	Failures    uint64 // requests answered with ErrUnavailable
	GCRewrites  uint64 // value-log files rewritten by GC
	LastSeq     uint64 // highest sequence number assigned
	DurableSeq  uint64 // highest sequence number known to be fsynced
	QueueLen    int    // requests waiting for the committer
}

// Stats returns the current counters. It never blocks.
func (s *Store) Stats() Stats {
	return Stats{
		Appends:     s.st.appends.Load(),
		Trades:      s.st.trades.Load(),
		WALBytes:    s.st.walBytes.Load(),
		Commits:     s.st.commits.Load(),
		Fsyncs:      s.st.fsyncs.Load(),
		FsyncErrors: s.st.fsyncErrors.Load(),
		Failures:    s.st.failures.Load(),
		GCRewrites:  s.st.gcRewrites.Load(),
		LastSeq:     s.st.lastSeq.Load(),
		DurableSeq:  s.st.durableSeq.Load(),
		QueueLen:    len(s.reqs),
	}
}

// Open opens (creating if needed) the store described by cfg. A second Open
// of the same Dir, from this or another process, fails with ErrLocked
// until the first Store is closed. Open does not replay anything: the
// caller loads snapshots and calls ReplayWAL.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Store{
		cfg:           cfg,
		log:           cfg.Logger.With("component", "storage"),
		maxRecord:     MaxRecordBytes,
		reqs:          make(chan *op, cfg.QueueDepth),
		committerDone: make(chan struct{}),
		stop:          make(chan struct{}),
	}
	s.gate.idle.L = &s.gate.mu.Mutex
	if cfg.InMemory {
		s.be = newMemBackend()
	} else {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("storage: creating data dir: %w", err)
		}
		lock, err := lockDir(cfg.Dir, false)
		if err != nil {
			return nil, err
		}
		s.lock = lock
		s.dbDir = filepath.Join(cfg.Dir, badgerSubdir)
		be, err := openBadger(&s.cfg, s.dbDir, false)
		if err != nil {
			lock.unlock()
			return nil, fmt.Errorf("storage: opening badger in %s: %w", s.dbDir, err)
		}
		s.be = be
		s.disk = openDirStat(s.dbDir)
		// A value may not exceed one value-log file.
		s.maxRecord = min(MaxRecordBytes, int(cfg.ValueLogFileSize)-headerLen-snapshotHeaderLen-64)
	}
	if cfg.Faults != nil {
		s.be = faultBackend{backend: s.be, f: cfg.Faults}
	}
	upgrade, err := s.init(ctx)
	if err != nil {
		s.be.close()
		s.disk.close()
		s.lock.unlock()
		return nil, err
	}
	go s.commitLoop()
	s.bg.Add(1)
	go s.clockLoop()
	if cfg.Durability == DurabilityBatch && !cfg.InMemory {
		s.bg.Add(1)
		go s.syncLoop()
	}
	if _, ok := s.be.(gcBackend); ok && cfg.GCInterval > 0 && !cfg.InMemory {
		s.bg.Add(1)
		go s.gcLoop()
	}
	if upgrade && !cfg.upgrade.skip {
		if err := s.upgradeFormat1(ctx); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	return s, nil
}

// init checks the format version and recovers the sequence counter.
// upgrade reports a format-1 data dir, which Open upgrades once the
// committer runs.
func (s *Store) init(ctx context.Context) (upgrade bool, err error) {
	var version uint64
	err = s.be.get(metaFormatKey, func(v []byte) error {
		var err error
		version, err = decodeU64Record(metaFormatKey, v, kindMeta)
		return err
	})
	switch {
	case errors.Is(err, errNotFound):
		if err := s.be.write([]kvOp{{key: metaFormatKey, val: u64Record(kindMeta, metaFormatKey, formatVersion)}}); err != nil {
			return false, fmt.Errorf("%w: writing format version: %w", ErrUnavailable, err)
		}
	case err != nil:
		return false, fmt.Errorf("storage: reading format version: %w", err)
	default:
		if err := checkFormatVersion(s.cfg.Dir, version); err != nil {
			return false, err
		}
		upgrade = version < formatVersion
	}
	last, durable, err := s.recoverSeqs(ctx)
	if err != nil {
		return false, err
	}
	if last > durable {
		// The previous run stopped without a clean Close: records after its
		// last fsync may be torn. Truncate torn tails now, fsync what is
		// left and record it as durable, so that from here on any damaged
		// record is corruption, never a torn write.
		if err := s.truncateTornTails(ctx, durable); err != nil {
			return false, err
		}
		err := s.be.sync()
		if err == nil {
			err = s.be.write([]kvOp{{key: metaSeqsKey, val: seqsRecord(last, last)}})
		}
		if err == nil {
			err = s.be.sync()
		}
		if err != nil {
			return false, fmt.Errorf("%w: recording recovered sequences: %w", ErrUnavailable, err)
		}
		durable = last
	}
	s.lastSeq = last
	s.committedSeq.Store(last)
	s.st.lastSeq.Store(last)
	s.st.durableSeq.Store(durable)
	return upgrade, nil
}

// checkFormatVersion accepts this build's format and format 1 (upgraded
// by Open); a newer format is refused, never misread.
func checkFormatVersion(dir string, version uint64) error {
	switch {
	case version == formatVersion || version == 1:
		return nil
	case version > formatVersion:
		return fmt.Errorf("storage: data dir %s is in storage format %d, written by a newer klinecast; this build reads formats 1 to %d and is too old for it: run a newer klinecast (this build never reads or changes it)", dir, version, formatVersion)
	}
	return fmt.Errorf("storage: data dir %s has an invalid storage format version %d (this build reads 1 to %d)", dir, version, formatVersion)
}

// recoverSeqs returns the largest sequence ever assigned (the stored
// high-water mark, every shard's last WAL key and every snapshot's covered
// sequence, whichever is largest: INVARIANT: sequence numbers never repeat,
// even after all WAL records were truncated) and the last sequence known
// to have been fsynced, as recorded in meta/seqs.
func (s *Store) recoverSeqs(ctx context.Context) (last, durable uint64, err error) {
	err = s.be.get(metaSeqsKey, func(v []byte) error {
		var err error
		last, durable, err = decodeSeqsRecord(v)
		return err
	})
	if err != nil && !errors.Is(err, errNotFound) {
		return 0, 0, fmt.Errorf("storage: reading sequence counters: %w", err)
	}
	shards, err := s.walShards(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, sh := range shards {
		_, hi, err := s.walBounds(sh)
		if err != nil {
			return 0, 0, err
		}
		last = max(last, hi)
	}
	it := s.be.iter(iterOptions{prefix: []byte{prefixSnapshot}})
	defer it.close()
	for it.seek([]byte{prefixSnapshot}); it.valid(); it.next() {
		key := it.key()
		if err := it.value(func(v []byte) error {
			covered, _, _, err := decodeSnapshotRecord(key, v)
			last = max(last, covered)
			return err
		}); err != nil {
			return 0, 0, fmt.Errorf("storage: reading snapshots: %w", err)
		}
	}
	return last, durable, nil
}

// Close stops accepting requests, finishes the queued ones, fsyncs, stops
// the background goroutines and closes the backend and the directory lock.
// It waits for running reads (a ReplayWAL in progress) to finish. Calls
// after the first return nil.
func (s *Store) Close() error {
	if !s.gate.shut() {
		return nil
	}
	// Every enqueue happens inside the gate: none can follow.
	close(s.stop)
	s.bg.Wait()
	close(s.reqs)
	<-s.committerDone

	var errs []error
	if !s.cfg.InMemory {
		// fsync, then record that everything is durable (and fsync that):
		// the next replay then treats any damaged record as corruption,
		// never as a torn write.
		err := s.syncNow()
		if err == nil {
			err = s.be.write([]kvOp{{key: metaSeqsKey, val: seqsRecord(s.lastSeq, s.st.durableSeq.Load())}})
		}
		if err == nil {
			err = s.be.sync()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("storage: final fsync: %w", err))
		}
	}
	if err := s.be.close(); err != nil {
		errs = append(errs, fmt.Errorf("storage: closing backend: %w", err))
	}
	s.disk.close() // after the gate shut: no Health call is using it
	if err := s.lock.unlock(); err != nil {
		errs = append(errs, fmt.Errorf("storage: releasing lock: %w", err))
	}
	return errors.Join(errs...)
}

// ---- requests to the committer ----

type opKind uint8

const (
	opAppend opKind = iota + 1 // a WAL record; the committer assigns its seq
	opWrite                    // arbitrary sets and deletes
	opGC                       // one value-log GC round
)

// spaceClass says how much free space a request needs (Config.DiskReserve).
type spaceClass uint8

const (
	spaceAny  spaceClass = iota // deletions: they are how space comes back
	spaceHalf                   // snapshots, checkpoints: half the reserve
	spaceFull                   // WAL appends, klines: the full reserve
)

type op struct {
	kind opKind

	// opAppend: buf is a complete record except for its checksum, whose
	// payload part is in crc (sealRecord finishes it with the key).
	shard  uint16
	buf    []byte
	crc    uint32
	trades int

	// opWrite
	kvs   []kvOp
	check func(lastSeq uint64) error // run by the committer before writing
	sync  bool                       // fsync before answering
	space spaceClass

	// results, valid after done
	seq  uint64
	err  error
	done chan struct{}
}

func (o *op) size() int {
	n := len(o.buf)
	for i := range o.kvs {
		n += len(o.kvs[i].key) + len(o.kvs[i].val)
	}
	return n
}

func (s *Store) getOp() *op {
	if o, ok := s.opPool.Get().(*op); ok {
		return o
	}
	return &op{done: make(chan struct{}, 1)}
}

// putOp recycles o; buffers above 1 MiB are dropped, not pooled.
func (s *Store) putOp(o *op) {
	buf := o.buf[:0]
	if cap(buf) > 1<<20 {
		buf = nil
	}
	*o = op{buf: buf, done: o.done}
	s.opPool.Put(o)
}

// do enqueues o and waits for its answer. The context bounds only the wait
// for queue space: once enqueued, o is executed and do waits for it, so a
// caller never mistakes a written record for a failed one.
func (s *Store) do(ctx context.Context, o *op) error {
	if !s.gate.enter() {
		return ErrClosed
	}
	err := s.enqueue(ctx, o)
	s.gate.exit()
	if err != nil {
		return err
	}
	<-o.done
	return o.err
}

// enqueue sends o to the committer; the caller is inside the gate (so the
// channel is open).
func (s *Store) enqueue(ctx context.Context, o *op) error {
	select {
	case s.reqs <- o:
		return nil
	default:
	}
	select {
	case s.reqs <- o:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("storage: waiting for the write queue: %w", ctx.Err())
	}
}

// ---- the committer ----

// maxGroupOps bounds the requests of one group commit.
const maxGroupOps = 1024

// commitLoop is the committer: the only goroutine that writes to the
// backend (INVARIANT: one writer, so a group's write and its fsync are
// never separated by another write that could rotate badger's memtable or
// value-log file out from under the fsync).
func (s *Store) commitLoop() {
	defer close(s.committerDone)
	group := make([]*op, 0, maxGroupOps)
	for first := range s.reqs {
		group = append(group[:0], first)
		bytes := first.size()
	drain:
		for len(group) < maxGroupOps && bytes < s.cfg.MaxGroupBytes {
			select {
			case o, ok := <-s.reqs:
				if !ok {
					break drain
				}
				group = append(group, o)
				bytes += o.size()
			default:
				break drain
			}
		}
		s.commitGroup(group)
		clear(group)
	}
}

func (s *Store) unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

// commitGroup writes the requests of one group with one backend write and
// at most one fsync, then answers them.
func (s *Store) commitGroup(group []*op) {
	kvs := s.kvs[:0]
	arena := s.keyArena[:0]
	if need := walKeyLen * (len(group) + 1); cap(arena) < need {
		arena = make([]byte, 0, need)
	}
	spaceErr := s.spaceCheck(group)
	var (
		appends  int
		gcs      []*op
		needSync bool
		live     = 0 // requests taking part in the write
	)
	for _, o := range group {
		switch o.kind {
		case opGC:
			gcs = append(gcs, o)
			continue
		case opAppend:
			if err := s.appendRefusal(spaceErr); err != nil {
				o.err = err
				continue
			}
			s.lastSeq++
			o.seq = s.lastSeq
			start := len(arena)
			arena = appendWALKey(arena, o.shard, o.seq)
			key := arena[start:len(arena):len(arena)]
			sealRecord(o.buf, o.crc, key)
			kvs = append(kvs, kvOp{key: key, val: o.buf})
			appends++
			if s.cfg.Durability == DurabilitySync {
				needSync = true
			}
		case opWrite:
			if err := spaceErr[o.space]; err != nil {
				o.err = err
				continue
			}
			if o.check != nil {
				if err := o.check(s.lastSeq); err != nil {
					o.err = err
					continue
				}
			}
			kvs = append(kvs, o.kvs...)
			needSync = needSync || o.sync
		}
		live++
	}
	if appends > 0 {
		// INVARIANT: meta/seqs never claims a sequence durable before an
		// fsync covering it succeeded (durableSeq only moves in syncNow).
		kvs = append(kvs, kvOp{key: metaSeqsKey, val: seqsRecord(s.lastSeq, s.st.durableSeq.Load())})
		s.st.lastSeq.Store(s.lastSeq)
	}
	var failErr error
	if len(kvs) > 0 {
		if err := s.be.write(kvs); err != nil {
			failErr = s.unavailable("write", err)
			s.log.Error("storage write failed", "err", err, "requests", live)
		} else {
			s.committedSeq.Store(s.lastSeq)
			s.writeGen.Add(1)
			s.st.commits.Add(1)
			if needSync {
				if err := s.syncNow(); err != nil {
					failErr = s.unavailable("fsync", err)
					s.log.Error("storage fsync failed", "err", err, "requests", live)
				}
			}
		}
	}
	switch {
	case failErr != nil:
		s.writeFailure.Store(s.noteFailure(failErr))
	case len(kvs) > 0:
		s.writeFailure.Store(nil)
	}
	s.finishWrite(group, failErr)
	s.kvs = kvs[:0]
	clear(kvs) // drop references to request buffers
	s.keyArena = arena[:0]
	// Answered requests belong to their callers again (they may be
	// recycled at once): only gcs is used from here on.
	for _, o := range group {
		if o.kind != opGC {
			o.done <- struct{}{}
		}
	}
	if len(gcs) > 0 {
		s.gcOnce()
		for _, o := range gcs {
			o.done <- struct{}{}
		}
	}
}

// finishWrite records the outcome of a group's write (and fsync). failErr
// is nil on success. When the write or a needed fsync failed, every request
// that depended on it fails, and the WAL records of failed appends are
// deleted (best effort) so that a record whose append returned an error is
// not replayed while this process lives (after a crash it may still be:
// see doc.go, "Failures").
func (s *Store) finishWrite(group []*op, failErr error) {
	dels := s.delKeys[:0]
	for _, o := range group {
		if o.kind == opGC {
			continue
		}
		if o.err != nil { // refused before the write
			if errors.Is(o.err, ErrUnavailable) {
				s.st.failures.Add(1)
			}
			continue
		}
		switch {
		case failErr == nil:
		case o.kind == opAppend:
			o.err = failErr
			dels = append(dels, appendWALKey(nil, o.shard, o.seq))
		case o.kind == opWrite:
			o.err = failErr
		}
		if o.err != nil {
			s.st.failures.Add(1)
			continue
		}
		if o.kind == opAppend {
			s.st.appends.Add(1)
			s.st.trades.Add(uint64(o.trades))
			s.st.walBytes.Add(uint64(len(o.buf)))
		}
	}
	if len(dels) > 0 {
		ops := make([]kvOp, len(dels))
		for i, k := range dels {
			ops[i] = kvOp{key: k, del: true}
		}
		if err := s.be.write(ops); err != nil {
			s.log.Warn("could not delete the WAL records of failed appends; they may be replayed", "records", len(dels), "err", err)
		}
	}
	clear(dels)
	s.delKeys = dels[:0]
}

// spaceCheck returns, per space class, the error to fail requests with
// (nil: enough space). It stats the file system once per group.
func (s *Store) spaceCheck(group []*op) [3]error {
	var out [3]error
	if s.cfg.InMemory || s.cfg.DiskReserve < 0 {
		return out
	}
	needed := false
	for _, o := range group {
		if o.kind == opAppend || (o.kind == opWrite && o.space != spaceAny) {
			needed = true
			break
		}
	}
	if !needed {
		return out
	}
	free, ok := s.disk.free()
	if !ok {
		return out
	}
	reserve := s.cfg.DiskReserve
	low := free < reserve
	if low != s.lowSpace.Load() {
		s.lowSpace.Store(low)
		if low {
			s.noteFailure(fmt.Errorf("%w: disk space low: %d bytes free in %s, reserve %d", ErrUnavailable, free, s.cfg.Dir, reserve))
			s.log.Error("disk space below the reserve: refusing WAL appends and bar writes", "dir", s.cfg.Dir, "free_bytes", free, "reserve_bytes", reserve)
		} else {
			s.log.Warn("disk space back above the reserve: accepting writes again", "dir", s.cfg.Dir, "free_bytes", free, "reserve_bytes", reserve)
		}
	}
	if low {
		out[spaceFull] = fmt.Errorf("%w: disk space low: %d bytes free in %s, reserve %d", ErrUnavailable, free, s.cfg.Dir, reserve)
	}
	if free < reserve/2 {
		out[spaceHalf] = fmt.Errorf("%w: disk space critically low: %d bytes free in %s, reserve %d", ErrUnavailable, free, s.cfg.Dir, reserve)
	}
	return out
}

// appendRefusal returns why an append must fail before being written.
func (s *Store) appendRefusal(spaceErr [3]error) error {
	if err := spaceErr[spaceFull]; err != nil {
		return err
	}
	if p := s.syncErr.Load(); p != nil {
		return fmt.Errorf("%w: the last periodic fsync failed: %w", ErrUnavailable, *p)
	}
	return nil
}

// syncNow fsyncs every completed write and advances DurableSeq.
func (s *Store) syncNow() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	// Read before the fsync: only what was written by now is covered.
	gen := s.writeGen.Load()
	seq := s.committedSeq.Load()
	s.st.fsyncs.Add(1)
	if err := s.be.sync(); err != nil {
		s.st.fsyncErrors.Add(1)
		return err
	}
	s.syncedGen = gen
	for {
		cur := s.st.durableSeq.Load()
		if cur >= seq || s.st.durableSeq.CompareAndSwap(cur, seq) {
			break
		}
	}
	return nil
}

// syncLoop is DurabilityBatch's periodic fsync.
func (s *Store) syncLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.syncMu.Lock()
		dirty := s.writeGen.Load() != s.syncedGen
		s.syncMu.Unlock()
		if !dirty && s.syncErr.Load() == nil {
			continue
		}
		// Only this goroutine writes syncErr. Each change is logged
		// before it is published, so whoever sees appends refused (or
		// accepted again) also finds the log line.
		if err := s.syncNow(); err != nil {
			if s.syncErr.Load() == nil {
				s.noteFailure(fmt.Errorf("%w: periodic fsync: %w", ErrUnavailable, err))
				s.log.Error("periodic fsync failed: refusing WAL appends until it succeeds", "err", err)
			}
			s.syncErr.Store(&err)
			continue
		}
		if s.syncErr.Load() != nil {
			s.log.Warn("periodic fsync succeeded again: accepting WAL appends")
			s.syncErr.Store(nil)
		}
	}
}

// gcLoop asks the committer for a value-log GC round every GCInterval.
func (s *Store) gcLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.RunGC(context.Background()); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("value-log GC failed", "err", err)
		}
	}
}

// RunGC runs one value-log GC round now (it also runs every
// Config.GCInterval). Appends wait while it runs. It is a no-op for the
// in-memory backend.
func (s *Store) RunGC(ctx context.Context) error {
	o := s.getOp()
	o.kind = opGC
	err := s.do(ctx, o)
	s.putOp(o)
	return err
}

// gcOnce runs in the committer, so no group write can interleave with the
// rewrite and its fsync.
func (s *Store) gcOnce() {
	g, ok := s.be.(gcBackend)
	if !ok {
		return
	}
	rewrote, err := g.runGC(s.cfg.GCDiscardRatio)
	if rewrote {
		s.st.gcRewrites.Add(1)
		s.st.fsyncs.Add(1)
	}
	if err != nil {
		s.log.Warn("value-log GC failed", "err", err)
	}
}

// read runs fn with the backend unless the Store is closed; Close waits
// for it.
func (s *Store) read(fn func() error) error {
	if !s.gate.enter() {
		return ErrClosed
	}
	defer s.gate.exit()
	return fn()
}

// gate admits calls until shut, then makes shut wait for those admitted.
// Unlike an RWMutex it never blocks enter, so a call nested in another
// (a ReplayWAL callback writing klines) cannot deadlock with Close: it
// gets ErrClosed instead.
type gate struct {
	mu struct {
		sync.Mutex
		n    int
		shut bool
	}
	idle sync.Cond // signalled when n drops to 0 after shut
}

func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.shut {
		return false
	}
	g.mu.n++
	return true
}

func (g *gate) exit() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mu.n--
	if g.mu.n == 0 && g.mu.shut {
		g.idle.Broadcast()
	}
}

// shut closes the gate and waits until no call is inside. It reports
// false if the gate was already shut.
func (g *gate) shut() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.shut {
		return false
	}
	g.mu.shut = true
	for g.mu.n > 0 {
		g.idle.Wait()
	}
	return true
}
