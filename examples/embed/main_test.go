package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestEmbedExample runs the example and checks its output line by line.
// The expected bars were worked out by hand from the trades in batches():
//
//	BTCUSDT 00:00  62000.10×0.5 + 62010×0.25 + 61990.5×1 = 108493.05, 3 trades of 2 raw trades
//	BTCUSDT 00:01  no trade: an empty bar at the previous close
//	BTCUSDT 00:02  62050×0.1 = 6205, still open (the newest trade's bar)
//	ETHUSDT 00:00  3400×2 = 6800; 00:01 3390.25×1.5 = 5085.375; 00:02 empty and open,
//	               because the event clock (the newest trade time, 00:02:05) reached it
func TestEmbedExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	want := `batch 0: accepted 4, duplicates 0, last seq 1
batch 1: accepted 2, duplicates 1, last seq 2
  rejected trade 2: messages: invalid trade: field p: price must be positive
BTCUSDT 1m 00:00 open=62000.10000000 high=62010.00000000 low=61990.50000000 close=61990.50000000 volume=1.75000000 quote=108493.0500 trades=6 closed=true
BTCUSDT 1m 00:01 open=61990.50000000 high=61990.50000000 low=61990.50000000 close=61990.50000000 volume=0.00000000 quote=0.0000 trades=0 closed=true
BTCUSDT 1m 00:02 open=62050.00000000 high=62050.00000000 low=62050.00000000 close=62050.00000000 volume=0.10000000 quote=6205.0000 trades=2 closed=false
ETHUSDT 1m 00:00 open=3400.00000000 high=3400.00000000 low=3400.00000000 close=3400.00000000 volume=2.00000000 quote=6800.0000 trades=2 closed=true
ETHUSDT 1m 00:01 open=3390.25000000 high=3390.25000000 low=3390.25000000 close=3390.25000000 volume=1.50000000 quote=5085.3750 trades=2 closed=true
ETHUSDT 1m 00:02 open=3390.25000000 high=3390.25000000 low=3390.25000000 close=3390.25000000 volume=0.00000000 quote=0.0000 trades=0 closed=false
`
	got := out.String()
	if got == want {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(gl), len(wl)) {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("line %d:\n got %q\nwant %q", i+1, g, w)
		}
	}
}
