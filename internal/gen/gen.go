package gen

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// DefaultStart is 2024-02-26T00:00:00Z, a Monday three days before the
// leap day, so that a default run of DefaultSpan crosses a month boundary
// (2024-03-01) and a week boundary (Monday 2024-03-04).
const DefaultStart = int64(1708905600000)

// DefaultSpan is the time a bounded run covers when Config.Span is zero.
const DefaultSpan = 8 * 24 * time.Hour

// DefaultRate is the mean trade rate over all symbols (trades per second of
// trade time) of an unbounded run when Config.Rate is zero.
const DefaultRate = 100.0

// Config configures a Generator. The zero value is valid: one symbol,
// unbounded, starting at DefaultStart at DefaultRate, seed 0.
type Config struct {
	// Symbols names the symbols. Profiles are assigned by position, cycling
	// through major (BTC-like: tick 0.01, lot 0.00001), mid (tick 0.001,
	// lot 0.001), alt (tick 0.0001, lot 0.1) and meme (price ~1e-6, tick
	// 0.00000001, lot 1, 1e9..1e11 units per trade). Empty means Symbols(1).
	Symbols []string

	// Trades is the total number of trades Next returns over all symbols
	// before it reports the end. Zero means unbounded.
	Trades int64

	// Start is the time of the first trades, ms since the epoch (UTC).
	// Zero means DefaultStart.
	Start int64

	// Span is roughly how much trade time a bounded run covers: the mean
	// rate is Trades/Span. The end time is not exact (arrivals, bursts and
	// idle gaps are random). Zero means DefaultSpan. Ignored when Rate is
	// set or Trades is zero.
	Span time.Duration

	// Rate is the mean number of trades per second of trade time over all
	// symbols, idle gaps included. Zero means Trades/Span for a bounded run
	// and DefaultRate for an unbounded one.
	Rate float64

	// Seed selects the stream; the same Config always yields the same
	// trades. Each symbol draws from its own random source seeded by
	// (Seed, position).
	Seed uint64
}

// profile is a class of market: tick and lot sizes, price range, trade size
// and activity.
type profile struct {
	name          string
	tick, lot     messages.Decimal // in 1e-8 units
	minPx, maxPx  float64          // range of the starting price
	notional      float64          // median quote amount of one trade
	notionalSigma float64          // log-normal spread of that amount
	maxQty        float64          // cap of one trade, in units
	vol           float64          // log-price volatility per √second
	weight        float64          // share of the trade rate
	meanActive    time.Duration    // mean time between idle gaps
	burstProb     float64          // chance an arrival starts a burst
	meanBurst     float64          // mean number of trades in a burst
}

// profiles is indexed by symbol position mod len(profiles). It is a function
// rather than a package variable so that nothing at package level can be
// mutated.
func profiles() [4]profile {
	return [4]profile{
		{name: "major", tick: 1_000_000, lot: 1_000, minPx: 20, maxPx: 70_000, notional: 800, notionalSigma: 1.6,
			maxQty: 1e6, vol: 0.0003, weight: 4, meanActive: 48 * time.Hour, burstProb: 0.12, meanBurst: 12},
		{name: "mid", tick: 100_000, lot: 100_000, minPx: 1, maxPx: 300, notional: 400, notionalSigma: 1.5,
			maxQty: 1e8, vol: 0.0004, weight: 2, meanActive: 24 * time.Hour, burstProb: 0.10, meanBurst: 8},
		{name: "alt", tick: 10_000, lot: 10_000_000, minPx: 0.05, maxPx: 2, notional: 200, notionalSigma: 1.4,
			maxQty: 1e10, vol: 0.0005, weight: 1, meanActive: 12 * time.Hour, burstProb: 0.08, meanBurst: 6},
		{name: "meme", tick: 1, lot: 100_000_000, minPx: 5e-7, maxPx: 5e-6, notional: 2000, notionalSigma: 1.2,
			maxQty: 1e11, vol: 0.0008, weight: 1, meanActive: 6 * time.Hour, burstProb: 0.15, meanBurst: 10},
	}
}

// Idle gaps last between these (uniformly).
const (
	minIdle = time.Hour
	maxIdle = 6 * time.Hour
)

// meanReversion pulls the log price back to its start with this time
// constant so that unbounded runs stay in the profile's price range.
const meanReversion = 7 * 24 * time.Hour

// wellKnown are the first names Symbols hands out; their order matches the
// profile cycle (major, mid, alt, meme).
func wellKnown() []string {
	return []string{"BTCUSDT", "ETHUSDT", "XRPUSDT", "PEPEUSDT", "SOLUSDT", "BNBUSDT", "ADAUSDT", "SHIBUSDT"}
}

// Symbols returns n distinct symbol names: familiar ones first, then
// S0009USDT, S0010USDT, ...
func Symbols(n int) []string {
	out := make([]string, 0, n)
	known := wellKnown()
	for i := range n {
		if i < len(known) {
			out = append(out, known[i])
		} else {
			out = append(out, fmt.Sprintf("S%04dUSDT", i+1))
		}
	}
	return out
}

