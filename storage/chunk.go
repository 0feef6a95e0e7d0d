package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/klinecast/klinecast/messages"
)

// Chunks
//
// A chunk holds consecutive closed bars of one series (symbol, interval),
// compactly, the way time-series databases store samples (Gorilla and
// Prometheus chunks; QuestDB's columns): a bar's open time is implied by
// its position, prices are deltas from the previous close, ids deltas from
// the previous bar's, and a run of gap-filled bars is one entry however
// long. The chunk's key carries its first bar's open time; its payload:
//
//	version  byte (chunkVersion)
//	bars     uvarint   bars the chunk stands for, runs expanded
//	entries  uvarint
//	span     uvarint   periods from the first bar to the last (bars-1 without holes)
//	entries, each a header byte h then its fields:
//	  h&3 == entryRun: an empty run (no trade touched these bars)
//	      [skip]  price zigzag(price - prev close)  n-1 uvarint
//	  h&3 == entryBar: one bar
//	      [skip]  open zigzag(open - prev close)
//	      unless flat: zigzag(close - open), uvarint(high - max(open, close)),
//	                   uvarint(min(open, close) - low)
//	      volume uvarint(hi) uvarint(lo)
//	      unless quote derived: quote volume float64 bits (8 bytes, little-endian)
//	      taker explicit: taker volume uvarint(hi) uvarint(lo), taker quote float64 bits
//	      count uvarint
//	      unless contiguous: zigzag(first id - (prev last id + 1))
//	      uvarint(last id - first id)
//	  flags: entrySkip: a hole of uvarint(skip) missing bars precedes the entry
//	         (a symbol removed and traded again); entryFlat: O=H=L=C;
//	         entryQuoteDerived: quote volume == close × volume, exactly, as
//	         one trade makes it; entryTakerNone: taker sums zero; entryTakerAll:
//	         taker sums equal the totals; entryContiguous: first id follows the
//	         previous bar's last id.
//
// Differences are taken in wrapping uint64 arithmetic, so any value
// round-trips exactly. A 1m bar of a quiet symbol with one trade takes
// about 15 bytes, a busy one about 35, and a run of any length 3 to 5.
const chunkVersion = 1

const (
	entryBar          = 0
	entryRun          = 1
	entrySkip         = 1 << 2
	entryFlat         = 1 << 3
	entryQuoteDerived = 1 << 4
	entryTakerNone    = 1 << 5
	entryTakerAll     = 1 << 6
	entryContiguous   = 1 << 7
)

// ChunkTargetBytes is the size at which a head chunk is sealed: small
// enough that a 1,000-bar query decodes a few kilobytes, large enough that
// a day of a busy 1m series is a handful of keys.
const ChunkTargetBytes = 4096

// maxChunkEntries seals a chunk of tiny entries (runs) before it holds so
// many that decoding it for one bar is slow.
const maxChunkEntries = 1024

// chunkBuilder encodes a chunk one entry at a time. The zero value is not
// usable; call reset.
type chunkBuilder struct {
	iv      messages.Interval
	buf     []byte // the entries
	first   int64  // the first bar's open time (bars > 0)
	last    int64  // the last bar's open time (bars > 0)
	bars    int64
	entries int
	span    int64 // periods from first to last

	prevClose messages.Decimal
	prevLast  int64

	// The last entry, so that a run can be extended in place.
	lastOff        int              // where it starts in buf
	lastRun        bool             // it is a run
	lastPrice      messages.Decimal // its price (a run)
	lastN          int64            // its bars (a run)
	lastSkip       int64            // its skip
	closeBeforeRun messages.Decimal // prevClose before it
}

func (b *chunkBuilder) reset(iv messages.Interval) {
	*b = chunkBuilder{iv: iv, buf: b.buf[:0], prevLast: -1}
}

// size is the encoded size of the entries (the payload adds a few bytes).
func (b *chunkBuilder) size() int { return len(b.buf) }

