package actors

import "context"

// HasSymbol reports whether symbol has state on this node: it traded (or
// was restored from a checkpoint) and has not been removed. A symbol of the
// fixed list (Config.Symbols) that has not traded yet has no state. It
// costs one round trip to the symbol's shard, so the HTTP API can tell
// "unknown symbol" from "no bars in that range" without asking every shard.
func (n *Node) HasSymbol(ctx context.Context, symbol string) (bool, error) {
	// Every symbol with state has an open bar in every configured interval.
	r, err := n.openBar(ctx, symbol, n.cfg.Intervals[0])
	return r.OK, err
}
