package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// TestHTTPIngestMalformed: a body that cannot be decoded as a whole is a
// 400 naming the offset, and nothing of it is applied.
func TestHTTPIngestMalformed(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{})
	valid := `{"s":"BTCUSDT","a":1,"p":"100","q":"1","T":1717171717171}`
	tests := []struct {
		name, body string
		offset     int
	}{
		{"not JSON", "hello", 0},
		{"a JSON number", "  42", 2},
		{"a JSON string", `"trades"`, 0},
		{"unterminated array", "[" + valid + ",", len(valid) + 2},
		{"unterminated array element", "[" + valid + `,{"s":"X"`, -1},
		{"missing comma", "[" + valid + valid + "]", len(valid) + 1},
		{"trailing data", "[" + valid + "] x", len(valid) + 3},
		{"broken element", `[{"s":}]`, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := a.do(t, http.MethodPost, "/api/v1/trades", strings.NewReader(tc.body))
			var e errorBody
			if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Offset == nil || !strings.Contains(e.Error, "at byte") {
				t.Fatalf("%d %s, want 400 with the offset", code, body)
			}
			if tc.offset >= 0 && *e.Offset != tc.offset {
				t.Errorf("offset %d, want %d (%s)", *e.Offset, tc.offset, e.Error)
			}
		})
	}
	if st := a.node.Stats(); st.Accepted != 0 || st.LastSeq != 0 {
		t.Errorf("a malformed body was applied: %+v", st)
	}
	// An empty body, and an empty array, hold no items.
	for _, body := range []string{"", " \n", "[]"} {
		if code, res, raw := a.postTrades(t, []byte(body)); code != 200 || res.Accepted != 0 || res.Rejected == nil || len(res.Rejected) != 0 {
			t.Errorf("body %q: %d %s", body, code, raw)
		}
	}
}

// TestHTTPIngestTooLarge: a body over the limit is a 413, whether its
// length is announced or it arrives chunked.
func TestHTTPIngestTooLarge(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{MaxBodyBytes: 4096})
	trades := genTrades(t, 2, 200, time.Hour, 3)
	big := ndjson(trades)
	if len(big) <= 4096 {
		t.Fatalf("test body of %d bytes is not over the limit", len(big))
	}
	code, body, _ := a.do(t, http.MethodPost, "/api/v1/trades", bytes.NewReader(big))
	requireJSONError(t, code, body, http.StatusRequestEntityTooLarge, "limit of 4096 bytes")
	// io.MultiReader hides the length: the body is sent chunked.
	code, body, _ = a.do(t, http.MethodPost, "/api/v1/trades", io.MultiReader(bytes.NewReader(big)))
	requireJSONError(t, code, body, http.StatusRequestEntityTooLarge, "limit of 4096 bytes")
	if st := a.node.Stats(); st.Accepted != 0 {
		t.Errorf("an oversized body was applied: %+v", st)
	}
	// Just under the limit is fine, chunked too.
	small := ndjson(trades[:10])
	if code, body, _ = a.do(t, http.MethodPost, "/api/v1/trades", io.MultiReader(bytes.NewReader(small))); code != 200 {
		t.Fatalf("small chunked body: %d %s", code, body)
	}
}

