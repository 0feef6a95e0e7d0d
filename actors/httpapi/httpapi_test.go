package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/internal/testkit"
	"github.com/klinecast/klinecast/messages"
)

// testAPI is a real node behind a real HTTP server.
type testAPI struct {
	node   *actors.Node
	srv    *httptest.Server
	client *http.Client
}

// eventNodeConfig is a memory-only event-clock node with every interval but
// 1s (the tests cover days of trades), keeping every bar (they compare
// whole histories).
func eventNodeConfig() actors.Config {
	return actors.Config{Clock: actors.ClockEvent, Shards: 4, Cores: 2, Intervals: messages.AllIntervals()[1:], MemoryRetention: -1}
}

// startAPI starts a node with ncfg and serves it with hcfg. Both stop at
// the end of the test.
func startAPI(t testing.TB, ncfg actors.Config, hcfg Config) *testAPI {
	t.Helper()
	if ncfg.Logger == nil {
		ncfg.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := actors.Start(context.Background(), ncfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(n, hcfg))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Close(ctx); err != nil {
			t.Errorf("close node: %v", err)
		}
	})
	return &testAPI{node: n, srv: srv, client: srv.Client()}
}

// do sends a request and returns the status and body.
func (a *testAPI) do(t testing.TB, method, path string, body io.Reader) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, a.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b, resp.Header
}

func (a *testAPI) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	code, b, _ := a.do(t, http.MethodGet, path, nil)
	return code, b
}

// postTrades posts body to /api/v1/trades and decodes a 200 answer.
func (a *testAPI) postTrades(t testing.TB, body []byte) (int, actors.IngestResult, []byte) {
	t.Helper()
	code, b, _ := a.do(t, http.MethodPost, "/api/v1/trades", bytes.NewReader(body))
	var res actors.IngestResult
	if code == http.StatusOK {
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("ingest answer %s: %v", b, err)
		}
	}
	return code, res, b
}

// genTrades returns n generated trades over nsym symbols in time order.
func genTrades(t testing.TB, nsym int, n int64, span time.Duration, seed uint64) []messages.Trade {
	t.Helper()
	g, err := gen.New(gen.Config{Symbols: gen.Symbols(nsym), Trades: n, Span: span, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]messages.Trade, 0, n)
	var tr messages.Trade
	for g.Next(&tr) {
		out = append(out, tr)
	}
	return out
}

// ndjson encodes trades as NDJSON aggTrade events.
func ndjson(trades []messages.Trade) []byte {
	var b []byte
	for i := range trades {
		b = append(messages.AppendAggTradeJSON(b, &trades[i]), '\n')
	}
	return b
}

// requireJSONError checks a {"error":...} answer.
func requireJSONError(t testing.TB, code int, body []byte, wantCode int, wantIn string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if code != wantCode || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, wantIn) {
		t.Fatalf("got %d %s, want %d with an error containing %q", code, body, wantCode, wantIn)
	}
}

func TestHTTPMethodsAndPaths(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{})
	tests := []struct {
		method, path string
		want         int
		allow        string
	}{
		{http.MethodGet, "/api/v1/trades", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, "/api/v1/trades", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/api/v3/klines", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/healthz", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/api/v3/exchangeInfo", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/api/v1/actors", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/api/v1/stats", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/api/v3/nope", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodHead, "/healthz", http.StatusOK, ""},
	}
	for _, tc := range tests {
		code, body, hdr := a.do(t, tc.method, tc.path, nil)
		if code != tc.want {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.want)
		}
		if got := hdr.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		if tc.want >= 400 && !json.Valid(body) {
			t.Errorf("%s %s: error body is not JSON: %s", tc.method, tc.path, body)
		}
	}
}

