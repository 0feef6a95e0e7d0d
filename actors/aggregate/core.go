package aggregate

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/klinecast/klinecast/messages"
)

// Config configures a Core. The zero value is not valid: Intervals is required.
type Config struct {
	// Intervals are the periods every symbol is aggregated into. Order does
	// not matter; New sorts them by length. Required.
	Intervals []messages.Interval

	// AllowedLateness is how far (ms) a trade may lie before the open bar
	// of its symbol and still be applied, amending the closed bar it falls
	// in. Zero (the default) drops every late trade; drops are counted per
	// symbol. Negative values are invalid.
	AllowedLateness int64

	// Symbols, when non-nil, fixes the symbol set: trades of other symbols
	// are refused with UnknownSymbol. Nil means symbols are created on their
	// first trade, with no fixed capacity.
	Symbols []string
}

// Validate reports a configuration error.
func (c *Config) Validate() error {
	if len(c.Intervals) == 0 {
		return errors.New("aggregate: no intervals configured")
	}
	if len(c.Intervals) > maxIntervals {
		return fmt.Errorf("aggregate: %d intervals configured, at most %d exist", len(c.Intervals), maxIntervals)
	}
	for _, iv := range c.Intervals {
		if !iv.Valid() {
			return fmt.Errorf("aggregate: %w: %v", messages.ErrUnknownInterval, iv)
		}
	}
	if c.AllowedLateness < 0 {
		return fmt.Errorf("aggregate: negative allowed lateness %d ms", c.AllowedLateness)
	}
	return nil
}

// Outcome is what Apply did with a trade. Everything but Applied means the
// trade changed nothing.
type Outcome uint8

const (
	// Applied: the trade updated every interval of its symbol.
	Applied Outcome = iota
	// Duplicate: the symbol already applied this aggregate id (or a later
	// one); producers may retry batches safely.
	Duplicate
	// LateDropped: the trade is older than its symbol's open bars by more
	// than AllowedLateness (or falls before the symbol's first bar).
	LateDropped
	// Invalid: the trade failed the core's sanity checks (zero price,
	// empty symbol, time before 2000, negative id). Ingest validates
	// fully with messages.Trade.Validate before; this is the last guard.
	Invalid
	// UnknownSymbol: the core has a fixed symbol list without this symbol.
	UnknownSymbol
	// Overflow: a volume sum would overflow 128 bits.
	Overflow
)

// Sentinel errors for the outcomes other than Applied.
var (
	ErrDuplicate     = errors.New("aggregate: duplicate aggregate trade id")
	ErrLate          = errors.New("aggregate: trade older than allowed lateness")
	ErrInvalidTrade  = messages.ErrInvalidTrade // one sentinel for an invalid trade, wherever it is found
	ErrUnknownSymbol = errors.New("aggregate: unknown symbol")
)

// Err returns the sentinel error of o, nil for Applied.
func (o Outcome) Err() error {
	switch o {
	case Applied:
		return nil
	case Duplicate:
		return ErrDuplicate
	case LateDropped:
		return ErrLate
	case Invalid:
		return ErrInvalidTrade
	case UnknownSymbol:
		return ErrUnknownSymbol
	case Overflow:
		return messages.ErrOverflow
	}
	return fmt.Errorf("aggregate: outcome %d", o)
}

// String names the outcome.
func (o Outcome) String() string {
	return [...]string{"applied", "duplicate", "late", "invalid", "unknown-symbol", "overflow", "?"}[min(int(o), 6)]
}

// Stats counts what the core did since it was created (or restored: counts
// restart at zero except per-symbol late drops, which are state).
type Stats struct {
	Applied     uint64
	Duplicates  uint64
	LateDropped uint64
	LateApplied uint64
	Invalid     uint64
	Unknown     uint64
	Overflows   uint64
	Symbols     int
}

