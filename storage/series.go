package storage

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/klinecast/klinecast/messages"
)

// ShardBars keeps the closed bars of one shard's symbols, as chunked
// series (chunk.go): per series (symbol, interval) a head chunk in memory
// that takes the next bars, and the sealed chunks before it. It also holds
// each series' open bar as of the shard's last flush (PutDelta), so a
// klines query reads everything here and never asks the shard.
//
// On a durable node (a Store) sealed chunks wait in memory until
// WriteDirty stores them, together with every head changed since the last
// write; the shard calls it right before it saves a snapshot, so the WAL
// behind a snapshot is deleted only after the chunks it covers are durable,
// and a market day's 3.8 million bars become about 14 thousand chunk
// writes.
// Queries read the stored chunks and lay the ones in memory over them. A
// restart loads a series' head (its latest stored chunk) when the series
// is next written, and the WAL replay appends to it: sealed history is
// never rewritten, except where a replayed bar differs from the stored one
// (a correction stored by neither).
//
// On a memory-only node sealed chunks stay in memory, the oldest dropped
// once the later ones hold MemoryRetention bars.
//
// A closed bar comes after the series' last bar (the hot path: appended to
// the head, a run extending the previous run in place) or it amends bars
// already there: a late-trade correction, or a replay over bars stored
// before a crash. An amendment decodes the chunks it touches, writes the
// new bars over the old (splitting runs) and encodes them again.
//
// Concurrency: the shard calls Put from its own goroutine, and WriteDirty
// and EnforceRetention from its storage writer (not concurrently with
// each other); queries call Klines from any goroutine. WriteDirty and
// EnforceRetention hold the lock only around memory, never while they
// write to the store. One RWMutex per shard: no lock is shared across
// shards.
type ShardBars struct {
	store *Store // nil: memory-only
	// fresh: the store held no chunk when this ShardBars was made, so a
	// series it creates has no stored head to load (it writes chunks only
	// of series it holds, and it never forgets one).
	fresh     bool
	retention int64 // memory-only: bars kept per series (0: all)
	sealBytes int   // a head is sealed at this size (ChunkTargetBytes; tests lower it)

	// dropped counts chunks dropped from memory once stored: a query that
	// read the store before a drop and the memory after it would miss the
	// chunk, so it reads again (see Klines).
	dropped atomic.Uint64
	// sealed counts the chunks sealed since the ShardBars was made, grown
	// the times a head's buffer grew (each allocates).
	sealed, grown atomic.Uint64

	mu struct {
		sync.RWMutex
		symbols map[string]*symbolBars
		nseries int
		cache   symbolCache
		dirty   []*series // series with unstored changes
		pending int       // bytes of sealed chunks not yet stored
		ver     uint64    // version counter for chunks and heads
		scratch []messages.Kline
		merged  []messages.Kline
	}
}

// MemoryRetentionDefault is the bars a memory-only node keeps per series by
// default: the REST API's largest page.
const MemoryRetentionDefault = 1000

// NewShardBars returns the bars of one shard: stored in store, or in
// memory only if store is nil, keeping at least retention bars per series
// (0: every bar; durable nodes keep every bar, see Retention).
func NewShardBars(store *Store, retention int) *ShardBars {
	b := &ShardBars{store: store, retention: int64(retention), sealBytes: ChunkTargetBytes}
	b.fresh = store == nil || !store.hasChunks()
	b.mu.symbols = make(map[string]*symbolBars)
	return b
}

// series is one (symbol, interval) of a ShardBars.
type series struct {
	symbol string
	iv     messages.Interval
	head   chunkBuilder
	// headVer changes with every change of the head; headStored is the
	// version last stored (durable nodes).
	headVer, headStored uint64
	// loaded: the latest stored chunk was read into the head (or there was
	// none). Durable nodes only.
	loaded bool
	// chunks are sealed chunks held in memory, by first open time: not
	// yet stored (durable) or the retained window (memory-only).
	chunks  []memChunk
	memBars int64 // bars in chunks (memory-only retention)
	// last is the open time of the series' latest bar, wherever it is
	// (head, memory or only stored); hasLast: there is one.
	last    int64
	hasLast bool
	// open is the series' open bar as of the shard's last flush (PutDelta),
	// so a query needs no round trip to the shard; hasOpen: there is one
	// (a closed bar at or after it clears it).
	open    messages.Kline
	hasOpen bool
	dirty   bool // in ShardBars.mu.dirty
}

