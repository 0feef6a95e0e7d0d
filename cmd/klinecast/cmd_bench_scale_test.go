package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/messages"
)

// TestBenchScaleJSON runs a tiny `bench scale` (two child nodes of the
// klinecast binary) and checks its JSON against what is known without the
// bench's formulas: the trades and requests the flags make, the nodes'
// own counts of what they accepted, the closed-bar count as the memory
// node pages it out, the restarted durable node answering as the memory
// node, and relations between reported fields (a rate times its seconds
// is the trades; a per-bar size times the bars is the size). Timings are
// not asserted.
//
// The kill comes after --settle 1s, with --snapshot-interval 50ms: the
// durable node has recorded its clock (every 50 ms) and snapshotted after
// its last request, 20 times over. (A node killed within 50 ms of its last
// request may restart with some symbols' bars behind the clock until the
// next request; the bench reports that as exact false.)
func TestBenchScaleJSON(t *testing.T) {
	bin := klinecastBin.Path(t)
	var stdout, stderr bytes.Buffer
	const trades, symbols, batch, queries = 20000, 20, 1000, 200
	args := []string{"bench", "scale", "--bin", bin, "--symbols", "20", "--trades", "20000", "--span", "6h",
		"--batch", "1000", "--queries", "200", "--settle", "1s", "--snapshot-interval", "50ms",
		"--exact-timeout", "20s", "--log-level", "error"}
	if code := run(context.Background(), args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstderr: %s", code, stderr.String())
	}
	var res ScaleResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if !strings.Contains(stderr.String(), "ratio durable/memory") {
		t.Errorf("no summary table on stderr:\n%s", stderr.String())
	}
	nIntervals := len(messages.DefaultIntervals())
	if res.Scenario != "day" || res.Trades != trades || res.Symbols != symbols || res.SpanHours != 6 ||
		res.Batch != batch || res.Requests != trades/batch || len(res.Intervals) != nIntervals || res.Queries != queries {
		t.Errorf("scenario %q, trades %d, symbols %d, span %vh, batch %d, requests %d, intervals %v, queries %d; want day, %d, %d, 6h, %d, %d, the %d defaults, %d",
			res.Scenario, res.Trades, res.Symbols, res.SpanHours, res.Batch, res.Requests, res.Intervals, res.Queries,
			trades, symbols, batch, trades/batch, nIntervals, queries)
	}
	if res.SymbolsTraded != symbols || res.FirstTradeMs >= res.LastTradeMs || res.BodyBytes <= 0 {
		t.Errorf("%d symbols traded, trades from %d to %d, %d body bytes", res.SymbolsTraded, res.FirstTradeMs, res.LastTradeMs, res.BodyBytes)
	}

	for _, n := range []struct {
		name string
		r    ScaleNodeResult
	}{{"memory", res.Memory}, {"durable", res.Durable}} {
		r := n.r
		// Every trade accepted once, by the answers and by the node's own
		// counter.
		if r.Accepted != trades || r.NodeAccepted != trades || r.Duplicates != 0 || r.Rejected != 0 {
			t.Errorf("%s: accepted %d (node: %d), duplicates %d, rejected %d; want %d, %d, 0, 0",
				n.name, r.Accepted, r.NodeAccepted, r.Duplicates, r.Rejected, trades, trades)
		}
		if r.TradesPerSec <= 0 || r.PostSeconds <= 0 || !near(r.TradesPerSec*r.PostSeconds, trades) ||
			!near(r.RequestsPerSec*r.PostSeconds, trades/batch) {
			t.Errorf("%s: %v trades/s and %v requests/s over %v s; want %d trades in %d requests",
				n.name, r.TradesPerSec, r.RequestsPerSec, r.PostSeconds, trades, trades/batch)
		}
		if r.PostP50Millis <= 0 || r.PostP50Millis > r.PostP99Millis || r.PostP99Millis > r.PostMaxMillis {
			t.Errorf("%s: POST latency p50 %v, p99 %v, max %v ms", n.name, r.PostP50Millis, r.PostP99Millis, r.PostMaxMillis)
		}
		if r.QueryErrors != 0 || r.QueryP50Millis <= 0 || r.QueryP50Millis > r.QueryP99Millis || r.QueryP99Millis > r.QueryMaxMillis {
			t.Errorf("%s: %d query errors, latency p50 %v, p99 %v, max %v ms",
				n.name, r.QueryErrors, r.QueryP50Millis, r.QueryP99Millis, r.QueryMaxMillis)
		}
		for _, m := range []ProcMem{r.AfterIngest, r.Settled} {
			if m.RSSMB <= 0 || m.AnonMB <= 0 || m.PeakMB < m.RSSMB || m.AnonMB+m.FileMB > m.RSSMB+1 {
				t.Errorf("%s: memory %+v: want RSS > 0, peak ≥ RSS, anon + file ≈ RSS", n.name, m)
			}
		}
		if len(r.Args) == 0 || r.StartSeconds <= 0 {
			t.Errorf("%s: args %q, start %v s", n.name, r.Args, r.StartSeconds)
		}
	}
	if !near(res.RatioDurableToMemory*res.Memory.TradesPerSec, res.Durable.TradesPerSec) {
		t.Errorf("ratio %v × memory %v ≠ durable %v", res.RatioDurableToMemory, res.Memory.TradesPerSec, res.Durable.TradesPerSec)
	}

	// The closed bars: counted on the memory node for the checked symbols,
	// and the per-interval counts add up.
	var sum int64
	for _, n := range res.ClosedBarsByInterval {
		sum += n
	}
	if res.ClosedBars <= 0 || sum != res.ClosedBars || len(res.ClosedBarsByInterval) != nIntervals {
		t.Errorf("closed bars %d, by interval %v", res.ClosedBars, res.ClosedBarsByInterval)
	}
	if !res.ClosedBarsVerified || len(res.CheckedSymbols) != 5 {
		t.Errorf("closed bars verified %v on %v", res.ClosedBarsVerified, res.CheckedSymbols)
	}
	for _, d := range []struct {
		name string
		d    ScaleDisk
	}{{"after ingest", res.DiskAfterIngest}, {"settled", res.DiskSettled}, {"after restart", res.DiskAfterRestart}} {
		if d.d.Files == 0 || d.d.Bytes <= 0 || d.d.AllocatedBytes <= 0 ||
			!near(d.d.BytesPerClosedBar*float64(res.ClosedBars), float64(d.d.Bytes)) ||
			!near(d.d.AllocatedPerClosedBar*float64(res.ClosedBars), float64(d.d.AllocatedBytes)) {
			t.Errorf("data dir %s: %+v for %d closed bars", d.name, d.d, res.ClosedBars)
		}
	}

	// The restart: every symbol's newest bars and the checked symbols'
	// 1,000 answered as the memory node answers them, before the kill and
	// after the restart, and the random queries too.
	r := res.Restart
	if !r.ExactBeforeKill || !r.Exact || r.Mismatch != "" || r.BeforeKillMismatch != "" {
		t.Errorf("restart: exact before the kill %v (%s), after %v (%s)", r.ExactBeforeKill, r.BeforeKillMismatch, r.Exact, r.Mismatch)
	}
	if r.Checks != symbols+5 || r.Polls < 2 || r.ListenSeconds <= 0 || r.ExactSeconds < r.ListenSeconds ||
		r.AllExactSeconds < r.ExactSeconds || r.AfterRestart.RSSMB <= 0 {
		t.Errorf("restart: %d checks, %d polls, listening after %v s, exact after %v s, every symbol after %v s, RSS %v MB",
			r.Checks, r.Polls, r.ListenSeconds, r.ExactSeconds, r.AllExactSeconds, r.AfterRestart.RSSMB)
	}
	if res.QueryMismatches != 0 {
		t.Errorf("%d queries answered differently, e.g. %v", res.QueryMismatches, res.MismatchedQueries)
	}
	if m := res.Machine; m.Cores < 1 || m.GOMAXPROCS < 1 || m.GoVersion == "" {
		t.Errorf("machine %+v", m)
	} else if _, err := time.Parse(time.RFC3339, m.Date); err != nil {
		t.Errorf("date %q: %v", m.Date, err)
	}
}

func TestBenchScaleUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "week"},
		{"--span", "-1h"},
		{"--batch", "0"},
		{"--intervals", "7m"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"bench", "scale"}, args...), &stdout, &stderr); code != exitUsage {
			t.Errorf("bench scale %q: exit %d, want %d\nstderr: %s", args, code, exitUsage, stderr.String())
		}
	}
}

// TestClosedBars checks the closed-bar formula on fixed times: fixed
// intervals, weeks (Monday-aligned) and calendar months.
func TestClosedBars(t *testing.T) {
	ms := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixMilli()
	}
	tests := []struct {
		iv          messages.Interval
		first, last string
		want        int64
	}{
		// Same bar: nothing closed.
		{messages.Interval1m, "2024-02-26T00:00:01Z", "2024-02-26T00:00:59Z", 0},
		// 00:00 .. 00:59 closed, 01:00 open.
		{messages.Interval1m, "2024-02-26T00:00:30Z", "2024-02-26T01:00:00Z", 60},
		{messages.Interval1m, "2024-02-26T00:00:30Z", "2024-02-26T00:59:59.999Z", 59},
		{messages.Interval5m, "2024-02-26T00:04:59Z", "2024-02-26T00:05:00Z", 1},
		{messages.Interval1h, "2024-02-26T00:00:00Z", "2024-02-27T00:00:00Z", 24},
		{messages.Interval4h, "2024-02-26T03:59:00Z", "2024-02-26T20:00:00Z", 5},
		{messages.Interval1d, "2024-02-26T23:00:00Z", "2024-03-01T00:00:00Z", 4}, // leap year: 26, 27, 28, 29
		// Monday 2024-02-26 .. Sunday 2024-03-03: one week, closed on Monday.
		{messages.Interval1w, "2024-02-26T00:00:00Z", "2024-03-03T23:59:59Z", 0},
		{messages.Interval1w, "2024-02-28T00:00:00Z", "2024-03-04T00:00:00Z", 1},
		{messages.Interval1w, "2024-02-25T12:00:00Z", "2024-03-04T00:00:00Z", 2}, // a Sunday: the week of 2024-02-19
		// Months of 29, 31 and 30 days.
		{messages.Interval1M, "2024-02-29T23:00:00Z", "2024-03-01T00:00:00Z", 1},
		{messages.Interval1M, "2024-02-10T00:00:00Z", "2024-05-31T00:00:00Z", 3},
		{messages.Interval1M, "2024-02-10T00:00:00Z", "2024-02-10T00:00:00Z", 0},
	}
	for _, tc := range tests {
		if got := closedBars(tc.iv, ms(tc.first), ms(tc.last)); got != tc.want {
			t.Errorf("closedBars(%s, %s, %s) = %d, want %d", tc.iv, tc.first, tc.last, got, tc.want)
		}
	}
}

func TestLatencyMillis(t *testing.T) {
	lat := make([]time.Duration, 200)
	for i := range lat {
		lat[i] = time.Duration(200-i) * time.Millisecond // 200 ms .. 1 ms, unsorted
	}
	p50, p99, largest := latencyMillis(lat)
	// Sorted: lat[i] = i+1 ms; p50 = lat[100], p99 = lat[198].
	if p50 != 101 || p99 != 199 || largest != 200 {
		t.Errorf("latencyMillis = %v, %v, %v; want 101, 199, 200", p50, p99, largest)
	}
	if a, b, c := latencyMillis(nil); a != 0 || b != 0 || c != 0 {
		t.Errorf("latencyMillis(nil) = %v, %v, %v", a, b, c)
	}
}
