package pinned

import (
	"fmt"
	"github.com/klinecast/klinecast/internal/testkit"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// mailboxWait bounds every wait on an actor so a lost message fails the test
// instead of hanging it. It is a guard, not synchronization: nothing sleeps.
const mailboxWait = 30 * time.Second

// mailboxHeldDispatcher is a synchronous actor.Dispatcher that holds each
// scheduled turn until runAll, so a test can queue messages while the
// mailbox is scheduled but not running.
type mailboxHeldDispatcher struct {
	throughput int
	pending    []func()
	schedules  int // Schedule calls so far
}

func (d *mailboxHeldDispatcher) Schedule(fn func()) {
	d.schedules++
	d.pending = append(d.pending, fn)
}

func (d *mailboxHeldDispatcher) Throughput() int { return d.throughput }

// runAll runs the held turns, including any scheduled while running.
func (d *mailboxHeldDispatcher) runAll() {
	for len(d.pending) > 0 {
		fn := d.pending[0]
		d.pending = d.pending[:copy(d.pending, d.pending[1:])]
		fn()
	}
}

// mailboxLogInvoker is an actor.MessageInvoker that logs what it is given as
// "user:<msg>", "sys:<msg>" and "escalate:<msg>:<reason>". onUser, if set,
// runs before a user message is logged (it may panic or post). If
// escalateSuspends, EscalateFailure posts a SuspendMailbox to mb, as
// protoactor's actor context does.
type mailboxLogInvoker struct {
	mb               actor.Mailbox
	onUser           func(msg any)
	escalateSuspends bool
	log              []string
}

func (i *mailboxLogInvoker) InvokeUserMessage(msg any) {
	if i.onUser != nil {
		i.onUser(msg)
	}
	i.log = append(i.log, fmt.Sprint("user:", msg))
}

func (i *mailboxLogInvoker) InvokeSystemMessage(msg any) {
	i.log = append(i.log, fmt.Sprint("sys:", msg))
}

func (i *mailboxLogInvoker) EscalateFailure(reason, msg any) {
	i.log = append(i.log, fmt.Sprint("escalate:", msg, ":", reason))
	if i.escalateSuspends {
		i.mb.PostSystemMessage(&actor.SuspendMailbox{})
	}
}

// mailboxCountInvoker is an actor.MessageInvoker that allocates nothing.
type mailboxCountInvoker struct {
	user, sys int
	last      any
}

func (i *mailboxCountInvoker) InvokeUserMessage(msg any)   { i.user++; i.last = msg }
func (i *mailboxCountInvoker) InvokeSystemMessage(msg any) { i.sys++; i.last = msg }
func (i *mailboxCountInvoker) EscalateFailure(r, msg any) {
	panic(fmt.Sprint("unexpected failure: ", r))
}

// mailboxSysMsg is a system message other than suspend/resume.
type mailboxSysMsg string

func (mailboxSysMsg) SystemMessage() {}

// mailboxNewDirect returns a shard mailbox driven by a held dispatcher and a
// logging invoker.
func mailboxNewDirect(throughput int) (actor.Mailbox, *mailboxHeldDispatcher, *mailboxLogInvoker) {
	mb := NewMailbox()
	d := &mailboxHeldDispatcher{throughput: throughput}
	inv := &mailboxLogInvoker{mb: mb}
	mb.RegisterHandlers(inv, d)
	mb.Start()
	return mb, d, inv
}

func mailboxCheckLog(t *testing.T, step string, inv *mailboxLogInvoker, want ...string) {
	t.Helper()
	if !slices.Equal(inv.log, want) {
		t.Fatalf("%s: invoker got %q, want %q", step, inv.log, want)
	}
}

// mailboxDispatchers are the dispatchers the actor-system tests run on:
// protoactor's default (a goroutine per turn) and the repo's pinned pool.
// Each returns the dispatcher for actor i, or nil for the props default.
var mailboxDispatchers = []struct {
	name string
	new  func(t *testing.T) func(i int) actor.Dispatcher
}{
	{"default dispatcher", func(*testing.T) func(int) actor.Dispatcher {
		return func(int) actor.Dispatcher { return nil }
	}},
	{"pinned dispatcher", func(t *testing.T) func(int) actor.Dispatcher {
		return dispatchNewPool(t, Config{Workers: 2}).Dispatcher
	}},
	{"pinned dispatcher throughput 1", func(t *testing.T) func(int) actor.Dispatcher {
		return dispatchNewPool(t, Config{Workers: 2, Throughput: 1}).Dispatcher
	}},
}

// mailboxProps returns props using the shard mailbox and, if d is not nil, d.
func mailboxProps(receive actor.ReceiveFunc, d actor.Dispatcher) *actor.Props {
	opts := []actor.PropsOption{actor.WithMailbox(NewMailbox)}
	if d != nil {
		opts = append(opts, actor.WithDispatcher(d))
	}
	return actor.PropsFromFunc(receive, opts...)
}

// mailboxSeq is the seq-th message of one producer.
type mailboxSeq struct{ producer, seq int }

// TestMailboxOrderAndExactlyOnce sends from several goroutines to actors with
// the shard mailbox and checks each actor got every producer's messages once,
// in that producer's order.
func TestMailboxOrderAndExactlyOnce(t *testing.T) {
	const (
		actors    = 3
		producers = 4
		perProd   = 3000 // messages per producer per actor
	)
	for _, dc := range mailboxDispatchers {
		t.Run(dc.name, func(t *testing.T) {
			system := dispatchNewSystem()
			defer system.Shutdown()
			dispatcher := dc.new(t)

			type state struct {
				next  [producers]int // next expected seq per producer
				total int
				err   error
				done  chan struct{}
			}
			states := make([]*state, actors)
			pids := make([]*actor.PID, actors)
			for a := range pids {
				st := &state{done: make(chan struct{})}
				states[a] = st
				pids[a] = system.Root.Spawn(mailboxProps(func(ctx actor.Context) {
					m, ok := ctx.Message().(*mailboxSeq)
					if !ok {
						return
					}
					if m.seq != st.next[m.producer] && st.err == nil {
						st.err = fmt.Errorf("producer %d: got seq %d, want %d", m.producer, m.seq, st.next[m.producer])
					}
					st.next[m.producer] = m.seq + 1
					st.total++
					if st.total == producers*perProd {
						close(st.done)
					}
				}, dispatcher(a)))
			}

			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					for s := range perProd {
						for _, pid := range pids {
							system.Root.Send(pid, &mailboxSeq{producer: p, seq: s})
						}
					}
				})
			}
			wg.Wait()

			for a, st := range states {
				select {
				case <-st.done:
				case <-time.After(mailboxWait):
					t.Fatalf("actor %d: not all messages delivered within %v", a, mailboxWait)
				}
			}
			// Poison is processed after every queued user message, so any
			// duplicate would be counted before it completes.
			for _, pid := range pids {
				if err := system.Root.PoisonFuture(pid).Wait(); err != nil {
					t.Fatalf("poison %v: %v", pid, err)
				}
			}
			for a, st := range states {
				if st.err != nil {
					t.Errorf("actor %d: %v", a, st.err)
				}
				if st.total != producers*perProd {
					t.Errorf("actor %d: delivered %d messages, want %d", a, st.total, producers*perProd)
				}
				for p, next := range st.next {
					if next != perProd {
						t.Errorf("actor %d producer %d: last seq %d, want %d", a, p, next-1, perProd-1)
					}
				}
			}
		})
	}
}

