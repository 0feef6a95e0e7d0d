package shard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/klinecast/klinecast/storage"
)

// The storage writer
//
// A shard runs on a pinned worker shared with other shards and a router
// partition, so it never waits for the disk: it hands every write it must
// see finished to its storage writer, a goroutine of its own (one per
// shard, started with the actor and outliving its restarts), and learns
// the outcome as a message, in the order it queued the writes:
//
//   - a part's WAL append (walDurable): the part is applied once durable;
//   - a snapshot (snapshotDone): the writer waits for the WAL appends it
//     covers, stores the bar chunks the shard sealed and the heads it
//     changed (ShardBars.WriteDirty), saves the snapshot and truncates the
//     WAL behind it. If the chunks cannot be stored, the snapshot is not
//     saved: the WAL it would delete is the only copy of those bars' trades.
//     After a saved snapshot (and at most once a minute) the writer
//     deletes the bars older than the node's retention
//     (ShardBars.EnforceRetention); a failure there is only logged.
//
// Closed bars go to the shard's ShardBars in memory as the core emits them
// (flush): queries read them there and from the store, and never wait for
// the disk.

// ioJob is one write a shard's storage writer waits for: a WAL append
// (part) or a snapshot to save (snap).
type ioJob struct {
	part *Part
	snap *snapshotJob
}

// snapshotJob is a shard state to save, with the WAL it covers.
type snapshotJob struct {
	blob    []byte
	walSeq  uint64          // the last WAL record replayed at start
	lastWAL *storage.Append // the last part applied (nil: none since start)
	done    []chan<- error  // checkpoint requests answered by this job
	covered uint64          // set by the writer: the WAL records it covers
}

// snapshotDone reports a snapshot job's outcome to the shard.
type snapshotDone struct {
	job *snapshotJob
	err error
}

// storageWriter runs h's writes in order until the queue is closed
// (Handle.Close, after the actor tree stopped).
func (h *Handle) storageWriter() {
	for j := range h.io {
		switch {
		case j.part != nil:
			j.part.WAL.Wait()
			h.Send(&walDurable{part: j.part})
		case j.snap != nil:
			err := h.saveSnapshot(j.snap)
			h.Send(&snapshotDone{job: j.snap, err: err})
			if err == nil {
				h.enforceRetention(time.Now())
			}
		}
	}
}

// RetentionEvery is the least time between two retention runs of a shard.
const RetentionEvery = time.Minute

// enforceRetention deletes the shard's bars older than Env.Retention, at
// most every RetentionEvery: it runs after a successful snapshot (so on
// the snapshot's schedule), once the shard was told the snapshot is
// done. A failure is logged and retried at the next run; it never fails
// the snapshot.
func (h *Handle) enforceRetention(now time.Time) {
	r := h.env.Retention
	if len(r) == 0 || (!h.lastRetention.IsZero() && now.Sub(h.lastRetention) < RetentionEvery) {
		return
	}
	h.lastRetention = now
	n, err := h.bars.EnforceRetention(context.Background(), r)
	switch {
	case errors.Is(err, storage.ErrClosed):
		h.env.Log.Debug("retention stopped: storage closed", "shard", h.id, "chunks_deleted", n)
	case err != nil:
		h.env.Log.Warn("retention failed; retried after the next snapshot", "shard", h.id, "chunks_deleted", n, "err", err)
	case n > 0:
		h.env.Log.Debug("retention deleted old bar chunks", "shard", h.id, "chunks_deleted", n,
			"retention", r.String(), "took", time.Since(now).Round(time.Millisecond))
	}
}

// saveSnapshot saves a snapshot covering every WAL record its shard had
// applied, then deletes those records.
func (h *Handle) saveSnapshot(j *snapshotJob) error {
	h.snapMu.Lock()
	defer h.snapMu.Unlock()
	st := h.env.Store
	covered := j.walSeq
	if w := j.lastWAL; w != nil {
		// The shard's appends commit in order, so the last applied one's
		// sequence covers all before it.
		if seq, err := w.Wait(); err == nil {
			covered = max(covered, seq)
		}
	}
	if covered == 0 {
		prev, _, ok, err := st.LoadSnapshot(h.id)
		if err != nil {
			return fmt.Errorf("shard %d: snapshot: %w", h.id, err)
		}
		if ok {
			covered = prev // nothing new in the WAL; keep the coverage
		}
	}
	ctx := context.Background()
	// The bars the snapshot's state produced are in the WAL it deletes:
	// store them first. (WriteDirty stores what the bars hold now, which
	// is at least what they held when the state was taken: bars of parts
	// applied since are stored early, and a replay puts them again.)
	if _, err := h.bars.WriteDirty(ctx); err != nil {
		return fmt.Errorf("shard %d: snapshot: store bar chunks: %w", h.id, err)
	}
	if err := st.SaveSnapshot(ctx, h.id, covered, j.blob); err != nil {
		return fmt.Errorf("shard %d: save snapshot: %w", h.id, err)
	}
	j.covered = covered
	if covered > 0 {
		if _, err := st.TruncateWAL(ctx, h.id, covered); err != nil {
			return fmt.Errorf("shard %d: truncate WAL: %w", h.id, err)
		}
	}
	return nil
}

// maxPendingChunkBytes bounds the sealed chunks a durable shard keeps in
// memory between snapshots: past it the shard snapshots early, which
// stores them (64 shards: at most 64 MiB of chunks waiting node-wide).
const maxPendingChunkBytes = 1 << 20

// requestSnapshot starts a snapshot (durable nodes), answered on done once
// saved. While one is being saved, later requests wait for the next one:
// it starts when the current one is done, so each request is answered by a
// snapshot taken after it arrived.
func (s *shard) requestSnapshot(done chan<- error) {
	h := s.h
	if h.snapshotting {
		h.snapshotWaiters = append(h.snapshotWaiters, done)
		return
	}
	s.startSnapshot([]chan<- error{done})
}

// startSnapshot takes the core's state and hands it to the storage writer,
// for the requests in done.
func (s *shard) startSnapshot(done []chan<- error) {
	h := s.h
	fail := func(err error) {
		for _, d := range done {
			d <- err
		}
	}
	if err := s.flush(true); err != nil {
		fail(err)
		return
	}
	state := s.core.Snapshot()
	blob, err := encodeSnapshot(&state, h.clock)
	if err != nil {
		fail(fmt.Errorf("shard %d: %w", h.id, err))
		return
	}
	h.snapshotting = true
	h.io <- ioJob{snap: &snapshotJob{blob: blob, walSeq: h.walSeq, lastWAL: h.lastWAL, done: done}}
}

// snapshotFinished answers a saved (or failed) snapshot's requests and
// starts the next one if more arrived meanwhile.
func (s *shard) snapshotFinished(m *snapshotDone) {
	h := s.h
	if m.err == nil && m.job.covered > 0 {
		h.deliveredSeq = max(h.deliveredSeq, m.job.covered)
	}
	for _, done := range m.job.done {
		done <- m.err
	}
	h.snapshotting = false
	if waiters := h.snapshotWaiters; len(waiters) > 0 {
		h.snapshotWaiters = nil
		s.startSnapshot(waiters)
	}
}
