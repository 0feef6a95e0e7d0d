package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/messages"
)

// postAll posts trades as NDJSON in batches and requires every trade to be
// accepted.
func postAll(t testing.TB, a *testAPI, trades []messages.Trade, batch int) {
	t.Helper()
	for i := 0; i < len(trades); i += batch {
		end := min(i+batch, len(trades))
		code, res, raw := a.postTrades(t, ndjson(trades[i:end]))
		if code != http.StatusOK || res.Accepted != end-i || len(res.Rejected) != 0 {
			t.Fatalf("batch at %d: %d %s", i, code, raw)
		}
	}
}

// getRows queries /api/v3/klines and splits the answer into rows of raw
// JSON values.
func getRows(t testing.TB, a *testAPI, query string) [][]json.RawMessage {
	t.Helper()
	code, body := a.get(t, "/api/v3/klines?"+query)
	if code != http.StatusOK {
		t.Fatalf("klines?%s: %d %s", query, code, body)
	}
	var rows [][]json.RawMessage
	if err := json.Unmarshal(body, &rows); err != nil {
		t.Fatalf("klines?%s: %v in %.200s", query, err, body)
	}
	return rows
}

// rowOf formats k as the REST row the node must answer.
func rowOf(t testing.TB, k *messages.Kline) []json.RawMessage {
	t.Helper()
	var row []json.RawMessage
	if err := json.Unmarshal(messages.AppendKlineRowJSON(nil, k), &row); err != nil {
		t.Fatal(err)
	}
	return row
}

// Row columns holding float sums (quote volume, taker buy quote volume).
const (
	colQuoteVolume        = 7
	colTakerBuyQuoteVolum = 10
)

// rowDiff compares two rows byte for byte, except the quote volumes: float
// sums may differ in the last printed digit if they group differently, so
// they are compared as numbers within 1e-9 relative.
func rowDiff(got, want []json.RawMessage) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d columns, want %d", len(got), len(want))
	}
	for i := range got {
		if i == colQuoteVolume || i == colTakerBuyQuoteVolum {
			g, err1 := strconv.ParseFloat(strings.Trim(string(got[i]), `"`), 64)
			w, err2 := strconv.ParseFloat(strings.Trim(string(want[i]), `"`), 64)
			if err1 != nil || err2 != nil || !relClose(g, w) {
				return fmt.Sprintf("column %d: %s, want %s", i, got[i], want[i])
			}
			continue
		}
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("column %d: %s, want %s", i, got[i], want[i])
		}
	}
	return ""
}