// Delta is one batch of output, the core's Ready: every bar finalized since
// the previous batch (closing updates, gap fills, and late corrections of
// already-closed bars), then the current state of every open bar that
// changed. A consumer persists Closed, then publishes Closed followed by
// Open, then hands the Delta back with Release.
//
// An entry of Closed may be a run (messages.Kline.Repeat > 0): the bar and
// Repeat more bars of its series after it, one per period, equal to it but
// for their times. Runs are gaps with no trades, headed by the closed bar
// when that one was empty too (only such bars repeat: Kline.ValidRun), so a
// roll emits at most two entries per series whatever the gap's length: the
// closed bar, then the run of the gap. The entries of one series come in
// order of open time, except corrections: a late trade re-emits, alone
// (Repeat 0), the one closed bar it amended, which may lie inside a run
// emitted earlier (in this Delta or a previous one). A consumer applies the
// entries in order, a later bar replacing the same bar of an earlier run;
// one that needs single bars expands them with messages.ExpandRuns.
//
// The Delta and its slices belong to the consumer until Release; the core
// never writes to a Delta it handed out, so a slow consumer loses nothing.
type Delta struct {
	Closed    []messages.Kline
	Open      []messages.Kline
	Watermark int64 // the clock time the core had reached (ms; 0 if never ticked)
}

// Empty reports whether d carries no bars.
func (d *Delta) Empty() bool { return len(d.Closed) == 0 && len(d.Open) == 0 }

// Core aggregates trades of many symbols into bars of every configured
// interval. It is a pure state machine: trades (Apply) and clock ticks (Tick)
// go in, Delta batches (Ready) come out. It never reads the wall clock, starts
// no goroutine and does no I/O, so a replay of the same inputs yields the
// same outputs. It is not safe for concurrent use; a shard actor owns one.
//
// State is flat: the open bars of all symbols live in one slice, symbol-major
// with one slot per interval, so a flush touches adjacent memory and a trade
// or a flush allocates nothing in steady state.
//
// A trade does not touch the open bars of every interval. It updates one
// pending partial bar per symbol (cur), which is folded into all of the
// symbol's open bars when they are read (Ready, OpenBar, Snapshot) or must
// roll. Every interval's bar is then "open bar ⊕ cur", and the per-trade
// cost no longer grows with the number of intervals.
type Core struct {
	intervals []messages.Interval
	n         int // len(intervals)
	lateness  int64
	fixed     bool

	index map[string]int32 // symbol → slot
	// indexVersion changes whenever index does, so a Checkpoint copies
	// the map only when symbols were added or removed since its last save.
	indexVersion uint64
	syms         []symbolState    // by slot
	free         []int32          // slots of removed symbols, reused first
	bars         []messages.Kline // slot*n + interval index
	dirty        dirtySet         // symbol slots whose bars changed since the last Ready

	// recent holds closed bars still inside the lateness window, so a late
	// trade can amend them: single bars, also those of a run emitted as
	// one entry (see emitClosed). Empty when AllowedLateness is 0.
	recent map[recentKey]messages.Kline

	watermark int64
	// nextClose is a lower bound of every open bar's CloseTime: Tick does
	// nothing while the watermark has not passed it.
	nextClose int64
	nextPrune int64 // watermark at which recent is pruned next

	pending *Delta
	spare   []*Delta
	order   []int32 // scratch for Ready

	// cache maps a symbol string's identity (data pointer and length) to
	// its slot, in front of the map. Ingest interns symbol strings, so the
	// same symbol arrives as the same string; a hit costs a compare instead
	// of hashing. Each entry holds the string itself, which keeps its bytes
	// alive: no other string can occupy that address while it is cached,
	// so equal identity implies equal content.
	cache *[symbolCacheSize]cacheEntry

	stats Stats
}

type symbolState struct {
	// cur accumulates the trades applied since the last fold: the only
	// Kline fields used are OHLC, the sums, the count and the trade ids.
	// INVARIANT: every trade in cur lies inside every open bar of the
	// symbol and is later than every trade already folded into them.
	cur         messages.Kline
	name        string
	lastAggID   int64 // -1 before the first trade
	lateDropped uint64
	// minClose is the earliest CloseTime of the symbol's open bars: a
	// trade or tick past it must fold and roll.
	minClose int64
	// maxHi is the largest Volume.Hi of the open bars at the last fold,
	// for a cheap, conservative overflow check.
	maxHi uint64
	// lateBefore is the latest OpenTime of the symbol's open bars: a trade
	// before it misses the open bar of at least one interval, so it is late.
	lateBefore int64
	live       bool
}