// full reports whether the chunk should be sealed, at target bytes.
func (b *chunkBuilder) full(target int) bool {
	return len(b.buf) >= target || b.entries >= maxChunkEntries
}

// add appends k (a bar, or a run when k.Repeat > 0 and k.ValidRun()) after
// the chunk's last bar. The caller guarantees k.OpenTime > b.last and that
// it is aligned to the interval.
func (b *chunkBuilder) add(k *messages.Kline) {
	var skip int64
	if b.bars > 0 {
		skip = b.iv.Periods(b.last, k.OpenTime) - 1
	} else {
		b.first = k.OpenTime
	}
	n := k.Bars()
	run := k.ValidRun()
	if run && b.bars > 0 && b.lastRun && skip == 0 && k.Open == b.lastPrice {
		// Extend the run: re-encode the last entry with more bars.
		b.buf = b.buf[:b.lastOff]
		b.prevClose = b.closeBeforeRun
		b.entries--
		b.bars -= b.lastN
		b.span -= b.lastN - 1 // its skip and step stay counted
		n += b.lastN
		skip = b.lastSkip
		b.appendRun(k.Open, n, skip)
	} else if run {
		if b.bars > 0 {
			b.span += skip + 1
		}
		b.appendRun(k.Open, n, skip)
	} else {
		if b.bars > 0 {
			b.span += skip + 1
		}
		b.appendBar(k, skip)
		n = 1 // a bar that is not a valid run never repeats
	}
	b.bars += n
	b.entries++
	b.last = b.iv.Advance(b.first, b.span)
}

func (b *chunkBuilder) appendRun(price messages.Decimal, n, skip int64) {
	b.lastOff, b.lastRun, b.lastPrice, b.lastN, b.lastSkip, b.closeBeforeRun = len(b.buf), true, price, n, skip, b.prevClose
	h := byte(entryRun)
	if skip > 0 {
		h |= entrySkip
	}
	b.buf = append(b.buf, h)
	if skip > 0 {
		b.buf = binary.AppendUvarint(b.buf, uint64(skip))
	}
	b.buf = appendZigzag(b.buf, uint64(price)-uint64(b.prevClose))
	b.buf = binary.AppendUvarint(b.buf, uint64(n-1))
	b.span += n - 1
	b.prevClose = price
}

func (b *chunkBuilder) appendBar(k *messages.Kline, skip int64) {
	b.lastOff, b.lastRun, b.lastSkip = len(b.buf), false, skip
	h := byte(entryBar)
	if skip > 0 {
		h |= entrySkip
	}
	flat := k.Open == k.High && k.Open == k.Low && k.Open == k.Close
	if flat {
		h |= entryFlat
	}
	if flat && k.Volume.Hi == 0 && math.Float64bits(messages.MulFloat(k.Close, messages.Decimal(k.Volume.Lo))) == math.Float64bits(k.QuoteVolume) {
		h |= entryQuoteDerived
	}
	switch {
	case k.TakerBuyVolume == (messages.Decimal128{}) && math.Float64bits(k.TakerBuyQuoteVolume) == 0:
		h |= entryTakerNone
	case k.TakerBuyVolume == k.Volume && math.Float64bits(k.TakerBuyQuoteVolume) == math.Float64bits(k.QuoteVolume):
		h |= entryTakerAll
	}
	if k.FirstTradeID == b.prevLast+1 {
		h |= entryContiguous
	}
	buf := append(b.buf, h)
	if skip > 0 {
		buf = binary.AppendUvarint(buf, uint64(skip))
	}
	buf = appendZigzag(buf, uint64(k.Open)-uint64(b.prevClose))
	if !flat {
		hi, lo := max(k.Open, k.Close), min(k.Open, k.Close)
		buf = appendZigzag(buf, uint64(k.Close)-uint64(k.Open))
		buf = binary.AppendUvarint(buf, uint64(k.High)-uint64(hi))
		buf = binary.AppendUvarint(buf, uint64(lo)-uint64(k.Low))
	}
	buf = binary.AppendUvarint(buf, k.Volume.Hi)
	buf = binary.AppendUvarint(buf, k.Volume.Lo)
	if h&entryQuoteDerived == 0 {
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(k.QuoteVolume))
	}
	if h&(entryTakerNone|entryTakerAll) == 0 {
		buf = binary.AppendUvarint(buf, k.TakerBuyVolume.Hi)
		buf = binary.AppendUvarint(buf, k.TakerBuyVolume.Lo)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(k.TakerBuyQuoteVolume))
	}
	buf = binary.AppendUvarint(buf, uint64(k.TradeCount))
	if h&entryContiguous == 0 {
		buf = appendZigzag(buf, uint64(k.FirstTradeID)-uint64(b.prevLast+1))
	}
	buf = binary.AppendUvarint(buf, uint64(k.LastTradeID)-uint64(k.FirstTradeID))
	b.buf = buf
	b.prevClose = k.Close
	b.prevLast = k.LastTradeID
}

