// Package messages owns klinecast's data model and its wire formats: Trade,
// Kline, Interval, the exact fixed-point Decimal and Decimal128 types, the
// Binance aggTrade JSON / aggTrades CSV codecs, the Binance kline JSON, array
// and CSV codecs, and hand-written msgpack encoders.
//
// Everything here is plain data and pure functions: no goroutines, no clock,
// no I/O beyond io.Reader/io.Writer arguments. Types are safe to share
// read-only between goroutines; nothing here is safe for concurrent mutation.
//
// messages is the bottom of the import graph: it must not import any other
// klinecast package (actors, storage, cluster, cmd).
package messages
