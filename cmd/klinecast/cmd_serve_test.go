package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return json.Unmarshal(body, v)
}

func TestServeUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--clock", "sundial"}, "--clock"},
		{[]string{"--intervals", "2m"}, "--intervals"},
		{[]string{"--shards", "0"}, "--shards 0"},
		{[]string{"--cores", "-1"}, "--cores"},
		{[]string{"--allowed-lateness", "-1s"}, "--allowed-lateness"},
		{[]string{"--allowed-lateness", "soon"}, "invalid value"},
		{[]string{"--symbols", "BTC$"}, "--symbols"},
		{[]string{"--demo", "--demo-rate", "0"}, "--demo-rate"},
		{[]string{"--demo", "--demo-symbols", "0"}, "--demo-symbols"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--retention", "1m=7y"}, `unknown or missing unit "y"`},
		{[]string{"--retention", "2m=7d"}, `flag -retention: storage: retention "2m=7d": messages: unknown interval "2m"`},
		{[]string{"--intervals", "1h", "--retention", "1m=7d"}, "--retention 1m=1w: want intervals among those aggregated (1h), not 1m"},
		{[]string{"--memory", "--retention", "1m=7d"}, "--retention applies to a node with storage"},
		{[]string{"extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"serve"}, tc.args...), &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "-h"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "KLINECAST_") {
		t.Errorf("serve -h: exit %d, %s", code, stdout.String())
	}
}

// TestServeDemo runs serve in process with the demo feed and the JSON log
// format: live trades reach the REST API, and cancelling the context (what
// SIGTERM does in main) shuts it down with no error.
func TestServeDemo(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data", "nested")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, []string{"--demo", "--demo-symbols", "6", "--demo-rate", "400", "--http", "127.0.0.1:0",
			"--data-dir", dataDir, "--shards", "4", "--cores", "1", "--intervals", "1s,1m", "--log-format", "json"}, &stdout, &stderr)
	}()
	var url string
	testkit.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("serve returned early: %v\n%s", err, stderr.String())
		default:
		}
		var ok bool
		if url, ok = testkit.ListenURL(stdout.String()); !ok {
			return errors.New("no listening line yet")
		}
		return nil
	})
	if fi, err := os.Stat(dataDir); err != nil || !fi.IsDir() {
		t.Errorf("data dir not created: %v", err)
	}
	// The demo trades arrive in real time: wait until every symbol has
	// traded and a 1s bar closed.
	testkit.Eventually(t, 30*time.Second, func() error {
		var info struct{ Symbols []struct{ Symbol string } }
		if err := getJSON(url+"/api/v3/exchangeInfo", &info); err != nil {
			return err
		}
		if len(info.Symbols) != 6 {
			return fmt.Errorf("%d symbols traded so far", len(info.Symbols))
		}
		var rows [][]json.RawMessage
		if err := getJSON(url+"/api/v3/klines?symbol=BTCUSDT&interval=1s&limit=10", &rows); err != nil {
			return err
		}
		if len(rows) < 2 {
			return fmt.Errorf("%d 1s bars so far", len(rows))
		}
		return nil
	})
	var st actors.Stats
	if err := getJSON(url+"/api/v1/stats", &st); err != nil || st.Accepted == 0 || st.Rejected != 0 {
		t.Errorf("stats %+v %v: want accepted trades and no rejected one", st, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
	for line := range strings.Lines(stderr.String()) {
		if !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"shutdown complete"`) {
		t.Errorf("no shutdown line in the log:\n%s", stderr.String())
	}
}

// TestServeBinary runs the real binary: event clock on a free port, trades
// posted over HTTP, klines checked against the offline aggregate, then
// SIGTERM and exit 0.
func TestServeBinary(t *testing.T) {
	cmd := testkit.ServeCmd(klinecastBin.Path(t), filepath.Join(t.TempDir(), "data"), "--clock", "event", "--intervals", "1m,1h,1d")
	// Flags not given come from the environment.
	cmd.Env = append(os.Environ(), "KLINECAST_SHARDS=3", "KLINECAST_CORES=1")
	p := testkit.Start(t, cmd)
	url := p.URL

	g, err := gen.New(gen.Config{Symbols: gen.Symbols(3), Trades: 3000, Span: 36 * time.Hour, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	var trades []messages.Trade
	var body []byte
	for tr := (messages.Trade{}); g.Next(&tr); {
		trades = append(trades, tr)
		body = append(messages.AppendAggTradeJSON(body, &tr), '\n')
	}
	resp, err := http.Post(url+"/api/v1/trades", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res actors.IngestResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || res.Accepted != len(trades) {
		t.Fatalf("ingest: %d %+v %v", resp.StatusCode, res, err)
	}

	var tree []actors.ActorInfo
	if err := getJSON(url+"/api/v1/actors", &tree); err != nil {
		t.Fatal(err)
	}
	shards := 0
	for _, a := range tree {
		if a.Kind == "shard" {
			shards++
		}
	}
	if shards != 3 {
		t.Errorf("%d shards, want 3 from KLINECAST_SHARDS", shards)
	}

	// The 1h bars of every symbol, from its first trade to its last, are
	// the offline aggregate's.
	for _, sym := range gen.Symbols(3) {
		off := aggregate.NewOffline(sym, []messages.Interval{messages.Interval1h})
		for i := range trades {
			if trades[i].Symbol == sym {
				if err := off.Add(&trades[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		want := off.Klines(messages.Interval1h)
		var got [][]json.RawMessage
		if err := getJSON(fmt.Sprintf("%s/api/v3/klines?symbol=%s&interval=1h&startTime=%d&limit=1000", url, sym, want[0].OpenTime), &got); err != nil {
			t.Fatal(err)
		}
		if len(got) < len(want) {
			t.Fatalf("%s: %d 1h bars, want at least %d", sym, len(got), len(want))
		}
		for i := range want {
			var w []json.RawMessage
			if err := json.Unmarshal(messages.AppendKlineRowJSON(nil, &want[i]), &w); err != nil {
				t.Fatal(err)
			}
			// Byte-exact but the quote volumes (columns 7 and 10).
			for c := range w {
				if c != 7 && c != 10 && !bytes.Equal(got[i][c], w[c]) {
					t.Fatalf("%s bar %d column %d: %s, want %s", sym, i, c, got[i][c], w[c])
				}
			}
		}
	}

	if err := p.Stop(time.Minute); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, p.Stderr.String())
	}
	for _, want := range []string{"signal received", "node stopped", "shutdown complete"} {
		if !strings.Contains(p.Stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, p.Stderr.String())
		}
	}
}