const symbolCacheSize = 1024

type cacheEntry struct {
	sym  string
	slot int32
}

func cacheIndex(sym string) int {
	return int(uintptr(unsafe.Pointer(unsafe.StringData(sym)))>>3^uintptr(len(sym))) & (symbolCacheSize - 1)
}

type recentKey struct {
	slot int32
	iv   messages.Interval
	open int64
}

// New returns an empty core.
func New(cfg Config) (*Core, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ivs := slices.Clone(cfg.Intervals)
	slices.Sort(ivs)
	ivs = slices.Compact(ivs)
	c := &Core{
		intervals: ivs,
		n:         len(ivs),
		lateness:  cfg.AllowedLateness,
		index:     make(map[string]int32),
		pending:   &Delta{},
		nextClose: math.MaxInt64,
		cache:     new([symbolCacheSize]cacheEntry),
	}
	if c.lateness > 0 {
		c.recent = make(map[recentKey]messages.Kline)
	}
	if cfg.Symbols != nil {
		c.fixed = true
		for _, s := range cfg.Symbols {
			s = messages.NormalizeSymbol(s)
			if _, ok := c.index[s]; ok {
				continue
			}
			c.index[s] = -1 // known, no bars until its first trade
		}
	}
	return c, nil
}

// Intervals returns the configured intervals, sorted by length. The slice
// must not be modified.
func (c *Core) Intervals() []messages.Interval { return c.intervals }

// Watermark returns the latest clock time given to Tick.
func (c *Core) Watermark() int64 { return c.watermark }

// Stats returns the counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.Symbols = len(c.syms) - len(c.free)
	return s
}

func (c *Core) lookup(sym string) (int32, bool) {
	e := &c.cache[cacheIndex(sym)]
	if unsafe.StringData(e.sym) == unsafe.StringData(sym) && len(e.sym) == len(sym) && len(sym) > 0 {
		return e.slot, true
	}
	slot, ok := c.index[sym]
	if !ok || slot < 0 {
		return -1, ok
	}
	e.sym, e.slot = sym, slot
	return slot, true
}

// Apply applies one trade. The trade should have passed
// messages.Trade.Validate; Apply repeats only the checks it relies on.
// Apply allocates nothing unless the trade creates a symbol or closes bars
// beyond the largest batch seen so far.
func (c *Core) Apply(t *messages.Trade) Outcome {
	if t.Price == 0 || t.Symbol == "" || t.Time < messages.MinTradeTime || t.AggID < 0 {
		c.stats.Invalid++
		return Invalid
	}
	slot, known := c.lookup(t.Symbol)
	created := false
	if slot < 0 {
		if c.fixed && !known {
			c.stats.Unknown++
			return UnknownSymbol
		}
		slot = c.addSymbol(t.Symbol, t.Time)
		created = true
	}
	s := &c.syms[slot]
	if t.AggID <= s.lastAggID {
		c.stats.Duplicates++
		return Duplicate
	}
	if t.Time < s.lateBefore {
		return c.applyLate(slot, t)
	}
	if t.Time > s.minClose {
		c.fold(slot)
		c.rollSymbol(slot, t.Time)
	}
	cur := &s.cur
	if (cur.Volume.Hi | s.maxHi) >= 1<<62 {
		// Conservative: below this no fold of cur into a bar can overflow.
		c.stats.Overflows++
		return Overflow
	}
	// INVARIANT: trades reach cur in aggregate-id order, so t is the latest:
	// it sets the close and the last trade id, and the first trade of cur
	// sets open and first id. (This is contribution.add specialised to
	// in-order trades: the hot path of the whole system.)
	first, last, count := t.FirstID, t.LastID, int64(1)
	if first >= 0 && last >= first {
		count = last - first + 1
	} else {
		first, last = t.AggID, t.AggID
	}
	if cur.TradeCount == 0 {
		cur.Open, cur.High, cur.Low = t.Price, t.Price, t.Price
		cur.FirstTradeID = first
	} else if t.Price > cur.High {
		cur.High = t.Price
	} else if t.Price < cur.Low {
		cur.Low = t.Price
	}
	cur.Close = t.Price
	cur.LastTradeID = last
	cur.TradeCount += count
	qv := messages.MulFloat(t.Price, t.Quantity)
	cur.Volume, _ = cur.Volume.Add(t.Quantity)
	cur.QuoteVolume += qv
	if !t.BuyerMaker {
		cur.TakerBuyVolume, _ = cur.TakerBuyVolume.Add(t.Quantity)
		cur.TakerBuyQuoteVolume += qv
	}
	c.dirty.mark(int(slot))
	s.lastAggID = t.AggID
	if created && c.watermark > 0 {
		// A new symbol whose first trade is older than the clock catches up
		// with every other symbol at once.
		c.rollSymbol(slot, c.watermark)
	}
	c.stats.Applied++
	return Applied
}

