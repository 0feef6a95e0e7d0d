package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// crashNode is one run of the real binary.
type crashNode struct {
	*testkit.Process
}

// crashStopWithin bounds how long stop waits for a node to exit after
// SIGTERM before killing it.
const crashStopWithin = 2 * time.Minute

// startCrashNode starts `klinecast serve` on dataDir with the crash tests'
// flags (event clock, 8 shards, frequent snapshots), followed by extra,
// and waits for its listening line.
func startCrashNode(t *testing.T, dataDir string, extra ...string) *crashNode {
	t.Helper()
	args := append([]string{"--clock", "event", "--shards", "8", "--intervals", "1m,1h,1d",
		"--snapshot-interval", "300ms", "--log-level", "warn"}, extra...)
	return &crashNode{testkit.Start(t, testkit.ServeCmd(klinecastBin.Path(t), dataDir, args...))}
}

// stop sends SIGTERM and waits for the process to be gone (killing it if
// it is still running after crashStopWithin). Its exit status is not
// checked: the crash tests judge the data, not the shutdown.
func (n *crashNode) stop() {
	_ = n.Stop(crashStopWithin)
}

// postResult sends one NDJSON batch to a node expected to be healthy and
// returns its answer; anything but a 200 is an error.
func (n *crashNode) postResult(body []byte) (actors.IngestResult, error) {
	var res actors.IngestResult
	resp, err := http.Post(n.URL+"/api/v1/trades", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return res, fmt.Errorf("status %d: %s", resp.StatusCode, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return res, fmt.Errorf("decoding the answer: %w", err)
	}
	if len(res.Rejected) != 0 {
		return res, fmt.Errorf("items rejected: %+v", res.Rejected)
	}
	return res, nil
}

// post sends one NDJSON batch; ok reports a 200 with every trade accepted
// or a duplicate (the batch is acknowledged).
func (n *crashNode) post(body []byte, size int) (ok bool, err error) {
	resp, err := http.Post(n.URL+"/api/v1/trades", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return false, nil // the node died under the request: not acknowledged
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, nil
	}
	var res actors.IngestResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return false, nil
	}
	if res.Accepted+res.Duplicates != size || len(res.Rejected) != 0 {
		return false, fmt.Errorf("batch of %d acknowledged as %+v", size, res)
	}
	return true, nil
}

// crashBatch is how many trades the crash and power-loss tests post in
// one request.
const crashBatch = 200

// crashBatches generates the trades of cfg and cuts them into NDJSON
// request bodies of crashBatch trades (the last may be shorter); size(i)
// is the number of trades in bodies[i].
func crashBatches(t *testing.T, cfg gen.Config) (trades []messages.Trade, bodies [][]byte, size func(i int) int) {
	t.Helper()
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for tr := (messages.Trade{}); g.Next(&tr); {
		trades = append(trades, tr)
	}
	for i := 0; i < len(trades); i += crashBatch {
		var b []byte
		for j := i; j < min(i+crashBatch, len(trades)); j++ {
			b = append(messages.AppendAggTradeJSON(b, &trades[j]), '\n')
		}
		bodies = append(bodies, b)
	}
	size = func(i int) int { return min(crashBatch, len(trades)-i*crashBatch) }
	return trades, bodies, size
}

// crashRand returns the random source of a crash test's kill points,
// seeded from the clock on stream; it logs the seed.
func crashRand(t *testing.T, stream uint64) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (the kill points are random; the verdict must not depend on them)", seed)
	return rand.New(rand.NewPCG(seed, stream))
}