// mailboxBoom makes the panicking test actor panic.
type mailboxBoom struct{}

// TestMailboxPanicRestartsActor checks that a panic in Receive reaches the
// supervisor, which restarts the actor, and that the messages queued behind
// the panicking one are all still delivered, in order.
func TestMailboxPanicRestartsActor(t *testing.T) {
	const msgs = 100
	panicAfter := map[int]bool{9: true, 50: true, 51: true, msgs - 1: true}

	for _, dc := range mailboxDispatchers {
		t.Run(dc.name, func(t *testing.T) {
			system := dispatchNewSystem()
			defer system.Shutdown()

			got := make(chan int, msgs)
			var restarts atomic.Int32
			pid := system.Root.Spawn(mailboxProps(func(ctx actor.Context) {
				switch m := ctx.Message().(type) {
				case *actor.Restarting:
					restarts.Add(1)
				case mailboxBoom:
					panic("mailbox test: boom")
				case int:
					got <- m
				}
			}, dc.new(t)(0)))

			for i := range msgs {
				system.Root.Send(pid, i)
				if panicAfter[i] {
					system.Root.Send(pid, mailboxBoom{})
				}
			}
			// A final message after the last panic: the restarted actor must
			// take it.
			system.Root.Send(pid, msgs)

			for want := 0; want <= msgs; want++ {
				select {
				case m := <-got:
					if m != want {
						t.Fatalf("got message %d, want %d", m, want)
					}
				case <-time.After(mailboxWait):
					t.Fatalf("message %d not delivered within %v (restarts %d)", want, mailboxWait, restarts.Load())
				}
			}
			if r, want := restarts.Load(), int32(len(panicAfter)); r != want {
				t.Errorf("actor restarted %d times, want %d", r, want)
			}
		})
	}
}

