package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the Store returns wraps at most one of them
// together with context (shard, key, seq); match with errors.Is, never by
// message.
var (
	// ErrCorrupt marks data that failed its checksum or could not be
	// decoded. It is returned wrapped in a *CorruptError naming the key.
	ErrCorrupt = errors.New("storage: corrupt record")

	// ErrUnavailable reports that a write could not be made durable: the
	// disk is (nearly) full, a write or fsync failed, or an earlier periodic
	// fsync failed and has not succeeded since. Nothing acknowledged before
	// is affected, and the Store accepts writes again once the condition
	// clears. The HTTP layer answers 503.
	ErrUnavailable = errors.New("storage: unavailable")

	// ErrLocked reports that another process (or another Store in this
	// process) has the data directory open.
	ErrLocked = errors.New("storage: data directory in use")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("storage: store closed")
)

// CorruptError describes one corrupt record. errors.Is(err, ErrCorrupt)
// reports true for it.
type CorruptError struct {
	// Key is the record's key in the human-readable form of doc.go
	// ("wal/shard=3/seq=42"), followed by its hex bytes.
	Key string
	// Reason says what failed (checksum, length, decoding).
	Reason error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("storage: corrupt record %s: %v", e.Key, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the reason.
func (e *CorruptError) Unwrap() error { return e.Reason }

func corruptf(key []byte, format string, args ...any) error {
	return &CorruptError{Key: formatKey(key), Reason: fmt.Errorf(format, args...)}
}
