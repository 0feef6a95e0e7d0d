package lifecycle

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Sentinel errors of a node's life; match with errors.Is.
var (
	// ErrClosed: the node is shutting down or stopped.
	ErrClosed = errors.New("actors: node closed")
	// ErrActorStopped: a shard, a router partition or the router failed
	// more often than its restart limit allows and was stopped. What it was
	// asked will never be answered, so the node refuses ingest and queries
	// with this error, and /healthz reports it failed: restart the node (a
	// durable node recovers everything acknowledged from its WAL).
	ErrActorStopped = errors.New("actors: an actor of the node exceeded its restart limit and stopped; restart the node")
)

// Life is the node's state as its actors and callers see it. Its methods
// are safe for concurrent use.
type Life struct {
	log     *slog.Logger
	closing atomic.Bool
	halted  chan struct{}

	brokenOnce sync.Once
	broken     chan struct{}
	brokenErr  error // set before broken is closed

	// stops is closed, and replaced, at every actor stopped for good.
	stopsMu sync.Mutex
	stops   chan struct{}
}

// New returns the life of a running node.
func New(log *slog.Logger) *Life {
	return &Life{log: log, halted: make(chan struct{}), broken: make(chan struct{}), stops: make(chan struct{})}
}

// Close marks the node closing: actors stopping from now on are being shut
// down, not failing.
func (l *Life) Close() { l.closing.Store(true) }

// Closing reports whether Close was called.
func (l *Life) Closing() bool { return l.closing.Load() }

// Halt records that the actor tree stopped: nothing will answer any more.
// Call it once.
func (l *Life) Halt() { close(l.halted) }

// Halted is closed once the actor tree stopped.
func (l *Life) Halted() <-chan struct{} { return l.halted }

// Broken is closed once an actor the node cannot do without was stopped by
// its supervisor; Err then returns why.
func (l *Life) Broken() <-chan struct{} { return l.broken }

// Err returns the node's ErrActorStopped error if it is broken, else nil.
func (l *Life) Err() error {
	select {
	case <-l.broken:
		return l.brokenErr
	default:
		return nil
	}
}

// ActorStopped records that the actor name was stopped for good. While the
// node is closing that is the shutdown; otherwise the actor exceeded its
// restart limit and the node is broken (see ErrActorStopped).
func (l *Life) ActorStopped(name, lastFailure string) {
	if l.closing.Load() {
		return
	}
	defer func() {
		l.stopsMu.Lock()
		close(l.stops)
		l.stops = make(chan struct{})
		l.stopsMu.Unlock()
	}()
	l.brokenOnce.Do(func() {
		l.brokenErr = fmt.Errorf("%w (%s, last failure: %s)", ErrActorStopped, name, lastFailure)
		l.log.Error("an actor exceeded its restart limit and stopped: the node refuses ingest and queries until restarted",
			"actor", name, "last_failure", lastFailure)
		close(l.broken)
	})
}

// StopNotify returns a channel closed at the next actor stopped for good
// (after the call).
func (l *Life) StopNotify() <-chan struct{} {
	l.stopsMu.Lock()
	defer l.stopsMu.Unlock()
	return l.stops
}

// Stats are one actor's counters, shared by its incarnations (a restart
// keeps them). Everything is atomic: the health monitor and the HTTP API
// read them while the actor runs.
type Stats struct {
	Name, Parent, Kind string

	Enqueued  atomic.Uint64 // messages sent to it
	Processed atomic.Uint64 // messages it handled
	maxDepth  atomic.Int64  // the most messages ever waiting (see Sent)
	Restarts  atomic.Int64
	// PingSent is the unix ms of its unanswered heartbeat (0: none).
	PingSent    atomic.Int64
	lastFailure atomic.Pointer[string]
	stopped     atomic.Bool // stopped for good by its supervisor
}

// Sent counts a message sent to the actor and keeps the mailbox's
// high-water mark (for the bounds the node promises; a message lost with a
// failed incarnation leaves the count one high).
func (s *Stats) Sent() {
	d := int64(s.Enqueued.Add(1)) - int64(s.Processed.Load())
	for {
		m := s.maxDepth.Load()
		if d <= m || s.maxDepth.CompareAndSwap(m, d) {
			return
		}
	}
}

// MaxDepth is the most messages that were ever waiting in the actor's
// mailbox.
func (s *Stats) MaxDepth() int64 { return s.maxDepth.Load() }

// Depth is the number of messages sent to the actor and not yet handled.
func (s *Stats) Depth() int64 { return max(0, int64(s.Enqueued.Load())-int64(s.Processed.Load())) }

// RecordPanic, deferred by an actor's Receive, records the reason of a
// panic and lets the panic go on to the supervisor.
func (s *Stats) RecordPanic() {
	if r := recover(); r != nil {
		s.SetFailure(fmt.Sprint(r))
		panic(r)
	}
}

// SetFailure records reason as the actor's last failure.
func (s *Stats) SetFailure(reason string) { s.lastFailure.Store(&reason) }

// LastFailure returns the last recorded failure, "" if none.
func (s *Stats) LastFailure() string {
	if r := s.lastFailure.Load(); r != nil {
		return *r
	}
	return ""
}

// Stopping handles the actor's *actor.Stopping: outside Close it means the
// supervisor stopped it for good, and the node is broken.
func (s *Stats) Stopping(l *Life) {
	if l.Closing() {
		return
	}
	s.stopped.Store(true)
	reason := s.LastFailure()
	if reason == "" {
		reason = "unknown"
	}
	l.ActorStopped(s.Name, reason)
}

// Stopped reports whether the supervisor stopped the actor for good.
func (s *Stats) Stopped() bool { return s.stopped.Load() }