// applyLate handles a trade older than one of its symbol's open bars:
// within AllowedLateness it amends every bar it falls in (open or recently
// closed; closed ones are re-emitted as corrections), else it is dropped
// and counted. Either all intervals take the trade or none does.
func (c *Core) applyLate(slot int32, t *messages.Trade) Outcome {
	s := &c.syms[slot]
	if c.lateness == 0 || s.lateBefore-t.Time > c.lateness {
		s.lateDropped++
		c.stats.LateDropped++
		return LateDropped
	}
	c.fold(slot)
	base := int(slot) * c.n
	var targets [maxIntervals]*messages.Kline
	var amended [maxIntervals]messages.Kline
	for i, iv := range c.intervals {
		b := &c.bars[base+i]
		if t.Time >= b.OpenTime {
			targets[i] = b
		} else {
			k, ok := c.recent[recentKey{slot, iv, iv.Align(t.Time)}]
			if !ok {
				// Before the symbol's first bar: no invented history.
				s.lateDropped++
				c.stats.LateDropped++
				return LateDropped
			}
			amended[i] = k
			targets[i] = &amended[i]
		}
		if !fits(targets[i], t.Quantity) {
			c.stats.Overflows++
			return Overflow
		}
	}
	add := contributionOf(t)
	for i, iv := range c.intervals {
		b := targets[i]
		// Trade ids increase with time, so they order a late trade against
		// the bar's trades: it becomes the open if it precedes them all.
		switch {
		case b.TradeCount == 0:
			b.Open, b.High, b.Low, b.Close = t.Price, t.Price, t.Price, t.Price
		default:
			b.High = max(b.High, t.Price)
			b.Low = min(b.Low, t.Price)
			if add.first < b.FirstTradeID {
				b.Open = t.Price
			}
			if add.last > b.LastTradeID {
				b.Close = t.Price
			}
		}
		add.add(b)
		if b == &amended[i] {
			c.recent[recentKey{slot, iv, b.OpenTime}] = *b
			c.pending.Closed = append(c.pending.Closed, *b)
		} else {
			c.dirty.mark(int(slot))
		}
	}
	c.updateBounds(slot)
	s.lastAggID = t.AggID // a retried batch must not apply it again
	c.stats.LateApplied++
	c.stats.Applied++
	return Applied
}

// Tick advances the clock to now (ms): every symbol's bars are rolled so
// that its open bar contains now, closing and gap-filling what lies before.
// Ticks are idempotent and may be late or skipped: a tick rolls to the bar
// of now, not one bar forward, and a tick at or before the watermark does
// nothing except catch up symbols created since.
func (c *Core) Tick(now int64) {
	if now > c.watermark {
		c.watermark = now
	}
	if c.watermark <= c.nextClose {
		return
	}
	next := int64(math.MaxInt64)
	for slot := range c.syms {
		s := &c.syms[slot]
		if !s.live {
			continue
		}
		c.rollSymbol(int32(slot), c.watermark)
		next = min(next, s.minClose)
	}
	c.nextClose = next
	if c.recent != nil && c.watermark >= c.nextPrune {
		// Pruning walks the whole window: do it once per half window of
		// clock progress, not on every tick.
		c.pruneRecent()
		c.nextPrune = c.watermark + max(c.lateness/2, messages.Second)
	}
}

