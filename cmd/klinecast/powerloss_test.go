//go:build linux

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/internal/lazyfs"
	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// TestPowerLossSyncLosesNothingAcknowledged runs the real binary with
// --durability sync on a lazyfs mount and cuts the power (kill -9, then
// every write not fsynced is lost) three times: every batch answered 200
// before the cut must survive it.
func TestPowerLossSyncLosesNothingAcknowledged(t *testing.T) {
	testPowerLoss(t, "sync")
}

// TestPowerLossBatchLosesOnlyTheLastInterval is the same with
// --durability batch: a batch acknowledged before a periodic fsync that
// the file system saw after the acknowledgement must survive; later ones
// (the last --sync-interval) may be lost, and the node must restart and
// take them again.
func TestPowerLossBatchLosesOnlyTheLastInterval(t *testing.T) {
	testPowerLoss(t, "batch")
}

// TestPowerLossSyncAcrossValueLogFiles is the sync test with value-log
// files of 1 MiB, so that WAL records fill several between cuts: a file
// that filled up and the new one after it (and its directory entry) must
// hold everything acknowledged. (storage fsyncs the log files itself, not
// through badger's DB.Sync: see badgerBackend.sync.)
func TestPowerLossSyncAcrossValueLogFiles(t *testing.T) {
	testPowerLossTrades(t, 120_000, "sync", "--value-log-file-size", "1048576")
}

func testPowerLoss(t *testing.T, durability string) { testPowerLossTrades(t, 18_000, durability) }

// testPowerLossTrades runs the power-loss drill on trades trades with
// serve's extra flags.
func testPowerLossTrades(t *testing.T, trades int64, durability string, flags ...string) {
	if testing.Short() {
		t.Skip("multi-process power-loss test")
	}
	backing, mnt := t.TempDir(), t.TempDir()
	lfs, err := lazyfs.Mount(backing, mnt)
	if errors.Is(err, lazyfs.ErrUnavailable) {
		t.Skipf("power-loss test needs FUSE: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lfs.Unmount(); err != nil {
			t.Error(err)
		}
	})
	dataDir := filepath.Join(mnt, "data")
	extra := append([]string{"--durability", durability}, flags...)
	if durability == "batch" {
		// Long enough that the batches sent right before a cut are
		// usually still unsynced (the test logs how many were lost).
		extra = append(extra, "--sync-interval", "1s")
	}

	all, bodies, size := crashBatches(t, gen.Config{Symbols: gen.Symbols(6), Trades: trades, Span: 3 * 24 * time.Hour, Seed: 33})
	isWAL := func(name string) bool { return strings.HasSuffix(name, ".mem") }

	const cuts = 3
	per := len(bodies) / (cuts + 1)
	next := 0
	for cut := range cuts {
		n := startCrashNode(t, dataDir, extra...)
		first := next
		// mustSurvive: batches [first, mustSurvive) are acknowledged and,
		// in batch mode, known to be covered by a periodic fsync.
		mustSurvive := first
		for ; next < first+per; next++ {
			if ok, err := n.post(bodies[next], size(next)); err != nil || !ok {
				n.Kill()
				t.Fatalf("batch %d: ok=%v err=%v\n%s", next, ok, err, n.Stderr.String())
			}
			if durability == "sync" {
				mustSurvive = next + 1
			}
			if durability == "batch" && next == first+per/2 {
				// Wait for two fsyncs of the memtable log after this
				// acknowledgement: the second began after it, so it
				// covers every batch acknowledged so far.
				mark := lfs.Fsyncs(isWAL)
				testkit.Eventually(t, time.Minute, func() error {
					if lfs.Fsyncs(isWAL) < mark+2 {
						return errors.New("no periodic fsync of the WAL seen yet")
					}
					return nil
				})
				mustSurvive = next + 1
			}
		}
		files, created := lfs.Pending()
		n.Kill()
		if err := lfs.PowerCut(); err != nil {
			t.Fatal(err)
		}
		t.Logf("cut %d: %d batches acknowledged, %d must survive; %d files had unsynced changes, %d unsynced new files",
			cut, next-first, mustSurvive-first, files, created)

		// The node must come back on what the disk kept. Re-send this
		// run's batches: a batch that survived comes back as duplicates.
		n = startCrashNode(t, dataDir, extra...)
		lost := 0
		for i := first; i < next; i++ {
			res, err := n.postResult(bodies[i])
			if err != nil {
				n.Kill()
				t.Fatalf("re-sending batch %d after the cut: %v\n%s", i, err, n.Stderr.String())
			}
			if res.Duplicates != size(i) {
				if i < mustSurvive {
					n.Kill()
					t.Fatalf("cut %d: batch %d was acknowledged before the cut (%s) but only %d of its %d trades survived\n%s",
						cut, i, durabilityPromise(durability), res.Duplicates, size(i), n.Stderr.String())
				}
				lost++
			}
		}
		t.Logf("cut %d: %d acknowledged batches lost (allowed: the %d sent after the observed fsync)", cut, lost, next-mustSurvive)
		n.stop()
	}

	n := startCrashNode(t, dataDir, extra...)
	defer n.stop()
	for ; next < len(bodies); next++ {
		if ok, err := n.post(bodies[next], size(next)); err != nil || !ok {
			t.Fatalf("final run, batch %d: ok=%v err=%v\n%s", next, ok, err, n.Stderr.String())
		}
	}
	requireHTTPMatchesOffline(t, n.URL, all, []messages.Interval{messages.Interval1m, messages.Interval1h, messages.Interval1d})
	if _, err := os.Stat(dataDir); err != nil {
		t.Fatal(err)
	}
}

func durabilityPromise(d string) string {
	if d == "sync" {
		return "--durability sync: fsynced before the answer"
	}
	return "--durability batch: a periodic fsync followed its answer"
}
