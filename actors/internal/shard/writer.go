package shard

import (
	"context"
	"errors"
	"fmt"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
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
//   - a Delta's closed bars (putDone): the Delta goes back to the core once
//     stored, or is queued again, with every later one, if the write failed;
//   - a snapshot (snapshotDone): the writer waits for the WAL appends it
//     covers, saves it and truncates the WAL behind it. Since the writer
//     works in order, every closed-bar write queued before the snapshot has
//     finished by then; if one of them failed, the snapshot is refused (the
//     WAL it would delete is the only copy of those bars' trades).
//
// Queries never wait for any of it: an open-bar query answers with the
// closed bars still on their way to the store (see pendingBars).

// ioJob is one write a shard's storage writer waits for: a WAL append
// (part), a closed-bar write (put, by value: the shard's list of writes
// changes meanwhile) or a snapshot to save (snap).
type ioJob struct {
	part  *Part
	isPut bool
	put   putJob
	snap  *snapshotJob
}

// putJob is a closed-bar write for the storage writer.
type putJob struct {
	id uint64
	w  *storage.Write // nil: not queued (the store refused it)
}

// putDone reports a closed-bar write's outcome to the shard.
type putDone struct {
	id  uint64
	err error
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

// errPutFailedBefore refuses a snapshot behind a failed closed-bar write.
var errPutFailedBefore = errors.New("a closed-bar write before it failed (it is retried; the WAL is kept until it succeeds)")

// storageWriter runs h's writes in order until the queue is closed
// (Handle.Close, after the actor tree stopped).
func (h *Handle) storageWriter() {
	// putFailed: a closed-bar write failed since the last snapshot job.
	putFailed := false
	for j := range h.io {
		switch {
		case j.part != nil:
			j.part.WAL.Wait()
			h.Send(&walDurable{part: j.part})
		case j.isPut:
			err := errPutNotQueued
			if j.put.w != nil {
				err = j.put.w.Wait()
			}
			if err != nil {
				putFailed = true
			}
			h.Send(&putDone{id: j.put.id, err: err})
		case j.snap != nil:
			var err error
			if putFailed {
				err = fmt.Errorf("shard %d: snapshot: %w", h.id, errPutFailedBefore)
			} else {
				err = h.saveSnapshot(j.snap)
			}
			putFailed = false
			h.Send(&snapshotDone{job: j.snap, err: err})
		}
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

// pendingPut is a closed-bar write in flight and the Delta it came from.
type pendingPut struct {
	id uint64         // unique per handle: outcomes of an earlier incarnation's writes are told apart
	w  *storage.Write // nil: not queued (the store refused it)
	d  *aggregate.Delta
}

// maxPendingPuts bounds the closed-bar writes of one shard in flight. Past
// it the shard waits for the oldest (the disk cannot keep up with the
// bars; the WAL is behind them, so the producers slow down as well).
const maxPendingPuts = 256

// errPutNotQueued: the store refused to queue a closed-bar write.
var errPutNotQueued = errors.New("actors: closed-bar write not queued")

// queuePut queues d's closed bars on the durable store and hands the write
// to the storage writer; the shard keeps d until the write succeeded. In
// recovery (sync) nothing is handed over: drainPuts waits for them.
func (s *shard) queuePut(d *aggregate.Delta, sync bool) {
	h := s.h
	w, err := h.env.Store.PutKlinesAsync(context.Background(), d.Closed)
	if err != nil {
		w = nil // reported as failed by the writer, and retried
	}
	h.putSeq++
	s.puts = append(s.puts, pendingPut{id: h.putSeq, w: w, d: d})
	if !sync {
		h.io <- ioJob{isPut: true, put: putJob{id: h.putSeq, w: w}}
	}
	if len(s.puts) > maxPendingPuts {
		if sync {
			_ = s.drainPuts() // recovery: a failure shows again at the end of it
		} else {
			s.waitOldestPut()
		}
	}
}

// waitOldestPut waits for the oldest closed-bar write right here (only
// when too many are in flight): its outcome is handled as putDone would.
func (s *shard) waitOldestPut() {
	p := s.puts[0]
	err := errPutNotQueued
	if p.w != nil {
		err = p.w.Wait()
	}
	s.putOutcome(p.id, err)
}

// putOutcome handles a closed-bar write's outcome: the Delta goes back to
// the core, or every write still in flight is queued again, in order (so a
// retried bar never overwrites a newer correction).
func (s *shard) putOutcome(id uint64, err error) {
	h := s.h
	if len(s.puts) == 0 || s.puts[0].id != id {
		if err != nil {
			// A write of an earlier incarnation (or of an earlier round of
			// retries) failed. Its bars are stored again anyway: its record
			// is later than the last snapshot (the writer refuses a
			// snapshot behind a failed write), so the restart redelivered
			// it, and those writes queued after this one. Should the shard
			// restart again, it delivers everything since its snapshot.
			h.deliveredSeq = 0
		}
		return
	}
	if err == nil {
		s.putFails = 0
		s.core.Release(s.puts[0].d)
		s.puts[0] = pendingPut{}
		s.puts = s.puts[1:]
		return
	}
	// Should the shard restart before the retry succeeds, it must deliver
	// again everything since its snapshot.
	h.deliveredSeq = 0
	if s.putFails++; s.putFails == 1 || s.putFails%100 == 0 {
		h.env.Log.Error("storing closed bars failed; will retry", "shard", h.id, "pending", len(s.puts), "err", err)
	}
	old := s.puts
	s.puts = make([]pendingPut, 0, len(old))
	for _, q := range old {
		s.queuePut(q.d, s.recovering)
	}
}

// drainPuts waits for every queued closed-bar write (recovery only),
// retrying failed ones a few times; it returns the last error if the
// store keeps refusing them.
func (s *shard) drainPuts() error {
	for attempt := 0; len(s.puts) > 0; {
		p := s.puts[0]
		err := errPutNotQueued
		if p.w != nil {
			err = p.w.Wait()
		}
		if err == nil {
			s.core.Release(p.d)
			s.puts[0] = pendingPut{}
			s.puts = s.puts[1:]
			continue
		}
		if attempt++; attempt > 3 {
			return fmt.Errorf("shard %d: store closed bars: %w", s.h.id, err)
		}
		old := s.puts
		s.puts = make([]pendingPut, 0, len(old))
		for _, q := range old {
			if q.w != nil {
				q.w.Wait() // FIFO: nothing later may land first
			}
			s.queuePut(q.d, true)
		}
	}
	return nil
}

// pendingBars appends to dst the closed bars of symbol and iv still on
// their way to the store, oldest first: a query merges them over what the
// store holds, so it never waits for the disk.
func (s *shard) pendingBars(dst []messages.Kline, symbol string, iv messages.Interval) []messages.Kline {
	for _, p := range s.puts {
		for i := range p.d.Closed {
			k := &p.d.Closed[i]
			if k.Interval == iv && k.Symbol == symbol {
				dst = append(dst, *k)
			}
		}
	}
	return dst
}

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
