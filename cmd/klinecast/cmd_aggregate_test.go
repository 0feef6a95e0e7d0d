package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The acceptance data: 60,000 trades of 4 symbols (major, mid, alt, meme)
// over ~48 h from Saturday 2024-08-31 12:00 UTC. It crosses the month
// boundary 2024-09-01 (a Sunday) and, a day later, Monday 2024-09-02, the
// start of a week (and of a 3-day bar); it has bursts (several trades in
// one millisecond, so the open/close tie-break by aggregate id matters) and
// idle gaps of hours. 48 h keeps the 1s files small enough (~170k rows) to
// check every row.
const (
	acceptStart  = "2024-08-31T12:00:00Z"
	acceptMonth  = int64(1725148800000) // 2024-09-01T00:00:00Z
	acceptMonday = int64(1725235200000) // 2024-09-02T00:00:00Z
)

const (
	acceptSymbols = 4
	acceptTrades  = 60_000
	acceptSeed    = 7
)

// genAcceptanceData writes the acceptance data with `klinecast gen`, once
// with ms and once with µs timestamps (the µs files with a header), both
// shuffled, and returns the two directories.
func genAcceptanceData(t *testing.T) (msDir, usDir string) {
	t.Helper()
	base := t.TempDir()
	msDir, usDir = filepath.Join(base, "ms"), filepath.Join(base, "us")
	common := []string{"--symbols", fmt.Sprint(acceptSymbols), "--trades", fmt.Sprint(acceptTrades),
		"--start", acceptStart, "--span", "48h", "--seed", fmt.Sprint(acceptSeed), "--shuffle"}
	for _, args := range [][]string{
		append([]string{"--out-dir", msDir}, common...),
		append([]string{"--out-dir", usDir, "--micros", "--header"}, common...),
	} {
		var stderr bytes.Buffer
		if err := runGen(context.Background(), args, &bytes.Buffer{}, &stderr); err != nil {
			t.Fatalf("gen %v: %v\n%s", args, err, stderr.String())
		}
	}
	return msDir, usDir
}

// checkAcceptanceData makes sure the data has the properties the test is
// about, so that a change to the generator cannot quietly weaken it.
func checkAcceptanceData(t *testing.T, symbol string, trades []refTrade) {
	t.Helper()
	minT, maxT := trades[0].ms, trades[0].ms
	descents := 0
	for i, tr := range trades {
		minT, maxT = min(minT, tr.ms), max(maxT, tr.ms)
		if i > 0 && tr.ms < trades[i-1].ms {
			descents++
		}
	}
	if minT >= acceptMonth || maxT < acceptMonday {
		t.Fatalf("%s: trades from %s to %s do not cross both %s and %s", symbol,
			time.UnixMilli(minT).UTC(), time.UnixMilli(maxT).UTC(), time.UnixMilli(acceptMonth).UTC(), time.UnixMilli(acceptMonday).UTC())
	}
	if descents < len(trades)/4 {
		t.Fatalf("%s: only %d of %d rows go back in time: not shuffled", symbol, descents, len(trades))
	}
}