// TestMailboxAllocs checks that posting a pointer message and processing it
// allocates nothing once the mailbox has reached its high-water mark. The
// mailbox is driven directly with synchronous dispatchers, so no goroutine
// is involved. The last row measures protoactor's default mailbox the same
// way, to show the measurement sees the allocation this mailbox removes (a
// closure for each turn scheduled on an idle mailbox).
func TestMailboxAllocs(t *testing.T) {
	msg := &mailboxSeq{seq: 1} // a pointer boxes into an interface for free
	cases := []struct {
		name       string
		mailbox    actor.MailboxProducer
		throughput int
		burst      int  // messages queued before the turn runs; 0: run each at once
		wantAllocs bool // only the default mailbox
	}{
		{"idle mailbox, one message per turn", NewMailbox, 300, 0, false},
		{"burst of 1000 drained in one turn", NewMailbox, 300, 1000, false},
		{"burst of 100 yielding every message", NewMailbox, 1, 100, false},
		{"protoactor default mailbox", actor.Unbounded(), 300, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mb := tc.mailbox()
			inv := &mailboxCountInvoker{}
			var run func()
			if tc.burst == 0 {
				mb.RegisterHandlers(inv, actor.NewSynchronizedDispatcher(tc.throughput))
				run = func() {
					before := inv.user
					mb.PostUserMessage(msg)
					if inv.user != before+1 || inv.last != msg {
						t.Fatal("message not processed synchronously")
					}
				}
			} else {
				d := &mailboxHeldDispatcher{throughput: tc.throughput, pending: make([]func(), 0, 1)}
				mb.RegisterHandlers(inv, d)
				run = func() {
					before := inv.user
					for range tc.burst {
						mb.PostUserMessage(msg)
					}
					if got := mb.UserMessageCount(); got != tc.burst {
						t.Fatalf("UserMessageCount() = %d before the turn, want %d", got, tc.burst)
					}
					d.runAll()
					if inv.user != before+tc.burst || mb.UserMessageCount() != 0 {
						t.Fatalf("turn processed %d messages, want %d", inv.user-before, tc.burst)
					}
				}
			}
			mb.Start()

			if testkit.RaceEnabled {
				t.Skip("allocation counts are meaningless under the race detector")
			}
			// Exact: testing.AllocsPerRun would round 199 allocations in
			// 200 runs down to 0.
			allocs := testkit.Allocs(run, 200)
			switch {
			case tc.wantAllocs && allocs < 200:
				t.Errorf("protoactor's default mailbox allocated %d times in 200 runs: the measurement is broken, or protoactor no longer needs this mailbox", allocs)
			case !tc.wantAllocs && allocs != 0:
				t.Errorf("%d allocations in 200 runs, want 0", allocs)
			}
			t.Logf("%d allocations in 200 runs", allocs)
		})
	}
}

// TestMailboxSuspendResume checks that a suspended mailbox holds user
// messages, still processes other system messages, and delivers the held
// messages in order on resume. Suspend and resume are not passed on.
func TestMailboxSuspendResume(t *testing.T) {
	mb, d, inv := mailboxNewDirect(300)

	mb.PostUserMessage("a")
	d.runAll()
	mailboxCheckLog(t, "before suspend", inv, "user:a")

	mb.PostSystemMessage(&actor.SuspendMailbox{})
	mb.PostUserMessage("b")
	mb.PostUserMessage("c")
	d.runAll()
	mailboxCheckLog(t, "suspended", inv, "user:a")
	if n := mb.UserMessageCount(); n != 2 {
		t.Fatalf("UserMessageCount() = %d while suspended, want 2", n)
	}

	mb.PostSystemMessage(mailboxSysMsg("watch"))
	mb.PostUserMessage("d")
	d.runAll()
	mailboxCheckLog(t, "system message while suspended", inv, "user:a", "sys:watch")

	mb.PostSystemMessage(&actor.ResumeMailbox{})
	d.runAll()
	mailboxCheckLog(t, "resumed", inv, "user:a", "sys:watch", "user:b", "user:c", "user:d")
	if n := mb.UserMessageCount(); n != 0 {
		t.Fatalf("UserMessageCount() = %d after resume, want 0", n)
	}

	mb.PostUserMessage("e")
	d.runAll()
	mailboxCheckLog(t, "after resume", inv, "user:a", "sys:watch", "user:b", "user:c", "user:d", "user:e")
	if len(d.pending) != 0 {
		t.Fatalf("%d turns left scheduled", len(d.pending))
	}
}

