package storage

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

func TestOpenLockedDir(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	a := openStore(t, cfg)
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, cfg.Dir) || !strings.Contains(msg, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("lock error does not name the directory and holder: %v", err)
	}
	if _, err := Inspect(context.Background(), cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("Inspect of a live directory: %v, want ErrLocked", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	b.Close()
}

// switchFault fails the chosen operation while on.
type switchFault struct {
	op  FaultOp
	on  atomic.Bool
	err error
}

func (f *switchFault) Fault(op FaultOp) error {
	if op == f.op && f.on.Load() {
		return f.err
	}
	return nil
}

var errInjected = errors.New("injected I/O error")

func TestFaultWriteFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		f := &switchFault{op: FaultWrite, err: fmt.Errorf("%w: %w", errInjected, syscall.ENOSPC)}
		cfg := testConfig(t, kind, "")
		cfg.Faults = f
		s := openStore(t, cfg)
		ctx := context.Background()
		acked := map[uint64]*messages.TradeBatch{}
		for i := range 5 {
			tb := mkBatch("F", i, 10)
			seq, err := s.AppendBatch(ctx, 0, tb)
			if err != nil {
				t.Fatal(err)
			}
			acked[seq] = tb
		}
		f.on.Store(true)
		_, err := s.AppendBatch(ctx, 0, mkBatch("F", 99, 10))
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append on a failing disk: %v, want ErrUnavailable wrapping ENOSPC", err)
		}
		bars := NewShardBars(s, 0)
		if err := bars.Put([]messages.Kline{mkBar("F", messages.Interval1m, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := bars.WriteDirty(ctx); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("WriteDirty on a failing disk: %v", err)
		}
		if err := s.PutCheckpoint(ctx, "c", 1); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("PutCheckpoint on a failing disk: %v", err)
		}
		if got := replayShard(t, s, 0, 0); len(got) != 5 {
			t.Fatalf("reads during the failure: %d records", len(got))
		}
		f.on.Store(false)
		tb := mkBatch("F", 6, 10)
		seq, err := s.AppendBatch(ctx, 0, tb)
		if err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
		acked[seq] = tb
		got := replayShard(t, s, 0, 0)
		if len(got) != len(acked) {
			t.Fatalf("replayed %d records, want the %d acknowledged ones", len(got), len(acked))
		}
		for _, r := range got {
			if !sameTrades(r.trades, acked[r.seq].Trades) {
				t.Fatalf("seq %d is not what was acknowledged", r.seq)
			}
		}
		if st := s.Stats(); st.Failures != 3 {
			t.Fatalf("failures = %d, want 3", st.Failures)
		}
	})
}

