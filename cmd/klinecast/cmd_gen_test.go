package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

// genOut runs gen in-process and returns stdout.
func genOut(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := runGen(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("gen %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// readCSVTrades parses aggTrades CSV with the messages reader.
func readCSVTrades(t *testing.T, data, symbol string) []messages.Trade {
	t.Helper()
	r := messages.NewAggTradeCSVReader(strings.NewReader(data), symbol)
	var out []messages.Trade
	for {
		var tr messages.Trade
		err := r.Next(&tr)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tr)
	}
}

func TestGenCSV(t *testing.T) {
	ms := genOut(t, "--trades", "3000", "--seed", "4")
	us := genOut(t, "--trades", "3000", "--seed", "4", "--micros", "--header")
	if again := genOut(t, "--trades", "3000", "--seed", "4"); again != ms {
		t.Fatal("same flags and seed gave different output")
	}
	if other := genOut(t, "--trades", "3000", "--seed", "5"); other == ms {
		t.Fatal("seeds 4 and 5 gave the same output")
	}
	if !strings.HasPrefix(us, messages.AggTradeCSVHeader) || strings.HasPrefix(ms, "agg_trade_id") {
		t.Fatal("--header: header missing, or written without the flag")
	}
	msLines := strings.Split(strings.TrimSpace(ms), "\n")
	usLines := strings.Split(strings.TrimSpace(us), "\n")[1:]
	if len(msLines) != 3000 || len(usLines) != 3000 {
		t.Fatalf("%d and %d rows, want 3000", len(msLines), len(usLines))
	}
	for i := range msLines {
		mf, uf := strings.Split(msLines[i], ","), strings.Split(usLines[i], ",")
		if len(mf[5]) != 13 || len(uf[5]) != 16 || uf[5][:13] != mf[5] {
			t.Fatalf("row %d: ms time %s and µs time %s disagree", i, mf[5], uf[5])
		}
	}
	a, b := readCSVTrades(t, ms, "BTCUSDT"), readCSVTrades(t, us, "BTCUSDT")
	if !slices.Equal(a, b) {
		t.Fatal("ms and µs files read back to different trades")
	}
	for i := 1; i < len(a); i++ {
		if a[i].Time < a[i-1].Time || a[i].AggID != a[i-1].AggID+1 {
			t.Fatalf("row %d: unshuffled output not in time and id order", i)
		}
	}
	if a[0].Time < gen.DefaultStart || a[0].Time > gen.DefaultStart+60_000*10 {
		t.Errorf("first trade at %d, want shortly after the default start %d", a[0].Time, gen.DefaultStart)
	}
}

// TestGenOutDirMatchesNDJSON checks that per-symbol CSV files hold exactly
// each symbol's share of the same stream that ndjson writes interleaved.
func TestGenOutDirMatchesNDJSON(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--symbols", "3", "--trades", "5000", "--seed", "9"}
	genOut(t, append([]string{"--out-dir", dir}, args...)...)
	nd := genOut(t, append([]string{"--format", "ndjson"}, args...)...)

	bySymbol := map[string][]messages.Trade{}
	var prev int64
	err := messages.DecodeAggTradeBatch([]byte(nd), nil, func(i int, tr *messages.Trade, err error) error {
		if err != nil {
			return err
		}
		if tr.Time < prev {
			t.Fatalf("ndjson event %d goes back in time", i)
		}
		prev = tr.Time
		bySymbol[tr.Symbol] = append(bySymbol[tr.Symbol], *tr)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, sym := range gen.Symbols(3) {
		data, err := os.ReadFile(filepath.Join(dir, sym+"-aggTrades.csv"))
		if err != nil {
			t.Fatal(err)
		}
		got := readCSVTrades(t, string(data), sym)
		want := bySymbol[sym]
		for i := range want {
			want[i].EventTime = 0 // the CSV has no event time
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: CSV holds %d trades that differ from the %d ndjson events of the symbol", sym, len(got), len(want))
		}
		total += len(got)
	}
	if total != 5000 {
		t.Errorf("%d trades in the files, want 5000", total)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestGenShuffle checks that --shuffle permutes each file's rows, in memory
// and with the bounded-memory spill path.
func TestGenShuffle(t *testing.T) {
	for _, shuffleRows := range []int{defaultShuffleRows, 300} {
		dir := t.TempDir()
		plain, shuffled := filepath.Join(dir, "plain"), filepath.Join(dir, "shuffled")
		cfg := gen.Config{Symbols: gen.Symbols(2), Trades: 4000, Seed: 3}
		for _, o := range []genOptions{
			{cfg: cfg, format: "csv", outDir: plain},
			{cfg: cfg, format: "csv", outDir: shuffled, shuffle: true, shuffleRows: shuffleRows},
		} {
			g, err := gen.New(o.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := writeGen(context.Background(), g, o, io.Discard); err != nil {
				t.Fatal(err)
			}
		}
		for _, sym := range cfg.Symbols {
			a, _ := os.ReadFile(filepath.Join(plain, sym+"-aggTrades.csv"))
			b, _ := os.ReadFile(filepath.Join(shuffled, sym+"-aggTrades.csv"))
			la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
			if slices.Equal(la, lb) {
				t.Errorf("shuffleRows %d, %s: rows not shuffled", shuffleRows, sym)
			}
			slices.Sort(la)
			slices.Sort(lb)
			if !slices.Equal(la, lb) {
				t.Errorf("shuffleRows %d, %s: shuffled file does not hold the same rows", shuffleRows, sym)
			}
		}
		if left, _ := filepath.Glob(filepath.Join(shuffled, ".*")); len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
}

func TestGenUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"csv with several symbols needs out-dir", []string{"--symbols", "2"}, "use --out-dir"},
		{"out and out-dir", []string{"--out", filepath.Join(dir, "a"), "--out-dir", dir}, "not both"},
		{"ndjson with csv flags", []string{"--format", "ndjson", "--micros"}, "csv only"},
		{"unknown format", []string{"--format", "xml"}, `--format "xml"`},
		{"no symbols", []string{"--symbols", "0"}, "--symbols 0"},
		{"no trades", []string{"--trades", "0"}, "--trades 0"},
		{"bad start", []string{"--start", "soon"}, "--start"},
		{"start before 2000", []string{"--start", "1999-12-31"}, "start"},
		{"bad span", []string{"--span", "-1h"}, "--span must be positive"},
		{"bad symbol", []string{"--symbol-list", "BTC USDT"}, "symbol"},
		{"duplicate symbol", []string{"--symbol-list", "A,A", "--out-dir", dir}, "listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"gen"}, tc.args...), &stdout, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("exit %d, want %d; stderr should contain %q:\n%s", code, exitUsage, tc.wantErr, stderr.String())
			}
		})
	}
}

// TestGenEnv checks the KLINECAST_<FLAG> fallback end to end.
func TestGenEnv(t *testing.T) {
	t.Setenv("KLINECAST_TRADES", "7")
	t.Setenv("KLINECAST_FORMAT", "ndjson")
	out := genOut(t)
	if n := strings.Count(out, "\n"); n != 7 || !strings.HasPrefix(out, `{"e":"aggTrade"`) {
		t.Fatalf("with KLINECAST_TRADES=7 and KLINECAST_FORMAT=ndjson got %d lines:\n%s", n, out)
	}
	if n := strings.Count(genOut(t, "--trades", "3"), "\n"); n != 3 {
		t.Fatalf("--trades 3 with KLINECAST_TRADES=7 set wrote %d lines, want 3", n)
	}
}