// memChunk is a sealed chunk in memory. Its payload is never modified
// (an amendment replaces it), so a query may read it without the lock.
type memChunk struct {
	first, last int64
	bars        int64
	payload     []byte
	ver         uint64
}

// symbolBars holds a symbol's series, by interval.
type symbolBars struct {
	byIv [messages.Interval1M + 1]*series
}

// symbolCache finds a symbol's series by the identity of its symbol
// string, before the map: closed bars come with their core's own symbol
// string, the same for every bar of the symbol, so a put need not hash the
// symbol's bytes (a shard of a 2,000-symbol node has ~30 symbols). An entry
// holds its string, so that address cannot be reused by another string
// meanwhile.
type symbolCache [256]struct {
	symbol string
	sb     *symbolBars
}

func (b *ShardBars) symbolFor(symbol string) *symbolBars {
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(symbol)))) * 0x9E3779B97F4A7C15
	e := &b.mu.cache[h>>56]
	if e.sb != nil && unsafe.StringData(e.symbol) == unsafe.StringData(symbol) && len(e.symbol) == len(symbol) {
		return e.sb
	}
	sb := b.mu.symbols[symbol]
	if sb == nil {
		sb = &symbolBars{}
		b.mu.symbols[symbol] = sb
	}
	e.symbol, e.sb = symbol, sb
	return sb
}

// seriesOf returns sb's series of iv, creating it.
func (b *ShardBars) seriesOf(sb *symbolBars, symbol string, iv messages.Interval) *series {
	if s := sb.byIv[iv]; s != nil {
		return s
	}
	s := &series{symbol: symbol, iv: iv, loaded: b.fresh}
	s.head.reset(iv)
	// Room for a few dozen bars up front: a head then grows (and
	// allocates) a few times in its series' life, not a dozen; after the
	// first seal it keeps its buffer.
	s.head.buf = make([]byte, 0, 512)
	sb.byIv[iv] = s
	b.mu.nseries++
	return s
}

// seriesFor returns the series of symbol and iv, creating it. The caller
// holds b.mu.
func (b *ShardBars) seriesFor(symbol string, iv messages.Interval) *series {
	return b.seriesOf(b.symbolFor(symbol), symbol, iv)
}

// lookup returns the series of symbol and iv, or nil. The caller holds
// b.mu.
func (b *ShardBars) lookup(symbol string, iv messages.Interval) *series {
	if sb := b.mu.symbols[symbol]; sb != nil && iv.Valid() {
		return sb.byIv[iv]
	}
	return nil
}

// Put stores closed bars and runs (Kline.Repeat), in order: a bar replaces
// any stored bar with the same open time. Every bar must be closed, with a
// valid symbol and interval, aligned; a run must be a gap fill
// (Kline.ValidRun). Nothing is written to disk (see WriteDirty); errors
// come from reading a stored chunk that an amendment must change.
func (b *ShardBars) Put(ks []messages.Kline) error { return b.PutDelta(ks, nil) }