// rollSymbol rolls every interval of slot whose open bar ends before now.
func (c *Core) rollSymbol(slot int32, now int64) {
	if now <= c.syms[slot].minClose {
		return
	}
	c.fold(slot)
	base := int(slot) * c.n
	for i := 0; i < c.n; i++ {
		if now > c.bars[base+i].CloseTime {
			c.roll(slot, i, now)
		}
	}
	c.updateBounds(slot)
}

// fold merges slot's pending partial bar into all of its open bars.
func (c *Core) fold(slot int32) {
	s := &c.syms[slot]
	cur := &s.cur
	if cur.TradeCount == 0 {
		return
	}
	base := int(slot) * c.n
	var hi uint64
	for i := base; i < base+c.n; i++ {
		b := &c.bars[i]
		if b.TradeCount == 0 {
			b.Open, b.High, b.Low = cur.Open, cur.High, cur.Low
			b.FirstTradeID, b.LastTradeID = cur.FirstTradeID, cur.LastTradeID
		} else {
			b.High = max(b.High, cur.High)
			b.Low = min(b.Low, cur.Low)
			b.LastTradeID = max(b.LastTradeID, cur.LastTradeID)
			b.FirstTradeID = min(b.FirstTradeID, cur.FirstTradeID)
		}
		b.Close = cur.Close
		b.Volume, _ = b.Volume.AddWide(cur.Volume)
		b.TakerBuyVolume, _ = b.TakerBuyVolume.AddWide(cur.TakerBuyVolume)
		b.QuoteVolume += cur.QuoteVolume
		b.TakerBuyQuoteVolume += cur.TakerBuyQuoteVolume
		b.TradeCount += cur.TradeCount
		hi = max(hi, b.Volume.Hi)
	}
	s.maxHi = hi
	*cur = messages.Kline{}
}

// roll closes interval i's open bar of slot and opens the bar containing
// to as a placeholder at the previous close. The closed bar and the empty
// bars of any gap before the new one are emitted as at most two entries:
// the closed bar, then one run (Repeat) for the whole gap; an empty closed
// bar (a clock-opened placeholder, equal to the gap bars but for its time)
// heads the run itself. The cost is O(1) in the gap's length (O(months)
// for 1M), plus the bars of the gap inside the lateness window, which
// recent keeps one by one. Rolling to a time inside the open bar is a
// no-op, which makes clock/trade races harmless.
func (c *Core) roll(slot int32, i int, to int64) {
	iv := c.intervals[i]
	b := &c.bars[int(slot)*c.n+i]
	target := iv.Align(to)
	if target <= b.OpenTime {
		return
	}
	gap := iv.Periods(b.OpenTime, target) - 1 // the bars strictly between
	closed := *b
	closed.Closed = true
	prev := b.Close
	if closed.ValidRun() {
		closed.Repeat = gap
		c.emitClosed(slot, closed, target)
	} else {
		c.emitClosed(slot, closed, target)
		if gap > 0 {
			run := emptyBar(b.Symbol, iv, iv.Next(b.OpenTime), prev)
			run.Closed = true
			run.Repeat = gap - 1
			c.emitClosed(slot, run, target)
		}
	}
	*b = emptyBar(b.Symbol, iv, target, prev)
	c.dirty.mark(int(slot))
}

