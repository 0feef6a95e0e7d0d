package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeTB records a Fatalf or Errorf and stops the helper at Fatalf like
// the real one would; Cleanup goes to the real test.
type fakeTB struct {
	testing.TB
	t      *testing.T
	msg    string
	errMsg string
}

func (f *fakeTB) Cleanup(fn func())                 { f.t.Cleanup(fn) }
func (f *fakeTB) Errorf(format string, args ...any) { f.errMsg = fmt.Sprintf(format, args...) }

type fatal struct{}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatal{})
}

// failed runs fn with a fakeTB and returns the Fatalf message, "" if none.
func failed(t *testing.T, fn func(tb *fakeTB)) (msg string) {
	f := &fakeTB{t: t}
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatal); !ok {
				panic(r)
			}
			msg = f.msg
		}
	}()
	fn(f)
	return ""
}

func TestKitEventuallyPollsUntilNil(t *testing.T) {
	calls := 0
	Eventually(t, time.Minute, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestKitEventuallyFailsWithLastError(t *testing.T) {
	calls := 0
	msg := failed(t, func(tb *fakeTB) {
		Eventually(tb, 0, func() error {
			calls++
			return fmt.Errorf("attempt %d", calls)
		})
	})
	// Within 0: the first call, then the one after the deadline.
	if calls != 2 || !strings.Contains(msg, "attempt 2") {
		t.Fatalf("calls %d, message %q; want 2 calls and the last error", calls, msg)
	}
}

func TestKitAllocsCountsExactly(t *testing.T) {
	if n := Allocs(func() {}, 1000); n != 0 {
		t.Errorf("empty func: %d allocations", n)
	}
	var sink []byte // captured by the closure: what it makes escapes
	i := 0
	every := func(k int) func() {
		return func() {
			i++
			if i%k == 0 {
				sink = make([]byte, 64)
			}
		}
	}
	// The warm-up is call 1: calls 2..1001 are counted.
	i = 0
	if n := Allocs(every(2), 1000); n != 500 {
		t.Errorf("every other call: %d allocations, want 500", n)
	}
	// Rare allocations are exactly what testing.AllocsPerRun misses.
	i = 0
	if n := Allocs(every(1000), 1000); n != 1 {
		t.Errorf("one call in 1000: %d allocations, want 1", n)
	}
	i = 0
	if avg := testing.AllocsPerRun(1000, every(1000)); avg != 0 {
		t.Logf("testing.AllocsPerRun now reports %v for 1 in 1000 (it used to round down to 0)", avg)
	}
	i = 0
	f := &fakeTB{t: t}
	RequireNoAllocs(f, "rare", 1000, every(1000))
	if !strings.Contains(f.errMsg, "rare: 1 allocations in 1000 runs") {
		t.Errorf("RequireNoAllocs message %q", f.errMsg)
	}
	_ = sink
}

// TestKitHelperProcess is not a test: Start's tests run the test binary
// as a child that prints a listening line and waits for SIGTERM.
func TestKitHelperProcess(t *testing.T) {
	mode := os.Getenv("TESTKIT_HELPER")
	if mode == "" {
		t.Skip("helper process for TestKitStart")
	}
	switch mode {
	case "listen":
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("starting")
		fmt.Println("listening on http://127.0.0.1:1")
		fmt.Fprintln(os.Stderr, "log line")
		<-sig
		os.Exit(0)
	case "fail":
		fmt.Fprintln(os.Stderr, "cannot start: bad flag")
		os.Exit(3)
	}
}

func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestKitHelperProcess$")
	cmd.Env = append(os.Environ(), "TESTKIT_HELPER="+mode)
	return cmd
}

func TestKitStart(t *testing.T) {
	p := Start(t, helperCmd("listen"))
	if p.URL != "http://127.0.0.1:1" {
		t.Fatalf("URL %q", p.URL)
	}
	Eventually(t, time.Minute, func() error {
		if !strings.Contains(p.Stderr.String(), "log line") {
			return errors.New("stderr not captured")
		}
		return nil
	})
	if err := p.Stop(time.Minute); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	p.Kill() // after exit: a no-op

	q := Start(t, helperCmd("listen"))
	q.Kill()
	if err := q.Wait(context.Background()); err == nil {
		t.Fatal("killed process reported exit 0")
	}
}

func TestKitStartReportsEarlyExit(t *testing.T) {
	msg := failed(t, func(tb *fakeTB) { Start(tb, helperCmd("fail")) })
	if !strings.Contains(msg, "exited before listening") || !strings.Contains(msg, "bad flag") {
		t.Fatalf("message %q lacks the exit and the stderr", msg)
	}
}

func TestKitServeCmd(t *testing.T) {
	cmd := ServeCmd("/bin/klinecast", "/data", "--shards", "8")
	want := []string{"/bin/klinecast", "serve", "--http", "127.0.0.1:0", "--data-dir", "/data", "--shards", "8"}
	if strings.Join(cmd.Args, " ") != strings.Join(want, " ") {
		t.Fatalf("args %q, want %q", cmd.Args, want)
	}
}
