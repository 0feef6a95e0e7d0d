package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// badgerBackend stores everything in one badger DB.
type badgerBackend struct {
	db  *badger.DB
	dir string
	// synced is sync's state: the log files seen at the last sync and the
	// value-log file that was active then (it may have more data since).
	synced struct {
		files map[string]bool
		vlog  int
	}
}

// badgerOptions derives badger's options from the Config (doc.go "Badger
// options" explains each choice).
func badgerOptions(c *Config, dir string, readOnly bool) badger.Options {
	mt := c.memTableSize()
	o := badger.DefaultOptions(dir)
	o.MemTableSize = mt
	o.NumMemtables = numMemtables
	// Keep L0 small too: stalls at 15 tables of memtable size would be
	// 15×budget/8 of unflushed data.
	o.NumLevelZeroTables = 4
	o.NumLevelZeroTablesStall = 8
	o.BaseTableSize = min(2<<20, mt/2)
	o.BaseLevelSize = 10 << 20
	o.BlockCacheSize = c.MemoryBudget / 4
	o.IndexCacheSize = c.MemoryBudget / 8
	o.ValueLogFileSize = c.ValueLogFileSize
	o.ValueThreshold = valueThreshold
	o.NumCompactors = 2
	o.SyncWrites = false // we fsync ourselves with db.Sync (Durability)
	o.DetectConflicts = false
	o.MetricsEnabled = false
	o.VerifyValueChecksum = false // our envelope carries a CRC-32C
	o.Compression = options.Snappy
	o.ReadOnly = readOnly
	o.Logger = badgerLogger{c.Logger}
	return o
}

func openBadger(c *Config, dir string, readOnly bool) (*badgerBackend, error) {
	db, err := badger.Open(badgerOptions(c, dir, readOnly))
	if err != nil {
		return nil, err
	}
	return &badgerBackend{db: db, dir: dir}, nil
}

func (b *badgerBackend) write(ops []kvOp) error {
	txn := b.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	pending := 0
	for i := 0; i < len(ops); i++ {
		op := &ops[i]
		var err error
		if op.del {
			err = txn.Delete(op.key)
		} else {
			err = txn.Set(op.key, op.val)
		}
		if errors.Is(err, badger.ErrTxnTooBig) && pending > 0 {
			if err := txn.Commit(); err != nil {
				return err
			}
			txn = b.db.NewTransaction(true)
			pending = 0
			i-- // retry this op in the fresh transaction
			continue
		}
		if err != nil {
			return err
		}
		pending++
	}
	if pending == 0 {
		return nil
	}
	return txn.Commit()
}

// sync makes every write so far durable, by fsyncing badger's log files
// itself instead of calling DB.Sync, for two reasons (badger v4.9.6):
//
//   - DB.Sync fsyncs only the active memtable's log (and the active
//     value-log file; one that filled up was msynced by badger when it
//     switched files). A memtable rotated out but not yet flushed keeps its
//     log unsynced until the flush, so a power cut could lose writes made
//     before the rotation while keeping later ones (found with
//     internal/lazyfs). So sync fsyncs every memtable log (*.mem), and the
//     value-log files from the one active at the previous sync on.
//   - DB.Sync holds the DB's lock while it fsyncs the memtable log, and
//     every badger write takes that lock (ensureRoomForWrite): each fsync
//     stalled all appends for its whole duration.
//
// Each file is fsynced through a descriptor of our own: on Linux an fsync
// covers the file's pages however they were written, the shared mappings
// badger writes through included. A file deleted meanwhile (a memtable
// flushed to a table, a value-log file rewritten by GC) is in a table or
// file badger synced when it wrote it. When a log file appeared since the
// previous sync, the directory is fsynced too, so the new file's entry
// survives a power cut (badger syncs the directory only at Close).
//
// The caller serialises calls (Store.syncMu).
func (b *badgerBackend) sync() error {
	if b.db.Opts().InMemory || b.db.Opts().ReadOnly {
		return nil
	}
	entries, err := os.ReadDir(b.dir)
	if err != nil {
		return fmt.Errorf("storage: list badger's logs: %w", err)
	}
	seen := make(map[string]bool, len(b.synced.files))
	newFile := false
	maxVlog := -1
	for _, e := range entries {
		name := e.Name()
		var sync bool
		switch {
		case strings.HasSuffix(name, ".mem"):
			sync = true
		case strings.HasSuffix(name, ".vlog"):
			fid, err := strconv.Atoi(strings.TrimSuffix(name, ".vlog"))
			if err != nil {
				continue
			}
			maxVlog = max(maxVlog, fid)
			sync = fid >= b.synced.vlog
		default:
			continue
		}
		seen[name] = true
		if !b.synced.files[name] {
			newFile = true
		}
		if sync {
			if err := fsyncFile(filepath.Join(b.dir, name)); err != nil {
				return err
			}
		}
	}
	if newFile {
		if err := syncDir(b.dir); err != nil {
			return err
		}
	}
	b.synced.files = seen
	if maxVlog >= 0 {
		b.synced.vlog = maxVlog
	}
	return nil
}

