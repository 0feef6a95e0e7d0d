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
// know instead of misreading them. Version 2 added Clock; version 1
// snapshots are still read (their clock is their watermark).
const snapshotVersion = 2

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
	// Clock is the shard's complete clock (see Handle.clock).
	Clock int64
}

// shardSnapshotV1 is a version 1 snapshot: no Clock.
type shardSnapshotV1 struct {
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

func encodeSnapshot(st *aggregate.State, clock int64) ([]byte, error) {
	s := shardSnapshot{Version: snapshotVersion, Intervals: st.Intervals, Watermark: st.Watermark, Recent: st.Recent, Clock: clock}
	for _, sym := range st.Symbols {
		s.Symbols = append(s.Symbols, snapshotSymbol{Symbol: sym.Symbol, LastAggID: sym.LastAggID, LateDropped: sym.LateDropped, Bars: sym.Bars})
	}
	var buf bytes.Buffer
	if err := msgpack.NewEncoder(&buf).Encode(&s); err != nil {
		return nil, fmt.Errorf("actors: encode snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeSnapshot returns a snapshot's core state and the shard's complete
// clock.
func decodeSnapshot(b []byte) (aggregate.State, int64, error) {
	var s shardSnapshot
	if err := msgpack.Unmarshal(b, &s); err != nil {
		var v1 shardSnapshotV1
		if err1 := msgpack.Unmarshal(b, &v1); err1 != nil || v1.Version != 1 {
			return aggregate.State{}, 0, fmt.Errorf("actors: decode snapshot: %w", err)
		}
		s = shardSnapshot{Version: 1, Intervals: v1.Intervals, Watermark: v1.Watermark, Symbols: v1.Symbols,
			Recent: v1.Recent, Clock: v1.Watermark}
	}
	if s.Version != snapshotVersion && s.Version != 1 {
		return aggregate.State{}, 0, fmt.Errorf("actors: snapshot format version %d, this build reads 1 and %d", s.Version, snapshotVersion)
	}
	st := aggregate.State{Intervals: s.Intervals, Watermark: s.Watermark, Recent: s.Recent}
	for _, sym := range s.Symbols {
		st.Symbols = append(st.Symbols, aggregate.SymbolState{Symbol: sym.Symbol, LastAggID: sym.LastAggID, LateDropped: sym.LateDropped, Bars: sym.Bars})
	}
	return st, s.Clock, nil
}
