package gen

import (
	"testing"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// ForTest returns n trades over nsym symbols spread over span, in time
// order, deterministic for seed; a bad configuration fails tb.
func ForTest(tb testing.TB, nsym int, n int64, span time.Duration, seed uint64) []messages.Trade {
	tb.Helper()
	out, err := Collect(Config{Symbols: Symbols(nsym), Trades: n, Span: span, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