func TestFaultSyncFailure(t *testing.T) {
	f := &switchFault{op: FaultSync, err: fmt.Errorf("%w: %w", errInjected, syscall.EIO)}
	cfg := testConfig(t, onBadger, "")
	cfg.Faults = f
	s := openStore(t, cfg)
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.AppendBatch(ctx, 1, mkBatch("Y", i, 10)); err != nil {
			t.Fatal(err)
		}
	}
	f.on.Store(true)
	if _, err := s.AppendBatch(ctx, 1, mkBatch("Y", 3, 10)); !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	if err := s.SaveSnapshot(ctx, 1, 3, []byte("s")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("snapshot with failing fsync: %v", err)
	}
	f.on.Store(false)
	// The unacknowledged record was withdrawn; the sequence moves on.
	got := replayShard(t, s, 1, 0)
	if len(got) != 3 {
		t.Fatalf("replayed %d records after a failed fsync, want 3", len(got))
	}
	seq, err := s.AppendBatch(ctx, 1, mkBatch("Y", 4, 10))
	if err != nil || seq != 5 {
		t.Fatalf("append after recovery: seq %d, %v (want 5)", seq, err)
	}
	if st := s.Stats(); st.FsyncErrors == 0 || st.DurableSeq != 5 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFaultBatchModeSyncFailure(t *testing.T) {
	f := &switchFault{op: FaultSync, err: errInjected}
	cfg := testConfig(t, onBadger, "")
	cfg.Durability = DurabilityBatch
	cfg.SyncInterval = time.Millisecond
	cfg.Faults = f
	s := openStore(t, cfg)
	ctx := context.Background()
	if _, err := s.AppendBatch(ctx, 0, mkBatch("B", 0, 5)); err != nil {
		t.Fatal(err)
	}
	f.on.Store(true)
	// Appends are written without waiting for an fsync, but once the
	// periodic fsync has failed they are refused until it succeeds.
	i := 1
	testkit.Eventually(t, 10*time.Second, func() error {
		i++
		if _, err := s.AppendBatch(ctx, 0, mkBatch("B", i, 5)); !errors.Is(err, ErrUnavailable) {
			return fmt.Errorf("append still accepted (err %v)", err)
		}
		return nil
	})
	if len(recorderOf(cfg).matching("periodic fsync failed")) != 1 {
		t.Fatal("the failed periodic fsync was not logged exactly once")
	}
	f.on.Store(false)
	testkit.Eventually(t, 10*time.Second, func() error {
		i++
		_, err := s.AppendBatch(ctx, 0, mkBatch("B", i, 5))
		return err
	})
	st := s.Stats()
	testkit.Eventually(t, 10*time.Second, func() error {
		if d := s.Stats().DurableSeq; d < st.LastSeq {
			return fmt.Errorf("durable %d < last %d", d, st.LastSeq)
		}
		return nil
	})
}

// TestFaultDiskFullTmpfs fills a real, small tmpfs: below the reserve the
// store refuses appends and bar writes with ErrUnavailable, keeps serving
// reads, loses nothing acknowledged, and accepts writes again once space
// returns.
func TestFaultDiskFullTmpfs(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=48m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, 0) })

	cfg := DefaultLocalConfig(filepath.Join(mnt, "data")) // 16 MiB reserve
	cfg.Logger = newLogRecorder().logger()
	s := openStore(t, cfg)
	ctx := context.Background()
	var acked []uint64
	for i := range 20 {
		seq, err := s.AppendBatch(ctx, 0, mkBatch("D", i, 100))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, seq)
	}
	bars := NewShardBars(s, 0)
	if err := bars.Put([]messages.Kline{mkBar("D", messages.Interval1m, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := bars.WriteDirty(ctx); err != nil {
		t.Fatal(err)
	}

	free, ok := freeBytes(mnt)
	if !ok {
		t.Skip("statfs unavailable")
	}
	requireHealth(t, s.Health(), HealthOK, "")
	// Health reads the free space itself: no write is needed to see it.
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, free-24<<20), 0o644); err != nil { // 24 MiB left: under twice the reserve
		t.Fatal(err)
	}
	requireHealth(t, s.Health(), HealthDegraded, "twice the reserve")
	fill := free - 8<<20 // leave 8 MiB: below the reserve, far from ENOSPC
	if err := os.WriteFile(ballast, make([]byte, fill), 0o644); err != nil {
		t.Fatal(err)
	}
	requireHealth(t, s.Health(), HealthFailed, "below the reserve")
	_, err := s.AppendBatch(ctx, 0, mkBatch("D", 99, 100))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "disk space low") {
		t.Fatalf("append on a nearly full disk: %v", err)
	}
	if err := bars.Put([]messages.Kline{mkBar("D", messages.Interval1m, messages.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := bars.WriteDirty(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("WriteDirty on a nearly full disk: %v", err)
	}
	if got := replayShard(t, s, 0, 0); len(got) != 20 {
		t.Fatalf("reads on a full disk: %d records", len(got))
	}
	// The stored bar is read from the store, the refused one from memory.
	if got, err := NewShardBars(s, 0).Klines("D", messages.Interval1m, 0, 1<<62, 0, nil); err != nil || len(got) != 1 {
		t.Fatalf("bar reads on a full disk: %d, %v", len(got), err)
	}
	if got, err := bars.Klines("D", messages.Interval1m, 0, 1<<62, 0, nil); err != nil || len(got) != 2 {
		t.Fatalf("bar reads on a full disk: %d, %v", len(got), err)
	}
	rec := recorderOf(cfg)
	if len(rec.matching("below the reserve")) != 1 {
		t.Fatal("low disk space not logged exactly once")
	}

	if h := s.Health(); h.State != HealthFailed || !strings.Contains(h.LastErrorReason, "disk space low") {
		t.Fatalf("health after refused writes: %+v", h)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	requireHealth(t, s.Health(), HealthOK, "")
	seq, err := s.AppendBatch(ctx, 0, mkBatch("D", 20, 100))
	if err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	acked = append(acked, seq)
	if len(rec.matching("back above the reserve")) != 1 {
		t.Fatal("recovery not logged")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	got := replayShard(t, s, 0, 0)
	if len(got) != len(acked) {
		t.Fatalf("after reopen: %d records, want %d", len(got), len(acked))
	}
	for i, r := range got {
		if r.seq != acked[i] {
			t.Fatalf("record %d: seq %d, want %d", i, r.seq, acked[i])
		}
	}
}

func TestCloseWhileAppending(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	cfg.Durability = DurabilityBatch
	s := openStore(t, cfg)
	var ok atomic.Int64
	var wg sync.WaitGroup
	started := make(chan struct{}, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				_, err := s.AppendBatch(context.Background(), w, mkBatch("C", w*1000+i, 20))
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("append during Close: %v", err)
					}
					return
				}
				if ok.Add(1); i == 0 {
					started <- struct{}{}
				}
			}
		}()
	}
	for range 16 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = openStore(t, cfg)
	total := 0
	for w := range 16 {
		total += len(replayShard(t, s, w, 0))
	}
	if int64(total) != ok.Load() {
		t.Fatalf("replayed %d records, %d appends succeeded", total, ok.Load())
	}
}