// payload returns the chunk's payload in a new slice of its size (one
// allocation).
func (b *chunkBuilder) payload() []byte {
	return b.appendPayload(make([]byte, 0, 1+3*binary.MaxVarintLen64+len(b.buf)))
}

// appendPayload appends the chunk's payload (header and entries) to dst.
func (b *chunkBuilder) appendPayload(dst []byte) []byte {
	dst = append(dst, chunkVersion)
	dst = binary.AppendUvarint(dst, uint64(b.bars))
	dst = binary.AppendUvarint(dst, uint64(b.entries))
	dst = binary.AppendUvarint(dst, uint64(b.span))
	return append(dst, b.buf...)
}

func appendZigzag(b []byte, d uint64) []byte {
	v := int64(d)
	return binary.AppendUvarint(b, uint64(v<<1)^uint64(v>>63))
}

// chunkHeader is a chunk's payload header.
type chunkHeader struct {
	bars, span int64
	entries    int
}

// maxChunkBars bounds a chunk's bars: a run of 1s bars over a century is
// 3.2e9; anything beyond this is corrupt.
const maxChunkBars = 1 << 40

func parseChunkHeader(p []byte) (chunkHeader, int, error) {
	if len(p) == 0 {
		return chunkHeader{}, 0, errors.New("empty chunk")
	}
	if p[0] != chunkVersion {
		return chunkHeader{}, 0, fmt.Errorf("chunk format version %d, this build reads %d", p[0], chunkVersion)
	}
	off := 1
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(p[off:])
		if n <= 0 {
			return chunkHeader{}, 0, errors.New("truncated chunk header")
		}
		v[i] = x
		off += n
	}
	h := chunkHeader{bars: int64(v[0]), entries: int(v[1]), span: int64(v[2])}
	if v[0] == 0 || v[0] > maxChunkBars || v[1] == 0 || v[1] > v[0] || v[2] > maxChunkBars || v[2]+1 < v[0] {
		return chunkHeader{}, 0, fmt.Errorf("inconsistent chunk header: %d bars, %d entries, span %d", v[0], v[1], v[2])
	}
	return h, off, nil
}

// chunkReader decodes a chunk's entries in order.
type chunkReader struct {
	key    []byte
	symbol string
	iv     messages.Interval
	hdr    chunkHeader
	p      []byte
	off    int

	next      int64 // open time of the next entry's first bar (without skip)
	started   bool
	prevClose messages.Decimal
	prevLast  int64
	entries   int   // entries decoded
	bars      int64 // bars decoded
	span      int64 // periods decoded so far (from first)
	first     int64
}

