package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// SaveSnapshot stores shard's snapshot, replacing the previous one, in one
// atomic, fsynced write (in every Durability mode). blob is opaque (the
// actor layer encodes the shard state) and is copied; coveredSeq is the
// last WAL sequence whose effects the blob includes. The covered sequence
// of a shard never goes backwards and cannot exceed the last assigned
// sequence: both are argument errors. After SaveSnapshot returns, the
// caller may TruncateWAL(shard, coveredSeq).
//
// The bars the snapshot's trades closed must be stored
// (ShardBars.WriteDirty) before the snapshot is saved; the open bars
// belong in the blob.
func (s *Store) SaveSnapshot(ctx context.Context, shard int, coveredSeq uint64, blob []byte) error {
	sh, err := checkShard(shard)
	if err != nil {
		return err
	}
	if len(blob) > s.maxRecord-snapshotHeaderLen {
		return fmt.Errorf("storage: shard %d: snapshot of %d bytes above the %d-byte limit", shard, len(blob), s.maxRecord-snapshotHeaderLen)
	}
	key := snapshotKey(sh)
	val := make([]byte, 0, headerLen+snapshotHeaderLen+len(blob))
	val = beginRecord(val, kindSnapshot)
	val = binary.BigEndian.AppendUint64(val, coveredSeq)
	val = binary.BigEndian.AppendUint64(val, uint64(time.Now().UnixMilli()))
	val = append(val, blob...)
	sealRecord(val, finishRecord(val), key)
	check := func(lastSeq uint64) error {
		if coveredSeq > lastSeq {
			return fmt.Errorf("storage: shard %d: snapshot covers seq %d, but the last assigned seq is %d", shard, coveredSeq, lastSeq)
		}
		prev, _, ok, err := s.snapshotHeaderRaw(sh)
		if err != nil {
			return err
		}
		if ok && coveredSeq < prev {
			return fmt.Errorf("storage: shard %d: snapshot covers seq %d, older than the stored one (%d)", shard, coveredSeq, prev)
		}
		return nil
	}
	if err := s.write(ctx, []kvOp{{key: key, val: val}}, spaceHalf, true, check); err != nil {
		return fmt.Errorf("storage: shard %d: saving snapshot: %w", shard, err)
	}
	return nil
}

// LoadSnapshot returns shard's latest snapshot: its covered sequence and a
// copy of its blob. ok is false when the shard has none. A snapshot that
// fails its checksum is an error wrapping ErrCorrupt.
func (s *Store) LoadSnapshot(shard int) (coveredSeq uint64, blob []byte, ok bool, err error) {
	sh, err := checkShard(shard)
	if err != nil {
		return 0, nil, false, err
	}
	key := snapshotKey(sh)
	err = s.read(func() error {
		return s.be.get(key, func(v []byte) error {
			covered, _, b, err := decodeSnapshotRecord(key, v)
			if err != nil {
				return err
			}
			coveredSeq, blob, ok = covered, bytes.Clone(b), true
			if blob == nil {
				blob = []byte{}
			}
			return nil
		})
	})
	if errors.Is(err, errNotFound) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("storage: shard %d: loading snapshot: %w", shard, err)
	}
	return coveredSeq, blob, ok, nil
}

// snapshotHeader returns a shard snapshot's covered sequence and save time.
func (s *Store) snapshotHeader(sh uint16) (covered uint64, savedAt int64, ok bool, err error) {
	err = s.read(func() error {
		covered, savedAt, ok, err = s.snapshotHeaderRaw(sh)
		return err
	})
	return covered, savedAt, ok, err
}

// snapshotHeaderRaw is snapshotHeader without the gate (for the committer).
func (s *Store) snapshotHeaderRaw(sh uint16) (covered uint64, savedAt int64, ok bool, err error) {
	key := snapshotKey(sh)
	err = s.be.get(key, func(v []byte) error {
		var err error
		covered, savedAt, _, err = decodeSnapshotRecord(key, v)
		ok = err == nil
		return err
	})
	if errors.Is(err, errNotFound) {
		return 0, 0, false, nil
	}
	return covered, savedAt, ok, err
}
