package storage

import "fmt"

// FaultOp names the I/O a FaultInjector is asked about.
type FaultOp uint8

const (
	// FaultWrite precedes every backend write (a group commit, a snapshot,
	// a deletion...).
	FaultWrite FaultOp = iota + 1
	// FaultSync precedes every fsync.
	FaultSync
)

func (o FaultOp) String() string {
	switch o {
	case FaultWrite:
		return "write"
	case FaultSync:
		return "sync"
	}
	return fmt.Sprintf("FaultOp(%d)", uint8(o))
}

// FaultInjector fails storage I/O on purpose, for tests of the
// ErrUnavailable paths (the disk-full and failed-fsync cases of the
// issue, which real disks produce too rarely to test). Fault is called
// before the operation; a non-nil error is returned in its place and the
// operation is not performed. It is called from the Store's committer and
// sync goroutines, possibly concurrently, and must not block or call back
// into the Store.
type FaultInjector interface {
	Fault(op FaultOp) error
}

// FaultFunc adapts a function to FaultInjector.
type FaultFunc func(op FaultOp) error

// Fault calls f(op).
func (f FaultFunc) Fault(op FaultOp) error { return f(op) }

// faultBackend consults a FaultInjector before writes and syncs.
type faultBackend struct {
	backend
	f FaultInjector
}

func (b faultBackend) write(ops []kvOp) error {
	if err := b.f.Fault(FaultWrite); err != nil {
		return err
	}
	return b.backend.write(ops)
}

func (b faultBackend) sync() error {
	if err := b.f.Fault(FaultSync); err != nil {
		return err
	}
	return b.backend.sync()
}

// runGC and size pass through when the wrapped backend has them.
func (b faultBackend) runGC(ratio float64) (bool, error) {
	if g, ok := b.backend.(gcBackend); ok {
		return g.runGC(ratio)
	}
	return false, nil
}

func (b faultBackend) size() (int64, int64) {
	if s, ok := b.backend.(sizeBackend); ok {
		return s.size()
	}
	return 0, 0
}
