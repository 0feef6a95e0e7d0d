package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/messages"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// base is 2024-03-01T00:00:00Z in ms.
const base = int64(1709251200000)

// trade builds one trade; price and quantity are decimal strings, as on
// the wire.
func trade(sym string, aggID int64, price, qty string, offsetMs int64, buyerMaker bool) messages.Trade {
	p, err := messages.ParseDecimal(price)
	if err != nil {
		panic(err) // the literals below are valid
	}
	q, err := messages.ParseDecimal(qty)
	if err != nil {
		panic(err)
	}
	return messages.Trade{Symbol: sym, AggID: aggID, Price: p, Quantity: q, FirstID: 10 * aggID, LastID: 10*aggID + 1,
		Time: base + offsetMs, BuyerMaker: buyerMaker}
}

// batches are the example's two ingest requests. The second holds a
// duplicate (retries are safe) and an invalid trade (rejected with a
// reason, never applied).
func batches() [][]messages.Trade {
	return [][]messages.Trade{
		{
			trade("BTCUSDT", 1, "62000.10", "0.5", 1_000, false),
			trade("ETHUSDT", 10, "3400", "2", 5_000, false),
			trade("BTCUSDT", 2, "62010", "0.25", 30_000, true),
			trade("BTCUSDT", 3, "61990.5", "1", 59_000, false),
		},
		{
			trade("ETHUSDT", 11, "3390.25", "1.5", 70_000, true),
			trade("BTCUSDT", 3, "61990.5", "1", 59_000, false), // duplicate of the last one above
			trade("ETHUSDT", 12, "0", "1", 80_000, false),      // zero price: rejected
			trade("BTCUSDT", 4, "62050", "0.1", 125_000, true),
		},
	}
}

// run starts a node, ingests the example trades with actor messages and
// prints the 1m K-lines of each symbol to w.
func run(ctx context.Context, w io.Writer) (err error) {
	node, err := actors.Start(ctx, actors.Config{
		Clock:     actors.ClockEvent, // bars roll with the trades' own times
		Shards:    4,
		Cores:     1,
		Intervals: []messages.Interval{messages.Interval1m, messages.Interval1h},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if cerr := node.Close(cctx); cerr != nil && err == nil {
			err = cerr
		}
	}()

	// Ingest with actor messages: what a program holding only a PID (in
	// this process, or a remote one) does.
	root := node.System().Root
	for i, b := range batches() {
		// The node reads the trades after Request returns: the batch must
		// not change until the reply arrives.
		fut := root.RequestFuture(node.IngestPID(), &messages.TradeBatch{Trades: b}, 5*time.Second)
		msg, err := fut.Result()
		if err != nil {
			return fmt.Errorf("batch %d: %w", i, err)
		}
		reply, ok := msg.(*actors.IngestReply)
		if !ok {
			return fmt.Errorf("batch %d: unexpected reply %T", i, msg)
		}
		if reply.Err != nil {
			return fmt.Errorf("batch %d: %w", i, reply.Err)
		}
		r := reply.Result
		fmt.Fprintf(w, "batch %d: accepted %d, duplicates %d, last seq %d\n", i, r.Accepted, r.Duplicates, r.LastSeq)
		for _, rej := range r.Rejected {
			fmt.Fprintf(w, "  rejected trade %d: %s\n", rej.Index, rej.Error)
		}
	}

	// Read the bars back: ascending, the open bar last.
	for _, sym := range []string{"BTCUSDT", "ETHUSDT"} {
		ks, err := node.Klines(ctx, sym, messages.Interval1m, 0, 0, 10)
		if err != nil {
			return err
		}
		for _, k := range ks {
			fmt.Fprintf(w, "%s %s %s open=%s high=%s low=%s close=%s volume=%s quote=%.4f trades=%d closed=%v\n",
				k.Symbol, k.Interval, time.UnixMilli(k.OpenTime).UTC().Format("15:04"), k.Open, k.High, k.Low, k.Close,
				k.Volume, k.QuoteVolume, k.TradeCount, k.Closed)
		}
	}
	return nil
}
