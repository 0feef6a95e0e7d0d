package storage

import (
	"cmp"
	"slices"
	"sync"
	"unsafe"

	"github.com/klinecast/klinecast/messages"
)

// KlineReader reads closed bars: *Store and *MemKlines both are one, so a
// node queries either without knowing which it has.
type KlineReader interface {
	// Klines appends to dst the stored bars of symbol and iv with open time
	// in [start, end], ascending, at most limit of them (0: no limit).
	Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error)
}

var (
	_ KlineReader = (*Store)(nil)
	_ KlineReader = (*MemKlines)(nil)
)

// MemKlines keeps the closed bars of a memory-only node: series of
// closed bars in partitions by symbol, each with its own lock, so shards on
// different workers rarely contend.
//
// Memory layout and allocation profile. Storing a bar must not allocate:
// growing a slice per series would make half of the pipeline's
// allocations, and leave the old arrays to the collector. So a
// partition carves everything it stores out of slabs, big arrays it
// allocates once and never frees (the store never forgets a bar):
//
//   - a series is a sequence of blocks of bars, each carved from the
//     partition's bar slab, of capacities 1, 2, 4, ..., 64, then 64 each:
//     a series of one bar (a daily or weekly series of a young node)
//     costs one bar, one of n bars at most about n+64, and a long series
//     has a block per 64 bars;
//   - its directory, the blocks in order, is carved from the partition's
//     directory slab, starting with room for 2 blocks and moved to a twice
//     bigger carving when full (the old carving is not reused: at most as
//     much as the directory in use);
//   - its header is carved from the partition's header slab.
//
// (A directory rather than a linked list of blocks: queries, mostly of the
// latest bars, and corrections find their block by binary search, not by
// walking a long series from its start.)
//
// Every slab has the same size: 4096 bars (544 KiB), 1024 directory
// entries or 256 headers. (Slabs that start small and double would make an
// idle partition cheaper, but a node would then allocate a dozen slabs per
// partition while its bar series fill up, hundreds in all, long after its
// symbols were created. A partition's first slabs take what a
// thousand-symbol node stores in its first hour or so, and an unused
// partition costs nothing.) The end of a slab too short for the
// next block (less than 64 bars of 4096) is left unused. A directory
// larger than a directory slab (a series of more than 65,536 bars) is
// allocated alone, once per doubling. A partition's series map is sized
// for 256 series up front, 16,384 in the store, so creating a series
// rarely grows it.
//
// So storing a bar allocates nothing but one bar slab per 4096 bars per
// partition, a directory slab per ~32k bars, and for a new series a
// header slab per 256 series (and a map entry beyond the first 256).
// Corrections allocate nothing, nor do queries but for growing dst.
//
// Storing the next bar of a series is the hot path: the series is found
// by its symbol string's identity (seriesCache) and its header holds the
// last block and the last open time, so only the header is read; the bar
// and the directory entry are written.
//
// Every block but the last of a series is full: the next bar goes to the
// last block, or a new one; a correction replaces the bar in place; a bar
// inserted before others shifts the later ones by one, through the
// following blocks (as inserting into one array would: it is rare).
type MemKlines struct {
	parts [memKlinePartitions]memKlinePartition
}

const memKlinePartitions = 64

// Block capacities: 1 << i for block i, up to maxKlineBlock.
const maxKlineBlock = 64

// Slab sizes, in elements; a partition's series map is sized for
// seriesPerPartition series.
const (
	barSlab, dirSlab, headerSlab = 4096, 1024, 256
	seriesPerPartition           = 256
	minKlineDir                  = 2
)

type memKlinePartition struct {
	mu struct {
		sync.RWMutex
		series  map[seriesKey]*klineSeries
		recent  seriesCache
		bars    slab[storedBar]
		dirs    slab[[]storedBar]
		headers slab[klineSeries]
	}
}

// seriesCache finds a series by the identity of its symbol string, before
// the map: closed bars come with their core's own symbol string, the same
// for every bar of the symbol, so a put need not read the symbol's bytes
// to hash them nor walk the map's groups, both cache misses on a busy
// node (where putting a bar cost ~1 µs, most of it waiting on memory). It
// is direct-mapped; an entry holds its string, so that address cannot be
// reused by another string meanwhile; a miss looks in the map and takes
// the entry. Series headers never move, so an entry stays valid.
type seriesCache [seriesCacheSize]seriesCacheEntry

type seriesCacheEntry struct {
	symbol string
	iv     messages.Interval
	s      *klineSeries
}

const seriesCacheSize = 256 // a power of two

func (c *seriesCache) slot(symbol string, iv messages.Interval) *seriesCacheEntry {
	h := (uint64(uintptr(unsafe.Pointer(unsafe.StringData(symbol)))) + uint64(iv)) * 0x9E3779B97F4A7C15
	return &c[h>>(64-8)]
}

type seriesKey struct {
	symbol string
	iv     messages.Interval
}

