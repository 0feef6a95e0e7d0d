// Package httpapi serves a node over HTTP: trade ingest, Binance-compatible
// REST queries and the node's operational state (SPEC §5 REST, §7).
//
//	POST /api/v1/trades      JSON array or NDJSON of Binance aggTrade events
//	GET  /api/v3/klines      Binance klines (array of arrays, decimals as strings)
//	GET  /api/v3/exchangeInfo the symbol list, Binance-shaped
//	GET  /healthz            the node's HealthReport (503 when failed)
//	GET  /api/v1/actors      the supervision tree
//	GET  /api/v1/stats       the node's counters
//
// Errors: /api/v3 endpoints answer Binance-style {"code":-1121,"msg":"..."}
// bodies with Binance's codes; the others answer {"error":"..."}.
//
// It owns no goroutines and no state besides reusable scratch buffers: the
// handler is safe for concurrent use, and every request runs on the
// goroutine net/http gives it. It imports actors, messages and storage
// (for its sentinel errors), never cluster or cmd.
package httpapi