// TestMailboxTurns covers the scheduling rules with a held dispatcher:
// which messages a turn processes, in what order, and how many turns are
// scheduled.
func TestMailboxTurns(t *testing.T) {
	cases := []struct {
		name          string
		throughput    int // 0: 300
		post          func(mb actor.Mailbox)
		onUser        func(mb actor.Mailbox, msg any)
		want          []string
		wantSchedules int
		wantQueued    int // user messages left after the turn
	}{
		{
			name: "one turn for a burst, FIFO",
			post: func(mb actor.Mailbox) {
				for _, m := range []string{"a", "b", "c"} {
					mb.PostUserMessage(m)
				}
			},
			want:          []string{"user:a", "user:b", "user:c"},
			wantSchedules: 1,
		},
		{
			name: "system messages overtake queued user messages",
			post: func(mb actor.Mailbox) {
				mb.PostUserMessage("a")
				mb.PostUserMessage("b")
				mb.PostSystemMessage(mailboxSysMsg("s1"))
				mb.PostSystemMessage(mailboxSysMsg("s2"))
			},
			want:          []string{"sys:s1", "sys:s2", "user:a", "user:b"},
			wantSchedules: 1,
		},
		{
			name: "system message posted during a turn runs before the next user message",
			post: func(mb actor.Mailbox) {
				mb.PostUserMessage("a")
				mb.PostUserMessage("b")
			},
			onUser: func(mb actor.Mailbox, msg any) {
				if msg == "a" {
					mb.PostSystemMessage(mailboxSysMsg("s"))
				}
			},
			want:          []string{"user:a", "sys:s", "user:b"},
			wantSchedules: 1,
		},
		{
			name: "message posted during a turn is taken by the same turn",
			post: func(mb actor.Mailbox) { mb.PostUserMessage("a") },
			onUser: func(mb actor.Mailbox, msg any) {
				if msg == "a" {
					mb.PostUserMessage("b")
				}
			},
			want:          []string{"user:a", "user:b"},
			wantSchedules: 1,
		},
		{
			name:       "throughput 1 still drains the burst",
			throughput: 1,
			post: func(mb actor.Mailbox) {
				for _, m := range []string{"a", "b", "c"} {
					mb.PostUserMessage(m)
				}
			},
			want:          []string{"user:a", "user:b", "user:c"},
			wantSchedules: 1,
		},
		{
			name: "panic is escalated with its message; the rest wait for resume",
			post: func(mb actor.Mailbox) {
				for _, m := range []string{"a", "boom", "b", "c"} {
					mb.PostUserMessage(m)
				}
			},
			onUser: func(_ actor.Mailbox, msg any) {
				if msg == "boom" {
					panic("bang")
				}
			},
			want:          []string{"user:a", "escalate:boom:bang"},
			wantSchedules: 1,
			wantQueued:    2,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			throughput := tc.throughput
			if throughput == 0 {
				throughput = 300
			}
			mb, d, inv := mailboxNewDirect(throughput)
			inv.escalateSuspends = true
			if tc.onUser != nil {
				inv.onUser = func(msg any) { tc.onUser(mb, msg) }
			}
			tc.post(mb)
			d.runAll()
			mailboxCheckLog(t, "after the turn", inv, tc.want...)
			if d.schedules != tc.wantSchedules {
				t.Errorf("%d turns scheduled, want %d", d.schedules, tc.wantSchedules)
			}
			if n := mb.UserMessageCount(); n != tc.wantQueued {
				t.Errorf("UserMessageCount() = %d, want %d", n, tc.wantQueued)
			}
		})
	}
}