// klineSeries holds the bars of a series in blocks, ascending open time:
// blocks[i] has capacity blockCap(i), and all but the last are full.
// There is at least one block, none empty. tail is the last block and
// lastOpen its last bar's open time (so appending the next bar reads only
// the header, not the directory and the block: see put); blocks and
// tail are updated together.
type klineSeries struct {
	blocks   [][]storedBar
	tail     []storedBar
	lastOpen int64
}

// syncTail sets tail and lastOpen from blocks after a change other than
// an append.
func (s *klineSeries) syncTail() {
	s.tail = s.blocks[len(s.blocks)-1]
	s.lastOpen = s.tail[len(s.tail)-1].OpenTime
}

// storedBar is a closed bar as the store keeps it: without its symbol and
// interval, which its series has. So the bar slabs hold no pointers (the
// GC never scans them, however many bars a long-running node keeps) and a
// bar takes 136 bytes, not 160.
type storedBar struct {
	OpenTime, CloseTime    int64
	Open, High, Low, Close messages.Decimal
	Volume                 messages.Decimal128
	QuoteVolume            float64
	TakerBuyVolume         messages.Decimal128
	TakerBuyQuoteVolume    float64
	TradeCount             int64
	FirstTradeID           int64
	LastTradeID            int64
	Closed                 bool
}

func toStoredBar(k *messages.Kline) storedBar {
	return storedBar{
		OpenTime: k.OpenTime, CloseTime: k.CloseTime,
		Open: k.Open, High: k.High, Low: k.Low, Close: k.Close,
		Volume: k.Volume, QuoteVolume: k.QuoteVolume,
		TakerBuyVolume: k.TakerBuyVolume, TakerBuyQuoteVolume: k.TakerBuyQuoteVolume,
		TradeCount: k.TradeCount, FirstTradeID: k.FirstTradeID, LastTradeID: k.LastTradeID,
		Closed: k.Closed,
	}
}

func (b *storedBar) kline(symbol string, iv messages.Interval) messages.Kline {
	return messages.Kline{
		Symbol: symbol, Interval: iv,
		OpenTime: b.OpenTime, CloseTime: b.CloseTime,
		Open: b.Open, High: b.High, Low: b.Low, Close: b.Close,
		Volume: b.Volume, QuoteVolume: b.QuoteVolume,
		TakerBuyVolume: b.TakerBuyVolume, TakerBuyQuoteVolume: b.TakerBuyQuoteVolume,
		TradeCount: b.TradeCount, FirstTradeID: b.FirstTradeID, LastTradeID: b.LastTradeID,
		Closed: b.Closed,
	}
}

func blockCap(i int) int {
	if i >= 6 { // 1 << 6 == maxKlineBlock
		return maxKlineBlock
	}
	return 1 << i
}

// slab hands out pieces of bigger arrays: one allocation per array, not
// per piece.
type slab[T any] struct {
	free []T
}

// take returns a zeroed piece of n elements, of capacity n, from an array
// of size elements; a piece bigger than that is allocated alone.
func (s *slab[T]) take(n, size int) []T {
	if n > size {
		return make([]T, n)
	}
	if len(s.free) < n {
		s.free = make([]T, size)
	}
	p := s.free[:n:n]
	s.free = s.free[n:]
	return p
}

// NewMemKlines returns an empty memory kline store.
func NewMemKlines() *MemKlines {
	s := &MemKlines{}
	for i := range s.parts {
		s.parts[i].mu.series = make(map[seriesKey]*klineSeries, seriesPerPartition)
	}
	return s
}

func (s *MemKlines) partition(symbol string) *memKlinePartition {
	return &s.parts[messages.ShardOf(symbol, memKlinePartitions)]
}

// PutKlines stores closed bars, replacing any stored bar with the same
// (symbol, interval, open time): late corrections overwrite. It never fails.
func (s *MemKlines) PutKlines(ks []messages.Kline) error {
	// A Delta's closed bars come in runs of one symbol: look up once per
	// run, not per bar. A shard's symbols share one partition when the
	// node has as many shards as the store partitions (the default), so
	// the lock is taken once per Delta, not per run: a lock's atomic
	// instruction waits for every store before it to reach the cache, and
	// the new bars' cache lines are cold, so a lock per run paid their
	// misses one after another.
	var locked *memKlinePartition
	for i := 0; i < len(ks); {
		sym := ks[i].Symbol
		j := i + 1
		for j < len(ks) && ks[j].Symbol == sym {
			j++
		}
		if p := s.partition(sym); p != locked {
			if locked != nil {
				locked.mu.Unlock()
			}
			locked = p
			p.mu.Lock()
		}
		locked.put(ks[i:j])
		i = j
	}
	if locked != nil {
		locked.mu.Unlock()
	}
	return nil
}

