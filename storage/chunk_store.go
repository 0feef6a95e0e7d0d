package storage

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/klinecast/klinecast/messages"
)

// Chunk keys: 'b' | len uint8 | symbol | interval uint8 | first open time
// (flipped, big-endian): one series is one contiguous key range in time
// order, like kline keys were (doc.go "Key formats").
const (
	prefixChunk = 'b'
	kindChunk   = 6
)

func appendChunkSeriesPrefix(b []byte, symbol string, iv messages.Interval) []byte {
	b = append(b, prefixChunk, byte(len(symbol)))
	b = append(b, symbol...)
	return append(b, byte(iv))
}

func appendChunkKey(b []byte, symbol string, iv messages.Interval, first int64) []byte {
	b = appendChunkSeriesPrefix(b, symbol, iv)
	return binary.BigEndian.AppendUint64(b, flipTime(first))
}

// parseChunkKey splits a chunk key; symbol aliases k.
func parseChunkKey(k []byte) (symbol []byte, iv messages.Interval, first int64, ok bool) {
	if len(k) < 3 || k[0] != prefixChunk {
		return nil, 0, 0, false
	}
	n := int(k[1])
	if len(k) != 2+n+1+8 {
		return nil, 0, 0, false
	}
	return k[2 : 2+n], messages.Interval(k[2+n]), unflipTime(binary.BigEndian.Uint64(k[3+n:])), true
}

// storedChunk is a chunk read from the store: its first bar's open time
// and its payload (a copy, owned by the caller).
type storedChunk struct {
	first   int64
	payload []byte
}

// writeChunks stores chunk records (kvs hold complete envelopes), fsynced
// unless the durability is none.
func (s *Store) writeChunks(ctx context.Context, kvs []kvOp) error {
	if len(kvs) == 0 {
		return nil
	}
	if err := s.write(ctx, kvs, spaceFull, s.syncUnlessNone(), nil); err != nil {
		return fmt.Errorf("storage: write %d chunks: %w", len(kvs), err)
	}
	return nil
}

// chunkRecord encodes a chunk's envelope under key.
func chunkRecord(key []byte, b *chunkBuilder) []byte {
	v := beginRecord(make([]byte, 0, headerLen+16+b.size()), kindChunk)
	v = b.appendPayload(v)
	sealRecord(v, finishRecord(v), key)
	return v
}

// readChunks appends to dst the stored chunks of (symbol, iv) that may
// hold bars with open time in [start, end]: the last one opening at or
// before start, then every one opening up to end.
func (s *Store) readChunks(symbol string, iv messages.Interval, start, end int64, dst []storedChunk) ([]storedChunk, error) {
	prefix := appendChunkSeriesPrefix(nil, symbol, iv)
	err := s.read(func() error {
		if c, ok, err := s.chunkAtOrBefore(prefix, symbol, iv, start); err != nil {
			return err
		} else if ok {
			dst = append(dst, c)
		}
		it := s.be.iter(iterOptions{prefix: prefix})
		defer it.close()
		for it.seek(appendChunkKey(nil, symbol, iv, start)); it.valid(); it.next() {
			c, err := readChunk(it)
			if err != nil {
				return err
			}
			if c.first > end {
				break
			}
			if len(dst) > 0 && dst[len(dst)-1].first == c.first {
				continue // the one at start, already read
			}
			dst = append(dst, c)
		}
		return nil
	})
	return dst, err
}

// chunkAt returns the stored chunk of (symbol, iv) with the latest first
// open time at or before t.
func (s *Store) chunkAt(symbol string, iv messages.Interval, t int64) (c storedChunk, ok bool, err error) {
	err = s.read(func() error {
		c, ok, err = s.chunkAtOrBefore(appendChunkSeriesPrefix(nil, symbol, iv), symbol, iv, t)
		return err
	})
	return c, ok, err
}

func (s *Store) chunkAtOrBefore(prefix []byte, symbol string, iv messages.Interval, t int64) (storedChunk, bool, error) {
	it := s.be.iter(iterOptions{prefix: prefix, reverse: true})
	defer it.close()
	it.seek(appendChunkKey(nil, symbol, iv, t))
	if !it.valid() {
		return storedChunk{}, false, nil
	}
	c, err := readChunk(it)
	return c, err == nil, err
}

// readChunk copies the chunk under it and checks its envelope and header.
func readChunk(it kvIter) (storedChunk, error) {
	key := it.key()
	_, _, first, ok := parseChunkKey(key)
	if !ok {
		return storedChunk{}, corruptf(key, "malformed chunk key")
	}
	var c storedChunk
	err := it.value(func(v []byte) error {
		p, err := openRecord(key, v, kindChunk)
		if err != nil {
			return err
		}
		if _, _, err := parseChunkHeader(p); err != nil {
			return corruptf(key, "%v", err)
		}
		c = storedChunk{first: first, payload: slices.Clone(p)}
		return nil
	})
	return c, err
}

// lastChunk returns the stored chunk of (symbol, iv) with the latest
// first open time: the series' head as of the last write.
func (s *Store) lastChunk(symbol string, iv messages.Interval) (storedChunk, bool, error) {
	return s.chunkAt(symbol, iv, maxOpenTime)
}

// deleteChunksBefore deletes the stored chunks of (symbol, iv) whose every
// bar opens before cutoff (the next chunk opens at or before it), and
// reports how many it deleted.
func (s *Store) deleteChunksBefore(ctx context.Context, symbol string, iv messages.Interval, cutoff int64) (int, error) {
	prefix := appendChunkSeriesPrefix(nil, symbol, iv)
	var dels []kvOp
	err := s.read(func() error {
		it := s.be.iter(iterOptions{prefix: prefix})
		defer it.close()
		var prev []byte
		for it.seek(prefix); it.valid(); it.next() {
			_, _, first, ok := parseChunkKey(it.key())
			if !ok {
				return corruptf(it.key(), "malformed chunk key")
			}
			if first > cutoff {
				break
			}
			if prev != nil {
				dels = append(dels, kvOp{key: prev, del: true})
			}
			prev = slices.Clone(it.key())
		}
		return nil
	})
	if err != nil || len(dels) == 0 {
		return 0, err
	}
	if err := s.write(ctx, dels, spaceAny, s.syncUnlessNone(), nil); err != nil {
		return 0, fmt.Errorf("storage: delete %d chunks of %s %s: %w", len(dels), symbol, iv, err)
	}
	return len(dels), nil
}

// hasChunks reports whether the store holds any bar chunk (one seek). A
// ShardBars asks when it is made: on a new data dir its series then have
// no stored head to look for.
func (s *Store) hasChunks() bool {
	found := true // if the look fails: look for heads, as usual
	_ = s.read(func() error {
		it := s.be.iter(iterOptions{prefix: []byte{prefixChunk}})
		defer it.close()
		it.seek([]byte{prefixChunk})
		found = it.valid()
		return nil
	})
	return found
}
