package ingest

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"pgregory.net/rapid"

	"github.com/klinecast/klinecast/messages"
)

// symbolShardOf is the verdict the cache must always give: the shard of a
// valid symbol, -1 for an invalid one.
func symbolShardOf(sym string) int32 {
	if messages.ValidateSymbol(sym) != nil {
		return -1
	}
	return int32(messages.ShardOf(sym, 64))
}

func TestSymbolShardsLookup(t *testing.T) {
	btc := "BTCUSDT"
	btcCopy := strings.Clone(btc) // same text, another string
	tests := []struct {
		name      string
		lookups   []string
		wantFills int
	}{
		{"one string, asked again, is filled once", []string{btc, btc, btc}, 1},
		{"equal text in another string is filled apart", []string{btc, btcCopy, btc, btcCopy}, 2},
		{"an invalid symbol is remembered as invalid", []string{"btc usdt", "btc usdt"}, 1},
		{"the empty string is not an empty key", []string{"", ""}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cache := new(symbolShards)
			fills := 0
			fill := func(sym string) int32 { fills++; return symbolShardOf(sym) }
			for i, sym := range tc.lookups {
				// The caller holds a copy of the header only: equal
				// strings must be told apart by identity, not by value.
				if got, want := cache.lookup(sym, fill), symbolShardOf(sym); got != want {
					t.Fatalf("lookup %d (%q) = %d, want %d", i, sym, got, want)
				}
			}
			if fills != tc.wantFills {
				t.Fatalf("%d fills, want %d", fills, tc.wantFills)
			}
		})
	}
}

// TestSymbolShardsEvictsTheOldestOfASet fills one set with one string more
// than it has ways (substrings of one buffer, picked by address): the
// oldest goes, the others stay.
func TestSymbolShardsEvictsTheOldestOfASet(t *testing.T) {
	buf := strings.Repeat("B", 8*16<<symbolSetBits) // 8 windows: 8 slots per set
	bySet := make(map[uintptr][]string)
	for off := 0; off+7 <= len(buf); off++ {
		sym := buf[off : off+7]
		if data := uintptr(unsafe.Pointer(unsafe.StringData(sym))); data%16 == 0 {
			bySet[symbolSet(data)] = append(bySet[symbolSet(data)], sym)
		}
	}
	var same []string
	for _, syms := range bySet {
		if len(syms) > symbolWays {
			same = syms[:symbolWays+1]
			break
		}
	}
	if same == nil {
		t.Fatalf("no set drew %d strings of the buffer", symbolWays+1)
	}
	cache := new(symbolShards)
	var filled []string
	fill := func(sym string) int32 { filled = append(filled, sym); return symbolShardOf(sym) }
	for _, sym := range same {
		cache.lookup(sym, fill)
	}
	if len(filled) != symbolWays+1 {
		t.Fatalf("%d fills for %d new strings", len(filled), symbolWays+1)
	}
	for _, sym := range same[1:] {
		filled = nil
		if got, want := cache.lookup(sym, fill), symbolShardOf(sym); got != want || filled != nil {
			t.Fatalf("a recent string: lookup = %d (want %d), filled %d", got, want, len(filled))
		}
	}
	filled = nil
	if got, want := cache.lookup(same[0], fill), symbolShardOf(same[0]); got != want || len(filled) != 1 {
		t.Fatalf("the oldest string: lookup = %d (want %d), %d fills, want 1 (evicted)", got, want, len(filled))
	}
}

// TestSymbolShardsMatchesReference checks the cache against the plain
// function for any sequence of lookups over more symbol strings than the
// cache holds (so sets overflow and evict), and that a string just looked
// up is a hit.
func TestSymbolShardsMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 3*symbolSets*symbolWays).Draw(t, "symbols")
		syms := make([]string, n)
		for i := range syms {
			syms[i] = fmt.Sprintf("S%dUSDT", i)
			if i%97 == 0 {
				syms[i] = strings.ToLower(syms[i]) // invalid
			}
		}
		cache := new(symbolShards)
		var filled string
		fill := func(sym string) int32 { filled = sym; return symbolShardOf(sym) }
		picks := rapid.SliceOfN(rapid.IntRange(0, n-1), 1, 2000).Draw(t, "picks")
		for _, k := range picks {
			sym := syms[k]
			if got, want := cache.lookup(sym, fill), symbolShardOf(sym); got != want {
				t.Fatalf("lookup(%q) = %d, want %d", sym, got, want)
			}
			filled = ""
			if got := cache.lookup(sym, fill); got != symbolShardOf(sym) || filled != "" {
				t.Fatalf("lookup(%q) again = %d, filled %q: want a hit", sym, got, filled)
			}
		}
	})
}

// TestPartitionFirstClassifyAllocatesNothing: a partition may classify its
// first chunk long after the node started (the other partitions claimed
// every chunk so far); its scratch must be there already, or that first
// chunk allocates in the middle of the hot path. (Checked on the scratch
// itself: the process's allocation counter would also count the running
// node's other goroutines.) The request's own buffers are grown first by
// another partition, as in a real run.
func TestPartitionFirstClassifyAllocatesNothing(t *testing.T) {
	n := testIngest(t, 64, 2)
	if len(n.partitions) < 2 {
		t.Skip("needs two workers")
	}
	trades := genTrades(t, 100, int64(n.cfg.ChunkTrades), time.Hour, 3)
	c := n.newCall(trades)
	defer n.recycle(c)
	c.now = time.Now().UnixMilli()
	c.sizeChunks()
	(&partition{h: n.partitions[0]}).classify(c, 0)
	h := n.partitions[1]
	if len(h.shardOf) == 0 || len(h.fillAt) == 0 {
		t.Fatalf("a new partition's scratch: shardOf %d, fillAt %d entries; want them allocated at start", len(h.shardOf), len(h.fillAt))
	}
	shardOf, fillAt := &h.shardOf[0], &h.fillAt[0]
	(&partition{h: h}).classify(c, 0)
	if &h.shardOf[0] != shardOf || &h.fillAt[0] != fillAt {
		t.Fatalf("a partition's first classify replaced its scratch (allocated)")
	}
	if got := c.chunks[0].start[64]; int(got) != len(trades) {
		t.Fatalf("classified %d trades, want %d", got, len(trades))
	}
}
