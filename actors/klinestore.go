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

// memKlineStore is the KlineStore of a memory-only node.
type memKlineStore struct {
	mu struct {
		sync.RWMutex
		series map[seriesKey][]messages.Kline // ascending open time
	}
}

type seriesKey struct {
	symbol string
	iv     messages.Interval
}

func newMemKlineStore() *memKlineStore {
	s := &memKlineStore{}
	s.mu.series = map[seriesKey][]messages.Kline{}
	return s
}

func (s *memKlineStore) PutKlines(ks []messages.Kline) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range ks {
		key := seriesKey{k.Symbol, k.Interval}
		bars := s.mu.series[key]
		if n := len(bars); n == 0 || bars[n-1].OpenTime < k.OpenTime {
			s.mu.series[key] = append(bars, k) // the common case: the next bar
			continue
		}
		i, found := slices.BinarySearchFunc(bars, k.OpenTime, func(b messages.Kline, t int64) int {
			return int(b.OpenTime - t)
		})
		if found {
			bars[i] = k
		} else {
			s.mu.series[key] = slices.Insert(bars, i, k)
		}
	}
	return nil
}

func (s *memKlineStore) Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	bars := s.mu.series[seriesKey{symbol, iv}]
	i, _ := slices.BinarySearchFunc(bars, start, func(b messages.Kline, t int64) int { return int(b.OpenTime - t) })
	for ; i < len(bars) && bars[i].OpenTime <= end; i++ {
		if limit > 0 && len(dst) >= limit {
			break
		}
		dst = append(dst, bars[i])
	}
	return dst, nil
}
