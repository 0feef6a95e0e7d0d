package testkit

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// Allocs returns the exact number of heap allocations made while f is
// called runs times, after one warm-up call that is not counted (it may
// grow buffers that later calls reuse).
//
// It is runtime.MemStats.Mallocs read before and after the runs, with
// GOMAXPROCS set to 1 and the garbage collector off for the measurement
// (both restored afterwards), as testing.AllocsPerRun does, but without
// dividing. The GC is off so that a collection cannot empty a sync.Pool
// mid-measurement (the pooled objects would then be allocated again).
// testing.AllocsPerRun returns the mean rounded down, so a path
// that allocates in 9,999 of 10,000 runs reads as 0, while Allocs reports
// 9,999.
//
// Limits: Mallocs counts every goroutine of the process, not just f's.
// GOMAXPROCS(1) keeps other goroutines from running in parallel but not
// from being scheduled when f blocks or is preempted, so a count is exact
// only if nothing else in the process allocates meanwhile. Use it in
// tests that start no goroutines of their own (or whose goroutines are
// idle: blocked on a channel, a lock or I/O they will not get during the
// measurement), never from parallel tests (t.Parallel) or with background
// workers running (a badger Store's compactors, a ticking node), and
// never around code that blocks waiting for another goroutine. The
// runtime's own allocations (a finalizer, a timer) would also be counted;
// with the GC off none are expected.
func Allocs(f func(), runs int) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	f() // warm-up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

// RequireNoAllocs fails the test if f allocates at all in runs calls
// (after a warm-up call), naming the exact count. See Allocs for when a
// count is exact.
//
// Under the race detector it skips the test: that runtime allocates on its
// own, and the plain run counts exactly.
func RequireNoAllocs(t testing.TB, what string, runs int, f func()) {
	t.Helper()
	if RaceEnabled {
		t.Skipf("%s: allocation counts are meaningless under the race detector", what)
	}
	if n := Allocs(f, runs); n != 0 {
		t.Errorf("%s: %d allocations in %d runs, want 0", what, n, runs)
	}
}