// TestMailboxPanicThenResume is the supervision sequence without an actor
// system: the failing message is escalated (which suspends the mailbox), and
// on resume the mailbox goes on with the messages behind it.
func TestMailboxPanicThenResume(t *testing.T) {
	mb, d, inv := mailboxNewDirect(300)
	inv.escalateSuspends = true
	inv.onUser = func(msg any) {
		if msg == "boom" {
			panic("bang")
		}
	}
	for _, m := range []string{"a", "boom", "b"} {
		mb.PostUserMessage(m)
	}
	d.runAll()
	mailboxCheckLog(t, "after the panic", inv, "user:a", "escalate:boom:bang")

	mb.PostSystemMessage(&actor.ResumeMailbox{})
	mb.PostUserMessage("c")
	d.runAll()
	mailboxCheckLog(t, "after resume", inv, "user:a", "escalate:boom:bang", "user:b", "user:c")
}

// TestMailboxRing checks the ring against a slice model through wraparound
// and growth, and that every slot not holding an element is cleared.
func TestMailboxRing(t *testing.T) {
	cases := []struct {
		name    string
		initCap int    // 0: zero-value ring
		ops     string // '+' push the next value, '-' pop
	}{
		{"zero value grows", 0, "+++++++++-----+++++"},
		{"fill and drain", 4, "++++----++++----"},
		{"grow while wrapped", 4, "+++--+++++++-+++++++++---------"},
		{"grow twice while wrapped", 2, "+-+-+++-+++++++++++-----+---"},
		{"pop empty", 4, "--+-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r mailboxRing
			if tc.initCap > 0 {
				r.init(tc.initCap)
			}
			var model []any
			next := 0
			for i, op := range tc.ops {
				if op == '+' {
					r.push(next)
					model = append(model, next)
					next++
				} else {
					v, ok := r.pop()
					if len(model) == 0 {
						if ok {
							t.Fatalf("op %d: pop from empty ring returned %v", i, v)
						}
					} else {
						if !ok || v != model[0] {
							t.Fatalf("op %d: pop = %v, %v, want %v", i, v, ok, model[0])
						}
						model = model[1:]
					}
				}
				if r.len() != len(model) {
					t.Fatalf("op %d: len() = %d, want %d", i, r.len(), len(model))
				}
				size := len(r.buf)
				if size&(size-1) != 0 {
					t.Fatalf("op %d: capacity %d not a power of two", i, size)
				}
				for k := range size {
					inQueue := (k-r.head+size)&(size-1) < r.n
					if !inQueue && r.buf[k] != nil {
						t.Fatalf("op %d: free slot %d still holds %v", i, k, r.buf[k])
					}
				}
			}
		})
	}
}

// TestMailboxPerTurnYields: a partition mailbox (one user message per turn)
// ends each turn after one message and schedules itself again behind the
// turns queued meanwhile, so another mailbox on the same worker runs in
// between; system messages are not limited.
func TestMailboxPerTurnYields(t *testing.T) {
	d := &mailboxHeldDispatcher{throughput: 300}
	var order []string
	a := newYieldingMailbox(1)
	b := NewMailbox()
	invA := &mailboxLogInvoker{mb: a, onUser: func(msg any) {
		order = append(order, fmt.Sprint("a:", msg))
		if msg == "a1" {
			b.PostUserMessage("b1") // what a partition does: hand work on
		}
	}}
	invB := &mailboxLogInvoker{mb: b, onUser: func(msg any) { order = append(order, fmt.Sprint("b:", msg)) }}
	a.RegisterHandlers(invA, d)
	b.RegisterHandlers(invB, d)
	a.PostUserMessage("a1")
	a.PostUserMessage("a2")
	a.PostSystemMessage(mailboxSysMsg("s1"))
	a.PostSystemMessage(mailboxSysMsg("s2"))
	d.runAll()
	want := []string{"a:a1", "b:b1", "a:a2"}
	if !slices.Equal(order, want) {
		t.Fatalf("order %q, want %q", order, want)
	}
	mailboxCheckLog(t, "a", invA, "sys:s1", "sys:s2", "user:a1", "user:a2")
	if a.UserMessageCount() != 0 || len(d.pending) != 0 {
		t.Fatalf("left %d messages, %d turns", a.UserMessageCount(), len(d.pending))
	}
	// Idle again: a new message schedules a new turn.
	before := d.schedules
	a.PostUserMessage("a3")
	if d.schedules != before+1 {
		t.Fatalf("posting to an idle mailbox scheduled %d turns", d.schedules-before)
	}
	d.runAll()
	mailboxCheckLog(t, "a", invA, "sys:s1", "sys:s2", "user:a1", "user:a2", "user:a3")
}