// TestWALCrashRecovery kills a writer process with SIGKILL in the middle
// of concurrent sync-mode appends: every acknowledged batch must be
// replayed intact after restart.
func TestWALCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWALCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "KLINECAST_STORAGE_CRASH_DIR="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s\n%s", err, out, stderr.Bytes())
	}
	type ack struct{ shard, id int }
	acks := map[uint64]ack{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var seq uint64
		var a ack
		if n, _ := fmt.Sscanf(sc.Text(), "ack %d %d %d", &seq, &a.shard, &a.id); n == 3 {
			acks[seq] = a
		}
	}
	if len(acks) < crashAcks {
		t.Fatalf("child acknowledged only %d appends", len(acks))
	}

	cfg := testConfig(t, onBadger, dir)
	sum, err := Inspect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Inspect after kill -9: %v", err)
	}
	t.Logf("inspect after kill -9: recovered=%v last=%d durable=%d", sum.Recovered, sum.LastSeq, sum.DurableSeq)

	s := openStore(t, cfg)
	seen := 0
	for shard := range crashWriters {
		for _, r := range replayShard(t, s, shard, 0) {
			a, ok := acks[r.seq]
			if !ok {
				continue // written but not acknowledged before the kill
			}
			if a.shard != shard || !sameTrades(r.trades, mkBatch("K", a.id, 50).Trades) {
				t.Fatalf("seq %d: wrong content", r.seq)
			}
			seen++
		}
	}
	if seen != len(acks) {
		t.Fatalf("%d of %d acknowledged batches survived kill -9", seen, len(acks))
	}
}

const (
	crashWriters = 8
	crashAcks    = 300
)

// TestWALCrashChild is the process TestWALCrashRecovery kills.
func TestWALCrashChild(t *testing.T) {
	dir := os.Getenv("KLINECAST_STORAGE_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestWALCrashRecovery")
	}
	s, err := Open(context.Background(), DefaultLocalConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	for w := range crashWriters {
		go func() {
			for i := 0; ; i++ {
				id := w*1_000_000 + i
				seq, err := s.AppendBatch(context.Background(), w, mkBatch("K", id, 50))
				if err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d %d\n", seq, w, id)
				if n++; n == crashAcks {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
				mu.Unlock()
			}
		}()
	}
	select {}
}
