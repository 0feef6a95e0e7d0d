// Package gen generates realistic synthetic aggregate trades: one stream over
// many symbols, in time order, deterministic for a seed. It feeds
// `klinecast gen` (files for `klinecast aggregate`), the demo feed of
// `klinecast serve --demo`, benchmarks and tests.
//
// The model, per symbol:
//
//   - a price random walk in log space (volatility per √second, weak mean
//     reversion so that long runs do not drift to zero), quantised to the
//     symbol's tick size;
//   - quantities drawn as a log-normal notional divided by the price and
//     rounded to the lot size, so a memecoin at 1e-6 trades 1e9..1e11 units;
//   - Poisson arrivals while active, interrupted by idle gaps of 1..6 hours;
//   - bursts: a taker sweeping the book produces many aggregate trades in the
//     same millisecond or second, all on one side, the price walking one tick
//     at a time;
//   - raw trade id ranges f..l with 1..N raw trades per aggregate trade, and
//     aggregate ids that increase by one per symbol.
//
// Generation is pure computation: no clock, no I/O, no goroutines. A
// Generator is not safe for concurrent use.
//
// gen imports only messages from klinecast (enforced by internal/layout).
package gen
