package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// badgerBackend stores everything in one badger DB.
type badgerBackend struct {
	db  *badger.DB
	dir string
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

// sync makes every write so far durable. badger's DB.Sync fsyncs only the
// active memtable's log (and the value log): a memtable rotated out but not
// yet flushed to a table keeps its log unsynced until the flush, so a power
// cut could lose writes made before the rotation while keeping later ones
// (found with internal/lazyfs; badger v4.9.6 db.go). So sync also fsyncs
// every memtable log (*.mem) in the directory; one flushed and deleted
// meanwhile is in a table badger synced when it wrote it.
func (b *badgerBackend) sync() error {
	if b.db.Opts().InMemory || b.db.Opts().ReadOnly {
		return nil
	}
	mems, err := filepath.Glob(filepath.Join(b.dir, "*.mem"))
	if err != nil {
		return fmt.Errorf("storage: list memtable logs: %w", err)
	}
	if len(mems) > 1 {
		// One log is the active memtable's, which db.Sync fsyncs; only
		// with rotated ones beside it is there more to do.
		for _, path := range mems {
			if err := fsyncFile(path); err != nil {
				return err
			}
		}
	}
	return b.db.Sync()
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
