package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A valid row at 2024-02-27T00:00:00Z and helpers to build files around it.
const goodRow = "100,42000.10000000,0.50000000,1000,1002,1708992000000,false,true"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAggregateBadRows checks that every kind of bad row stops the run with
// "file:line: reason" and exit code 1, and that nothing is written.
func TestAggregateBadRows(t *testing.T) {
	tests := []struct {
		name    string
		content string
		wantErr string // after "file:"
	}{
		{"too few columns", goodRow + "\n1,2,3\n", ":2: messages: syntax error: 3 columns"},
		{"NaN price", "101,NaN,1,1,1,1708992000001,true,true\n", ":1: price: "},
		{"infinite price", goodRow + "\n" + goodRow + "\n101,Inf,1,1,1,1708992000001,true,true\n", ":3: price: "},
		{"zero price", "101,0,1,1,1,1708992000001,true,true\n", ":1: messages: invalid trade: field p"},
		{"negative quantity", "101,1.5,-2,1,1,1708992000001,true,true\n", ":1: quantity: messages: negative decimal"},
		{"quantity with 9 decimals", "101,1.5,0.000000001,1,1,1708992000001,true,true\n", ":1: quantity: "},
		{"time in seconds", "101,1.5,2,1,1,1708992000,true,true\n", ":1: messages: invalid trade: field T: time 1708992000 is before 2000-01-01"},
		{"time far in the future", "101,1.5,2,1,1,4102444800000,true,true\n", ":1: messages: invalid trade: field T: time 4102444800000 is more than 1h in the future"},
		{"negative time", "101,1.5,2,1,1,-5,true,true\n", ":1: messages: invalid trade: field T"},
		{"time not a number", "101,1.5,2,1,1,2024-02-27,true,true\n", ":1: transact_time: "},
		{"last id before first", "101,1.5,2,9,3,1708992000001,true,true\n", ":1: messages: invalid trade: fields f/l"},
		{"bad boolean", "101,1.5,2,1,1,1708992000001,yes,true\n", ":1: is_buyer_maker: "},
		{"line numbers count the header", "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n" +
			goodRow + "\n101,1.5,2,1,1,1708992000001,maybe,true\n", ":3: is_buyer_maker: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := writeFile(t, dir, "in.csv", tc.content)
			out := filepath.Join(dir, "out")
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"aggregate", "--symbol", "BTCUSDT", "--out-dir", out, in}, &stdout, &stderr)
			if code != exitFailure {
				t.Fatalf("exit %d, want %d\n%s", code, exitFailure, stderr.String())
			}
			if want := in + tc.wantErr; !strings.Contains(stderr.String(), want) {
				t.Fatalf("stderr does not contain %q:\n%s", want, stderr.String())
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("output directory created although the run failed (stat: %v)", err)
			}
		})
	}
}