// ErrConfig is wrapped by New for an invalid Config.
var ErrConfig = errors.New("gen: invalid config")

// Generator streams trades. Create it with New.
type Generator struct {
	syms    []symbol
	heap    []int32 // indices into syms, a min-heap on (next, index)
	left    int64   // trades still to return; <0 means unbounded
	lastUs  int64
	lastSym int
}

// symbol is one symbol's state.
type symbol struct {
	name string
	p    profile
	rng  *rand.Rand

	next        int64 // µs time of the pending trade
	activeUntil int64 // µs; the next arrival after this starts an idle gap
	eventMeanUs float64

	logp, logp0 float64
	ticks       int64 // current price in ticks
	lastUs      int64 // µs time of the previous trade
	inBurst     bool  // the pending trade is part of a burst
	burstLeft   int   // burst trades to schedule after the pending one
	burstSell   bool  // the burst's taker side

	aggID, rawID int64
}

// New returns a Generator for cfg.
func New(cfg Config) (*Generator, error) {
	names := cfg.Symbols
	if len(names) == 0 {
		names = Symbols(1)
	}
	seen := make(map[string]bool, len(names))
	for _, s := range names {
		probe := messages.Trade{Symbol: s, Price: 1, Time: messages.MinTradeTime}
		if err := probe.Validate(0); err != nil {
			return nil, fmt.Errorf("%w: symbol %q: %w", ErrConfig, s, err)
		}
		if seen[s] {
			return nil, fmt.Errorf("%w: symbol %s listed twice", ErrConfig, s)
		}
		seen[s] = true
	}
	if cfg.Trades < 0 {
		return nil, fmt.Errorf("%w: negative trade count %d", ErrConfig, cfg.Trades)
	}
	start := cfg.Start
	if start == 0 {
		start = DefaultStart
	}
	if start < messages.MinTradeTime || start > math.MaxInt64/1000/2 {
		return nil, fmt.Errorf("%w: start %d ms is out of range", ErrConfig, start)
	}
	span := cfg.Span
	if span == 0 {
		span = DefaultSpan
	}
	if span < 0 {
		return nil, fmt.Errorf("%w: negative span %s", ErrConfig, span)
	}
	rate := cfg.Rate
	switch {
	case rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0):
		return nil, fmt.Errorf("%w: rate %v", ErrConfig, rate)
	case rate == 0 && cfg.Trades > 0:
		rate = float64(cfg.Trades) / span.Seconds()
	case rate == 0:
		rate = DefaultRate
	}

	profs := profiles()
	totalWeight := 0.0
	for i := range names {
		totalWeight += profs[i%len(profs)].weight
	}
	meanIdle := float64(minIdle+maxIdle) / 2 / float64(time.Microsecond)

	g := &Generator{syms: make([]symbol, len(names)), heap: make([]int32, len(names)), left: -1}
	if cfg.Trades > 0 {
		g.left = cfg.Trades
	}
	startUs := start * 1000
	for i, name := range names {
		p := profs[i%len(profs)]
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		s := &g.syms[i]
		s.name, s.p, s.rng = name, p, rng

		// Arrivals: the symbol's share of the rate, raised to make up for
		// idle time and divided by the mean number of trades per arrival.
		activeUs := float64(p.meanActive) / float64(time.Microsecond)
		activeFrac := activeUs / (activeUs + meanIdle)
		// After each trade a burst of meanBurst trades follows with
		// probability burstProb (also after a burst), so an arrival brings
		// 1 + burstProb·meanBurst/(1−burstProb) trades on average.
		perArrival := 1 + p.burstProb*p.meanBurst/(1-p.burstProb)
		symRate := rate * p.weight / totalWeight // trades per second
		arrivalsPerUs := symRate / perArrival / activeFrac / 1e6
		s.eventMeanUs = 1 / arrivalsPerUs

		px := math.Exp(math.Log(p.minPx) + rng.Float64()*(math.Log(p.maxPx)-math.Log(p.minPx)))
		s.logp0 = math.Log(px)
		s.logp = s.logp0
		s.ticks = s.quantise(px)
		s.aggID = 1_000_000 + rng.Int64N(100_000_000)
		s.rawID = 2*s.aggID + rng.Int64N(1_000_000)

		// Every symbol starts trading soon after Start (within about a
		// minute), however low its rate: a run's first bars are at Start.
		s.next = startUs + int64(rng.ExpFloat64()*min(s.eventMeanUs, 60e6))
		s.lastUs = s.next
		s.activeUntil = startUs + int64(rng.ExpFloat64()*activeUs)
		g.heap[i] = int32(i)
	}
	for i := len(g.heap)/2 - 1; i >= 0; i-- {
		g.down(i)
	}
	return g, nil
}