// emitClosed appends the closed entry k (a bar, or a run of empty bars) to
// the pending Delta, and keeps in recent each bar of it that a late trade
// may still reach once the series' open bar is at openAt: those closing at
// or after openAt − lateness (the symbol's lateBefore, which bounds late
// trades, is at least openAt once the roll is done). Only the tail of a
// run can qualify, so this costs at most lateness/period + 1 entries,
// never the run's length.
func (c *Core) emitClosed(slot int32, k messages.Kline, openAt int64) {
	c.pending.Closed = append(c.pending.Closed, k)
	if c.recent == nil {
		return
	}
	limit := openAt - c.lateness
	n := k.Repeat
	k.Repeat = 0
	if d := k.Interval.Fixed(); d > 0 {
		// Walk back from the run's last bar while bars reach the window.
		first := k.OpenTime
		for j := n; j >= 0; j-- {
			k.OpenTime = first + j*d
			k.CloseTime = k.OpenTime + d - 1
			if k.CloseTime < limit {
				break
			}
			c.recent[recentKey{slot, k.Interval, k.OpenTime}] = k
		}
		return
	}
	for j := int64(0); ; j++ { // 1M: a run spans few months
		if k.CloseTime >= limit {
			c.recent[recentKey{slot, k.Interval, k.OpenTime}] = k
		}
		if j == n {
			break
		}
		k.OpenTime = k.Interval.Next(k.OpenTime)
		k.CloseTime = k.Interval.CloseTime(k.OpenTime)
	}
}

// updateBounds recomputes slot's lateBefore and minClose from its bars.
func (c *Core) updateBounds(slot int32) {
	base := int(slot) * c.n
	late, closes := int64(math.MinInt64), int64(math.MaxInt64)
	for i := 0; i < c.n; i++ {
		late = max(late, c.bars[base+i].OpenTime)
		closes = min(closes, c.bars[base+i].CloseTime)
	}
	c.syms[slot].lateBefore, c.syms[slot].minClose = late, closes
}

// pruneRecent forgets closed bars that no trade can reach any more.
func (c *Core) pruneRecent() {
	for k, b := range c.recent {
		s := &c.syms[k.slot]
		if !s.live || b.CloseTime < s.lateBefore-c.lateness {
			delete(c.recent, k)
		}
	}
}

// addSymbol creates sym with its first bars at t (no invented history).
func (c *Core) addSymbol(sym string, t int64) int32 {
	var slot int32
	if n := len(c.free); n > 0 {
		slot = c.free[n-1]
		c.free = c.free[:n-1]
	} else {
		slot = int32(len(c.syms))
		c.syms = append(c.syms, symbolState{})
		c.bars = append(c.bars, make([]messages.Kline, c.n)...)
		c.sizeForSymbols()
	}
	c.syms[slot] = symbolState{name: sym, lastAggID: -1, live: true}
	base := int(slot) * c.n
	for i, iv := range c.intervals {
		c.bars[base+i] = emptyBar(sym, iv, iv.Align(t), 0)
	}
	c.dirty.mark(int(slot))
	c.updateBounds(slot)
	c.nextClose = min(c.nextClose, c.syms[slot].minClose)
	c.index[sym] = slot
	c.indexVersion++
	return slot
}

// RemoveSymbol forgets sym: its open bars are finalized into the pending
// Delta as closed bars (no accepted trade disappears) and its slot is
// reused. With a fixed symbol list the symbol stays known (it may trade
// again and starts afresh). It reports whether sym had state.
func (c *Core) RemoveSymbol(sym string) bool {
	slot, _ := c.lookup(sym)
	if slot < 0 {
		return false
	}
	c.fold(slot)
	base := int(slot) * c.n
	for i := 0; i < c.n; i++ {
		k := c.bars[base+i]
		k.Closed = true
		c.pending.Closed = append(c.pending.Closed, k) // not kept in recent: the symbol is gone
		c.bars[base+i] = messages.Kline{}
	}
	c.dirty.clear(int(slot))
	for k := range c.recent {
		if k.slot == slot {
			delete(c.recent, k)
		}
	}
	c.syms[slot] = symbolState{}
	c.free = append(c.free, slot)
	if c.fixed {
		c.index[sym] = -1
	} else {
		delete(c.index, sym)
	}
	c.indexVersion++
	clear(c.cache[:]) // removal is rare; forget every cached slot
	return true
}

// MarkAllOpen makes the next Ready carry the open bar of every symbol, not
// only the changed ones: a consumer that keeps open bars (the shard's bar
// series) gets them all after a restore.
func (c *Core) MarkAllOpen() {
	for slot := range c.syms {
		if c.syms[slot].live {
			c.dirty.mark(slot)
		}
	}
}