func TestHTTPStateEndpoints(t *testing.T) {
	now := time.UnixMilli(1_717_171_717_171)
	a := startAPI(t, eventNodeConfig(), Config{Now: func() time.Time { return now }})
	if code, res, body := a.postTrades(t, ndjson(genTrades(t, 3, 300, time.Hour, 4))); code != 200 || res.Accepted != 300 {
		t.Fatalf("ingest: %d %s", code, body)
	}

	// Polled: a shard that has not processed its first message yet has
	// no heartbeat, and the node reports it failed while its first
	// message (an event-clock tick) is still queued.
	var code int
	var body []byte
	testkit.Eventually(t, 10*time.Second, func() error {
		code, body = a.get(t, "/healthz")
		var health actors.HealthReport
		if code != 200 || json.Unmarshal(body, &health) != nil || health.State != actors.Healthy {
			return fmt.Errorf("healthz: %d %s", code, body)
		}
		// The 4 shards and a router partition per pinned worker.
		shards, routers := 0, 0
		for _, c := range health.Components {
			switch {
			case strings.HasPrefix(c.Name, "shard-"):
				shards++
			case strings.HasPrefix(c.Name, "router-"):
				routers++
			}
		}
		if shards != 4 || routers < 1 || shards+routers != len(health.Components) {
			return fmt.Errorf("healthz components: %d shards, %d router partitions: %s", shards, routers, body)
		}
		return nil
	})

	code, body = a.get(t, "/api/v1/actors")
	var tree []actors.ActorInfo
	if code != 200 || json.Unmarshal(body, &tree) != nil {
		t.Fatalf("actors: %d %s", code, body)
	}
	kinds := map[string]int{}
	for _, ai := range tree {
		kinds[ai.Kind]++
	}
	if kinds["guardian"] != 1 || kinds["router"] != 1 || kinds["shard"] != 4 {
		t.Errorf("actors: kinds %v in %s", kinds, body)
	}

	code, body = a.get(t, "/api/v1/stats")
	var st actors.Stats
	if code != 200 || json.Unmarshal(body, &st) != nil || st.Accepted != 300 || st.LastSeq != 1 {
		t.Fatalf("stats: %d %s", code, body)
	}

	code, body = a.get(t, "/api/v3/exchangeInfo")
	var info struct {
		Timezone   string `json:"timezone"`
		ServerTime int64  `json:"serverTime"`
		Symbols    []struct {
			Symbol string `json:"symbol"`
			Status string `json:"status"`
		} `json:"symbols"`
	}
	if code != 200 || json.Unmarshal(body, &info) != nil {
		t.Fatalf("exchangeInfo: %d %s", code, body)
	}
	if info.Timezone != "UTC" || info.ServerTime != now.UnixMilli() || len(info.Symbols) != 3 ||
		info.Symbols[0].Symbol != "BTCUSDT" || info.Symbols[0].Status != "TRADING" {
		t.Errorf("exchangeInfo: %s", body)
	}
}