// init prepares r to decode payload p of the chunk under key whose first
// bar opens at first.
func (r *chunkReader) init(key []byte, symbol string, iv messages.Interval, first int64, p []byte) error {
	hdr, off, err := parseChunkHeader(p)
	if err != nil {
		return corruptf(key, "%v", err)
	}
	*r = chunkReader{key: key, symbol: symbol, iv: iv, hdr: hdr, p: p, off: off, next: first, first: first, prevLast: -1}
	if first != iv.Align(first) {
		return corruptf(key, "chunk's first open time %d is not aligned to %s", first, iv)
	}
	if last, ok := advanceChecked(iv, first, hdr.span); !ok || last > maxOpenTime {
		return corruptf(key, "chunk spans %d periods from %d: beyond any time", hdr.span, first)
	}
	return nil
}

// maxOpenTime is the latest open time a chunk may hold (year 2500): far
// beyond any real trade, small enough that no arithmetic on it overflows.
const maxOpenTime = 16725225600000

// more reports whether entries remain.
func (r *chunkReader) more() bool { return r.entries < r.hdr.entries }

// lastOpen returns the open time of the chunk's last bar.
func (r *chunkReader) lastOpen() int64 { return r.iv.Advance(r.first, r.hdr.span) }

// entry decodes the next entry into k (a bar, or a run: k.Repeat > 0).
func (r *chunkReader) entry(k *messages.Kline) error {
	if !r.more() {
		return corruptf(r.key, "read past the last entry")
	}
	if r.off >= len(r.p) {
		return corruptf(r.key, "truncated at entry %d of %d", r.entries, r.hdr.entries)
	}
	h := r.p[r.off]
	r.off++
	var skip int64
	if h&entrySkip != 0 {
		s, err := r.uvarint()
		if err != nil {
			return err
		}
		if s == 0 || s > maxChunkBars {
			return corruptf(r.key, "entry %d: skip of %d bars", r.entries, s)
		}
		if !r.started {
			return corruptf(r.key, "first entry with a skip")
		}
		skip = int64(s)
	}
	if r.started {
		r.span += skip + 1
		if r.span > r.hdr.span {
			return corruptf(r.key, "entry %d lies beyond the chunk's span", r.entries)
		}
		r.next = r.iv.Advance(r.first, r.span)
	}
	r.started = true
	*k = messages.Kline{Symbol: r.symbol, Interval: r.iv, OpenTime: r.next, CloseTime: r.iv.CloseTime(r.next), Closed: true}
	switch h & 3 {
	case entryRun:
		if h&^(entrySkip|3) != 0 {
			return corruptf(r.key, "entry %d: run with bar flags %#x", r.entries, h)
		}
		d, err := r.zigzag()
		if err != nil {
			return err
		}
		n, err := r.uvarint()
		if err != nil {
			return err
		}
		if n >= maxChunkBars {
			return corruptf(r.key, "entry %d: run of %d bars", r.entries, n)
		}
		price := messages.Decimal(uint64(r.prevClose) + d)
		k.Open, k.High, k.Low, k.Close = price, price, price, price
		k.FirstTradeID, k.LastTradeID = messages.NoTradeID, messages.NoTradeID
		k.Repeat = int64(n)
		r.prevClose = price
	case entryBar:
		if err := r.bar(h, k); err != nil {
			return err
		}
	default:
		return corruptf(r.key, "entry %d: unknown kind %d", r.entries, h&3)
	}
	r.span += k.Repeat
	if r.span > r.hdr.span {
		return corruptf(r.key, "entry %d lies beyond the chunk's span", r.entries)
	}
	r.entries++
	r.bars += k.Bars()
	if r.bars > r.hdr.bars {
		return corruptf(r.key, "more bars than the header's %d", r.hdr.bars)
	}
	if !r.more() {
		if r.bars != r.hdr.bars || r.span != r.hdr.span || r.off != len(r.p) {
			return corruptf(r.key, "entries do not add up to the header (%d of %d bars, span %d of %d, %d trailing bytes)",
				r.bars, r.hdr.bars, r.span, r.hdr.span, len(r.p)-r.off)
		}
	}
	return nil
}

