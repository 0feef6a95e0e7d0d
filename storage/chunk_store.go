package storage

import (
	"context"
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
	return appendSeriesPrefix(b, prefixChunk, symbol, iv)
}

func appendChunkKey(b []byte, symbol string, iv messages.Interval, first int64) []byte {
	return appendSeriesKey(b, prefixChunk, symbol, iv, first)
}

// parseChunkKey splits a chunk key; symbol aliases k.
func parseChunkKey(k []byte) (symbol []byte, iv messages.Interval, first int64, ok bool) {
	return parseSeriesKey(k, prefixChunk)
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

// deleteChunksBefore deletes the stored chunks of (symbol, iv) all of
// whose bars open before cutoff, and returns their first open times, in
// order. A chunk followed by one opening at or before cutoff qualifies by
// the keys alone; the last one opening before cutoff is checked by its
// header (which gives its last bar). Chunks opening at or after cutoff are
// never read. A corrupt chunk that must be read fails the call.
func (s *Store) deleteChunksBefore(ctx context.Context, symbol string, iv messages.Interval, cutoff int64) ([]int64, error) {
	prefix := appendChunkSeriesPrefix(nil, symbol, iv)
	var dels []kvOp
	var firsts []int64
	err := s.read(func() error {
		var prev []byte
		var prevFirst int64
		// settle decides on prev, given the first open time of the chunk
		// after it (ok: there is one).
		settle := func(next int64, ok bool) error {
			if prev == nil {
				return nil
			}
			del := ok && next <= cutoff
			if !del {
				last, err := s.chunkLastOpen(prev, iv, prevFirst)
				if err != nil {
					return err
				}
				del = last < cutoff
			}
			if del {
				dels = append(dels, kvOp{key: prev, del: true})
				firsts = append(firsts, prevFirst)
			}
			prev = nil
			return nil
		}
		it := s.be.iter(iterOptions{prefix: prefix})
		defer it.close()
		n := 0
		for it.seek(prefix); it.valid(); it.next() {
			if n++; n&1023 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			_, _, first, ok := parseChunkKey(it.key())
			if !ok {
				return corruptf(it.key(), "malformed chunk key")
			}
			if err := settle(first, true); err != nil {
				return err
			}
			if first >= cutoff {
				return nil
			}
			prev, prevFirst = slices.Clone(it.key()), first
		}
		return settle(0, false)
	})
	if err != nil || len(dels) == 0 {
		return nil, err
	}
	if err := s.write(ctx, dels, spaceAny, s.syncUnlessNone(), nil); err != nil {
		return nil, fmt.Errorf("storage: delete %d chunks of %s %s: %w", len(dels), symbol, iv, err)
	}
	return firsts, nil
}

// chunkLastOpen reads the header of the chunk under key (whose first bar
// opens at first) and returns its last bar's open time.
func (s *Store) chunkLastOpen(key []byte, iv messages.Interval, first int64) (int64, error) {
	var last int64
	err := s.be.get(key, func(v []byte) error {
		p, err := openRecord(key, v, kindChunk)
		if err != nil {
			return err
		}
		h, _, err := parseChunkHeader(p)
		if err != nil {
			return corruptf(key, "%v", err)
		}
		var ok bool
		if last, ok = advanceChecked(iv, first, h.span); !ok {
			return corruptf(key, "chunk spans %d periods from %d: beyond any time", h.span, first)
		}
		return nil
	})
	return last, err
}

// Symbols returns the symbols that have stored bar chunks, sorted. It
// costs one seek per symbol, not a scan of the chunks. Bars a ShardBars
// holds in memory only (not yet written by WriteDirty) are not counted.
func (s *Store) Symbols() ([]string, error) {
	var out []string
	err := s.read(func() error {
		var err error
		out, err = s.symbols(context.Background())
		return err
	})
	return out, err
}

func (s *Store) symbols(ctx context.Context) ([]string, error) {
	it := s.be.iter(iterOptions{prefix: []byte{prefixChunk}})
	defer it.close()
	var out []string
	for it.seek([]byte{prefixChunk}); it.valid(); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sym, _, _, ok := parseChunkKey(it.key())
		if !ok {
			return nil, corruptf(it.key(), "malformed chunk key")
		}
		out = append(out, string(sym))
		// Past every key of the symbol: 'b' | len | symbol | 0xff...
		next := append([]byte{prefixChunk, byte(len(sym))}, sym...)
		it.seek(append(next, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	}
	slices.Sort(out)
	return out, nil
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
