package aggregate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"unsafe"

	"github.com/klinecast/klinecast/messages"
)

// Checkpoint is a reusable in-memory copy of a Core's state, for a caller
// that must be able to rebuild the core as it was (a shard actor that
// restarts after a panic). Unlike Snapshot it is not meant to leave the
// process: it copies the core's flat arrays as they are, so saving costs a
// few memory copies proportional to the number of symbols, and saving into
// the same Checkpoint again allocates nothing once its buffers are large
// enough (the symbol index is copied only when symbols were added or
// removed since the previous save).
//
// The zero value is an empty checkpoint; see Valid.
type Checkpoint struct {
	valid        bool
	intervals    []messages.Interval
	index        map[string]int32
	indexVersion uint64
	syms         []symbolState
	free         []int32
	bars         []messages.Kline
	recent       []recentEntry // a list: copying into a map allocates per bar
	watermark    int64
	nextClose    int64
	nextPrune    int64
	stats        Stats
}

type recentEntry struct {
	key recentKey
	bar messages.Kline
}

// ErrOutputPending: SaveCheckpoint was called with output not taken by
// Ready; a checkpoint never holds output, so it would be lost on restore.
var ErrOutputPending = errors.New("aggregate: checkpoint with output pending (call Ready first)")

// Valid reports whether cp holds a saved state.
func (cp *Checkpoint) Valid() bool { return cp.valid }

// CheckpointBytes estimates the memory SaveCheckpoint copies: a caller compares it with the
// cost of its alternatives (such as logging inputs) to decide when to save.
func (c *Core) CheckpointBytes() int {
	return len(c.syms)*int(unsafe.Sizeof(symbolState{})) +
		len(c.bars)*int(unsafe.Sizeof(messages.Kline{})) +
		len(c.recent)*int(unsafe.Sizeof(messages.Kline{})+unsafe.Sizeof(recentKey{}))
}

// SaveCheckpoint copies c's state into cp, replacing what cp held. Every
// Delta must have been taken with Ready first (ErrOutputPending otherwise).
func (c *Core) SaveCheckpoint(cp *Checkpoint) error {
	if c.HasReady() {
		return ErrOutputPending
	}
	if cp.intervals == nil {
		cp.intervals = slices.Clone(c.intervals)
	}
	if cp.index == nil || cp.indexVersion != c.indexVersion {
		cp.index = maps.Clone(c.index)
		cp.indexVersion = c.indexVersion
	}
	cp.syms = append(cp.syms[:0], c.syms...)
	cp.free = append(cp.free[:0], c.free...)
	cp.bars = append(cp.bars[:0], c.bars...)
	clear(cp.recent) // drop symbol references
	cp.recent = cp.recent[:0]
	for k, bar := range c.recent {
		cp.recent = append(cp.recent, recentEntry{k, bar})
	}
	cp.watermark, cp.nextClose, cp.nextPrune = c.watermark, c.nextClose, c.nextPrune
	cp.stats = c.stats
	cp.valid = true
	return nil
}

// RestoreCheckpoint returns a core with cfg's settings and the state saved
// in cp. cp stays valid and unchanged: the core owns copies.
func RestoreCheckpoint(cfg Config, cp *Checkpoint) (*Core, error) {
	if !cp.valid {
		return nil, errors.New("aggregate: restore: empty checkpoint")
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(c.intervals, cp.intervals) {
		return nil, fmt.Errorf("aggregate: restore: checkpoint has intervals %s, configured %s",
			messages.FormatIntervals(cp.intervals), messages.FormatIntervals(c.intervals))
	}
	c.index = maps.Clone(cp.index)
	c.indexVersion = cp.indexVersion
	c.syms = slices.Clone(cp.syms)
	c.free = slices.Clone(cp.free)
	c.bars = slices.Clone(cp.bars)
	if c.recent != nil {
		for _, e := range cp.recent {
			c.recent[e.key] = e.bar
		}
	}
	c.watermark, c.nextClose, c.nextPrune = cp.watermark, cp.nextClose, cp.nextPrune
	c.stats = cp.stats
	c.sizeForSymbols()
	return c, nil
}
