package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

func TestWALAppendReplayRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		type rec struct {
			shard int
			tb    *messages.TradeBatch
		}
		var want []rec
		for i := range 30 {
			shard := []int{0, 7, MaxShard}[i%3]
			tb := mkBatch(fmt.Sprintf("SYM%d", shard), i, 1+i*7) // 1 to 204 trades: inline and value-log sized
			seq, err := s.AppendBatch(ctx, shard, tb)
			if err != nil {
				t.Fatal(err)
			}
			if seq != uint64(i+1) || tb.Seq != seq {
				t.Fatalf("append %d: seq %d, tb.Seq %d", i, seq, tb.Seq)
			}
			want = append(want, rec{shard, tb})
		}
		for _, shard := range []int{0, 7, MaxShard} {
			got := replayShard(t, s, shard, 0)
			var exp []rec
			for _, r := range want {
				if r.shard == shard {
					exp = append(exp, r)
				}
			}
			if len(got) != len(exp) {
				t.Fatalf("shard %d: replayed %d records, want %d", shard, len(got), len(exp))
			}
			for i := range got {
				if got[i].tickBefore != exp[i].tb.TickBefore || got[i].tickAfter != exp[i].tb.TickAfter {
					t.Fatalf("shard %d record %d: ticks %d/%d, want %d/%d", shard, i, got[i].tickBefore, got[i].tickAfter, exp[i].tb.TickBefore, exp[i].tb.TickAfter)
				}
				if got[i].seq != exp[i].tb.Seq || !sameTrades(got[i].trades, exp[i].tb.Trades) {
					t.Fatalf("shard %d record %d: seq %d (want %d), trades equal %v", shard, i, got[i].seq, exp[i].tb.Seq, sameTrades(got[i].trades, exp[i].tb.Trades))
				}
			}
			// afterSeq skips what a snapshot covers.
			if tail := replayShard(t, s, shard, exp[4].tb.Seq); len(tail) != len(exp)-5 || tail[0].seq != exp[5].tb.Seq {
				t.Fatalf("shard %d: replay after %d gave %d records", shard, exp[4].tb.Seq, len(tail))
			}
			if none := replayShard(t, s, shard, ^uint64(0)); len(none) != 0 {
				t.Fatalf("replay after MaxUint64 gave %d records", len(none))
			}
		}
		// fn's error stops the replay and comes back wrapped.
		stop := errors.New("enough")
		err := s.ReplayWAL(ctx, 0, 0, func(uint64, *messages.TradeBatch) error { return stop })
		if !errors.Is(err, stop) {
			t.Fatalf("ReplayWAL error = %v, want wrapping %v", err, stop)
		}
		st := s.Stats()
		if st.Appends != 30 || st.LastSeq != 30 || st.Trades == 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestWALAppendArguments(t *testing.T) {
	s := openStore(t, testConfig(t, inMemory, ""))
	ctx := context.Background()
	if _, err := s.AppendBatch(ctx, -1, mkBatch("A", 0, 1)); err == nil {
		t.Error("negative shard accepted")
	}
	if _, err := s.AppendBatch(ctx, MaxShard+1, mkBatch("A", 0, 1)); err == nil {
		t.Error("shard above MaxShard accepted")
	}
	if _, err := s.AppendBatch(ctx, 0, &messages.TradeBatch{}); err == nil {
		t.Error("empty batch accepted")
	}
	// A tick-only batch is a record: replay must tick where the shard did.
	seq, err := s.AppendBatch(ctx, 0, &messages.TradeBatch{TickBefore: 1_700_000_000_000})
	if err != nil {
		t.Fatalf("tick-only batch: %v", err)
	}
	if got := replayShard(t, s, 0, 0); len(got) != 1 || got[0].seq != seq || got[0].tickBefore != 1_700_000_000_000 || len(got[0].trades) != 0 {
		t.Fatalf("tick-only batch replayed as %+v", got)
	}
}

