//go:build linux

package pinned

import (
	"runtime"
	"slices"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// dispatchThreadCPUs returns the calling thread's affinity mask.
func dispatchThreadCPUs(tb testing.TB) []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		tb.Errorf("SchedGetaffinity: %v", err)
		return nil
	}
	var cpus []int
	for id := range pinnedMaxCPU {
		if set.IsSet(id) {
			cpus = append(cpus, id)
		}
	}
	return cpus
}

// dispatchAffinityPermitted reports whether this process may set a thread's
// affinity, probing on a locked thread that is discarded afterwards.
func dispatchAffinityPermitted() bool {
	res := make(chan bool)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		var set unix.CPUSet
		res <- unix.SchedGetaffinity(0, &set) == nil && unix.SchedSetaffinity(0, &set) == nil
	}()
	return <-res
}

// TestDispatchShardThreadAndAffinity sends rounds of one message per shard
// actor, waiting for each round, so every message is a fresh mailbox turn.
// Inside Receive it records the OS thread id and affinity mask: every message
// of shard i runs on one thread, shards of the same worker share it, workers
// have distinct threads, and where affinity is permitted each thread's mask
// is exactly its worker's CPU.
func TestDispatchShardThreadAndAffinity(t *testing.T) {
	allowed, err := pinnedAllowedCPUs()
	if err != nil {
		t.Fatalf("pinnedAllowedCPUs: %v", err)
	}
	reversed := slices.Clone(allowed)
	slices.Reverse(reversed)
	permitted := dispatchAffinityPermitted()

	for name, cfg := range map[string]Config{
		"mask":     {},
		"reversed": {CPUs: reversed},
	} {
		t.Run(name, func(t *testing.T) {
			pool := dispatchNewPool(t, cfg)
			stats := pool.Stats()
			for i, st := range stats {
				want := allowed[i]
				if cfg.CPUs != nil {
					want = cfg.CPUs[i]
				}
				if st.Worker != i || st.CPU != want {
					t.Errorf("worker %d: Stats %+v, want CPU %d", i, st, want)
				}
				if permitted && !st.Pinned {
					t.Errorf("worker %d not pinned although affinity is permitted", i)
				}
			}

			const rounds = 40
			shards := 2*pool.Workers() + 1
			tids := make([][]int, shards) // each owned by its shard actor
			var round sync.WaitGroup
			system := dispatchNewSystem()
			pids := dispatchSpawnShards(t, system, pool, shards, 8, func(shard int, m dispatchSeq) {
				tids[shard] = append(tids[shard], unix.Gettid())
				if w := pool.WorkerOf(shard); stats[w].Pinned {
					if got := dispatchThreadCPUs(t); !slices.Equal(got, []int{stats[w].CPU}) {
						t.Errorf("shard %d (worker %d) msg %d: thread affinity %v, want [%d]",
							shard, w, m.seq, got, stats[w].CPU)
					}
				}
				round.Done()
			})
			defer dispatchStopAll(t, system, pids)
			for r := range rounds {
				round.Add(shards)
				for _, pid := range pids {
					system.Root.Send(pid, dispatchSeq{seq: r})
				}
				round.Wait()
			}

			workerTID := make(map[int]int) // worker → tid
			tidWorker := make(map[int]int) // tid → worker
			for shard, ts := range tids {
				if len(ts) != rounds {
					t.Fatalf("shard %d: %d messages, want %d", shard, len(ts), rounds)
				}
				for i, tid := range ts {
					if tid != ts[0] {
						t.Errorf("shard %d: message %d ran on thread %d, message 0 on %d", shard, i, tid, ts[0])
					}
				}
				w := pool.WorkerOf(shard)
				if prev, ok := workerTID[w]; ok && prev != ts[0] {
					t.Errorf("worker %d: shard %d on thread %d, an earlier shard on %d", w, shard, ts[0], prev)
				}
				workerTID[w] = ts[0]
				if prev, ok := tidWorker[ts[0]]; ok && prev != w {
					t.Errorf("thread %d serves workers %d and %d", ts[0], prev, w)
				}
				tidWorker[ts[0]] = w
			}
			if len(workerTID) != pool.Workers() {
				t.Errorf("%d workers ran shards, want %d", len(workerTID), pool.Workers())
			}
		})
	}
}

// TestPinnedPinThreadRestores pins a locked thread and restores it: the
// thread must get exactly its previous mask back, since a worker hands its
// thread back to the runtime on exit and any goroutine may run on it then.
func TestPinnedPinThreadRestores(t *testing.T) {
	if !dispatchAffinityPermitted() {
		t.Skip("setting thread affinity is not permitted here")
	}
	allowed, err := pinnedAllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with us
		before := dispatchThreadCPUs(t)
		cpu := allowed[len(allowed)-1]
		restore, err := pinnedPinThread(cpu)
		if err != nil {
			t.Errorf("pinnedPinThread(%d): %v", cpu, err)
			return
		}
		if got := dispatchThreadCPUs(t); !slices.Equal(got, []int{cpu}) {
			t.Errorf("pinned mask %v, want [%d]", got, cpu)
		}
		if err := restore(); err != nil {
			t.Errorf("restore: %v", err)
		}
		if got := dispatchThreadCPUs(t); !slices.Equal(got, before) {
			t.Errorf("restored mask %v, want %v", got, before)
		}
	}()
	<-done
}