// TestHTTPIngestMixed: invalid items next to valid ones are rejected with
// their position in the body (parse errors and the node's validation
// alike) while the valid ones are applied, in both body forms.
func TestHTTPIngestMixed(t *testing.T) {
	now := time.Now().UnixMilli()
	base := int64(1_717_171_200_000) // a minute boundary, 2024-05-31
	line := func(sym string, a int64, p, q string, ts int64) string {
		return fmt.Sprintf(`{"e":"aggTrade","E":%d,"s":%q,"a":%d,"p":%q,"q":%q,"f":%d,"l":%d,"T":%d,"m":false}`, ts, sym, a, p, q, 10*a, 10*a+1, ts)
	}
	items := []struct {
		json    string
		wantErr string // "" for a valid item
	}{
		{line("BTCUSDT", 1, "100.5", "2", base+1_000), ""},
		{line("BTCUSDT", 2, "NaN", "1", base+2_000), "field p"},
		{line("BTCUSDT", 3, "Infinity", "1", base+2_000), "field p"},
		{line("BTCUSDT", 4, "-5", "1", base+2_000), "field p"},
		{line("BTCUSDT", 5, "0", "1", base+2_000), "price must be positive"},
		{line("BTCUSDT", 6, "100", "-1", base+2_000), "field q"},
		{`{"s":"BTCUSDT","a":7,"p":101,"q":"1","T":1717171202000}`, "field p"},
		{line("BTCUSDT", 8, "100", "1", 1), "before 2000"},
		{line("BTCUSDT", 9, "100", "1", now+2*time.Hour.Milliseconds()), "in the future"},
		{`{"s":"BTCUSDT","a":10,"p":"1","q":"1","T":99999999999999999999}`, "field T"},
		{`{"s":"BTCUSDT","a":11,"p":"1","q":"1","T":1717171202000000}`, "in the future"}, // µs: aggTrade events carry ms
		{`{"s":"BTCUSDT","a":12,"p":"1","q":"1"}`, "missing"},
		{line("", 13, "100", "1", base+2_000), "empty symbol"},
		{`[1,2]`, "want an object"},
		{line("ETHUSDT", 14, "3000", "0.5", base+3_000), ""},
		{line("BTCUSDT", 1, "100.5", "2", base+1_000), ""}, // a duplicate of item 0
		{line("BTCUSDT", 15, "99.25", "1", base+4_000), ""},
		{fmt.Sprintf(`{"s":"BTCUSDT","a":16,"p":"100","q":"1","T":%d}`, base+5_000), ""}, // no f/l: one raw trade
	}
	wantRejected := map[int]string{}
	for i, it := range items {
		if it.wantErr != "" {
			wantRejected[i] = it.wantErr
		}
	}

	for _, form := range []string{"ndjson", "array"} {
		t.Run(form, func(t *testing.T) {
			a := startAPI(t, eventNodeConfig(), Config{})
			var body string
			if form == "ndjson" {
				for _, it := range items {
					body += it.json + "\n"
				}
			} else {
				parts := make([]string, len(items))
				for i, it := range items {
					parts[i] = it.json
				}
				body = "[\n" + strings.Join(parts, ",\n") + "\n]"
			}
			code, res, raw := a.postTrades(t, []byte(body))
			if code != 200 {
				t.Fatalf("%d %s", code, raw)
			}
			if res.Accepted != 4 || res.Duplicates != 1 || res.LastSeq != 1 {
				t.Errorf("accepted %d duplicates %d last_seq %d, want 4, 1, 1: %s", res.Accepted, res.Duplicates, res.LastSeq, raw)
			}
			if len(res.Rejected) != len(wantRejected) {
				t.Fatalf("%d rejected, want %d: %s", len(res.Rejected), len(wantRejected), raw)
			}
			for i, r := range res.Rejected {
				if i > 0 && r.Index <= res.Rejected[i-1].Index {
					t.Errorf("rejected not in index order: %s", raw)
				}
				want, ok := wantRejected[r.Index]
				if !ok || !strings.Contains(r.Error, want) {
					t.Errorf("rejected item %d: %q, want an error containing %q", r.Index, r.Error, want)
				}
			}
			// The valid items were applied: BTCUSDT's 1m bar holds items 0,
			// 16 and 17 (2+2+1 raw trades), ETHUSDT's item 14.
			code, raw = a.get(t, "/api/v3/klines?symbol=btcusdt&interval=1m")
			want := fmt.Sprintf(`[[%d,"100.50000000","100.50000000","99.25000000","100.00000000","4.00000000",%d,"400.25000000",5,"4.00000000","400.25000000","0"]]`, base, base+59_999)
			if code != 200 || string(raw) != want {
				t.Errorf("BTCUSDT klines:\n got %d %s\nwant %s", code, raw, want)
			}
			code, raw = a.get(t, "/api/v3/klines?symbol=ETHUSDT&interval=1m")
			want = fmt.Sprintf(`[[%d,"3000.00000000","3000.00000000","3000.00000000","3000.00000000","0.50000000",%d,"1500.00000000",2,"0.50000000","1500.00000000","0"]]`, base, base+59_999)
			if code != 200 || string(raw) != want {
				t.Errorf("ETHUSDT klines:\n got %d %s\nwant %s", code, raw, want)
			}
		})
	}
}

