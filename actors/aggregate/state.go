package aggregate

import (
	"fmt"
	"math"
	"slices"

	"github.com/klinecast/klinecast/messages"
)

// State is a deep copy of a Core's state: what a snapshot must hold so that
// a restored core behaves exactly like the original. It does not include
// output not yet taken with Ready: take and hand over every Delta before
// calling Snapshot, or it will be lost on restore.
type State struct {
	Intervals []messages.Interval
	Watermark int64
	Symbols   []SymbolState
	// Recent are closed bars still within the lateness window, sorted by
	// (symbol, interval, open time).
	Recent []messages.Kline
}

// SymbolState is one symbol's part of State.
type SymbolState struct {
	Symbol      string
	LastAggID   int64
	LateDropped uint64
	Bars        []messages.Kline // open bars, one per interval, in State.Intervals order
}

// Snapshot returns a deep copy of c's state. It allocates; it is meant for
// periodic checkpoints, not the hot path.
func (c *Core) Snapshot() State {
	st := State{Intervals: slices.Clone(c.intervals), Watermark: c.watermark}
	for slot := range c.syms {
		s := &c.syms[slot]
		if !s.live {
			continue
		}
		c.fold(int32(slot))
		base := slot * c.n
		st.Symbols = append(st.Symbols, SymbolState{
			Symbol:      s.name,
			LastAggID:   s.lastAggID,
			LateDropped: s.lateDropped,
			Bars:        slices.Clone(c.bars[base : base+c.n]),
		})
	}
	for _, k := range c.recent {
		st.Recent = append(st.Recent, k)
	}
	slices.SortFunc(st.Recent, func(a, b messages.Kline) int {
		switch {
		case a.Symbol != b.Symbol:
			if a.Symbol < b.Symbol {
				return -1
			}
			return 1
		case a.Interval != b.Interval:
			return int(a.Interval) - int(b.Interval)
		}
		return int(a.OpenTime - b.OpenTime)
	})
	return st
}

// Restore returns a core with cfg's settings and st's state. The state's
// intervals must equal the configured ones: changing intervals on restart
// would silently corrupt open bars.
func Restore(cfg Config, st State) (*Core, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if !slices.Equal(c.intervals, st.Intervals) {
		return nil, fmt.Errorf("aggregate: restore: state has intervals %s, configured %s",
			messages.FormatIntervals(st.Intervals), messages.FormatIntervals(c.intervals))
	}
	c.watermark = st.Watermark
	for _, ss := range st.Symbols {
		if len(ss.Bars) != c.n {
			return nil, fmt.Errorf("aggregate: restore: symbol %s has %d bars, want %d", ss.Symbol, len(ss.Bars), c.n)
		}
		if _, dup := c.index[ss.Symbol]; dup && c.index[ss.Symbol] >= 0 {
			return nil, fmt.Errorf("aggregate: restore: symbol %s appears twice", ss.Symbol)
		}
		if c.fixed {
			if _, ok := c.index[ss.Symbol]; !ok {
				return nil, fmt.Errorf("aggregate: restore: %w %s (not in the fixed symbol list)", ErrUnknownSymbol, ss.Symbol)
			}
		}
		for i, k := range ss.Bars {
			if k.Symbol != ss.Symbol || k.Interval != c.intervals[i] || k.CloseTime != k.Interval.CloseTime(k.OpenTime) {
				return nil, fmt.Errorf("aggregate: restore: symbol %s bar %d is inconsistent", ss.Symbol, i)
			}
		}
		slot := int32(len(c.syms))
		c.syms = append(c.syms, symbolState{name: ss.Symbol, lastAggID: ss.LastAggID, lateDropped: ss.LateDropped, live: true})
		c.bars = append(c.bars, ss.Bars...)
		c.index[ss.Symbol] = slot
		c.updateBounds(slot)
		for _, k := range ss.Bars {
			c.syms[slot].maxHi = max(c.syms[slot].maxHi, k.Volume.Hi)
		}
	}
	c.sizeForSymbols()
	c.nextClose = math.MaxInt64
	for i := range c.syms {
		c.nextClose = min(c.nextClose, c.syms[i].minClose)
	}
	for _, k := range st.Recent {
		slot, ok := c.index[k.Symbol]
		if !ok || slot < 0 || c.recent == nil {
			continue // the lateness window was shortened or the symbol is gone
		}
		c.recent[recentKey{slot, k.Interval, k.OpenTime}] = k
	}
	return c, nil
}
