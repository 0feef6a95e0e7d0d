package storage

import "errors"

// backend is the narrow key-value interface the Store is built on. The
// badger backend is the real one; the in-memory backend (Config.InMemory)
// is the reference model, and both pass the same conformance tests
// (store_test.go). faultBackend wraps either to inject errors.
//
// Concurrency: every method may be called from several goroutines at once,
// but the Store only ever calls write from its committer goroutine.
type backend interface {
	// write applies ops in order. Each op is atomic; the slice as a whole
	// is not: on error a prefix may have been applied. The backend does not
	// retain ops or their slices after write returns.
	write(ops []kvOp) error
	// sync makes every write that returned before sync was called durable.
	sync() error
	// get calls fn with the value of key, or returns errNotFound. val is
	// valid only during fn.
	get(key []byte, fn func(val []byte) error) error
	// iter returns an iterator over the keys starting with o.prefix, seen
	// as of the call (later writes may or may not be visible).
	iter(o iterOptions) kvIter
	// close releases everything; no method may be called afterwards.
	close() error
}

// gcBackend is implemented by backends with a garbage-collected value log.
type gcBackend interface {
	// runGC rewrites at most one value-log file whose garbage fraction is
	// at least ratio, and reports whether it did.
	runGC(ratio float64) (rewrote bool, err error)
}

// sizeBackend is implemented by backends that know their on-disk size.
type sizeBackend interface {
	size() (lsm, vlog int64)
}

var errNotFound = errors.New("storage: key not found")

type kvOp struct {
	key, val []byte
	del      bool
}

// iterOptions: values are never prefetched, only read when value() is
// called. For badger that is a zero-copy read of the memory-mapped value
// log; prefetching copies every value and costs a goroutine hand-off, which
// made WAL replay 2-3 times slower (BenchmarkReplayWAL) and buys nothing
// for key-only scans.
type iterOptions struct {
	prefix  []byte
	reverse bool
}

// kvIter iterates in key order (descending when reverse) within the prefix.
// Keys and values are valid until the next call that moves the iterator.
type kvIter interface {
	// seek positions at the first key >= k (reverse: the last key <= k).
	seek(k []byte)
	valid() bool
	next()
	key() []byte
	value(fn func(val []byte) error) error
	close()
}
