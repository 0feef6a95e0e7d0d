package storage

import (
	"fmt"
	"time"
)

// HealthState grades a Store's ability to make writes durable, as the
// node's health monitor grades components (SPEC §5).
type HealthState uint8

const (
	// HealthOK: writes are accepted.
	HealthOK HealthState = iota
	// HealthDegraded: writes are accepted, but free space is below twice
	// Config.DiskReserve: they will be refused soon.
	HealthDegraded
	// HealthFailed: writes are being refused or failing: the Store is
	// closed, free space is below the reserve, the last write or fsync
	// failed, or (batch durability) the last periodic fsync failed.
	// Ingest answers 503 while it lasts. Every cause but Close clears by
	// itself (doc.go, "Failures").
	HealthFailed
)

func (h HealthState) String() string {
	switch h {
	case HealthOK:
		return "ok"
	case HealthDegraded:
		return "degraded"
	case HealthFailed:
		return "failed"
	}
	return fmt.Sprintf("HealthState(%d)", uint8(h))
}

// StoreHealth is the Store's health at one moment.
type StoreHealth struct {
	State HealthState
	// Reason says why State is not HealthOK ("" when it is).
	Reason string
	// LastError is when the Store last failed or refused a write (a
	// failed write or fsync, a periodic fsync failure, free space falling
	// below the reserve); zero if never since Open. It stays set after
	// recovery.
	LastError time.Time
	// LastErrorReason describes that failure.
	LastErrorReason string
	// FreeBytes is the space available on the data dir's file system,
	// read by this call; valid only if FreeKnown (false for an in-memory
	// store, outside Linux, and after Close).
	FreeBytes int64
	FreeKnown bool
	// ReserveBytes is Config.DiskReserve (below it appends are refused);
	// 0 when no reserve applies.
	ReserveBytes int64
}

// failure is one recorded write failure; its text is built when it
// happens so that Health never allocates.
type failure struct {
	at     time.Time
	reason string
}

// Reasons reported by Health (constants: Health does not allocate).
const (
	reasonClosed        = "storage: store closed"
	reasonBelowReserve  = "storage: free disk space below the reserve: WAL appends and bar writes are refused"
	reasonPeriodicFsync = "storage: the last periodic fsync failed: WAL appends are refused until one succeeds"
	reasonNearReserve   = "storage: free disk space below twice the reserve"
)

// Health reports whether the Store can make writes durable now. It is
// cheap (one fstatfs of the data dir on Linux, atomic loads otherwise),
// does not allocate, never blocks on the write queue, and is safe for
// concurrent use, also during and after Close.
//
// Free space is read afresh by each call, so a disk that filled up or
// freed space since the last write shows at once; a failed write or fsync
// shows until the next write succeeds.
func (s *Store) Health() StoreHealth {
	var h StoreHealth
	if f := s.lastFailure.Load(); f != nil {
		h.LastError, h.LastErrorReason = f.at, f.reason
	}
	reserve := s.cfg.DiskReserve
	if s.cfg.InMemory || reserve < 0 {
		reserve = 0
	}
	h.ReserveBytes = reserve
	if !s.gate.enter() {
		h.State, h.Reason = HealthFailed, reasonClosed
		return h
	}
	defer s.gate.exit()
	if !s.cfg.InMemory {
		h.FreeBytes, h.FreeKnown = s.disk.free()
	}
	wf := s.writeFailure.Load()
	switch {
	case h.FreeKnown && reserve > 0 && h.FreeBytes < reserve:
		h.State, h.Reason = HealthFailed, reasonBelowReserve
	case s.syncErr.Load() != nil:
		h.State, h.Reason = HealthFailed, reasonPeriodicFsync
	case wf != nil:
		h.State, h.Reason = HealthFailed, wf.reason
	case h.FreeKnown && reserve > 0 && h.FreeBytes < 2*reserve:
		h.State, h.Reason = HealthDegraded, reasonNearReserve
	}
	return h
}

// noteFailure records a write failure for Health.
func (s *Store) noteFailure(err error) *failure {
	f := &failure{at: time.Now(), reason: err.Error()}
	s.lastFailure.Store(f)
	return f
}