// TestWALGroupCommit holds the first fsync until every other appender has
// queued, so the rest must share one write and one fsync: group commit
// without relying on timing.
func TestWALGroupCommit(t *testing.T) {
	const n = 64
	release := make(chan struct{})
	var syncs sync.Mutex
	first := true
	cfg := testConfig(t, onBadger, "")
	cfg.Faults = FaultFunc(func(op FaultOp) error {
		if op == FaultSync {
			syncs.Lock()
			f := first
			first = false
			syncs.Unlock()
			if f {
				<-release
			}
		}
		return nil
	})
	s := openStore(t, cfg)
	ctx := context.Background()
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if seqs[0], err = s.AppendBatch(ctx, 0, mkBatch("G", 0, 100)); err != nil {
			t.Error(err)
		}
	}()
	testkit.Eventually(t, 10*time.Second, func() error {
		if s.Stats().Commits != 1 {
			return errors.New("first append not committed yet")
		}
		return nil
	})
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if seqs[i], err = s.AppendBatch(ctx, i%8, mkBatch("G", i, 100)); err != nil {
				t.Error(err)
			}
		}()
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		if q := s.Stats().QueueLen; q != n-1 {
			return fmt.Errorf("queue length %d, want %d", q, n-1)
		}
		return nil
	})
	close(release)
	wg.Wait()
	st := s.Stats()
	if st.Commits != 2 || st.Fsyncs != 2 || st.Appends != n {
		t.Fatalf("stats %+v: want 2 commits and 2 fsyncs for %d appends", st, n)
	}
	checkDense(t, seqs)
}

// TestWALConcurrentAppends hammers the committer from many goroutines:
// sequence numbers are unique and dense, and replay returns everything.
func TestWALConcurrentAppends(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
			t.Run(d.String(), func(t *testing.T) {
				cfg := testConfig(t, kind, "")
				cfg.Durability = d
				s := openStore(t, cfg)
				const writers, each = 32, 25
				seqs := make([]uint64, writers*each)
				batches := make(map[uint64]*messages.TradeBatch)
				var mu sync.Mutex
				var wg sync.WaitGroup
				for w := range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range each {
							tb := mkBatch(fmt.Sprintf("W%d", w), w*each+i, 1+(w+i)%120)
							seq, err := s.AppendBatch(context.Background(), w%5, tb)
							if err != nil {
								t.Error(err)
								return
							}
							seqs[w*each+i] = seq
							mu.Lock()
							batches[seq] = tb
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
				checkDense(t, seqs)
				total := 0
				for shard := range 5 {
					var last uint64
					for _, r := range replayShard(t, s, shard, 0) {
						if r.seq <= last {
							t.Fatalf("shard %d: seq %d after %d", shard, r.seq, last)
						}
						last = r.seq
						if !sameTrades(r.trades, batches[r.seq].Trades) {
							t.Fatalf("seq %d: trades differ", r.seq)
						}
						total++
					}
				}
				if total != len(seqs) {
					t.Fatalf("replayed %d records, want %d", total, len(seqs))
				}
				st := s.Stats()
				if st.Commits > st.Appends {
					t.Fatalf("more commits than appends: %+v", st)
				}
			})
		}
	})
}

