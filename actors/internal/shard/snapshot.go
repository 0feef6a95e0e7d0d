package shard

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// snapshotVersion is the first element of every encoded shard snapshot; a
// format change bumps it and decodeSnapshot refuses versions it does not
// know instead of misreading them.
const snapshotVersion = 1

// shardSnapshot is what a shard persists: its core's state and the clock.
// Bars are encoded by messages' hand-written Kline encoder (Kline implements
// msgpack.CustomEncoder); the envelope goes through msgpack's encoder, which
// is fine every few seconds, never per trade.
type shardSnapshot struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Version   int
	Intervals []messages.Interval
	Watermark int64
	Symbols   []snapshotSymbol
	Recent    []messages.Kline
}

type snapshotSymbol struct {
	_msgpack    struct{} `msgpack:",as_array"`
	Symbol      string
	LastAggID   int64
	LateDropped uint64
	Bars        []messages.Kline
}

func encodeSnapshot(st *aggregate.State) ([]byte, error) {
	s := shardSnapshot{Version: snapshotVersion, Intervals: st.Intervals, Watermark: st.Watermark, Recent: st.Recent}
	for _, sym := range st.Symbols {
		s.Symbols = append(s.Symbols, snapshotSymbol{Symbol: sym.Symbol, LastAggID: sym.LastAggID, LateDropped: sym.LateDropped, Bars: sym.Bars})
	}
	var buf bytes.Buffer
	if err := msgpack.NewEncoder(&buf).Encode(&s); err != nil {
		return nil, fmt.Errorf("actors: encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

func decodeSnapshot(b []byte) (aggregate.State, error) {
	var s shardSnapshot
	if err := msgpack.Unmarshal(b, &s); err != nil {
		return aggregate.State{}, fmt.Errorf("actors: decode snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return aggregate.State{}, fmt.Errorf("actors: snapshot format version %d, this build reads %d", s.Version, snapshotVersion)
	}
	st := aggregate.State{Intervals: s.Intervals, Watermark: s.Watermark, Recent: s.Recent}
	for _, sym := range s.Symbols {
		st.Symbols = append(st.Symbols, aggregate.SymbolState{Symbol: sym.Symbol, LastAggID: sym.LastAggID, LateDropped: sym.LateDropped, Bars: sym.Bars})
	}
	return st, nil
}
