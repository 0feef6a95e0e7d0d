package storage

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/klinecast/klinecast/messages"
)

// AppendBatch appends tb (its trades and clock ticks) to shard's WAL and
// returns its sequence number,
// once the record is as durable as Config.Durability promises (sync: fsynced,
// shared with concurrent appends; batch: written, fsynced within
// SyncInterval; none: written). On success tb.Seq is set to the sequence.
//
// Sequence numbers are global across shards, start at 1, strictly increase
// in commit order and never repeat, even after restarts and truncation;
// they are dense unless an append failed.
//
// Errors: ErrUnavailable (disk below the reserve, write or fsync failed: the
// batch is not acknowledged and the caller answers 503), ErrClosed, a
// context error if ctx ended while waiting for queue space (the batch was
// not written), or an argument error (bad shard, oversized batch, or a
// batch with neither trades nor ticks).
// ctx only bounds the wait for queue space: once queued, the append runs
// to completion. AppendBatch does not retain tb.
func (s *Store) AppendBatch(ctx context.Context, shard int, tb *messages.TradeBatch) (uint64, error) {
	a, err := s.AppendBatchAsync(ctx, shard, tb)
	if err != nil {
		return 0, err
	}
	seq, err := a.Wait()
	if err != nil {
		return 0, err
	}
	tb.Seq = seq
	return seq, nil
}

// Append is a WAL append in flight, returned by AppendBatchAsync.
type Append struct {
	s     *Store
	o     *op
	shard int
	once  sync.Once
	seq   uint64
	err   error
}

// AppendBatchAsync queues tb for shard's WAL and returns without waiting
// for the write: appends are committed in the order AppendBatchAsync
// returned, so a single caller (the node's ingest router) fixes the WAL
// order, and concurrent appends still share group commits and fsyncs.
// Wait reports the sequence number once the record is as durable as
// Config.Durability promises. The errors are those of AppendBatch, split
// between the two calls: argument, closed and queue-wait errors here,
// write and fsync errors from Wait. tb is not retained.
func (s *Store) AppendBatchAsync(ctx context.Context, shard int, tb *messages.TradeBatch) (*Append, error) {
	sh, err := checkShard(shard)
	if err != nil {
		return nil, err
	}
	if len(tb.Trades) == 0 && tb.TickBefore == 0 && tb.TickAfter == 0 {
		return nil, fmt.Errorf("storage: shard %d: empty trade batch (no trades, no ticks)", shard)
	}
	o := s.getOp()
	o.kind = opAppend
	o.shard = sh
	o.trades = len(tb.Trades)
	// Every field is stored, except that the payload's seq is written as
	// 0: it is assigned later, and the key's seq is authoritative.
	plain := *tb
	plain.Seq = 0
	o.buf = beginRecord(o.buf[:0], kindWAL)
	o.buf = messages.AppendTradeBatchMsgpack(o.buf, &plain)
	if n := len(o.buf) - headerLen; n > s.maxRecord {
		s.putOp(o)
		return nil, fmt.Errorf("storage: shard %d: batch of %d trades encodes to %d bytes, above the %d-byte record limit", shard, len(tb.Trades), n, s.maxRecord)
	}
	o.crc = finishRecord(o.buf)
	if !s.gate.enter() {
		s.putOp(o)
		return nil, fmt.Errorf("storage: shard %d: append: %w", shard, ErrClosed)
	}
	err = s.enqueue(ctx, o)
	s.gate.exit()
	if err != nil {
		s.putOp(o)
		return nil, fmt.Errorf("storage: shard %d: append: %w", shard, err)
	}
	return &Append{s: s, o: o, shard: shard}, nil
}

// Wait blocks until the append is committed (and fsynced when the
// durability mode asks for it) and returns its sequence number. It may be
// called any number of times, from any goroutines.
func (a *Append) Wait() (uint64, error) {
	a.once.Do(func() {
		<-a.o.done
		a.seq, a.err = a.o.seq, a.o.err
		if a.err != nil {
			a.err = fmt.Errorf("storage: shard %d: append: %w", a.shard, a.err)
		}
		a.s.putOp(a.o)
		a.o = nil
	})
	return a.seq, a.err
}

