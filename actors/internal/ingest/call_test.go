package ingest

import (
	"fmt"
	"testing"
)

// TestIngestCallWakesOnceAfterTheLastReply replays orders in which the
// replies of a request can arrive (two partitions; a partition counts each
// part before it sends it, and sends its summary after its last part, but
// shards may answer before or after any summary) and checks that Wait's
// wake-up comes exactly once, with the last reply, and never before.
func TestIngestCallWakesOnceAfterTheLastReply(t *testing.T) {
	// Events: "p0+" partition 0 counts (and sends) a part, "a0" a shard
	// answers one of partition 0's parts, "s0" partition 0's summary.
	tests := [][]string{
		{"p0+", "p0+", "s0", "p1+", "s1", "a0", "a0", "a1"},
		{"p0+", "a0", "p0+", "a0", "p1+", "a1", "s1", "s0"},              // answers before every summary
		{"p0+", "p1+", "a1", "a0", "s0", "s1"},                           // summaries last
		{"s0", "p1+", "a1", "s1"},                                        // a partition with no parts
		{"s1", "s0"},                                                     // no parts at all
		{"p1+", "p1+", "p1+", "a1", "a1", "s1", "p0+", "a0", "a1", "s0"}, // interleaved
	}
	for i, events := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c := &IngestCall{replies: make(chan partResult, len(events)), done: make(chan struct{}, 1),
				routes: make([]partitionRoute, 2)}
			c.pending.Store(int32(len(c.routes)))
			for k, e := range events {
				switch e[0] {
				case 'p':
					c.addPending()
				case 'a':
					c.arrive(partResult{})
				case 's':
					c.arrive(partResult{summary: true})
				}
				woke := false
				select {
				case <-c.done:
					woke = true
				default:
				}
				if last := k == len(events)-1; woke != last {
					t.Fatalf("after %v: woke %v, want %v", events[:k+1], woke, last)
				}
			}
			if got, want := len(c.replies), len(events)-countEvents(events, 'p'); got != want {
				t.Errorf("%d replies queued, want %d", got, want)
			}
		})
	}
}

// countEvents counts the events of kind b.
func countEvents(events []string, b byte) int {
	n := 0
	for _, e := range events {
		if e[0] == b {
			n++
		}
	}
	return n
}
