package storage

import (
	"context"
	"errors"
	"fmt"
)

// Checkpoint is a durable consumer's last acknowledged sequence.
type Checkpoint struct {
	Consumer string
	Seq      uint64
}

// PutCheckpoint records seq as consumer's last acknowledged sequence in one
// atomic, fsynced write (in every Durability mode; concurrent calls share
// fsyncs). It does not enforce monotonicity: a consumer may rewind.
func (s *Store) PutCheckpoint(ctx context.Context, consumer string, seq uint64) error {
	if err := checkConsumer(consumer); err != nil {
		return err
	}
	key := checkpointKey(consumer)
	if err := s.write(ctx, []kvOp{{key: key, val: u64Record(kindCheckpoint, key, seq)}}, spaceHalf, true, nil); err != nil {
		return fmt.Errorf("storage: consumer %q: saving checkpoint: %w", consumer, err)
	}
	return nil
}

// GetCheckpoint returns consumer's checkpoint; ok is false if it has none.
func (s *Store) GetCheckpoint(consumer string) (seq uint64, ok bool, err error) {
	if err := checkConsumer(consumer); err != nil {
		return 0, false, err
	}
	key := checkpointKey(consumer)
	err = s.read(func() error {
		return s.be.get(key, func(v []byte) error {
			var err error
			seq, err = decodeU64Record(key, v, kindCheckpoint)
			ok = err == nil
			return err
		})
	})
	if errors.Is(err, errNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("storage: consumer %q: reading checkpoint: %w", consumer, err)
	}
	return seq, ok, nil
}

// DeleteCheckpoint forgets consumer (fsynced). Deleting an absent
// checkpoint is not an error.
func (s *Store) DeleteCheckpoint(ctx context.Context, consumer string) error {
	if err := checkConsumer(consumer); err != nil {
		return err
	}
	if err := s.write(ctx, []kvOp{{key: checkpointKey(consumer), del: true}}, spaceAny, true, nil); err != nil {
		return fmt.Errorf("storage: consumer %q: deleting checkpoint: %w", consumer, err)
	}
	return nil
}

// Checkpoints returns every stored checkpoint, sorted by consumer name
// (bytewise).
func (s *Store) Checkpoints() ([]Checkpoint, error) {
	var out []Checkpoint
	err := s.read(func() error {
		var err error
		out, err = s.checkpoints()
		return err
	})
	return out, err
}

func (s *Store) checkpoints() ([]Checkpoint, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixCheckpoint}})
	defer it.close()
	var out []Checkpoint
	for it.seek([]byte{prefixCheckpoint}); it.valid(); it.next() {
		key := it.key()
		var seq uint64
		if err := it.value(func(v []byte) error {
			var err error
			seq, err = decodeU64Record(key, v, kindCheckpoint)
			return err
		}); err != nil {
			return nil, err
		}
		out = append(out, Checkpoint{Consumer: string(key[1:]), Seq: seq})
	}
	return out, nil
}