func checkDense(t *testing.T, seqs []uint64) {
	t.Helper()
	sorted := append([]uint64(nil), seqs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for i, s := range sorted {
		if s != uint64(i+1) {
			t.Fatalf("sequence numbers not unique and dense from 1: position %d holds %d", i, s)
		}
	}
}

func TestWALDurabilityModes(t *testing.T) {
	ctx := context.Background()
	t.Run("sync", func(t *testing.T) {
		cfg := testConfig(t, onBadger, "")
		s := openStore(t, cfg)
		for i := range 5 {
			seq, err := s.AppendBatch(ctx, 0, mkBatch("S", i, 10))
			if err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.DurableSeq < seq || st.Fsyncs < uint64(i+1) {
				t.Fatalf("sync mode: append %d returned before its fsync: %+v", seq, st)
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		cfg := testConfig(t, onBadger, "")
		cfg.Durability = DurabilityBatch
		cfg.SyncInterval = time.Millisecond
		s := openStore(t, cfg)
		var seq uint64
		for i := range 5 {
			var err error
			if seq, err = s.AppendBatch(ctx, 0, mkBatch("B", i, 10)); err != nil {
				t.Fatal(err)
			}
		}
		testkit.Eventually(t, 10*time.Second, func() error {
			if st := s.Stats(); st.DurableSeq < seq {
				return fmt.Errorf("durable seq %d < %d", st.DurableSeq, seq)
			}
			return nil
		})
		if st := s.Stats(); st.Fsyncs == 0 {
			t.Fatalf("batch mode never fsynced: %+v", st)
		}
	})
	t.Run("none", func(t *testing.T) {
		cfg := testConfig(t, onBadger, "")
		cfg.Durability = DurabilityNone
		s := openStore(t, cfg)
		for i := range 5 {
			if _, err := s.AppendBatch(ctx, 0, mkBatch("N", i, 10)); err != nil {
				t.Fatal(err)
			}
		}
		if st := s.Stats(); st.Fsyncs != 0 || st.DurableSeq != 0 {
			t.Fatalf("none mode fsynced: %+v", st)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Fsyncs != 1 || st.DurableSeq != 5 {
			t.Fatalf("Close did not fsync: %+v", st)
		}
	})
}

func TestWALReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := testConfig(t, onBadger, dir)
	s := openStore(t, cfg)
	for i := range 10 {
		if _, err := s.AppendBatch(ctx, i%2, mkBatch("R", i, 50)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, 0, mkBatch("R", 99, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v", err)
	}

	s = openStore(t, cfg)
	if got := len(replayShard(t, s, 0, 0)) + len(replayShard(t, s, 1, 0)); got != 10 {
		t.Fatalf("replayed %d records after reopen, want 10", got)
	}
	if seq, err := s.AppendBatch(ctx, 0, mkBatch("R", 10, 5)); err != nil || seq != 11 {
		t.Fatalf("append after reopen: seq %d, %v (want 11)", seq, err)
	}
	// Cover and truncate everything: the sequence must still not restart.
	for shard := range 2 {
		if err := s.SaveSnapshot(ctx, shard, 11, []byte("state")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TruncateWAL(ctx, shard, 11); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	if n := len(replayShard(t, s, 0, 0)); n != 0 {
		t.Fatalf("%d records survived truncation", n)
	}
	if seq, err := s.AppendBatch(ctx, 1, mkBatch("R", 12, 5)); err != nil || seq != 12 {
		t.Fatalf("append after truncating everything: seq %d, %v (want 12)", seq, err)
	}
}

func TestWALTornTailTruncated(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		cfg := testConfig(t, kind, "")
		s := openStore(t, cfg)
		ctx := context.Background()
		for i := range 5 {
			if _, err := s.AppendBatch(ctx, 3, mkBatch("T", i, 20)); err != nil {
				t.Fatal(err)
			}
		}
		// Two torn records after the last good one: a truncated value and
		// one whose checksum fails.
		good := rawGet(t, s, appendWALKey(nil, 3, 5))
		torn1 := appendWALKey(nil, 3, 6)
		torn2 := appendWALKey(nil, 3, 7)
		rawPut(t, s, torn1, good[:len(good)/2])
		bad := append([]byte(nil), good...)
		bad[20] ^= 1
		rawPut(t, s, torn2, bad)

		got := replayShard(t, s, 3, 0)
		if len(got) != 5 || got[4].seq != 5 {
			t.Fatalf("replayed %d records, want the 5 good ones", len(got))
		}
		rec := recorderOf(cfg)
		for _, k := range [][]byte{torn1, torn2} {
			if len(rec.matching("torn WAL tail", formatKey(k))) != 1 {
				t.Fatalf("no warning naming %s; log: %v", formatKey(k), rec.matching(""))
			}
		}
		// The tail is gone: replay again is clean and silent.
		if got := replayShard(t, s, 3, 0); len(got) != 5 {
			t.Fatalf("second replay: %d records", len(got))
		}
		if n := len(rec.matching("torn WAL tail")); n != 2 {
			t.Fatalf("%d torn-tail warnings after the second replay, want 2", n)
		}
	})
}

func TestWALMidLogCorruption(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		for i := range 6 {
			if _, err := s.AppendBatch(ctx, 1, mkBatch("M", i, 30)); err != nil {
				t.Fatal(err)
			}
		}
		key := corruptRecord(t, s, 1, 3)
		var seen []uint64
		err := s.ReplayWAL(ctx, 1, 0, func(seq uint64, _ *messages.TradeBatch) error {
			seen = append(seen, seq)
			return nil
		})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("replay error %v, want ErrCorrupt", err)
		}
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(ce.Key, "wal/shard=1/seq=3") {
			t.Fatalf("error does not name the key: %v", err)
		}
		if !strings.Contains(err.Error(), formatKey(key)) || !strings.Contains(err.Error(), "--repair") {
			t.Fatalf("error message lacks the key or the --repair hint: %v", err)
		}
		if fmt.Sprint(seen) != "[1 2]" {
			t.Fatalf("records before the corruption: %v", seen)
		}
		// Nothing was deleted: the same error again.
		if err := s.ReplayWAL(ctx, 1, 0, func(uint64, *messages.TradeBatch) error { return nil }); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("second replay: %v", err)
		}
	})
}

func TestWALRepair(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		cfg := testConfig(t, kind, "")
		cfg.Repair = true
		s := openStore(t, cfg)
		ctx := context.Background()
		for i := range 6 {
			if _, err := s.AppendBatch(ctx, 1, mkBatch("P", i, 30)); err != nil {
				t.Fatal(err)
			}
		}
		k2 := corruptRecord(t, s, 1, 2)
		k3 := corruptRecord(t, s, 1, 3)
		var seqs []uint64
		for _, r := range replayShard(t, s, 1, 0) {
			seqs = append(seqs, r.seq)
		}
		if fmt.Sprint(seqs) != "[1 4 5 6]" {
			t.Fatalf("repaired replay: %v", seqs)
		}
		rec := recorderOf(cfg)
		for _, k := range [][]byte{k2, k3} {
			if len(rec.matching("repair", formatKey(k))) != 1 {
				t.Fatalf("no repair warning for %s", formatKey(k))
			}
		}
		if got := replayShard(t, s, 1, 0); len(got) != 4 {
			t.Fatalf("after repair: %d records", len(got))
		}
	})
}