// TestCrashKill9LosesNothingAcknowledged streams trades into the real
// binary and kills it with SIGKILL at random moments, several times (right
// after a request is started, so it may die before, during or after it;
// TestCrashKill9MidRequestAllOrNothing kills mid-request for certain).
// After each restart the producer re-sends every batch not answered 200.
// The klines must then equal the offline aggregate of all trades: nothing
// acknowledged lost, nothing counted twice.
func TestCrashKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process crash test")
	}
	for _, tc := range []struct {
		name string
		cfg  gen.Config
		// minuteSample: the 1m bars are compared for one symbol in
		// minuteSample (all of them for 1h and 1d): paging every 1m bar
		// of 2,000 symbols over HTTP would take minutes.
		minuteSample int
	}{
		{"busy: 6 symbols over 3 days", gen.Config{Symbols: gen.Symbols(6), Trades: 24_000, Span: 3 * 24 * time.Hour, Seed: 21}, 1},
		// A market's breadth: most bars of most symbols are gap fills
		// (runs), and most series' chunks are written by snapshots.
		{"sparse: 2,000 symbols over 7 days", gen.Config{Symbols: gen.Symbols(2000), Trades: 30_000, Span: 7 * 24 * time.Hour, Seed: 22}, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			rng := crashRand(t, 7)
			trades, bodies, size := crashBatches(t, tc.cfg)
			next := 0 // first batch not yet acknowledged
			for kill := 0; kill < 5; kill++ {
				n := startCrashNode(t, dataDir)
				// Acknowledge a random number of batches, then kill the node
				// while the next request is in flight.
				for stop := next + 1 + rng.IntN(25); next < stop && next < len(bodies)-1; next++ {
					ok, err := n.post(bodies[next], size(next))
					if err != nil {
						n.Kill()
						t.Fatal(err)
					}
					if !ok {
						n.Kill()
						t.Fatalf("batch %d refused by a healthy node\n%s", next, n.Stderr.String())
					}
				}
				inflight := make(chan struct{})
				go func() {
					defer close(inflight)
					n.post(bodies[next], size(next)) // outcome unknown: re-sent later
				}()
				n.Kill()
				<-inflight
				t.Logf("run %d: killed after %d acknowledged batches", kill, next)
			}

			n := startCrashNode(t, dataDir)
			defer n.stop()
			for ; next < len(bodies); next++ {
				ok, err := n.post(bodies[next], size(next))
				if err != nil || !ok {
					t.Fatalf("final run, batch %d: ok=%v err=%v\n%s", next, ok, err, n.Stderr.String())
				}
			}
			requireHTTPMatchesOfflineSampled(t, n.URL, trades, []messages.Interval{messages.Interval1m, messages.Interval1h, messages.Interval1d}, tc.minuteSample)
		})
	}
}

// TestCrashSecondNodeOnDataDirRefused starts two nodes on one data dir: the
// second must fail at once with an error naming the directory.
func TestCrashSecondNodeOnDataDirRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	first := startCrashNode(t, dataDir)
	defer first.Kill()
	var stderr bytes.Buffer
	second := testkit.ServeCmd(klinecastBin.Path(t), dataDir)
	second.Stderr = &stderr
	err := second.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != exitFailure {
		t.Fatalf("second node: %v, want exit %d\n%s", err, exitFailure, stderr.String())
	}
	if !strings.Contains(stderr.String(), dataDir) || !strings.Contains(stderr.String(), "in use") {
		t.Fatalf("second node's error does not name the locked dir:\n%s", stderr.String())
	}
}

// requireHTTPMatchesOffline pages through GET /api/v3/klines for every
// symbol and interval and compares each bar with the offline aggregate:
// exact, except quote volumes (float sums: 1e-9 relative).
func requireHTTPMatchesOffline(t *testing.T, url string, trades []messages.Trade, ivs []messages.Interval) {
	t.Helper()
	requireHTTPMatchesOfflineSampled(t, url, trades, ivs, 1)
}