// TestHTTPFixedSymbols: with a fixed list, exchangeInfo lists every
// configured symbol, an untraded one has no bars (not "invalid symbol"), and
// the node's rejection of other symbols comes back at the request's index.
func TestHTTPFixedSymbols(t *testing.T) {
	ncfg := eventNodeConfig()
	ncfg.Symbols = []string{"BTCUSDT", "ETHUSDT"}
	a := startAPI(t, ncfg, Config{})
	body := `{"s":"btcusdt","a":1,"p":"100","q":"1","T":1717171717171}
{"s":"BTCUSDT","a":2,"p":"NaN","q":"1","T":1717171717171}
{"s":"DOGEUSDT","a":3,"p":"100","q":"1","T":1717171717171}
`
	code, res, raw := a.postTrades(t, []byte(body))
	if code != 200 || res.Accepted != 1 || len(res.Rejected) != 2 || res.Rejected[0].Index != 1 || res.Rejected[1].Index != 2 ||
		!strings.Contains(res.Rejected[1].Error, "unknown symbol") {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	code, raw = a.get(t, "/api/v3/exchangeInfo")
	if code != 200 || !strings.Contains(string(raw), `"BTCUSDT"`) || !strings.Contains(string(raw), `"ETHUSDT"`) || strings.Contains(string(raw), "DOGE") {
		t.Fatalf("exchangeInfo: %d %s", code, raw)
	}
	if code, raw = a.get(t, "/api/v3/klines?symbol=ETHUSDT&interval=1m"); code != 200 || string(raw) != "[]" {
		t.Fatalf("klines of an untraded fixed symbol: %d %s", code, raw)
	}
	if code, raw = a.get(t, "/api/v3/klines?symbol=DOGEUSDT&interval=1m"); code != 400 || !strings.Contains(string(raw), "-1121") {
		t.Fatalf("klines of a symbol outside the list: %d %s", code, raw)
	}
}

// TestHTTPClosedNode: after the node closed, health is failed (503) and
// ingest and queries answer 503.
func TestHTTPClosedNode(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{})
	if code, _, raw := a.postTrades(t, ndjson(genTrades(t, 1, 10, time.Minute, 1))); code != 200 {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.node.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if code, raw := a.get(t, "/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(string(raw), `"failed"`) {
		t.Errorf("healthz: %d %s", code, raw)
	}
	code, _, raw := a.postTrades(t, ndjson(genTrades(t, 1, 10, time.Minute, 2)))
	requireJSONError(t, code, raw, http.StatusServiceUnavailable, "closed")
	if code, raw := a.get(t, "/api/v3/klines?symbol=BTCUSDT&interval=1m"); code != http.StatusServiceUnavailable || !strings.Contains(string(raw), "-1001") {
		t.Errorf("klines: %d %s", code, raw)
	}
}

// TestHTTPStoppedShard: a shard stopped by its restart limit (11 panics;
// the limit is 10 in 10 s) makes /healthz fail with the reason, and
// ingest and queries answer 503 saying so instead of hanging.
func TestHTTPStoppedShard(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{})
	trades := genTrades(t, 20, 400, time.Hour, 3)
	if code, _, raw := a.postTrades(t, ndjson(trades[:200])); code != 200 {
		t.Fatalf("ingest: %d %s", code, raw)
	}
	for range 11 {
		if err := a.node.InjectShardPanic(1, "limit drill"); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, time.Minute, func() error {
		code, raw := a.get(t, "/healthz")
		if code != http.StatusServiceUnavailable || !strings.Contains(string(raw), "restart limit") || !strings.Contains(string(raw), "limit drill") {
			return fmt.Errorf("healthz: %d %s", code, raw)
		}
		return nil
	})
	code, _, raw := a.postTrades(t, ndjson(trades[200:]))
	requireJSONError(t, code, raw, http.StatusServiceUnavailable, "restart limit")
	if code, raw := a.get(t, "/api/v3/klines?symbol="+trades[0].Symbol+"&interval=1m"); code != http.StatusServiceUnavailable || !strings.Contains(string(raw), "-1001") {
		t.Errorf("klines: %d %s", code, raw)
	}
	// Close finishes, reporting the shard that could not checkpoint.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.node.Close(ctx); !errors.Is(err, actors.ErrActorStopped) {
		t.Errorf("Close: %v, want ErrActorStopped", err)
	}
}

func TestHTTPConfig(t *testing.T) {
	if err := (Config{MaxBodyBytes: -1}).Validate(); err == nil {
		t.Error("negative MaxBodyBytes accepted")
	}
	if c := DefaultConfig(); c.MaxBodyBytes != DefaultMaxBodyBytes || c.Logger == nil || c.Now == nil {
		t.Errorf("DefaultConfig() = %+v", c)
	}
	defer func() {
		if recover() == nil {
			t.Error("New with an invalid config did not panic")
		}
	}()
	New(nil, Config{MaxBodyBytes: -1})
}
