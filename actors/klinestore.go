package actors

import (
	"context"
	"slices"
	"sync"

	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// KlineStore keeps closed bars. Implementations are safe for concurrent use.
type KlineStore interface {
	// PutKlines stores closed bars, replacing any stored bar with the same
	// (symbol, interval, open time): late corrections overwrite.
	PutKlines(ks []messages.Kline) error
	// Klines appends to dst the stored bars of symbol and iv with open time
	// in [start, end], ascending, at most limit of them (0: no limit).
	Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error)
}

// storeKlines adapts storage.Store to KlineStore.
type storeKlines struct{ s *storage.Store }

func (k storeKlines) PutKlines(ks []messages.Kline) error {
	return k.s.PutKlines(context.Background(), ks)
}

func (k storeKlines) Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	return k.s.Klines(symbol, iv, start, end, limit, dst)
}

// memKlineStore is the KlineStore of a memory-only node: series of
// closed bars in partitions by symbol, each with its own lock, so shards on
// different workers rarely contend.
type memKlineStore struct {
	parts [memKlinePartitions]memKlinePartition
}

const memKlinePartitions = 64

type memKlinePartition struct {
	mu struct {
		sync.RWMutex
		series map[seriesKey]*[]messages.Kline // ascending open time
	}
}

type seriesKey struct {
	symbol string
	iv     messages.Interval
}

func newMemKlineStore() *memKlineStore {
	s := &memKlineStore{}
	for i := range s.parts {
		s.parts[i].mu.series = map[seriesKey]*[]messages.Kline{}
	}
	return s
}

func (s *memKlineStore) partition(symbol string) *memKlinePartition {
	return &s.parts[shardOfFast(symbol, memKlinePartitions)]
}

func (s *memKlineStore) PutKlines(ks []messages.Kline) error {
	// A Delta's closed bars come in runs of one symbol: lock and look up
	// once per run, not per bar.
	for i := 0; i < len(ks); {
		sym := ks[i].Symbol
		j := i + 1
		for j < len(ks) && ks[j].Symbol == sym {
			j++
		}
		s.partition(sym).put(ks[i:j])
		i = j
	}
	return nil
}

// put stores bars of one symbol.
func (p *memKlinePartition) put(ks []messages.Kline) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var key seriesKey
	var bars *[]messages.Kline
	for _, k := range ks {
		if k.Interval != key.iv || bars == nil {
			key = seriesKey{k.Symbol, k.Interval}
			if bars = p.mu.series[key]; bars == nil {
				bars = new([]messages.Kline)
				p.mu.series[key] = bars
			}
		}
		b := *bars
		if n := len(b); n == 0 || b[n-1].OpenTime < k.OpenTime {
			*bars = append(b, k) // the common case: the next bar
			continue
		}
		i, found := slices.BinarySearchFunc(b, k.OpenTime, func(x messages.Kline, t int64) int {
			return int(x.OpenTime - t)
		})
		if found {
			b[i] = k // a late-trade correction
		} else {
			*bars = slices.Insert(b, i, k)
		}
	}
}

func (s *memKlineStore) Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	p := s.partition(symbol)
	p.mu.RLock()
	defer p.mu.RUnlock()
	series := p.mu.series[seriesKey{symbol, iv}]
	if series == nil {
		return dst, nil
	}
	bars := *series
	i, _ := slices.BinarySearchFunc(bars, start, func(b messages.Kline, t int64) int { return int(b.OpenTime - t) })
	for ; i < len(bars) && bars[i].OpenTime <= end; i++ {
		if limit > 0 && len(dst) >= limit {
			break
		}
		dst = append(dst, bars[i])
	}
	return dst, nil
}