// put stores bars of one symbol. The caller holds p.mu.
func (p *memKlinePartition) put(ks []messages.Kline) {
	var iv messages.Interval
	var s *klineSeries
	for i := range ks {
		k := &ks[i]
		if s == nil || k.Interval != iv {
			iv = k.Interval
			s = p.series(k.Symbol, iv)
		}
		if s.tail != nil && s.lastOpen < k.OpenTime { // the common case: the next bar
			if len(s.tail) < cap(s.tail) {
				s.tail = append(s.tail, toStoredBar(k))
				s.blocks[len(s.blocks)-1] = s.tail
			} else {
				p.appendBlock(s, toStoredBar(k))
			}
			s.lastOpen = k.OpenTime
			continue
		}
		if s.tail == nil {
			p.appendBlock(s, toStoredBar(k))
			s.lastOpen = k.OpenTime
			continue
		}
		b, i, found := s.search(k.OpenTime)
		if found {
			s.blocks[b][i] = toStoredBar(k) // a late-trade correction
		} else {
			p.insert(s, b, i, k)
		}
		s.syncTail()
	}
}

// series returns the series of symbol and iv, creating it if needed.
func (p *memKlinePartition) series(symbol string, iv messages.Interval) *klineSeries {
	e := p.mu.recent.slot(symbol, iv)
	if e.s != nil && e.iv == iv && unsafe.StringData(e.symbol) == unsafe.StringData(symbol) && len(e.symbol) == len(symbol) {
		return e.s
	}
	key := seriesKey{symbol, iv}
	s := p.mu.series[key]
	if s == nil {
		s = &p.mu.headers.take(1, headerSlab)[0]
		p.mu.series[key] = s
	}
	*e = seriesCacheEntry{symbol: symbol, iv: iv, s: s}
	return s
}

// appendBlock adds a block to s holding k, after its last bar.
func (p *memKlinePartition) appendBlock(s *klineSeries, bar storedBar) {
	n := len(s.blocks)
	if n == cap(s.blocks) {
		c := 2 * n
		if c < minKlineDir {
			c = minKlineDir
		}
		blocks := p.mu.dirs.take(c, dirSlab)
		copy(blocks, s.blocks)
		s.blocks = blocks[:n]
	}
	b := p.mu.bars.take(blockCap(n), barSlab)[:1]
	b[0] = bar
	s.blocks = append(s.blocks, b)
	s.tail = b
}

// insert puts k at bar i of block b, moving the bars after it by one:
// the last bar of a full block becomes the first of the next one.
func (p *memKlinePartition) insert(s *klineSeries, b, i int, k *messages.Kline) {
	carry := toStoredBar(k)
	for ; b < len(s.blocks); b, i = b+1, 0 {
		blk := s.blocks[b]
		if n := len(blk); n < cap(blk) { // the last block
			blk = blk[:n+1]
			copy(blk[i+1:], blk[i:n])
			blk[i] = carry
			s.blocks[b] = blk
			return
		}
		out := blk[len(blk)-1]
		copy(blk[i+1:], blk[i:len(blk)-1])
		blk[i] = carry
		carry = out
	}
	p.appendBlock(s, carry)
}

// search finds the first bar with open time >= t: bar i of block b, with
// i < len(s.blocks[b]), or b == len(s.blocks) if there is none. found
// reports whether it opens at t.
func (s *klineSeries) search(t int64) (b, i int, found bool) {
	// The last block opening at or before t, if any.
	b, _ = slices.BinarySearchFunc(s.blocks, t, func(blk []storedBar, t int64) int {
		if blk[0].OpenTime <= t {
			return -1
		}
		return 1
	})
	if b == 0 {
		return 0, 0, false
	}
	b--
	i, found = slices.BinarySearchFunc(s.blocks[b], t, func(k storedBar, t int64) int {
		return cmp.Compare(k.OpenTime, t)
	})
	if i == len(s.blocks[b]) {
		return b + 1, 0, false
	}
	return b, i, found
}

// Klines appends to dst the stored bars of symbol and iv with open time in
// [start, end], ascending, at most limit of them (0: no limit).
func (s *MemKlines) Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	p := s.partition(symbol)
	p.mu.RLock()
	defer p.mu.RUnlock()
	series := p.mu.series[seriesKey{symbol, iv}]
	if series == nil || start > end {
		return dst, nil
	}
	want := -1 // bars still wanted; negative: no limit
	if limit > 0 {
		want = limit
	}
	b, i, _ := series.search(start)
	for ; b < len(series.blocks) && want != 0; b, i = b+1, 0 {
		bars := series.blocks[b][i:]
		n := len(bars)
		if bars[n-1].OpenTime > end {
			n, _ = slices.BinarySearchFunc(bars, end, func(k storedBar, t int64) int {
				if k.OpenTime <= t {
					return -1
				}
				return 1
			})
		}
		if want >= 0 && n > want {
			n = want
		}
		for j := range bars[:n] {
			dst = append(dst, bars[j].kline(symbol, iv))
		}
		if want > 0 {
			want -= n
		}
		if n < len(bars) {
			break
		}
	}
	return dst, nil
}