// PutDelta is Put of closed, then records the open bars of open (not
// closed, one per series, the core's Delta.Open): a query then reads a
// series' closed and open bars here, as of the same flush. A closed bar
// at or after a series' open bar clears it (a symbol removed has none).
func (b *ShardBars) PutDelta(ks, open []messages.Kline) error {
	for i := range open {
		if k := &open[i]; checkSymbol(k.Symbol) != nil || !k.Interval.Valid() || k.Closed || k.Repeat != 0 {
			return fmt.Errorf("storage: put open bars[%d]: %s/%s/%d is not an open bar", i, k.Symbol, k.Interval, k.OpenTime)
		}
	}
	for i := range ks {
		if err := checkBar(&ks[i]); err != nil {
			return fmt.Errorf("storage: put bars[%d]: %w", i, err)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range ks {
		k := &ks[i]
		s := b.seriesFor(k.Symbol, k.Interval)
		if err := b.put(s, k); err != nil {
			return err
		}
		if s.hasOpen && s.open.OpenTime <= s.last {
			s.open, s.hasOpen = messages.Kline{}, false
		}
	}
	for i := range open {
		k := &open[i]
		s := b.seriesFor(k.Symbol, k.Interval)
		s.open, s.hasOpen = *k, true
	}
	return nil
}

// OpenBar returns the open bar of symbol and iv as of the last PutDelta.
func (b *ShardBars) OpenBar(symbol string, iv messages.Interval) (messages.Kline, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if s := b.lookup(symbol, iv); s != nil && s.hasOpen {
		return s.open, true
	}
	return messages.Kline{}, false
}

func checkBar(k *messages.Kline) error {
	if err := checkSymbol(k.Symbol); err != nil {
		return err
	}
	if !k.Interval.Valid() {
		return fmt.Errorf("%s: invalid interval %d", k.Symbol, k.Interval)
	}
	if !k.Closed {
		return fmt.Errorf("%s/%s/%d: bar is not closed", k.Symbol, k.Interval, k.OpenTime)
	}
	if k.OpenTime != k.Interval.Align(k.OpenTime) || k.OpenTime < 0 || k.OpenTime > maxOpenTime {
		return fmt.Errorf("%s/%s/%d: open time not aligned or out of range", k.Symbol, k.Interval, k.OpenTime)
	}
	if k.Repeat < 0 || k.Repeat > 0 && (!k.ValidRun() || k.Repeat >= maxChunkBars) {
		return fmt.Errorf("%s/%s/%d: a run of %d must be of empty bars", k.Symbol, k.Interval, k.OpenTime, k.Repeat)
	}
	if last, ok := advanceChecked(k.Interval, k.OpenTime, k.Repeat); !ok || last > maxOpenTime {
		return fmt.Errorf("%s/%s/%d: a run of %d ends beyond any time", k.Symbol, k.Interval, k.OpenTime, k.Repeat)
	}
	return nil
}

// put stores one entry. The caller holds b.mu.
func (b *ShardBars) put(s *series, k *messages.Kline) error {
	if !s.loaded {
		if err := b.loadHead(s); err != nil {
			return err
		}
	}
	if !s.hasLast || k.OpenTime > s.last {
		s.last, s.hasLast = k.LastOpenTime(), true
		c0 := cap(s.head.buf)
		s.head.add(k)
		if cap(s.head.buf) != c0 {
			b.grown.Add(1)
		}
		b.headChanged(s)
		if s.head.full(b.sealBytes) {
			b.seal(s)
		}
		return nil
	}
	s.last = max(s.last, k.LastOpenTime())
	return b.amend(s, *k)
}

// loadHead makes the series' latest stored chunk its head.
func (b *ShardBars) loadHead(s *series) error {
	c, ok, err := b.store.lastChunk(s.symbol, s.iv)
	if err != nil {
		return fmt.Errorf("storage: load head of %s %s: %w", s.symbol, s.iv, err)
	}
	s.loaded = true
	if !ok {
		return nil
	}
	key := appendChunkKey(nil, s.symbol, s.iv, c.first)
	entries, err := decodeChunk(key, s.symbol, s.iv, c.first, c.payload, b.mu.scratch[:0])
	b.mu.scratch = entries[:0]
	if err != nil {
		return fmt.Errorf("storage: load head of %s %s: %w", s.symbol, s.iv, err)
	}
	buildChunk(&s.head, s.iv, entries)
	s.last, s.hasLast = s.head.last, true
	b.mu.ver++
	s.headVer, s.headStored = b.mu.ver, b.mu.ver
	clear(entries)
	return nil
}

func (b *ShardBars) headChanged(s *series) {
	b.mu.ver++
	s.headVer = b.mu.ver
	b.markDirty(s)
}

func (b *ShardBars) markDirty(s *series) {
	if b.store != nil && !s.dirty {
		s.dirty = true
		b.mu.dirty = append(b.mu.dirty, s)
	}
}

// seal turns the head into a sealed chunk and starts an empty head.
func (b *ShardBars) seal(s *series) {
	b.sealed.Add(1)
	b.mu.ver++
	c := memChunk{first: s.head.first, last: s.head.last, bars: s.head.bars, payload: s.head.payload(), ver: b.mu.ver}
	s.chunks = append(s.chunks, c)
	s.head.reset(s.iv)
	b.mu.ver++
	s.headVer, s.headStored = b.mu.ver, b.mu.ver // an empty head needs no write
	if b.store != nil {
		b.mu.pending += len(c.payload)
		b.markDirty(s)
		return
	}
	s.memBars += c.bars
	b.trim(s)
}

// trim drops a memory-only series' oldest chunks while the rest hold at
// least the retained bars.
func (b *ShardBars) trim(s *series) {
	if b.retention <= 0 {
		return
	}
	n := 0
	for n < len(s.chunks) && s.memBars-s.chunks[n].bars+s.head.bars >= b.retention {
		s.memBars -= s.chunks[n].bars
		n++
	}
	if n > 0 {
		clear(s.chunks[:n])
		s.chunks = slices.Delete(s.chunks, 0, n)
	}
}

// chunkRef is one chunk an amendment may change.
type chunkRef struct {
	first   int64
	payload []byte
	head    bool
}

// amend writes e over bars the series already has (or over a hole
// before its last bar).
func (b *ShardBars) amend(s *series, e messages.Kline) error {
	first, last := e.OpenTime, e.LastOpenTime()
	refs, err := b.chunksOver(s, first, last)
	if err != nil {
		return err
	}
	if len(refs) == 0 || first < refs[0].first {
		// Before every chunk (a memory-only node's trimmed history, or a
		// stored chunk lost): a chunk of its own, up to the next one.
		hi := last
		if len(refs) > 0 {
			hi = prevOpen(s.iv, refs[0].first)
		}
		piece, _ := clip(e, first, hi)
		var cb chunkBuilder
		cb.reset(s.iv)
		cb.add(&piece)
		b.replaceChunk(s, &cb)
	}
	for i, ref := range refs {
		hi := last
		if i+1 < len(refs) {
			hi = min(hi, prevOpen(s.iv, refs[i+1].first))
		}
		piece, ok := clip(e, max(first, ref.first), hi)
		if !ok {
			continue
		}
		if err := b.amendChunk(s, ref, piece); err != nil {
			return err
		}
	}
	return nil
}

// chunksOver returns the chunks of s whose ranges meet [first, last], in
// order: in memory (sealed, head) and stored, the memory version of a
// chunk replacing its stored one.
func (b *ShardBars) chunksOver(s *series, first, last int64) ([]chunkRef, error) {
	var refs []chunkRef
	if b.store != nil {
		stored, err := b.store.readChunks(s.symbol, s.iv, first, last, nil)
		if err != nil {
			return nil, fmt.Errorf("storage: amend %s %s: %w", s.symbol, s.iv, err)
		}
		for _, c := range stored {
			refs = append(refs, chunkRef{first: c.first, payload: c.payload})
		}
	}
	for i := range s.chunks {
		c := &s.chunks[i]
		refs = append(refs, chunkRef{first: c.first, payload: c.payload})
	}
	if s.head.bars > 0 {
		refs = append(refs, chunkRef{first: s.head.first, head: true})
	}
	// Sort by first open time; a memory version (later in refs) replaces
	// the stored one.
	slices.SortStableFunc(refs, func(a, b chunkRef) int { return cmp.Compare(a.first, b.first) })
	out := refs[:0]
	for _, r := range refs {
		if n := len(out); n > 0 && out[n-1].first == r.first {
			out[n-1] = r
			continue
		}
		out = append(out, r)
	}
	// Keep those whose range [first, next first) meets [first, last].
	var keep []chunkRef
	for i, r := range out {
		if r.first > last {
			break
		}
		if i+1 < len(out) && out[i+1].first <= first {
			continue
		}
		keep = append(keep, r)
	}
	return keep, nil
}

// amendChunk writes piece over the chunk ref and stores the result where
// the chunk lives (head, memory), a stored-only chunk moving to memory. An
// amendment that changes nothing (a replay over stored bars) writes
// nothing.
func (b *ShardBars) amendChunk(s *series, ref chunkRef, piece messages.Kline) error {
	var payload []byte
	if ref.head {
		payload = s.head.payload()
	} else {
		payload = ref.payload
	}
	key := appendChunkKey(nil, s.symbol, s.iv, ref.first)
	entries, err := decodeChunk(key, s.symbol, s.iv, ref.first, payload, b.mu.scratch[:0])
	b.mu.scratch = entries[:0]
	if err != nil {
		return fmt.Errorf("storage: amend %s %s: %w", s.symbol, s.iv, err)
	}
	b.mu.merged = mergeEntries(b.mu.merged, entries, piece)
	var cb chunkBuilder
	buildChunk(&cb, s.iv, b.mu.merged)
	clear(entries)
	clear(b.mu.merged)
	if ref.head {
		if cb.bars == s.head.bars && bytes.Equal(cb.buf, s.head.buf) {
			return nil
		}
		s.head = cb
		b.headChanged(s)
		return nil
	}
	if bytes.Equal(cb.payload(), payload) {
		return nil
	}
	b.replaceChunk(s, &cb)
	return nil
}

// replaceChunk puts the sealed chunk cb in memory, replacing the one in
// memory with the same first open time if any.
func (b *ShardBars) replaceChunk(s *series, cb *chunkBuilder) {
	b.mu.ver++
	c := memChunk{first: cb.first, last: cb.last, bars: cb.bars, payload: cb.payload(), ver: b.mu.ver}
	i, found := slices.BinarySearchFunc(s.chunks, c.first, func(m memChunk, t int64) int { return cmp.Compare(m.first, t) })
	var oldBytes int
	var oldBars int64
	if found {
		oldBytes, oldBars = len(s.chunks[i].payload), s.chunks[i].bars
		s.chunks[i] = c
	} else {
		s.chunks = slices.Insert(s.chunks, i, c)
	}
	if b.store != nil {
		b.mu.pending += len(c.payload) - oldBytes
	} else {
		s.memBars += c.bars - oldBars
	}
	b.markDirty(s)
}

// PendingBytes returns the bytes of sealed chunks waiting for WriteDirty
// (0 on a memory-only node): the shard snapshots early when they grow.
func (b *ShardBars) PendingBytes() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.pending
}

// written identifies a chunk or head WriteDirty stored.
type written struct {
	s     *series
	first int64
	ver   uint64
	head  bool
}

// WriteDirty stores every sealed chunk not yet stored and every head
// changed since it was last stored, fsynced (unless the durability is
// none), and reports how many chunks it wrote. Bars put meanwhile are
// stored by the next call. On error nothing is marked stored: the next
// call writes it all again. A memory-only ShardBars writes nothing.
func (b *ShardBars) WriteDirty(ctx context.Context) (int, error) {
	if b.store == nil {
		return 0, nil
	}
	b.mu.Lock()
	var kvs []kvOp
	var marks []written
	dirty := b.mu.dirty
	b.mu.dirty = nil
	for _, s := range dirty {
		s.dirty = false
		for i := range s.chunks {
			c := &s.chunks[i]
			key := appendChunkKey(nil, s.symbol, s.iv, c.first)
			kvs = append(kvs, kvOp{key: key, val: appendRecord(make([]byte, 0, headerLen+len(c.payload)), kindChunk, key, c.payload)})
			marks = append(marks, written{s: s, first: c.first, ver: c.ver})
		}
		if s.head.bars > 0 && s.headVer != s.headStored {
			key := appendChunkKey(nil, s.symbol, s.iv, s.head.first)
			kvs = append(kvs, kvOp{key: key, val: chunkRecord(key, &s.head)})
			marks = append(marks, written{s: s, first: s.head.first, ver: s.headVer, head: true})
		}
	}
	b.mu.Unlock()
	err := b.store.writeChunks(ctx, kvs)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		for _, s := range dirty {
			b.markDirty(s)
		}
		return 0, err
	}
	for _, m := range marks {
		s := m.s
		if m.head {
			if s.headVer == m.ver {
				s.headStored = m.ver
			}
			continue
		}
		i := slices.IndexFunc(s.chunks, func(c memChunk) bool { return c.first == m.first && c.ver == m.ver })
		if i < 0 {
			continue // amended meanwhile: stored by the next call
		}
		b.mu.pending -= len(s.chunks[i].payload)
		s.chunks = slices.Delete(s.chunks, i, i+1)
		b.dropped.Add(1)
	}
	return len(kvs), nil
}

