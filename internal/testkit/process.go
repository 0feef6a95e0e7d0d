package testkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binary builds a main package at most once per test process and hands out
// the executable's path. Declare one per test package (the one package
// variable a test binary needs: it caches an immutable artifact) and call
// Remove from TestMain after m.Run:
//
//	var klinecast = testkit.Binary{Package: "."}
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		klinecast.Remove()
//		os.Exit(code)
//	}
//
// A Binary is safe for concurrent use; it must not be copied after first
// use.
type Binary struct {
	// Package is the main package to build, as `go build` takes it,
	// relative to the test's working directory (its package directory):
	// "." for the package under test.
	Package string

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binary on the first call and returns its path. If the
// go tool is not in PATH it skips the test; a failed build fails every
// test that asks (with the compiler's output).
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	b.once.Do(b.build)
	if errors.Is(b.err, exec.ErrNotFound) {
		t.Skipf("building %s: %v", b.Package, b.err)
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func (b *Binary) build() {
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.err = fmt.Errorf("go tool: %w", err)
		return
	}
	b.dir, err = os.MkdirTemp("", "testkit-bin-")
	if err != nil {
		b.err = fmt.Errorf("testkit: temp dir for the binary: %w", err)
		return
	}
	name := filepath.Base(b.Package)
	if name == "." || name == string(filepath.Separator) {
		wd, _ := os.Getwd()
		name = filepath.Base(wd)
	}
	b.path = filepath.Join(b.dir, name)
	cmd := exec.Command(goTool, "build", "-o", b.path, b.Package)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.err = fmt.Errorf("go build %s: %w\n%s", b.Package, err, out)
	}
}

// Remove deletes the built binary, if any. Call it once every test has
// finished (from TestMain).
func (b *Binary) Remove() {
	b.once.Do(func() {}) // no build from here on
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// ServeCmd returns the command line of `klinecast serve` on a free
// loopback port (--http 127.0.0.1:0: the kernel picks the port, so two
// tests never race for one; Start reads it from the "listening on" line)
// with dataDir as --data-dir, followed by extra flags. The caller may set
// the command's Env before passing it to Start.
func ServeCmd(bin, dataDir string, extra ...string) *exec.Cmd {
	args := append([]string{"serve", "--http", "127.0.0.1:0", "--data-dir", dataDir}, extra...)
	return exec.Command(bin, args...)
}

// Process is a child process started by Start.
type Process struct {
	Cmd *exec.Cmd
	// URL is the base URL from the process's "listening on URL" line.
	URL string
	// Stderr collects the process's standard error (its log).
	Stderr *SyncBuffer

	exited chan struct{} // closed when the process has exited
	err    error         // its exit status; valid once exited is closed
}

// StartTimeout bounds how long Start waits for the listening line: a
// cold build cache and a loaded machine make start-up slow, not wrong.
const StartTimeout = 2 * time.Minute

// Start starts cmd (its Stdout and Stderr must be unset) and waits until
// it prints a line "listening on URL" on standard output. It fails the test
// if the process exits first or prints no such line within StartTimeout,
// showing its stderr. The process is killed at the end of the test unless
// it has exited by then.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, Stderr: &SyncBuffer{}, exited: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", cmd.Path, err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			if u, ok := ListenURL(sc.Text()); ok && !found {
				found = true
				urls <- u
			}
		}
		p.err = cmd.Wait() // after stdout is drained, as exec requires
		close(p.exited)
	}()
	t.Cleanup(p.Kill)
	select {
	case p.URL = <-urls:
	case <-p.exited:
		t.Fatalf("%s exited before listening: %v\n%s", cmd.Path, p.err, p.Stderr.String())
	case <-time.After(StartTimeout):
		p.Kill()
		t.Fatalf("%s: no listening line within %v\n%s", cmd.Path, StartTimeout, p.Stderr.String())
	}
	return p
}

// ListenURL finds a "listening on URL" line in out.
func ListenURL(out string) (string, bool) {
	for line := range strings.Lines(out) {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on "); ok {
			return u, true
		}
	}
	return "", false
}

// Kill sends SIGKILL and waits until the process is gone. It does nothing
// if the process has already exited.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop sends SIGTERM and waits for the exit, at most within (then it kills
// the process and reports that). It returns the exit status: nil for exit
// code 0.
func (p *Process) Stop(within time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return p.Wait(ctx)
}

// Wait waits for the process to exit and returns its exit status. If ctx
// ends first it kills the process and returns ctx's error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.err
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("%s still running: killed: %w", p.Cmd.Path, ctx.Err())
	}
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// SyncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns a copy of everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