// TestWALCorruptDataDirCopy corrupts a record on disk: it copies a closed
// data directory, flips a byte of one record's payload inside badger's
// value-log file, and opens the copy.
func TestWALCorruptDataDirCopy(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	cfg := testConfig(t, onBadger, src)
	s := openStore(t, cfg)
	for i := range 8 {
		sym := "GOODSYM"
		if i == 4 {
			sym = "MARKSYM" // a unique byte pattern to find on disk
		}
		if _, err := s.AppendBatch(ctx, 2, mkBatch(sym, i, 100)); err != nil { // ~5 KB: in the value log
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	flipped := 0
	err := filepath.WalkDir(filepath.Join(dst, badgerSubdir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".vlog") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if i := bytes.Index(b, []byte("MARKSYM")); i >= 0 {
			b[i+len("MARKSYM")+3] ^= 0x01 // a byte of the first trade's id/price
			flipped++
			return os.WriteFile(path, b, 0o644)
		}
		return nil
	})
	if err != nil || flipped != 1 {
		t.Fatalf("corrupting the copy: flipped %d, %v", flipped, err)
	}

	cfg2 := testConfig(t, onBadger, dst)
	c := openStore(t, cfg2)
	err = c.ReplayWAL(ctx, 2, 0, func(uint64, *messages.TradeBatch) error { return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(ce.Key, "wal/shard=2/seq=5") {
		t.Fatalf("replay of the corrupted copy: %v, want a CorruptError naming wal/shard=2/seq=5", err)
	}
	// The original is untouched.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	o := openStore(t, cfg)
	if n := len(replayShard(t, o, 2, 0)); n != 8 {
		t.Fatalf("original: %d records", n)
	}
}

func TestWALTruncate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		for i := range 20 {
			if _, err := s.AppendBatch(ctx, i%2, mkBatch("X", i, 5)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.TruncateWAL(ctx, 0, 5); err == nil {
			t.Fatal("TruncateWAL without a snapshot succeeded")
		}
		if err := s.SaveSnapshot(ctx, 0, 11, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TruncateWAL(ctx, 0, 12); err == nil {
			t.Fatal("TruncateWAL beyond the snapshot succeeded")
		}
		n, err := s.TruncateWAL(ctx, 0, 11)
		if err != nil || n != 6 { // seqs 1,3,5,7,9,11
			t.Fatalf("TruncateWAL: %d, %v", n, err)
		}
		got := replayShard(t, s, 0, 0)
		if len(got) != 4 || got[0].seq != 13 {
			t.Fatalf("after truncation: %d records, first %d", len(got), got[0].seq)
		}
		if n := len(replayShard(t, s, 1, 0)); n != 10 {
			t.Fatalf("shard 1 lost records: %d", n)
		}
		if n, err := s.TruncateWAL(ctx, 0, 11); n != 0 || err != nil {
			t.Fatalf("second TruncateWAL: %d, %v", n, err)
		}
	})
}

func TestWALTruncateLarge(t *testing.T) {
	cfg := testConfig(t, onBadger, "")
	cfg.Durability = DurabilityNone
	s := openStore(t, cfg)
	ctx := context.Background()
	const n = 10_000 // more than one deletion chunk
	for i := range n {
		if _, err := s.AppendBatch(ctx, 4, mkBatch("L", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, 4, n-1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.TruncateWAL(ctx, 4, n-1)
	if err != nil || deleted != n-1 {
		t.Fatalf("TruncateWAL: %d, %v", deleted, err)
	}
	if got := replayShard(t, s, 4, 0); len(got) != 1 || got[0].seq != n {
		t.Fatalf("left: %d records", len(got))
	}
}

// TestWALTornTailAtOpen: damaged records after the last recorded fsync of
// a previous run are truncated when the store opens, with a warning naming
// each key, and their sequence numbers are never reused.
func TestWALTornTailAtOpen(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, onBadger, "")
	s := openStore(t, cfg)
	for i := range 5 {
		if _, err := s.AppendBatch(ctx, 9, mkBatch("O", i, 40)); err != nil {
			t.Fatal(err)
		}
	}
	// What a crash in the middle of the next writes leaves: records past
	// the last fsync whose values are cut short or garbled.
	good := rawGet(t, s, appendWALKey(nil, 9, 5))
	torn6, torn7 := appendWALKey(nil, 9, 6), appendWALKey(nil, 9, 7)
	rawPut(t, s, torn6, good[:7])
	rawPut(t, s, torn7, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.Logger = newLogRecorder().logger()
	s = openStore(t, cfg)
	rec := recorderOf(cfg)
	for _, k := range [][]byte{torn6, torn7} {
		if len(rec.matching("torn WAL tail", formatKey(k))) != 1 {
			t.Fatalf("no warning naming %s at open; log: %v", formatKey(k), rec.matching("WARN"))
		}
	}
	if got := replayShard(t, s, 9, 0); len(got) != 5 {
		t.Fatalf("replayed %d records, want 5", len(got))
	}
	if seq, err := s.AppendBatch(ctx, 9, mkBatch("O", 9, 1)); err != nil || seq != 8 {
		t.Fatalf("next append: seq %d, %v (want 8: torn sequences are not reused)", seq, err)
	}
}

// TestWALAppendAsyncOrder: appends queued by one goroutine commit in queue
// order (sequence order = AppendBatchAsync order), whatever order the
// caller waits in; Wait is idempotent; write errors arrive through Wait.
func TestWALAppendAsyncOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		f := &switchFault{op: FaultWrite, err: errInjected}
		cfg := testConfig(t, kind, "")
		cfg.Faults = f
		s := openStore(t, cfg)
		ctx := context.Background()
		const n = 200
		pending := make([]*Append, n)
		for i := range n {
			a, err := s.AppendBatchAsync(ctx, i%7, mkBatch("A", i, 1+i%30))
			if err != nil {
				t.Fatal(err)
			}
			pending[i] = a
		}
		for i := n - 1; i >= 0; i-- {
			seq, err := pending[i].Wait()
			if err != nil || seq != uint64(i+1) {
				t.Fatalf("append %d: seq %d, %v (want %d)", i, seq, err, i+1)
			}
			if again, err := pending[i].Wait(); again != seq || err != nil {
				t.Fatalf("second Wait: %d, %v", again, err)
			}
		}
		// Each shard's log holds exactly its appends, in queue order.
		total := 0
		for shard := range 7 {
			next := shard // the next append index expected in this shard
			err := s.ReplayWAL(ctx, shard, 0, func(seq uint64, tb *messages.TradeBatch) error {
				i := int(seq - 1)
				if i != next || !sameTrades(tb.Trades, mkBatch("A", i, 1+i%30).Trades) {
					t.Errorf("shard %d: seq %d holds the wrong batch (want append %d)", shard, seq, next)
				}
				next += 7
				total++
				return nil
			})
			if err != nil {
				t.Fatalf("replay of shard %d: %v", shard, err)
			}
		}
		if total != n {
			t.Fatalf("replayed %d records, want %d", total, n)
		}
		f.on.Store(true)
		a, err := s.AppendBatchAsync(ctx, 0, mkBatch("A", n, 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Wait(); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errInjected) {
			t.Fatalf("failed async append: %v", err)
		}
	})
}