// Klines appends to dst the bars of symbol and iv with open time in
// [start, end], ascending, runs expanded, at most limit of them (limit <=
// 0: no limit). It decodes only the chunks that hold them.
func (b *ShardBars) Klines(symbol string, iv messages.Interval, start, end int64, limit int, dst []messages.Kline) ([]messages.Kline, error) {
	if err := checkSeries(symbol, iv); err != nil {
		return dst, err
	}
	if start > end {
		return dst, nil
	}
	start = max(start, 0)
	end = min(end, maxOpenTime)
	chunks, err := b.gatherChunks(symbol, iv, start, end)
	if err != nil {
		return dst, err
	}
	// By first open time; a memory version (later) replaces a stored one.
	slices.SortStableFunc(chunks, func(a, b storedChunk) int { return cmp.Compare(a.first, b.first) })
	want := int64(-1)
	if limit > 0 {
		want = int64(limit)
	}
	lastEmitted := int64(-1)
	for i := 0; i < len(chunks) && want != 0; i++ {
		if i+1 < len(chunks) && chunks[i+1].first == chunks[i].first {
			continue // the later one (memory) replaces it
		}
		if dst, err = appendChunkBars(dst, symbol, iv, chunks[i], start, end, &want, &lastEmitted); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// gatherChunks returns the chunks of symbol and iv that may hold bars in
// [start, end], stored and in memory (unsorted; a chunk may come twice,
// stored and in memory). The store is read without the lock, then the
// memory under it; if a chunk moved from memory to the store in between
// (dropped changed), the pair is read again, and after two such misses
// the store is read under the lock (rare: it keeps writers out meanwhile).
func (b *ShardBars) gatherChunks(symbol string, iv messages.Interval, start, end int64) ([]storedChunk, error) {
	if b.store == nil {
		b.mu.RLock()
		defer b.mu.RUnlock()
		return b.memChunks(symbol, iv, start, end, nil), nil
	}
	for range 2 {
		gen := b.dropped.Load()
		chunks, err := b.store.readChunks(symbol, iv, start, end, nil)
		if err != nil {
			return nil, err
		}
		b.mu.RLock()
		if b.dropped.Load() == gen {
			chunks = b.memChunks(symbol, iv, start, end, chunks)
			b.mu.RUnlock()
			return chunks, nil
		}
		b.mu.RUnlock()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	chunks, err := b.store.readChunks(symbol, iv, start, end, nil)
	if err != nil {
		return nil, err
	}
	return b.memChunks(symbol, iv, start, end, chunks), nil
}

// memChunks appends the chunks in memory that may hold bars in [start,
// end]: sealed ones by reference, the head as a copy. The caller holds
// b.mu for reading.
func (b *ShardBars) memChunks(symbol string, iv messages.Interval, start, end int64, dst []storedChunk) []storedChunk {
	s := b.lookup(symbol, iv)
	if s == nil {
		return dst
	}
	for i := range s.chunks {
		c := &s.chunks[i]
		if c.last >= start && c.first <= end {
			dst = append(dst, storedChunk{first: c.first, payload: c.payload})
		}
	}
	if s.head.bars > 0 && s.head.last >= start && s.head.first <= end {
		dst = append(dst, storedChunk{first: s.head.first, payload: s.head.payload()})
	}
	return dst
}

// appendChunkBars appends c's bars with open time in [start, end] (and
// after lastEmitted) to dst, runs expanded, while *want (negative: no
// limit) is not 0.
func appendChunkBars(dst []messages.Kline, symbol string, iv messages.Interval, c storedChunk, start, end int64, want, lastEmitted *int64) ([]messages.Kline, error) {
	key := appendChunkKey(nil, symbol, iv, c.first)
	var r chunkReader
	if err := r.init(key, symbol, iv, c.first, c.payload); err != nil {
		return dst, err
	}
	if r.lastOpen() < start {
		return dst, nil
	}
	var k messages.Kline
	for r.more() && *want != 0 {
		if err := r.entry(&k); err != nil {
			return dst, err
		}
		if k.OpenTime > end {
			break
		}
		lo := max(start, *lastEmitted+1)
		if k.LastOpenTime() < lo {
			continue
		}
		n := k.Repeat
		k.Repeat = 0
		t := k.OpenTime
		j := int64(0)
		if t < lo {
			j = iv.Periods(t, iv.Align(lo))
			t = iv.Advance(t, j)
			if t < lo {
				j++
				t = iv.Next(t)
			}
		}
		for ; j <= n && t <= end && *want != 0; j++ {
			k.OpenTime, k.CloseTime = t, iv.CloseTime(t)
			dst = append(dst, k)
			*lastEmitted = t
			if *want > 0 {
				*want--
			}
			t = iv.Next(t)
		}
	}
	return dst, nil
}

// BarsStats describes a ShardBars.
type BarsStats struct {
	Series       int    // series in memory
	Sealed       uint64 // chunks sealed so far (each allocates its payload)
	HeadGrowths  uint64 // times a head's buffer grew (a young series' first chunk)
	PendingBytes int    // sealed chunks waiting for WriteDirty
}

// Stats returns the ShardBars' counters.
func (b *ShardBars) Stats() BarsStats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return BarsStats{Series: b.mu.nseries, Sealed: b.sealed.Load(), HeadGrowths: b.grown.Load(), PendingBytes: b.mu.pending}
}