func relClose(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestHTTPKlinesMatchOffline is the acceptance test: a node fed tens of
// thousands of generated trades over POST /api/v1/trades with the event
// clock answers GET /api/v3/klines exactly like the offline aggregate, for
// every symbol and interval, paging with startTime and limit=1000. After
// the symbol's last trade the node has empty bars at the last close up to
// the event clock's bar (the bar of the newest trade of any symbol).
func TestHTTPKlinesMatchOffline(t *testing.T) {
	ncfg := eventNodeConfig()
	a := startAPI(t, ncfg, Config{})
	trades := genTrades(t, 6, 36_000, 9*24*time.Hour, 11)
	postAll(t, a, trades, 1000)

	bySym := map[string][]messages.Trade{}
	var watermark int64
	for _, tr := range trades {
		bySym[tr.Symbol] = append(bySym[tr.Symbol], tr)
		watermark = max(watermark, tr.Time)
	}
	if len(bySym) != 6 {
		t.Fatalf("%d symbols generated", len(bySym))
	}
	var rowsChecked, pages, inexact int
	for sym, ts := range bySym {
		off := aggregate.NewOffline(sym, ncfg.Intervals)
		for i := range ts {
			if err := off.Add(&ts[i]); err != nil {
				t.Fatal(err)
			}
		}
		for _, iv := range ncfg.Intervals {
			// The expected series: the offline bars, then empty bars at
			// the last close up to the clock's bar.
			want := off.Klines(iv)
			lastClose := want[len(want)-1].Close
			for open := iv.Next(want[len(want)-1].OpenTime); open <= iv.Align(watermark); open = iv.Next(open) {
				want = append(want, messages.Kline{Symbol: sym, Interval: iv, OpenTime: open, CloseTime: iv.CloseTime(open),
					Open: lastClose, High: lastClose, Low: lastClose, Close: lastClose})
			}
			// Page through everything from the first bar, as a Binance
			// client downloading history does.
			got := 0
			for start := want[0].OpenTime; ; {
				// Ask for the lower-case symbol: the API upper-cases it.
				query := fmt.Sprintf("symbol=%s&interval=%s&startTime=%d&limit=1000", strings.ToLower(sym), iv, start)
				code, body := a.get(t, "/api/v3/klines?"+query)
				if code != http.StatusOK {
					t.Fatalf("klines?%s: %d %s", query, code, body)
				}
				pages++
				page := want[got:min(got+MaxKlinesLimit, len(want))]
				n := len(page)
				if !bytes.Equal(body, appendRows(nil, page)) {
					// Byte-exact but for the quote volumes' last digits?
					var rows [][]json.RawMessage
					if err := json.Unmarshal(body, &rows); err != nil {
						t.Fatalf("klines?%s: %v in %.200s", query, err, body)
					}
					if len(rows) != len(page) {
						t.Fatalf("%s %s: page from %d has %d rows, want %d", sym, iv, start, len(rows), len(page))
					}
					for i := range rows {
						if d := rowDiff(rows[i], rowOf(t, &page[i])); d != "" {
							t.Fatalf("%s %s bar %d (%s): %s", sym, iv, got+i, time.UnixMilli(page[i].OpenTime).UTC(), d)
						}
					}
					inexact++
				}
				got += n
				rowsChecked += n
				if n < MaxKlinesLimit {
					break
				}
				start = want[got-1].OpenTime + 1
			}
			if got != len(want) {
				t.Fatalf("%s %s: %d bars, want %d", sym, iv, got, len(want))
			}
		}
	}
	t.Logf("%d trades, %d rows checked in %d pages (%d not byte-exact, within 1e-9)", len(trades), rowsChecked, pages, inexact)
}

// appendRows formats bars as a /api/v3/klines answer.
func appendRows(b []byte, ks []messages.Kline) []byte {
	b = append(b, '[')
	for i := range ks {
		if i > 0 {
			b = append(b, ',')
		}
		b = messages.AppendKlineRowJSON(b, &ks[i])
	}
	return append(b, ']')
}

// TestHTTPKlinesQueries: default and clamped limits, the latest bars
// without startTime (open bar last), endTime, explicit zero times.
func TestHTTPKlinesQueries(t *testing.T) {
	a := startAPI(t, eventNodeConfig(), Config{})
	trades := genTrades(t, 1, 5_000, 2*24*time.Hour, 5) // BTCUSDT: ~2900 1m bars
	postAll(t, a, trades, 1000)
	first, last := trades[0].Time, trades[len(trades)-1].Time
	open1m := messages.Interval1m.Align(first)
	lastOpen := messages.Interval1m.Align(last)
	openTime := func(row []json.RawMessage) int64 {
		v, err := strconv.ParseInt(string(row[0]), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	rows := getRows(t, a, "symbol=BTCUSDT&interval=1m")
	if len(rows) != DefaultKlinesLimit || openTime(rows[len(rows)-1]) != lastOpen {
		t.Errorf("default: %d rows ending at %d, want %d ending at the open bar %d", len(rows), openTime(rows[len(rows)-1]), DefaultKlinesLimit, lastOpen)
	}
	for i := 1; i < len(rows); i++ {
		if openTime(rows[i]) != openTime(rows[i-1])+60_000 {
			t.Fatalf("rows %d and %d are not consecutive 1m bars", i-1, i)
		}
	}
	if rows := getRows(t, a, "symbol=BTCUSDT&interval=1m&limit=5000"); len(rows) != MaxKlinesLimit || openTime(rows[len(rows)-1]) != lastOpen {
		t.Errorf("limit=5000: %d rows, want clamped to %d ending at the open bar", len(rows), MaxKlinesLimit)
	}
	if rows := getRows(t, a, "symbol=BTCUSDT&interval=1m&limit=1"); len(rows) != 1 || openTime(rows[0]) != lastOpen {
		t.Errorf("limit=1: %d rows, want the open bar", len(rows))
	}
	rows = getRows(t, a, fmt.Sprintf("symbol=BTCUSDT&interval=1m&startTime=%d&endTime=%d&limit=1000", open1m, open1m+10*60_000))
	if len(rows) != 11 || openTime(rows[0]) != open1m || openTime(rows[10]) != open1m+10*60_000 {
		t.Errorf("startTime..endTime: %d rows", len(rows))
	}
	// startTime=0 is the epoch: from the first bar.
	if rows := getRows(t, a, "symbol=BTCUSDT&interval=1m&startTime=0&limit=3"); len(rows) != 3 || openTime(rows[0]) != open1m {
		t.Errorf("startTime=0: %d rows starting %d, want 3 from %d", len(rows), openTime(rows[0]), open1m)
	}
	// endTime before the first bar, or 0: nothing.
	for _, q := range []string{"endTime=0", fmt.Sprintf("endTime=%d", open1m-1), fmt.Sprintf("startTime=%d", lastOpen+60_000)} {
		if code, body := a.get(t, "/api/v3/klines?symbol=BTCUSDT&interval=1m&"+q); code != 200 || string(body) != "[]" {
			t.Errorf("%s: %d %s, want []", q, code, body)
		}
	}
	if code, _, hdr := a.do(t, http.MethodGet, "/api/v3/klines?symbol=BTCUSDT&interval=1h", nil); code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Errorf("1h: %d, Content-Type %q", code, hdr.Get("Content-Type"))
	}
}

// TestHTTPKlinesErrors: Binance's error codes for bad parameters.
func TestHTTPKlinesErrors(t *testing.T) {
	ncfg := eventNodeConfig()
	ncfg.Intervals = messages.DefaultIntervals() // 1s and 3m not configured
	a := startAPI(t, ncfg, Config{})
	postAll(t, a, genTrades(t, 1, 100, time.Hour, 1), 100)
	tests := []struct {
		query string
		code  int
		in    string
	}{
		{"interval=1m", -1102, "'symbol'"},
		{"symbol=&interval=1m", -1102, "'symbol'"},
		{"symbol=BTC$USDT&interval=1m", -1100, "'symbol'"},
		{"symbol=" + strings.Repeat("A", 40) + "&interval=1m", -1100, "'symbol'"},
		{"symbol=ETHUSDT&interval=1m", -1121, "Invalid symbol."},
		{"symbol=BTCUSDT", -1102, "'interval'"},
		{"symbol=BTCUSDT&interval=2m", -1120, "Invalid interval."},
		{"symbol=BTCUSDT&interval=1s", -1120, "Invalid interval."},
		{"symbol=BTCUSDT&interval=3m", -1120, "Invalid interval."},
		{"symbol=BTCUSDT&interval=1H", -1120, "Invalid interval."},
		{"symbol=BTCUSDT&interval=1M", -1120, "Invalid interval."}, // months, not configured
		{"symbol=BTCUSDT&interval=1m&startTime=abc", -1100, "'startTime'"},
		{"symbol=BTCUSDT&interval=1m&startTime=-5", -1100, "'startTime'"},
		{"symbol=BTCUSDT&interval=1m&endTime=1.5", -1100, "'endTime'"},
		{"symbol=BTCUSDT&interval=1m&limit=0", -1100, "'limit'"},
		{"symbol=BTCUSDT&interval=1m&limit=-1", -1100, "'limit'"},
		{"symbol=BTCUSDT&interval=1m&limit=ten", -1100, "'limit'"},
		{"symbol=BTCUSDT&interval=1m&limit=99999999999999999999", -1100, "'limit'"},
		{"symbol=BTCUSDT&interval=1m&startTime=20&endTime=10", -1128, "startTime is after endTime"},
	}
	for _, tc := range tests {
		code, body := a.get(t, "/api/v3/klines?"+tc.query)
		var e binanceError
		if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Code != tc.code || !strings.Contains(e.Msg, tc.in) {
			t.Errorf("%s: %d %s, want 400 with code %d and %q", tc.query, code, body, tc.code, tc.in)
		}
	}
	// The symbol is case-insensitive.
	if rows := getRows(t, a, "symbol=btcUSDT&interval=1w"); len(rows) != 1 {
		t.Errorf("1w: %d rows", len(rows))
	}
}

// TestKlinesErrorStatus maps the node's errors to Binance-shaped answers:
// a full query queue and a node that cannot answer now are 503 (the first
// with Retry-After: it drains), an unknown interval 400, anything else 500.
func TestKlinesErrorStatus(t *testing.T) {
	h := &handler{log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		err        error
		status     int
		retryAfter string
	}{
		{fmt.Errorf("wrapped: %w", actors.ErrBusy), http.StatusServiceUnavailable, "1"},
		{actors.ErrClosed, http.StatusServiceUnavailable, ""},
		{actors.ErrActorStopped, http.StatusServiceUnavailable, ""},
		{actors.ErrUnknownInterval, http.StatusBadRequest, ""},
		{errors.New("something else"), http.StatusInternalServerError, ""},
	} {
		rec := httptest.NewRecorder()
		h.klinesError(rec, httptest.NewRequest(http.MethodGet, "/api/v3/klines", nil), tc.err)
		if rec.Code != tc.status || rec.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d, Retry-After %q; want %d, %q", tc.err, rec.Code, rec.Header().Get("Retry-After"), tc.status, tc.retryAfter)
		}
		var body struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code >= 0 || body.Msg == "" {
			t.Errorf("%v: body %q (%v), want Binance's {code, msg}", tc.err, rec.Body.String(), err)
		}
	}
}