// TestAggregateSkipBad checks --skip-bad: bad rows are skipped, counted and
// the first few described; good rows are aggregated.
func TestAggregateSkipBad(t *testing.T) {
	var content strings.Builder
	good := []string{
		"1,10.00000000,1.00000000,1,1,1708992000000,false,true",
		"2,12.00000000,2.00000000,2,4,1708992001000,true,true",
		"3,11.00000000,1.50000000,5,5,1708992061000,false,true",
	}
	content.WriteString(good[0] + "\n")
	for i := range 7 {
		content.WriteString("9,NaN,1,1,1,1708992000000,true,true\n")
		if i == 3 {
			content.WriteString(good[1] + "\n")
		}
	}
	content.WriteString("1,2,3\n" + good[2] + "\n")
	dir := t.TempDir()
	in := writeFile(t, dir, "in.csv", content.String())
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"aggregate", "--symbol", "BTCUSDT", "--skip-bad", "--intervals", "1m", "--out-dir", out, in}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	log := stderr.String()
	if got := strings.Count(log, "skipping bad row"); got != maxReportedBad {
		t.Errorf("%d bad rows described, want the first %d:\n%s", got, maxReportedBad, log)
	}
	for _, want := range []string{"msg=\"skipped bad rows\" count=8", "rows=3 skipped=8", in + ":2: price"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, log)
		}
	}
	data, err := os.ReadFile(filepath.Join(out, "BTCUSDT-1m.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "1708992000000,10.00000000,12.00000000,10.00000000,12.00000000,3.00000000,1708992059999,34.00000000,4,1.00000000,10.00000000,0\n" +
		"1708992060000,11.00000000,11.00000000,11.00000000,11.00000000,1.50000000,1708992119999,16.50000000,1,1.50000000,16.50000000,0\n"
	if string(data) != want {
		t.Errorf("output:\n%s\nwant:\n%s", data, want)
	}
}

// TestAggregateInputErrors covers inputs that are not bad rows: empty and
// missing files, usage mistakes and the bar limit.
func TestAggregateInputErrors(t *testing.T) {
	dir := t.TempDir()
	empty := writeFile(t, dir, "empty.csv", "")
	headerOnly := writeFile(t, dir, "header.csv", strings.TrimSuffix("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match\n", "\n"))
	good := writeFile(t, dir, "good.csv", goodRow+"\n")
	allBad := writeFile(t, dir, "allbad.csv", "1,x,1,1,1,1708992000000,true,true\n")
	// One stray trade in 2001 next to ones in 2024: 7e8 one-second bars.
	stray := writeFile(t, dir, "stray.csv", goodRow+"\n7,1.00000000,1.00000000,7,7,978307200000,true,true\n")
	missing := filepath.Join(dir, "missing.csv")
	out := filepath.Join(dir, "out")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"empty file", []string{"--symbol", "X", "--out-dir", out, empty}, exitFailure, "no trades in the input"},
		{"header only", []string{"--symbol", "X", "--out-dir", out, headerOnly}, exitFailure, "no trades in the input"},
		{"empty file next to a good one", []string{"--symbol", "X", "--out-dir", out, empty, good}, exitOK, "no trades in input"},
		{"all rows bad, skipped", []string{"--symbol", "X", "--skip-bad", "--out-dir", out, allBad}, exitFailure, "no trades in the input"},
		{"missing file", []string{"--symbol", "X", "--out-dir", out, good, missing}, exitFailure, missing + ": no such file"},
		{"directory as input", []string{"--symbol", "X", "--out-dir", out, dir}, exitFailure, "is a directory"},
		{"bar limit", []string{"--symbol", "X", "--intervals", "1s,1m", "--out-dir", out, stray}, exitFailure, "1s: trades from 2001-01-01T00:00:00Z to 2024-02-27T00:00:00Z make 730684801 bars, more than --max-bars"},
		{"no files", []string{"--symbol", "X"}, exitUsage, "no input files"},
		{"stdin twice", []string{"--symbol", "X", "-", "-"}, exitUsage, "standard input (-) given twice"},
		{"bad interval", []string{"--symbol", "X", "--intervals", "1m,7m", good}, exitUsage, `unknown interval "7m"`},
		{"duplicate interval", []string{"--symbol", "X", "--intervals", "1m,1m", good}, exitUsage, "listed twice"},
		{"no symbol", []string{good}, exitUsage, "--symbol is required"},
		{"bad symbol", []string{"--symbol", "BTC/USDT", good}, exitUsage, "--symbol"},
		{"bad progress", []string{"--symbol", "X", "--progress", "sometimes", good}, exitUsage, "--progress"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"aggregate"}, tc.args...), &stdout, &stderr)
			if code != tc.wantCode || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("exit %d, want %d; stderr should contain %q:\n%s", code, tc.wantCode, tc.wantErr, stderr.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(out, "X-1s.csv")); !os.IsNotExist(err) {
		t.Errorf("the bar limit run wrote an output (stat: %v)", err)
	}
}

// TestAggregateSymbolFromFileName checks that a Binance public-data file
// name supplies the symbol when --symbol is not given.
func TestAggregateSymbolFromFileName(t *testing.T) {
	tests := []struct{ file, want string }{
		{"/data/BTCUSDT-aggTrades-2024-03.csv", "BTCUSDT"},
		{"pepeusdt-aggTrades.csv", "PEPEUSDT"},
		{"trades.csv", ""},
		{"-aggTrades.csv", ""},
	}
	for _, tc := range tests {
		if got := symbolFromFileName(tc.file); got != tc.want {
			t.Errorf("symbolFromFileName(%q) = %q, want %q", tc.file, got, tc.want)
		}
	}
	dir := t.TempDir()
	in := writeFile(t, dir, "ETHUSDT-aggTrades-2024-02-27.csv", goodRow+"\n")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"aggregate", "--intervals", "1h", "--out-dir", dir, in}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "ETHUSDT-1h.csv")); err != nil {
		t.Fatal(err)
	}
}