// TestAggregateAcceptance is the issue's acceptance test: `klinecast
// aggregate` output for all 16 intervals, on shuffled ms and µs inputs with
// multi-hour gaps across a week and a month boundary, equals an exact
// independent computation (reference_test.go).
func TestAggregateAcceptance(t *testing.T) {
	msDir, usDir := genAcceptanceData(t)
	symbols := []string{"BTCUSDT", "ETHUSDT", "XRPUSDT", "PEPEUSDT"}

	total, gaps, ties := 0, 0, 0
	for _, sym := range symbols {
		trades := refReadAggTrades(t, filepath.Join(msDir, sym+"-aggTrades.csv"))
		checkAcceptanceData(t, sym, trades)
		total += len(trades)
		// Gaps and ties are properties of the time-sorted stream.
		sorted := refSort(trades)
		for i := 1; i < len(sorted); i++ {
			switch dt := sorted[i].ms - sorted[i-1].ms; {
			case dt >= (2 * time.Hour).Milliseconds():
				gaps++
			case dt == 0:
				ties++
			}
		}
	}
	if total != acceptTrades {
		t.Fatalf("%d trades in the files, want %d", total, acceptTrades)
	}
	if gaps == 0 || ties == 0 {
		t.Fatalf("acceptance data has %d idle gaps of 2 h or more and %d trades sharing a millisecond with the previous one; want both", gaps, ties)
	}
	t.Logf("%d trades, %d idle gaps of 2 h or more, %d trades in the same millisecond as the previous one", total, gaps, ties)

	for _, variant := range []struct{ name, dir string }{{"ms", msDir}, {"us", usDir}} {
		for _, sym := range symbols {
			t.Run(variant.name+"/"+sym, func(t *testing.T) {
				// Independent runs (own output dirs): use both cores. They
				// start after this function returns and finish before the
				// test does, so they never overlap the memory test.
				t.Parallel()
				in := filepath.Join(variant.dir, sym+"-aggTrades.csv")
				out := t.TempDir()
				var stdout, stderr bytes.Buffer
				args := []string{"--symbol", sym, "--intervals", "all", "--out-dir", out, in}
				if err := runAggregate(context.Background(), args, &stdout, &stderr); err != nil {
					t.Fatalf("aggregate: %v\n%s", err, stderr.String())
				}
				trades := refReadAggTrades(t, in)
				sorted := refSort(trades)
				for _, iv := range refIntervals() {
					refCompareFile(t, filepath.Join(out, sym+"-"+iv.name+".csv"), refKlines(sorted, iv.name, iv.d))
				}
				if !strings.Contains(stderr.String(), fmt.Sprintf("rows=%d", len(trades))) {
					t.Errorf("summary line does not report %d rows:\n%s", len(trades), stderr.String())
				}
			})
		}
	}
}

// runBinary runs the built binary and returns its exit code and output.
func runBinary(t *testing.T, bin string, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return code, so.String(), se.String()
}

// TestAggregateBinary runs the real binary: the acceptance comparison once
// (µs, shuffled, all intervals, input on stdin), and the exit codes.
func TestAggregateBinary(t *testing.T) {
	bin := klinecastBin.Path(t)
	_, usDir := genAcceptanceData(t)
	in := filepath.Join(usDir, "PEPEUSDT-aggTrades.csv")
	data, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	code, stdout, stderr := runBinary(t, bin, data, "aggregate", "--symbol", "pepeusdt", "--intervals", "all", "--out-dir", out, "-")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress bar drawn although stderr is not a terminal:\n%q", stderr)
	}
	if n := strings.Count(stdout, "\n"); n != 16 {
		t.Errorf("stdout has %d lines, want one per interval:\n%s", n, stdout)
	}
	sorted := refSort(refReadAggTrades(t, in))
	for _, iv := range refIntervals() {
		refCompareFile(t, filepath.Join(out, "PEPEUSDT-"+iv.name+".csv"), refKlines(sorted, iv.name, iv.d))
	}

	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("1,1.5,2,1,1,1709000000000,true,true\n2,NaN,2,2,2,1709000000001,true,true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"aggregate", "-h"}, 0, ""},
		{"top-level help", []string{"help"}, 0, ""},
		{"bad row", []string{"aggregate", "--symbol", "X", "--out-dir", t.TempDir(), bad}, 1, bad + ":2: price"},
		{"bad row skipped", []string{"aggregate", "--symbol", "X", "--skip-bad", "--out-dir", t.TempDir(), bad}, 0, "count=1"},
		{"missing file", []string{"aggregate", "--symbol", "X", filepath.Join(t.TempDir(), "nope.csv")}, 1, "no such file"},
		{"unknown flag", []string{"aggregate", "--frobnicate", bad}, 2, "flag provided but not defined"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"no arguments", nil, 2, "Commands:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runBinary(t, bin, nil, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.wantErr) {
				t.Fatalf("exit %d, want %d; stderr should contain %q:\n%s", code, tc.wantCode, tc.wantErr, stderr)
			}
		})
	}
}