// ReplayFunc receives one WAL record. tb, its Trades slice and the backing
// array are reused for the next record: fn must copy what it keeps. A
// non-nil error stops the replay and is returned wrapped. fn runs on the
// caller's goroutine and may call other Store methods.
type ReplayFunc func(seq uint64, tb *messages.TradeBatch) error

// ReplayWAL calls fn for every record of shard's WAL with a sequence above
// afterSeq (normally the shard snapshot's covered sequence), in increasing
// sequence order.
//
// Damaged records are handled per shard log (doc.go, "Recovery"): corrupt
// records at the end of the log are a torn tail, deleted with a warning
// naming each key; corrupt records followed by a good one are mid-log
// corruption: the replay fails with an error wrapping ErrCorrupt (a
// *CorruptError naming the first bad key), unless Config.Repair, in which
// case they are deleted with a warning and the replay goes on. fn has been
// called for every good record before the failure.
func (s *Store) ReplayWAL(ctx context.Context, shard int, afterSeq uint64, fn ReplayFunc) error {
	sh, err := checkShard(shard)
	if err != nil {
		return err
	}
	return s.read(func() error {
		c := s.newWALCursor(sh, afterSeq)
		defer c.close()
		for n := 0; ; n++ {
			if n&63 == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("storage: replay of shard %d: %w", shard, err)
				}
			}
			ok, err := c.advance()
			if err != nil || !ok {
				return err
			}
			if err := fn(c.seq, &c.tb); err != nil {
				return fmt.Errorf("storage: replay of shard %d at seq %d: %w", shard, c.seq, err)
			}
		}
	})
}

// walCursor walks one shard's WAL, positioned on good records only.
type walCursor struct {
	s         *Store
	shard     uint16
	it        kvIter
	fresh     bool // just positioned by seek: advance must not step first
	exhausted bool
	tb        messages.TradeBatch
	seq       uint64

	bad     [][]byte // corrupt records since the last good one
	reasons []error
}

func (s *Store) newWALCursor(shard uint16, afterSeq uint64) *walCursor {
	c := &walCursor{
		s:     s,
		shard: shard,
		it:    s.be.iter(iterOptions{prefix: walShardPrefix(shard)}),
	}
	if afterSeq == math.MaxUint64 {
		c.exhausted = true // nothing can follow
	} else {
		c.it.seek(appendWALKey(nil, shard, afterSeq+1))
	}
	c.fresh = true
	return c
}

func (c *walCursor) close() { c.it.close() }