func (r *chunkReader) bar(h byte, k *messages.Kline) error {
	d, err := r.zigzag()
	if err != nil {
		return err
	}
	k.Open = messages.Decimal(uint64(r.prevClose) + d)
	k.High, k.Low, k.Close = k.Open, k.Open, k.Open
	if h&entryFlat == 0 {
		dc, err := r.zigzag()
		if err != nil {
			return err
		}
		k.Close = messages.Decimal(uint64(k.Open) + dc)
		dh, err := r.uvarint()
		if err != nil {
			return err
		}
		dl, err := r.uvarint()
		if err != nil {
			return err
		}
		k.High = messages.Decimal(uint64(max(k.Open, k.Close)) + dh)
		k.Low = messages.Decimal(uint64(min(k.Open, k.Close)) - dl)
	}
	if k.Volume.Hi, err = r.uvarint(); err != nil {
		return err
	}
	if k.Volume.Lo, err = r.uvarint(); err != nil {
		return err
	}
	if h&entryQuoteDerived != 0 {
		if h&entryFlat == 0 || k.Volume.Hi != 0 {
			return corruptf(r.key, "entry %d: derived quote volume on a bar that is not one price", r.entries)
		}
		k.QuoteVolume = messages.MulFloat(k.Close, messages.Decimal(k.Volume.Lo))
	} else if k.QuoteVolume, err = r.float(); err != nil {
		return err
	}
	switch h & (entryTakerNone | entryTakerAll) {
	case entryTakerNone:
	case entryTakerAll:
		k.TakerBuyVolume, k.TakerBuyQuoteVolume = k.Volume, k.QuoteVolume
	case 0:
		if k.TakerBuyVolume.Hi, err = r.uvarint(); err != nil {
			return err
		}
		if k.TakerBuyVolume.Lo, err = r.uvarint(); err != nil {
			return err
		}
		if k.TakerBuyQuoteVolume, err = r.float(); err != nil {
			return err
		}
	default:
		return corruptf(r.key, "entry %d: taker sums both none and all", r.entries)
	}
	c, err := r.uvarint()
	if err != nil {
		return err
	}
	k.TradeCount = int64(c)
	k.FirstTradeID = r.prevLast + 1
	if h&entryContiguous == 0 {
		d, err := r.zigzag()
		if err != nil {
			return err
		}
		k.FirstTradeID = int64(uint64(r.prevLast+1) + d)
	}
	dl, err := r.uvarint()
	if err != nil {
		return err
	}
	k.LastTradeID = int64(uint64(k.FirstTradeID) + dl)
	r.prevClose = k.Close
	r.prevLast = k.LastTradeID
	return nil
}

func (r *chunkReader) uvarint() (uint64, error) {
	x, n := binary.Uvarint(r.p[r.off:])
	if n <= 0 {
		return 0, corruptf(r.key, "entry %d: truncated or overlong varint at byte %d", r.entries, r.off)
	}
	r.off += n
	return x, nil
}

func (r *chunkReader) zigzag() (uint64, error) {
	u, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	return uint64(int64(u>>1) ^ -int64(u&1)), nil
}

func (r *chunkReader) float() (float64, error) {
	if len(r.p)-r.off < 8 {
		return 0, corruptf(r.key, "entry %d: truncated float at byte %d", r.entries, r.off)
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.p[r.off:]))
	r.off += 8
	return f, nil
}

// advanceChecked is advance that reports overflow instead of wrapping.
func advanceChecked(iv messages.Interval, t, n int64) (int64, bool) {
	if n < 0 || n > maxChunkBars {
		return 0, false
	}
	if d := iv.Fixed(); d > 0 {
		if n > (math.MaxInt64-max(t, 0))/d {
			return 0, false
		}
		return t + n*d, true
	}
	if n > 12*10000 {
		return 0, false
	}
	return iv.Advance(t, n), true
}