// requireHTTPMatchesOfflineSampled is requireHTTPMatchesOffline comparing
// intervals shorter than an hour for one symbol in minuteSample only (in
// symbol order), the longer ones for every symbol.
func requireHTTPMatchesOfflineSampled(t *testing.T, url string, trades []messages.Trade, ivs []messages.Interval, minuteSample int) {
	t.Helper()
	bySym := map[string][]messages.Trade{}
	for _, tr := range trades {
		bySym[tr.Symbol] = append(bySym[tr.Symbol], tr)
	}
	syms := slices.Sorted(maps.Keys(bySym))
	for si, sym := range syms {
		ts := bySym[sym]
		off := aggregate.NewOffline(sym, ivs)
		for i := range ts {
			if err := off.Add(&ts[i]); err != nil {
				t.Fatal(err)
			}
		}
		for _, iv := range ivs {
			if iv.Fixed() > 0 && iv.Fixed() < messages.Hour && si%minuteSample != 0 {
				continue
			}
			want := off.Klines(iv)
			var got []messages.Kline
			for start := want[0].OpenTime; len(got) < len(want); {
				var rows []json.RawMessage
				if err := getJSON(fmt.Sprintf("%s/api/v3/klines?symbol=%s&interval=%s&startTime=%d&limit=1000", url, sym, iv, start), &rows); err != nil {
					t.Fatal(err)
				}
				if len(rows) == 0 {
					break
				}
				for _, r := range rows {
					var k messages.Kline
					if err := messages.ParseKlineRowJSON(r, &k, sym, iv); err != nil {
						t.Fatalf("%s %s: row %s: %v", sym, iv, r, err)
					}
					got = append(got, k)
				}
				start = got[len(got)-1].OpenTime + 1
			}
			if len(got) < len(want) {
				t.Fatalf("%s %s: %d bars served, offline has %d", sym, iv, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if !quoteClose(g.QuoteVolume, w.QuoteVolume) || !quoteClose(g.TakerBuyQuoteVolume, w.TakerBuyQuoteVolume) {
					t.Fatalf("%s %s bar %d: quote volumes %v/%v, want %v/%v", sym, iv, i, g.QuoteVolume, g.TakerBuyQuoteVolume, w.QuoteVolume, w.TakerBuyQuoteVolume)
				}
				// The REST row carries no trade ids or closed flag.
				g.QuoteVolume, g.TakerBuyQuoteVolume = w.QuoteVolume, w.TakerBuyQuoteVolume
				g.FirstTradeID, g.LastTradeID, g.Closed = w.FirstTradeID, w.LastTradeID, w.Closed
				if g != w {
					t.Fatalf("%s %s bar %d (%s): trades lost or counted twice\n got %+v\nwant %+v", sym, iv, i,
						time.UnixMilli(w.OpenTime).UTC().Format(time.RFC3339), g, w)
				}
			}
		}
	}
}

// quoteClose compares quote volumes as printed (8 decimals) within 1e-9
// relative or half a unit of the last printed digit.
func quoteClose(a, b float64) bool {
	d := math.Abs(a - b)
	return d <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) || d <= 0.5e-8+1e-12
}

