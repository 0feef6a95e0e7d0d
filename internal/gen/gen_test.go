package gen

import (
	"errors"
	"testing"
	"time"

	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// collect runs a generator to its end.
func collect(t *testing.T, cfg Config) ([]messages.Trade, []int64) {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var trades []messages.Trade
	var micros []int64
	var tr messages.Trade
	for g.Next(&tr) {
		trades = append(trades, tr)
		micros = append(micros, g.LastMicros())
		if g.Symbols()[g.LastSymbol()] != tr.Symbol {
			t.Fatalf("LastSymbol %d does not name %s", g.LastSymbol(), tr.Symbol)
		}
	}
	return trades, micros
}

func TestGenDeterministic(t *testing.T) {
	cfg := Config{Symbols: Symbols(4), Trades: 20_000, Seed: 7}
	a, _ := collect(t, cfg)
	b, _ := collect(t, cfg)
	if len(a) != 20_000 || len(b) != 20_000 {
		t.Fatalf("got %d and %d trades, want 20000", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("trade %d differs between runs with one seed: %+v vs %+v", i, a[i], b[i])
		}
	}
	cfg.Seed = 8
	c, _ := collect(t, cfg)
	same := 0
	for i := range a {
		if a[i] == c[i] {
			same++
		}
	}
	if same == len(a) {
		t.Fatal("seeds 7 and 8 produced the same stream")
	}
}

func TestGenInvariants(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"default-start-8-symbols", Config{Symbols: Symbols(8), Trades: 100_000, Seed: 1}},
		{"short-span", Config{Symbols: Symbols(4), Trades: 50_000, Span: 36 * time.Hour, Seed: 2,
			Start: time.Date(2024, 8, 31, 12, 0, 0, 0, time.UTC).UnixMilli()}},
		{"unbounded-rate", Config{Symbols: []string{"AUSDT", "BUSDT", "CUSDT", "DUSDT"}, Rate: 0.2, Seed: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			n := int(tc.cfg.Trades)
			if n == 0 {
				n = 30_000
			}
			type last struct {
				us, agg, raw int64
				seen         bool
			}
			prev := map[string]*last{}
			var prevUs int64
			sameMs, bigGaps := 0, 0
			var tr messages.Trade
			for i := range n {
				if !g.Next(&tr) {
					t.Fatalf("stream ended after %d trades", i)
				}
				us := g.LastMicros()
				if us/1000 != tr.Time {
					t.Fatalf("LastMicros %d does not match Time %d", us, tr.Time)
				}
				if us < prevUs {
					t.Fatalf("trade %d goes back in time: %d < %d", i, us, prevUs)
				}
				prevUs = us
				if err := tr.Validate(0); err != nil {
					t.Fatalf("trade %d invalid: %v (%+v)", i, err, tr)
				}
				if tr.Quantity == 0 {
					t.Fatalf("trade %d has zero quantity", i)
				}
				p := prev[tr.Symbol]
				if p == nil {
					p = &last{}
					prev[tr.Symbol] = p
				}
				if p.seen {
					if tr.AggID != p.agg+1 {
						t.Fatalf("%s agg id %d after %d", tr.Symbol, tr.AggID, p.agg)
					}
					if tr.FirstID != p.raw+1 {
						t.Fatalf("%s raw ids not contiguous: f=%d after l=%d", tr.Symbol, tr.FirstID, p.raw)
					}
					if tr.Time == p.us/1000 {
						sameMs++
					}
					if us-p.us >= int64(time.Hour/time.Microsecond) {
						bigGaps++
					}
				}
				p.us, p.agg, p.raw, p.seen = us, tr.AggID, tr.LastID, true
			}
			if tc.cfg.Trades > 0 && g.Next(&tr) {
				t.Fatal("stream did not end after Config.Trades trades")
			}
			if len(prev) != len(tc.cfg.Symbols) {
				t.Fatalf("%d symbols traded, want %d", len(prev), len(tc.cfg.Symbols))
			}
			if sameMs < n/50 {
				t.Errorf("only %d trades share a millisecond with the previous one: no bursts", sameMs)
			}
			if bigGaps == 0 {
				t.Error("no idle gap of an hour or more")
			}
		})
	}
}

// The span is random but should land near the configured one; this checks
// the rate arithmetic, for fixed seeds (deterministic, not timing).
func TestGenSpanRoughlyAsConfigured(t *testing.T) {
	for _, span := range []time.Duration{36 * time.Hour, DefaultSpan} {
		trades, _ := collect(t, Config{Symbols: Symbols(4), Trades: 60_000, Span: span, Seed: 11})
		got := time.Duration(trades[len(trades)-1].Time-trades[0].Time) * time.Millisecond
		if got < span/3 || got > span*3 {
			t.Errorf("span %s: trades cover %s", span, got)
		}
	}
}

func TestGenProfiles(t *testing.T) {
	trades, _ := collect(t, Config{Symbols: Symbols(4), Trades: 40_000, Seed: 5})
	var memeMaxQty, memeMaxPx messages.Decimal
	for _, tr := range trades {
		switch tr.Symbol {
		case "PEPEUSDT":
			memeMaxQty = max(memeMaxQty, tr.Quantity)
			memeMaxPx = max(memeMaxPx, tr.Price)
			if tr.Quantity%100_000_000 != 0 {
				t.Fatalf("meme quantity %s is not a whole lot", tr.Quantity)
			}
		case "BTCUSDT":
			if tr.Price%1_000_000 != 0 || tr.Quantity%1_000 != 0 {
				t.Fatalf("major price %s or quantity %s off its tick/lot", tr.Price, tr.Quantity)
			}
		}
	}
	if memeMaxQty.Float64() < 1e9 {
		t.Errorf("largest meme trade %s units, want ≥ 1e9", memeMaxQty)
	}
	if memeMaxPx.Float64() > 1e-4 {
		t.Errorf("meme price reached %s, want ~1e-6", memeMaxPx)
	}
}

func TestGenConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"duplicate symbol", Config{Symbols: []string{"AUSDT", "AUSDT"}}},
		{"lower-case symbol", Config{Symbols: []string{"btcusdt"}}},
		{"negative trades", Config{Trades: -1}},
		{"start before 2000", Config{Start: 1}},
		{"negative span", Config{Trades: 1, Span: -time.Second}},
		{"negative rate", Config{Rate: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New(%+v) = %v, want ErrConfig", tc.cfg, err)
			}
		})
	}
}

func TestGenNextDoesNotAllocate(t *testing.T) {
	g, err := New(Config{Symbols: Symbols(16), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var tr messages.Trade
	testkit.RequireNoAllocs(t, "Generator.Next", 10_000, func() { g.Next(&tr) })
}

func BenchmarkGenNext(b *testing.B) {
	g, err := New(Config{Symbols: Symbols(16), Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var tr messages.Trade
	b.ReportAllocs()
	for b.Loop() {
		g.Next(&tr)
	}
}