// Next fills t with the next trade in time order over all symbols and
// reports whether there was one (false once Config.Trades trades were
// returned). Ties in time go to the symbol listed first. Next does not
// allocate: t.Symbol is one of the Config.Symbols strings.
func (g *Generator) Next(t *messages.Trade) bool {
	if g.left == 0 {
		return false
	}
	if g.left > 0 {
		g.left--
	}
	i := int(g.heap[0])
	s := &g.syms[i]
	s.emit(t)
	g.lastUs, g.lastSym = s.lastUs, i
	s.schedule()
	g.down(0)
	return true
}

// LastMicros returns the time of the trade the last Next returned, in µs
// since the epoch; t.Time is LastMicros()/1000. Files with µs timestamps
// (Binance's since 2025) use it.
func (g *Generator) LastMicros() int64 { return g.lastUs }

// LastSymbol returns the position in Config.Symbols of the trade the last
// Next returned, so callers can route trades to per-symbol outputs without
// a map lookup.
func (g *Generator) LastSymbol() int { return g.lastSym }

// Symbols returns the symbol names in position order (a fresh slice).
func (g *Generator) Symbols() []string {
	out := make([]string, len(g.syms))
	for i := range g.syms {
		out[i] = g.syms[i].name
	}
	return out
}

func (g *Generator) less(a, b int32) bool {
	na, nb := g.syms[a].next, g.syms[b].next
	return na < nb || na == nb && a < b
}

// down restores the heap property below position i.
func (g *Generator) down(i int) {
	h := g.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && g.less(h[r], h[l]) {
			m = r
		}
		if !g.less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// quantise converts a float price to ticks, at least one tick.
func (s *symbol) quantise(px float64) int64 {
	return max(1, int64(math.Round(px/float64(s.p.tick)*1e8)))
}

// emit writes the pending trade into t.
func (s *symbol) emit(t *messages.Trade) {
	now := s.next
	dt := float64(now-s.lastUs) / 1e6 // seconds
	s.lastUs = now

	sell := s.rng.IntN(2) == 0
	if s.inBurst {
		// A sweep: same side, the price walks through the book one tick at
		// a time against the taker.
		sell = s.burstSell
		if s.rng.IntN(3) == 0 {
			if sell {
				s.ticks = max(1, s.ticks-1)
			} else {
				s.ticks++
			}
			s.logp = math.Log(float64(s.ticks) * float64(s.p.tick) / 1e8)
		}
	} else {
		s.logp += s.p.vol*math.Sqrt(dt)*s.rng.NormFloat64() - (s.logp-s.logp0)*dt/meanReversion.Seconds()
		s.ticks = s.quantise(math.Exp(s.logp))
	}
	price := messages.Decimal(s.ticks) * s.p.tick

	notional := s.p.notional * math.Exp(s.p.notionalSigma*s.rng.NormFloat64())
	qty := min(notional/price.Float64(), s.p.maxQty)
	lots := max(1, int64(qty/(float64(s.p.lot)/1e8)))
	quantity := messages.Decimal(lots) * s.p.lot

	// 1..N raw trades per aggregate trade: mostly one, sometimes dozens.
	raw := int64(1)
	for raw < 200 && s.rng.Float64() < 0.45 {
		raw++
	}

	*t = messages.Trade{
		Symbol:     s.name,
		AggID:      s.aggID,
		Price:      price,
		Quantity:   quantity,
		FirstID:    s.rawID,
		LastID:     s.rawID + raw - 1,
		Time:       now / 1000,
		BuyerMaker: sell, // the taker sold into a resting buy order
		EventTime:  now/1000 + s.rng.Int64N(3),
	}
	s.aggID++
	s.rawID += raw
}

// schedule picks the time of the symbol's next trade.
func (s *symbol) schedule() {
	if s.burstLeft > 0 {
		s.burstLeft--
		if s.rng.IntN(10) < 7 {
			s.next += s.rng.Int64N(200) // same millisecond, mostly
		} else {
			s.next += 1000 + s.rng.Int64N(300_000) // within a fraction of a second
		}
		return
	}
	s.inBurst = false
	if s.rng.Float64() < s.p.burstProb {
		// A burst of a geometric number of trades with the profile's mean;
		// this schedules the first, burstLeft counts the rest.
		n := 1
		for s.rng.Float64() < 1-1/s.p.meanBurst {
			n++
		}
		s.inBurst, s.burstLeft = true, n-1
		s.burstSell = s.rng.IntN(2) == 0
		s.next += s.rng.Int64N(200)
		return
	}
	s.next += int64(s.rng.ExpFloat64() * s.eventMeanUs)
	if s.next > s.activeUntil {
		idle := int64(minIdle/time.Microsecond) + s.rng.Int64N(int64((maxIdle-minIdle)/time.Microsecond))
		s.next += idle
		s.activeUntil = s.next + int64(s.rng.ExpFloat64()*float64(s.p.meanActive/time.Microsecond))
	}
}

// Collect generates every trade of cfg into a slice, for tests and
// benchmarks that need them all at once.
func Collect(cfg Config) ([]messages.Trade, error) {
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	var out []messages.Trade
	var tr messages.Trade
	for g.Next(&tr) {
		out = append(out, tr)
	}
	return out, nil
}
