package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
)

func requireHealth(t *testing.T, h StoreHealth, want HealthState, reason string) {
	t.Helper()
	if h.State != want || !strings.Contains(h.Reason, reason) {
		t.Fatalf("health %s %q, want %s with %q (%+v)", h.State, h.Reason, want, reason, h)
	}
	if want == HealthOK && h.Reason != "" {
		t.Fatalf("healthy with a reason: %q", h.Reason)
	}
}

func TestHealthOKAndClosed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		cfg := testConfig(t, kind, "")
		cfg.DiskReserve = 1 << 10 // healthy whatever the test machine's free space
		s := openStore(t, cfg)
		h := s.Health()
		requireHealth(t, h, HealthOK, "")
		if !h.LastError.IsZero() || h.LastErrorReason != "" {
			t.Fatalf("a fresh store reports a last error: %+v", h)
		}
		if kind == onBadger {
			if !h.FreeKnown || h.FreeBytes <= 0 || h.ReserveBytes != cfg.DiskReserve {
				t.Fatalf("badger store: free %d (known %v), reserve %d; want the reserve %d", h.FreeBytes, h.FreeKnown, h.ReserveBytes, cfg.DiskReserve)
			}
		} else if h.FreeKnown || h.ReserveBytes != 0 {
			t.Fatalf("in-memory store reports disk space: %+v", h)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		requireHealth(t, s.Health(), HealthFailed, "closed")
	})
}

// TestHealthFailedWriteAndFsync: a failing write or fsync turns the store
// Failed with the error as the reason; the next successful write clears
// it, and the last error stays visible.
func TestHealthFailedWriteAndFsync(t *testing.T) {
	for _, op := range []FaultOp{FaultWrite, FaultSync} {
		t.Run(op.String(), func(t *testing.T) {
			f := &switchFault{op: op, err: fmt.Errorf("%w: %w", errInjected, syscall.EIO)}
			cfg := testConfig(t, onBadger, "")
			cfg.Faults = f
			cfg.DiskReserve = 1 << 10
			s := openStore(t, cfg)
			ctx := context.Background()
			if _, err := s.AppendBatch(ctx, 0, mkBatch("H", 0, 3)); err != nil {
				t.Fatal(err)
			}
			requireHealth(t, s.Health(), HealthOK, "")

			f.on.Store(true)
			before := time.Now()
			if _, err := s.AppendBatch(ctx, 0, mkBatch("H", 1, 3)); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append with a failing %s: %v", op, err)
			}
			h := s.Health()
			requireHealth(t, h, HealthFailed, "injected I/O error")
			if !strings.Contains(h.Reason, op.String()) {
				t.Errorf("reason %q does not name the failed %s", h.Reason, op)
			}
			if h.LastError.Before(before) || h.LastErrorReason != h.Reason {
				t.Fatalf("last error %v %q", h.LastError, h.LastErrorReason)
			}

			f.on.Store(false)
			if _, err := s.AppendBatch(ctx, 0, mkBatch("H", 2, 3)); err != nil {
				t.Fatal(err)
			}
			h2 := s.Health()
			requireHealth(t, h2, HealthOK, "")
			if !h2.LastError.Equal(h.LastError) || h2.LastErrorReason != h.LastErrorReason {
				t.Fatalf("recovery lost the last error: %+v", h2)
			}
		})
	}
}

// TestHealthBatchModePeriodicFsync: in batch mode a failing periodic fsync
// refuses appends: Failed until an fsync succeeds again.
func TestHealthBatchModePeriodicFsync(t *testing.T) {
	f := &switchFault{op: FaultSync, err: errInjected}
	cfg := testConfig(t, onBadger, "")
	cfg.Durability = DurabilityBatch
	cfg.SyncInterval = time.Millisecond
	cfg.Faults = f
	cfg.DiskReserve = 1 << 10
	s := openStore(t, cfg)
	ctx := context.Background()
	if _, err := s.AppendBatch(ctx, 0, mkBatch("B", 0, 5)); err != nil {
		t.Fatal(err)
	}
	f.on.Store(true)
	testkit.Eventually(t, 10*time.Second, func() error {
		if h := s.Health(); h.State != HealthFailed || h.Reason != reasonPeriodicFsync {
			return fmt.Errorf("health %s %q", h.State, h.Reason)
		}
		return nil
	})
	if h := s.Health(); !strings.Contains(h.LastErrorReason, "periodic fsync") {
		t.Fatalf("last error %q", h.LastErrorReason)
	}
	f.on.Store(false)
	testkit.Eventually(t, 10*time.Second, func() error {
		if h := s.Health(); h.State != HealthOK {
			return fmt.Errorf("health %s %q", h.State, h.Reason)
		}
		return nil
	})
}

// TestHealthAllocationFree: Health does not allocate, with or without a
// recorded failure. Measured on the in-memory store (no background
// goroutine: its committer is blocked on its empty queue) and, for the
// badger path's one syscall, on dirStat alone: a badger Store's own
// goroutines allocate at any time and would make an exact count flaky.
func TestHealthAllocationFree(t *testing.T) {
	f := &switchFault{op: FaultWrite, err: errInjected}
	cfg := testConfig(t, inMemory, "")
	cfg.Faults = f
	s := openStore(t, cfg)
	var h StoreHealth
	testkit.RequireNoAllocs(t, "Health, healthy", 1000, func() { h = s.Health() })
	f.on.Store(true)
	if _, err := s.AppendBatch(context.Background(), 0, mkBatch("A", 0, 1)); err == nil {
		t.Fatal("append with a failing write succeeded")
	}
	testkit.RequireNoAllocs(t, "Health, failed", 1000, func() { h = s.Health() })
	requireHealth(t, h, HealthFailed, "injected")

	d := openDirStat(t.TempDir())
	defer d.close()
	testkit.RequireNoAllocs(t, "dirStat.free", 1000, func() { d.free() })
}

// TestHealthConcurrent calls Health during appends and Close (run with
// -race).
func TestHealthConcurrent(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	cfg.DiskReserve = 1 << 10
	s := openStore(t, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if h := s.Health(); h.State != HealthOK && h.Reason != reasonClosed {
					t.Errorf("health %s %q during appends", h.State, h.Reason)
				}
			}
		})
	}
	for i := range 50 {
		if _, err := s.AppendBatch(ctx, i%3, mkBatch("C", i, 2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	requireHealth(t, s.Health(), HealthFailed, "closed")
}
