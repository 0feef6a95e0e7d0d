package testkit

import (
	"testing"
	"time"
)

// PollInterval is how often Eventually re-checks its condition.
const PollInterval = 5 * time.Millisecond

// Eventually calls cond until it returns nil, every PollInterval, and fails
// the test with cond's last error if it still fails once within has
// passed. cond is always called at least once, and once more after the
// deadline, so a slow machine that only gets round to checking late does
// not fail a condition that holds. The sleep between calls is a polling
// interval, not synchronisation: the verdict depends only on cond.
//
// Eventually calls t.Fatalf, so it must run on the test's goroutine.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if err = cond(); err == nil {
				return
			}
			t.Fatalf("condition not met within %v: %v", within, err)
		}
		time.Sleep(PollInterval)
	}
}