// TestHTTPIngestBusy: a shard whose mailbox stays full makes ingest answer
// 503 with Retry-After, and nothing of that request is applied.
func TestHTTPIngestBusy(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var blockOnce sync.Once
	ncfg := eventNodeConfig()
	ncfg.Shards, ncfg.Cores, ncfg.MailboxSize, ncfg.BusyTimeout = 1, 1, 1, 20*time.Millisecond
	// The sink blocks the only shard while it flushes the first request,
	// so its mailbox (one batch) stays full.
	ncfg.Sink = actors.DeltaSinkFunc(func(int, *aggregate.Delta) {
		blockOnce.Do(func() {
			entered <- struct{}{}
			<-release
		})
	})
	a := startAPI(t, ncfg, Config{})
	first := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/api/v1/trades", bytes.NewReader(ndjson(genTrades(t, 1, 10, time.Minute, 1))))
		resp, err := a.client.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-entered
	code, body, hdr := a.do(t, http.MethodPost, "/api/v1/trades", bytes.NewReader(ndjson(genTrades(t, 1, 10, time.Minute, 2))))
	close(release)
	requireJSONError(t, code, body, http.StatusServiceUnavailable, "busy")
	if hdr.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", hdr.Get("Retry-After"))
	}
	if c := <-first; c != 200 {
		t.Errorf("the first request answered %d", c)
	}
	if st := a.node.Stats(); st.Accepted != 10 {
		t.Errorf("accepted %d, want only the first request's 10", st.Accepted)
	}
}

// TestHTTPIngestConcurrent posts from many clients at once (the symbol
// caches are per request) and checks every trade landed once.
func TestHTTPIngestConcurrent(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{})
	const clients, batches, perBatch = 8, 10, 50
	base := int64(1_717_171_200_000)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			sym := "SYM" + strconv.Itoa(c) + "USDT"
			for b := range batches {
				trades := make([]messages.Trade, perBatch)
				for i := range trades {
					id := int64(b*perBatch + i)
					// All in one minute: no trade is late whatever the
					// interleaving of the clients.
					trades[i] = messages.Trade{Symbol: sym, AggID: id, Price: messages.Decimal(100_00000000 + id), Quantity: 1_00000000,
						FirstID: id, LastID: id, Time: base + id}
				}
				resp, err := a.client.Post(a.srv.URL+"/api/v1/trades", "application/x-ndjson", bytes.NewReader(ndjson(trades)))
				if err != nil {
					errs <- err
					return
				}
				var res actors.IngestResult
				err = json.NewDecoder(resp.Body).Decode(&res)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || res.Accepted != perBatch {
					errs <- fmt.Errorf("%s batch %d: %d %+v %v", sym, b, resp.StatusCode, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for c := range clients {
		ks, err := a.node.Klines(context.Background(), "SYM"+strconv.Itoa(c)+"USDT", messages.Interval1m, 0, 0, 10)
		if err != nil || len(ks) != 1 || ks[0].TradeCount != batches*perBatch || ks[0].Volume != (messages.Decimal128{Lo: batches * perBatch * 1_00000000}) {
			t.Errorf("SYM%d: %+v %v", c, ks, err)
		}
	}
}