// syncDir fsyncs a directory (its entries).
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: open %s to sync it: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", dir, err)
	}
	return nil
}

// fsyncFile fsyncs the file at path (its pages written through any mapping
// of it too); a file already gone is fine.
func fsyncFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: open %s to sync it: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %s: %w", path, err)
	}
	return nil
}

func (b *badgerBackend) get(key []byte, fn func([]byte) error) error {
	return b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(fn)
	})
}

func (b *badgerBackend) iter(o iterOptions) kvIter {
	txn := b.db.NewTransaction(false)
	io := badger.DefaultIteratorOptions
	io.Prefix = o.prefix
	io.Reverse = o.reverse
	io.PrefetchValues = false
	return &badgerIter{txn: txn, it: txn.NewIterator(io)}
}

func (b *badgerBackend) close() error { return b.db.Close() }

// runGC runs one value-log GC round and fsyncs its result before the old
// file can go: badger rewrites the live entries with SyncWrites off and
// deletes the old file right away unless an iterator is open, so an open
// iterator pins the file until the rewritten entries are durable.
func (b *badgerBackend) runGC(ratio float64) (bool, error) {
	pinTxn := b.db.NewTransaction(false)
	pin := pinTxn.NewIterator(badger.IteratorOptions{Prefix: metaFormatKey})
	defer func() {
		pin.Close() // deletes the rewritten file, now that its entries are synced
		pinTxn.Discard()
	}()
	err := b.db.RunValueLogGC(ratio)
	switch {
	case err == nil:
		if err := b.db.Sync(); err != nil {
			return true, fmt.Errorf("syncing after value-log GC: %w", err)
		}
		return true, nil
	case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		return false, nil
	}
	return false, err
}

func (b *badgerBackend) size() (lsm, vlog int64) { return b.db.Size() }

type badgerIter struct {
	txn *badger.Txn
	it  *badger.Iterator
}

func (i *badgerIter) seek(k []byte) { i.it.Seek(k) }
func (i *badgerIter) valid() bool   { return i.it.Valid() }
func (i *badgerIter) next()         { i.it.Next() }
func (i *badgerIter) key() []byte   { return i.it.Item().Key() }
func (i *badgerIter) value(fn func([]byte) error) error {
	return i.it.Item().Value(fn)
}
func (i *badgerIter) close() {
	i.it.Close()
	i.txn.Discard()
}

// badgerLogger adapts badger's printf logger to slog. badger logs a lot at
// info level during open and compaction; that goes to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) log(level slog.Level, format string, args []any) {
	if b.l == nil || !b.l.Enabled(context.Background(), level) {
		return
	}
	b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "component", "badger")
}

func (b badgerLogger) Errorf(f string, a ...any)   { b.log(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.log(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.log(slog.LevelDebug-4, f, a) }
