package pinned

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// Shard mailbox
//
// protoactor's default mailbox (actor.Unbounded) allocates on the ingest
// path: each time a message finds the mailbox idle, schedule() passes the
// method value m.processMessages to Dispatcher.Schedule, and a method value
// escaping into an interface call is a new closure every time. A shard that
// keeps up with its input goes idle between messages, so that is roughly one
// allocation per message. (Its user queue is already a mutex ring buffer;
// its system queue is a linked MPSC queue that allocates a node per system
// message, which matters less: system messages are rare.)
//
// Mailbox keeps the same contract (the invariants below) without
// allocating: the turn function is built once, and both queues are
// mutex-protected ring buffers that allocate only when they grow past their
// high-water mark.
//
// It deliberately supports less than the default mailbox: no
// actor.MailboxMiddleware and no unpacking of actor.MessageBatch (a batch is
// delivered as one message). Shards use neither.
//
// Invariants:
//
//   - status is mailboxIdle or mailboxRunning. Only a poster that moves it
//     from idle to running (CAS) schedules a turn, and a turn pops only while
//     status is running and it set it so (by that CAS or its own, below):
//     the queues have one consumer at a time.
//   - A turn drains system messages before each user message, so a
//     SuspendMailbox (or a Stop) overtakes queued user messages.
//   - While suspended, only system messages are processed; user messages
//     stay queued until a ResumeMailbox.
//   - After marking itself idle a turn re-reads the queue lengths: a message
//     pushed after the turn's last empty pop but before the idle store saw
//     status == running and did not schedule, so the turn must CAS back to
//     running and go on (unless a later poster's CAS won: then its turn will).
//   - A panic in the invoker is recovered and reported through
//     EscalateFailure(reason, message), which suspends the mailbox and lets
//     the supervisor restart the actor; the turn then goes on as above.

// Scheduling status of a Mailbox.
const (
	mailboxIdle int32 = iota
	mailboxRunning
)

// Initial ring capacities (powers of two). A shard's user queue grows to its
// burst high-water mark in a few doublings and stays there; system messages
// are rare (start, stop, suspend, resume, watch).
const (
	mailboxUserInitCap   = 64
	mailboxSystemInitCap = 4
)

// Mailbox is an actor.Mailbox that allocates nothing per message in
// steady state. Create it with NewMailbox.
type Mailbox struct {
	user   mailboxRing
	system mailboxRing

	status    atomic.Int32 // mailboxIdle or mailboxRunning
	suspended atomic.Bool  // written only by the running turn

	invoker    actor.MessageInvoker
	dispatcher actor.Dispatcher

	// turn is m.processMessages, evaluated once in NewMailbox: passing
	// the stored func value to Schedule does not allocate, while writing
	// the method value at each call site would.
	turn func()

	// perTurn, when > 0, ends a turn after that many user messages: the
	// mailbox schedules itself again behind whatever its worker has queued
	// meanwhile (a router partition hands a chunk to its shards and lets
	// them run before it takes the next one). 0: a turn runs until the
	// mailbox is empty.
	perTurn int
}

var _ actor.Mailbox = (*Mailbox)(nil)

// NewMailbox is the actor.MailboxProducer for shard actors:
//
//	actor.WithMailbox(NewMailbox)
//
// It exists to make the ingest path allocation-free. protoactor's default
// mailbox allocates a closure each time a message schedules an idle mailbox
// (Schedule(m.processMessages) builds a new method value) and a queue node
// for every system message. This mailbox schedules a func value built once at
// construction and queues into growable ring buffers, so once a shard has
// seen its largest burst, posting and processing a pointer message allocates
// nothing. Scheduling, system-message priority, suspend/resume and panic
// escalation behave as in the default mailbox; middlewares and MessageBatch
// unpacking are not supported.
func NewMailbox() actor.Mailbox { return newYieldingMailbox(0) }

// newYieldingMailbox returns a Mailbox whose turns end after perTurn
// user messages (0: when empty).
func newYieldingMailbox(perTurn int) *Mailbox {
	m := &Mailbox{perTurn: perTurn}
	m.user.init(mailboxUserInitCap)
	m.system.init(mailboxSystemInitCap)
	m.turn = m.processMessages
	return m
}

// NewStepMailbox is the actor.MailboxProducer for router partitions:
// one message per turn.
func NewStepMailbox() actor.Mailbox { return newYieldingMailbox(1) }

// PostUserMessage queues message and schedules a turn if the mailbox is idle.
// Safe for concurrent use.
func (m *Mailbox) PostUserMessage(message any) {
	m.user.push(message)
	m.schedule()
}

