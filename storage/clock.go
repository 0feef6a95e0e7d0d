package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The node's clock
//
// A shard's snapshot holds the clock it had reached, but a shard that no
// recent request touched learns the clock only from ticks, which are not
// in its WAL: after a crash between two snapshots it would restart behind
// the others, and a klines query would miss the bars the clock had closed
// (event clock: until the next request moves it). So the node records its
// complete clock (the time up to which every request was applied) here,
// and restarts from at least this one. RecordClock is cheap (an atomic);
// a background loop writes the newest value every clockInterval, so a
// crash loses at most that much of it. The record is an optimisation of
// exactness after a crash, never of safety: a clock that is too old only
// delays bars the next trade or tick closes anyway.

// metaClockKey holds the node's complete clock (unix ms), a u64 meta
// record.
var metaClockKey = []byte{prefixMeta, 'c', 'l', 'o', 'c', 'k'}

// clockInterval is how often a recorded clock is written.
const clockInterval = 50 * time.Millisecond

// RecordClock notes the node's complete clock (unix ms); it is written in
// the background. Older values than the newest recorded are ignored.
func (s *Store) RecordClock(t int64) {
	for {
		old := s.clock.Load()
		if t <= old || s.clock.CompareAndSwap(old, t) {
			return
		}
	}
}

// Clock returns the complete clock recorded in the store (0: none).
func (s *Store) Clock() (int64, error) {
	var t int64
	err := s.read(func() error {
		err := s.be.get(metaClockKey, func(v []byte) error {
			u, err := decodeU64Record(metaClockKey, v, kindMeta)
			t = int64(u)
			return err
		})
		if errors.Is(err, errNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("storage: read the recorded clock: %w", err)
	}
	return t, nil
}

// clockLoop writes the newest recorded clock every clockInterval until the
// Store closes (a node closing cleanly snapshots its shards, whose
// snapshots hold the clock).
func (s *Store) clockLoop() {
	defer s.bg.Done()
	t := time.NewTicker(clockInterval)
	defer t.Stop()
	var written int64
	write := func() {
		c := s.clock.Load()
		if c <= written {
			return
		}
		rec := u64Record(kindMeta, metaClockKey, uint64(c))
		if err := s.write(context.Background(), []kvOp{{key: metaClockKey, val: rec}}, spaceAny, false, nil); err != nil {
			if !errors.Is(err, ErrClosed) {
				s.log.Warn("recording the clock failed (a restart may start behind it)", "err", err)
			}
			return
		}
		written = c
	}
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			write()
		}
	}
}