// advance moves to the next good record (the first one on the first call)
// and reports whether there is one.
func (c *walCursor) advance() (bool, error) {
	if c.exhausted {
		return false, nil
	}
	if !c.fresh {
		c.it.next()
	}
	c.fresh = false
	for ; c.it.valid(); c.it.next() {
		key := c.it.key()
		var derr error
		err := c.it.value(func(v []byte) error {
			_, c.seq, derr = decodeWALRecord(key, v, &c.tb)
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("storage: reading %s: %w", formatKey(key), err)
		}
		if derr != nil {
			c.bad = append(c.bad, bytes.Clone(key))
			c.reasons = append(c.reasons, derr)
			continue
		}
		if len(c.bad) > 0 {
			where := "before the good record " + formatKey(key)
			if err := c.s.walCorruption(c.shard, c.bad, c.reasons, where); err != nil {
				return false, err
			}
			c.bad, c.reasons = c.bad[:0], c.reasons[:0]
		}
		return true, nil
	}
	if len(c.bad) == 0 {
		return false, nil
	}
	defer func() { c.bad, c.reasons = c.bad[:0], c.reasons[:0] }()
	// A torn write can only have hit records that were never fsynced: a
	// damaged record at or below the durable sequence is corruption even
	// at the end of the log.
	durable := c.s.st.durableSeq.Load()
	for _, k := range c.bad {
		if _, seq, _ := parseWALKey(k); seq <= durable {
			where := fmt.Sprintf("at the end of the log, at or below the last fsynced sequence %d (so not a torn write)", durable)
			return false, c.s.walCorruption(c.shard, c.bad, c.reasons, where)
		}
	}
	return false, c.s.truncateTornTail(c.shard, c.bad, c.reasons)
}

// truncateTornTails runs at Open after an unclean stop: for every shard it
// walks back from the end of the log over records newer than durable (the
// last sequence recorded as fsynced) and deletes those that are damaged, up
// to the first good one. Older or mid-log damage is left for ReplayWAL to
// report.
func (s *Store) truncateTornTails(ctx context.Context, durable uint64) error {
	shards, err := s.walShards(ctx)
	if err != nil {
		return err
	}
	var tb messages.TradeBatch
	for _, sh := range shards {
		var keys [][]byte
		var reasons []error
		it := s.be.iter(iterOptions{prefix: walShardPrefix(sh), reverse: true})
		for it.seek(appendWALKey(nil, sh, math.MaxUint64)); it.valid(); it.next() {
			key := it.key()
			_, seq, _ := parseWALKey(key)
			if seq <= durable {
				break
			}
			var derr error
			if err := it.value(func(v []byte) error {
				_, _, derr = decodeWALRecord(key, v, &tb)
				return nil
			}); err != nil {
				it.close()
				return fmt.Errorf("storage: reading %s: %w", formatKey(key), err)
			}
			if derr == nil {
				break
			}
			keys = append(keys, bytes.Clone(key))
			reasons = append(reasons, derr)
		}
		it.close()
		if len(keys) == 0 {
			continue
		}
		for i, k := range keys {
			s.log.Warn("truncating torn WAL tail: deleting a damaged record written after the last fsync before an unclean stop",
				"shard", sh, "key", formatKey(k), "err", reasons[i])
		}
		dels := make([]kvOp, len(keys))
		for i, k := range keys {
			dels[i] = kvOp{key: k, del: true}
		}
		if err := s.be.write(dels); err != nil {
			return fmt.Errorf("%w: shard %d: truncating torn WAL tail: %w", ErrUnavailable, sh, err)
		}
	}
	return nil
}

// truncateTornTail deletes the corrupt records at the end of a shard's
// log: what a crash in the middle of a write leaves behind.
func (s *Store) truncateTornTail(shard uint16, keys [][]byte, reasons []error) error {
	for i, k := range keys {
		s.log.Warn("truncating torn WAL tail: deleting a corrupt record after the last good one",
			"shard", shard, "key", formatKey(k), "err", reasons[i])
	}
	if err := s.deleteKeys(keys); err != nil {
		return fmt.Errorf("storage: shard %d: truncating torn WAL tail: %w", shard, err)
	}
	return nil
}

// walCorruption handles corrupt records that cannot be a torn tail: an
// error, or with Config.Repair their deletion.
func (s *Store) walCorruption(shard uint16, keys [][]byte, reasons []error, where string) error {
	if !s.cfg.Repair {
		return fmt.Errorf("storage: WAL of shard %d is corrupt: %d bad record(s) %s; restart with --repair to delete them (their trades are lost): %w",
			shard, len(keys), where, reasons[0])
	}
	for i, k := range keys {
		s.log.Warn("repair: deleting a corrupt WAL record from the middle of the log; its trades are lost",
			"shard", shard, "key", formatKey(k), "err", reasons[i])
	}
	if err := s.deleteKeys(keys); err != nil {
		return fmt.Errorf("storage: shard %d: repairing WAL: %w", shard, err)
	}
	return nil
}

// deleteKeys deletes keys durably through the committer (from inside a
// read: nested calls are fine, see gate).
func (s *Store) deleteKeys(keys [][]byte) error {
	kvs := make([]kvOp, len(keys))
	for i, k := range keys {
		kvs[i] = kvOp{key: k, del: true}
	}
	return s.write(context.Background(), kvs, spaceAny, true, nil)
}

// write runs one opWrite through the committer.
func (s *Store) write(ctx context.Context, kvs []kvOp, space spaceClass, sync bool, check func(lastSeq uint64) error) error {
	o := s.getOp()
	o.kind = opWrite
	o.kvs = kvs
	o.space = space
	o.sync = sync
	o.check = check
	err := s.do(ctx, o)
	s.putOp(o)
	return err
}

// syncUnlessNone is the fsync policy of klines and deletions: fsynced
// before returning unless the node runs with DurabilityNone.
func (s *Store) syncUnlessNone() bool { return s.cfg.Durability != DurabilityNone }

// TruncateWAL deletes shard's WAL records with sequence <= uptoSeq and
// returns how many it deleted. uptoSeq must not exceed the covered sequence
// of the shard's saved snapshot (SaveSnapshot first): records no snapshot
// covers are never deleted. A truncation lost in a crash is harmless:
// replay starts after the snapshot's covered sequence anyway.
func (s *Store) TruncateWAL(ctx context.Context, shard int, uptoSeq uint64) (int, error) {
	sh, err := checkShard(shard)
	if err != nil {
		return 0, err
	}
	covered, _, ok, err := s.snapshotHeader(sh)
	if err != nil {
		return 0, err
	}
	if !ok || uptoSeq > covered {
		return 0, fmt.Errorf("storage: TruncateWAL(shard %d, %d): the shard's snapshot covers up to seq %d (present: %t); save a snapshot first", shard, uptoSeq, covered, ok)
	}
	const chunk = 4096
	deleted := 0
	for {
		var keys []kvOp
		err := s.read(func() error {
			it := s.be.iter(iterOptions{prefix: walShardPrefix(sh)})
			defer it.close()
			for it.seek(walShardPrefix(sh)); it.valid() && len(keys) < chunk; it.next() {
				_, seq, ok := parseWALKey(it.key())
				if !ok || seq > uptoSeq {
					break
				}
				keys = append(keys, kvOp{key: bytes.Clone(it.key()), del: true})
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		if len(keys) == 0 {
			return deleted, nil
		}
		if err := s.write(ctx, keys, spaceAny, s.syncUnlessNone(), nil); err != nil {
			return deleted, fmt.Errorf("storage: shard %d: truncating WAL: %w", shard, err)
		}
		deleted += len(keys)
		if len(keys) < chunk {
			return deleted, nil
		}
	}
}

// walShards lists the shards that have WAL records, by skip-scanning the
// first key of each.
func (s *Store) walShards(ctx context.Context) ([]uint16, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixWAL}})
	defer it.close()
	var out []uint16
	for it.seek([]byte{prefixWAL}); it.valid(); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sh, _, ok := parseWALKey(it.key())
		if !ok {
			return nil, corruptf(it.key(), "malformed WAL key")
		}
		out = append(out, sh)
		if sh == MaxShard {
			break
		}
		it.seek(walShardPrefix(sh + 1))
	}
	return out, nil
}

// walBounds returns the first and last sequence in shard's WAL (0, 0 when
// empty).
func (s *Store) walBounds(sh uint16) (first, last uint64, err error) {
	fwd := s.be.iter(iterOptions{prefix: walShardPrefix(sh)})
	fwd.seek(walShardPrefix(sh))
	if fwd.valid() {
		_, first, _ = parseWALKey(fwd.key())
	}
	fwd.close()
	rev := s.be.iter(iterOptions{prefix: walShardPrefix(sh), reverse: true})
	rev.seek(appendWALKey(nil, sh, math.MaxUint64))
	if rev.valid() {
		_, last, _ = parseWALKey(rev.key())
	}
	rev.close()
	return first, last, nil
}