// PostSystemMessage queues message ahead of all user messages and schedules a
// turn if the mailbox is idle. Safe for concurrent use.
func (m *Mailbox) PostSystemMessage(message any) {
	m.system.push(message)
	m.schedule()
}

// RegisterHandlers sets the invoker and dispatcher. protoactor calls it once,
// before the first message is posted.
func (m *Mailbox) RegisterHandlers(invoker actor.MessageInvoker, dispatcher actor.Dispatcher) {
	m.invoker = invoker
	m.dispatcher = dispatcher
}

// Start does nothing: there are no middlewares to notify.
func (m *Mailbox) Start() {}

// UserMessageCount returns the number of queued user messages.
func (m *Mailbox) UserMessageCount() int { return m.user.len() }

// schedule hands the turn to the dispatcher unless one is already scheduled
// or running.
func (m *Mailbox) schedule() {
	if m.status.CompareAndSwap(mailboxIdle, mailboxRunning) {
		m.dispatcher.Schedule(m.turn)
	}
}

// processMessages is one turn: it runs until the mailbox has nothing it may
// process, then marks it idle, re-checking for messages that raced the idle
// store.
func (m *Mailbox) processMessages() {
	for {
		if m.run() {
			// perTurn reached: the status stays running, so no poster
			// schedules; this turn queues the next one behind the others.
			m.dispatcher.Schedule(m.turn)
			return
		}
		m.status.Store(mailboxIdle)
		if m.system.len() == 0 && (m.suspended.Load() || m.user.len() == 0) {
			return
		}
		// Something arrived after run's last look. If a poster has already
		// rescheduled, that turn will take it; otherwise continue here.
		if !m.status.CompareAndSwap(mailboxIdle, mailboxRunning) {
			return
		}
	}
}

// run processes messages until both queues are empty, or the system queue is
// empty and the mailbox is suspended. It returns early after recovering a
// panic from the invoker, which it escalates with the message being handled,
// and (reporting yielded) after perTurn user messages.
func (m *Mailbox) run() (yielded bool) {
	var msg any
	defer func() {
		if r := recover(); r != nil {
			m.invoker.EscalateFailure(r, msg)
		}
	}()

	throughput := m.dispatcher.Throughput()
	users := 0
	for n := 0; ; n++ {
		if n >= throughput && throughput > 0 {
			// Let other goroutines on this thread's P run; as in protoactor,
			// the turn does not return to the dispatcher.
			n = 0
			runtime.Gosched()
		}

		var ok bool
		if msg, ok = m.system.pop(); ok {
			switch msg.(type) {
			case *actor.SuspendMailbox:
				m.suspended.Store(true)
			case *actor.ResumeMailbox:
				m.suspended.Store(false)
			default:
				m.invoker.InvokeSystemMessage(msg)
			}
			continue
		}
		if m.suspended.Load() {
			return false
		}
		if m.perTurn > 0 && users == m.perTurn {
			return true
		}
		if msg, ok = m.user.pop(); !ok {
			return false
		}
		users++
		m.invoker.InvokeUserMessage(msg)
	}
}

// mailboxRing is a FIFO queue for many producers and one consumer: a
// power-of-two ring buffer under a mutex. It allocates only to grow (it
// doubles when full and never shrinks), and clears each slot it pops so the
// message can be collected. The zero value is an empty ring.
type mailboxRing struct {
	mu   sync.Mutex
	buf  []any // len is a power of two
	head int   // index of the oldest element
	n    int   // number of elements; guarded by mu

	count atomic.Int64 // n, readable without mu
}

// init preallocates capacity slots, a power of two.
func (r *mailboxRing) init(capacity int) {
	r.buf = make([]any, capacity)
}

// push appends v.
func (r *mailboxRing) push(v any) {
	r.mu.Lock()
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = v
	r.n++
	r.count.Store(int64(r.n))
	r.mu.Unlock()
}

// pop removes and returns the oldest element; ok is false if r is empty.
func (r *mailboxRing) pop() (v any, ok bool) {
	r.mu.Lock()
	if r.n == 0 {
		r.mu.Unlock()
		return nil, false
	}
	v = r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	r.count.Store(int64(r.n))
	r.mu.Unlock()
	return v, true
}

// len returns the number of queued elements without taking the lock.
func (r *mailboxRing) len() int { return int(r.count.Load()) }

// grow doubles the buffer (or gives an unallocated ring a small one), moving
// the elements to its start in order. Called with mu held and the ring full.
func (r *mailboxRing) grow() {
	buf := make([]any, max(2*len(r.buf), mailboxSystemInitCap))
	k := copy(buf, r.buf[r.head:])
	copy(buf[k:], r.buf[:r.head])
	r.buf = buf
	r.head = 0
}