// TestCrashKill9MidRequestAllOrNothing kills the real binary with SIGKILL
// while a request is certainly in flight: the request is sent on a raw
// connection with "Expect: 100-continue", and the kill comes only after the
// server answered "100 Continue" (Go's server does so when the handler
// first reads the body) and part of the body was written: half of it, or
// all but its last byte (or, a third variant, all of it, and the node's
// stats counted the batch accepted, its answer unread). After the restart every acknowledged batch must
// be present, and the interrupted one all present or all absent (re-sent,
// its trades are either all duplicates or all new), never partly applied.
// The klines must finally equal the offline aggregate (nothing counted
// twice).
func TestCrashKill9MidRequestAllOrNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process crash test")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	rng := crashRand(t, 11)

	trades, bodies, size := crashBatches(t, gen.Config{Symbols: gen.Symbols(5), Trades: 16_000, Span: 2 * 24 * time.Hour, Seed: 5})

	next := 0
	wantApplied := map[int]bool{}
	for kill := range 6 {
		n := startCrashNode(t, dataDir)
		first := next
		for stop := next + 1 + rng.IntN(15); next < stop; next++ {
			if ok, err := n.post(bodies[next], size(next)); err != nil || !ok {
				n.Kill()
				t.Fatalf("batch %d: ok=%v err=%v\n%s", next, ok, err, n.Stderr.String())
			}
		}
		var before actors.Stats
		if err := getJSON(n.URL+"/api/v1/stats", &before); err != nil {
			n.Kill()
			t.Fatal(err)
		}
		cut := len(bodies[next]) / 2
		switch kill % 3 {
		case 1:
			cut = len(bodies[next]) - 1
		case 2:
			cut = len(bodies[next]) // the whole body: applied, its answer unread
		}
		conn := startRequest(t, n, bodies[next], cut)
		if cut == len(bodies[next]) {
			testkit.Eventually(t, time.Minute, func() error {
				var st actors.Stats
				if err := getJSON(n.URL+"/api/v1/stats", &st); err != nil {
					return err
				}
				if st.Accepted < before.Accepted+uint64(size(next)) {
					return fmt.Errorf("%d trades accepted, waiting for %d", st.Accepted, before.Accepted+uint64(size(next)))
				}
				return nil
			})
		}
		n.Kill()
		conn.Close()
		if cut == len(bodies[next]) {
			wantApplied[kill] = true
		}

		n = startCrashNode(t, dataDir)
		for i := first; i < next; i++ {
			res, err := n.postResult(bodies[i])
			if err != nil || res.Duplicates != size(i) {
				n.Kill()
				t.Fatalf("kill %d: acknowledged batch %d re-sent: %+v, %v (want all %d duplicates)\n%s", kill, i, res, err, size(i), n.Stderr.String())
			}
		}
		res, err := n.postResult(bodies[next])
		if err != nil {
			n.Kill()
			t.Fatal(err)
		}
		if wantApplied[kill] && res.Duplicates != size(next) {
			n.Kill()
			t.Fatalf("kill %d: the interrupted batch %d was applied (the node counted it) but %d of %d trades survived the kill", kill, next, res.Duplicates, size(next))
		}
		if res.Duplicates != 0 && res.Duplicates != size(next) {
			n.Kill()
			t.Fatalf("kill %d: the interrupted batch %d was partly applied: %d of %d trades present", kill, next, res.Duplicates, size(next))
		}
		t.Logf("kill %d: after %d acknowledged batches, mid-request with %d of %d body bytes sent; the interrupted batch was %s",
			kill, next-first, cut, len(bodies[next]), map[bool]string{true: "applied", false: "absent"}[res.Duplicates != 0])
		next++
		n.stop()
	}

	n := startCrashNode(t, dataDir)
	defer n.stop()
	for ; next < len(bodies); next++ {
		if ok, err := n.post(bodies[next], size(next)); err != nil || !ok {
			t.Fatalf("final run, batch %d: ok=%v err=%v\n%s", next, ok, err, n.Stderr.String())
		}
	}
	requireHTTPMatchesOffline(t, n.URL, trades, []messages.Interval{messages.Interval1m, messages.Interval1h, messages.Interval1d})
}

// startRequest opens a raw connection to n, sends a POST /api/v1/trades
// for body with "Expect: 100-continue", waits for the server's "100
// Continue" (its handler is reading the body) and writes the first sent
// bytes of the body. The request is then in flight for certain: the
// server has started it and cannot have finished it.
func startRequest(t *testing.T, n *crashNode, body []byte, sent int) net.Conn {
	t.Helper()
	host := strings.TrimPrefix(n.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/v1/trades HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", host, len(body))
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Minute)) // a generous bound on a hang, not a timing assertion
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 100") {
		conn.Close()
		t.Fatalf("waiting for 100 Continue: %q, %v", status, err)
	}
	if _, err := conn.Write(body[:sent]); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn
}