// HasReady reports whether Ready would return a non-empty Delta.
func (c *Core) HasReady() bool { return len(c.pending.Closed) > 0 || c.dirty.len() > 0 }

// Ready returns the changes since the previous Ready and starts a new batch.
// The caller owns the Delta until it passes it to Release; until then the
// core accumulates into another buffer (allocated only if every buffer is
// out, so a consumer that releases before the next Ready keeps the core at
// two buffers and zero allocations).
func (c *Core) Ready() *Delta {
	d := c.pending
	d.Watermark = c.watermark
	c.order = c.dirty.take(c.order[:0])
	for _, slot := range c.order {
		c.fold(slot)
		base := int(slot) * c.n
		d.Open = append(d.Open, c.bars[base:base+c.n]...)
	}
	if n := len(c.spare); n > 0 {
		c.pending = c.spare[n-1]
		c.spare = c.spare[:n-1]
	} else {
		c.pending = &Delta{}
		c.fit(c.pending)
	}
	return d
}

// sizeForSymbols sizes the buffers that grow with the symbols for
// len(c.syms) of them: the dirty set, the flush order and the pending
// Delta (see fit). Called when a slot is added and after a restore.
func (c *Core) sizeForSymbols() {
	c.dirty.grow(len(c.syms))
	c.order = reserve(c.order, len(c.syms))
	c.fit(c.pending)
}

// fit sizes d for a flush of every symbol: their open bars and one closed
// entry per series. Buffers grow when a symbol is added, then, not when
// trades and ticks come: a flush after the hour closes five bars of every
// symbol at once, and would otherwise grow Closed again at each new high
// hours later. A gap of any length is one entry (a run), or two after a bar
// with trades, so only a flush that rolls most series across a gap after
// trades, or that carries many corrections, still grows Closed.
func (c *Core) fit(d *Delta) {
	series := len(c.syms) * c.n
	d.Open = reserve(d.Open, series)
	d.Closed = reserve(d.Closed, series)
}

// reserve returns s with capacity for at least n elements, growing it as
// append does (geometrically, so reserving one more at a time is cheap).
func reserve[T any](s []T, n int) []T {
	if n <= cap(s) {
		return s
	}
	return slices.Grow(s, n-len(s))
}

// Release hands a Delta from Ready back for reuse. d must not be used after.
func (c *Core) Release(d *Delta) {
	clear(d.Closed) // drop symbol string references
	clear(d.Open)
	d.Closed, d.Open, d.Watermark = d.Closed[:0], d.Open[:0], 0
	c.fit(d) // symbols may have been added since d was sized
	c.spare = append(c.spare, d)
}

// OpenBar returns the open bar of sym for iv.
func (c *Core) OpenBar(sym string, iv messages.Interval) (messages.Kline, bool) {
	slot, _ := c.lookup(sym)
	if slot < 0 {
		return messages.Kline{}, false
	}
	i := slices.Index(c.intervals, iv)
	if i < 0 {
		return messages.Kline{}, false
	}
	c.fold(slot) // not observable: the open bar reads the same either way
	return c.bars[int(slot)*c.n+i], true
}

// Symbols appends the names of all symbols with state to dst.
func (c *Core) Symbols(dst []string) []string {
	for i := range c.syms {
		if c.syms[i].live {
			dst = append(dst, c.syms[i].name)
		}
	}
	return dst
}

// SymbolInfo describes one symbol's state.
type SymbolInfo struct {
	Symbol      string
	LastAggID   int64 // -1 before the first trade
	LateDropped uint64
}

// Symbol returns sym's per-symbol state.
func (c *Core) Symbol(sym string) (SymbolInfo, bool) {
	slot, _ := c.lookup(sym)
	if slot < 0 {
		return SymbolInfo{}, false
	}
	s := &c.syms[slot]
	return SymbolInfo{Symbol: s.name, LastAggID: s.lastAggID, LateDropped: s.lateDropped}, true
}
