// Command embed shows how a Go program embeds a klinecast node: it starts
// a node in-process, sends trades to the node's ingest router as actor
// messages (*messages.TradeBatch, answered with *actors.IngestReply), and
// reads the resulting K-lines with Node.Klines.
//
//	go run ./examples/embed
//
// The node runs memory-only with the event clock, so the output depends
// only on the trades below.
//
// It uses only the public API: actors, messages (enforced by internal/layout).
package main
