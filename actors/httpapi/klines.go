package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// Binance error codes used by the /api/v3 endpoints.
const (
	codeUnknown          = -1000 // UNKNOWN
	codeDisconnected     = -1001 // DISCONNECTED: internal error, retry
	codeIllegalChars     = -1100 // ILLEGAL_CHARS
	codeMandatoryParam   = -1102 // MANDATORY_PARAM_EMPTY_OR_MALFORMED
	codeInvalidInterval  = -1120 // BAD_INTERVAL
	codeInvalidSymbol    = -1121 // BAD_SYMBOL
	codeInvalidParamComb = -1128 // OPTIONAL_PARAMS_BAD_COMBO
)

// binanceError is Binance's error body.
type binanceError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

func writeBinanceError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, binanceError{Code: code, Msg: msg})
}

// klinesQuery is a parsed GET /api/v3/klines request.
type klinesQuery struct {
	symbol     string
	iv         messages.Interval
	start, end int64 // ms; 0: unbounded (the node's convention)
	emptyRange bool  // the range holds no bar whatever the data
	limit      int
}

// parseKlinesQuery validates the parameters as Binance does; on failure it
// returns the Binance error code and message.
func (h *handler) parseKlinesQuery(v url.Values) (q klinesQuery, code int, msg string) {
	sym := v.Get("symbol")
	if sym == "" {
		return q, codeMandatoryParam, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."
	}
	q.symbol = messages.NormalizeSymbol(sym)
	probe := messages.Trade{Symbol: q.symbol, Price: 1, Time: messages.MinTradeTime}
	if probe.Validate(0) != nil {
		return q, codeIllegalChars, "Illegal characters found in parameter 'symbol'; legal range is '^[A-Z0-9-_.]{1,32}$'."
	}
	ivName := v.Get("interval")
	if ivName == "" {
		return q, codeMandatoryParam, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."
	}
	iv, err := messages.ParseInterval(ivName)
	if err != nil || !slices.Contains(h.intervals, iv) {
		return q, codeInvalidInterval, "Invalid interval."
	}
	q.iv = iv

	start, hasStart, ok := uintParam(v, "startTime")
	if !ok {
		return q, codeIllegalChars, "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'."
	}
	end, hasEnd, ok := uintParam(v, "endTime")
	if !ok {
		return q, codeIllegalChars, "Illegal characters found in parameter 'endTime'; legal range is '^[0-9]{1,20}$'."
	}
	if hasStart && hasEnd && start > end {
		return q, codeInvalidParamComb, "Combination of optional parameters invalid: startTime is after endTime."
	}
	// The node reads 0 as "unbounded"; an explicit startTime=0 is the
	// epoch (every bar), an explicit endTime=0 selects nothing.
	q.start, q.end = start, end
	if hasStart && start == 0 {
		q.start = 1
	}
	q.emptyRange = hasEnd && end == 0

	q.limit = DefaultKlinesLimit
	if lim, has, ok := uintParam(v, "limit"); !ok || has && lim == 0 {
		return q, codeIllegalChars, "Illegal characters found in parameter 'limit'; legal range is '1..1000' (larger values are clamped to 1000)."
	} else if has {
		q.limit = int(min(lim, MaxKlinesLimit))
	}
	return q, 0, ""
}

// uintParam parses an optional non-negative integer parameter.
func uintParam(v url.Values, name string) (n int64, has, ok bool) {
	s := v.Get(name)
	if s == "" {
		return 0, false, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, true, false
	}
	return n, true, true
}

// getKlines answers GET /api/v3/klines: bars of symbol and interval with
// open time in [startTime, endTime], ascending, at most limit, the open bar
// last, as Binance's array of arrays with decimals as strings.
func (h *handler) getKlines(w http.ResponseWriter, r *http.Request) {
	q, code, msg := h.parseKlinesQuery(r.URL.Query())
	if code != 0 {
		writeBinanceError(w, http.StatusBadRequest, code, msg)
		return
	}
	ctx := r.Context()
	// A page of bars from the pool: 1,000 bars are 168 KB, which each
	// query would otherwise allocate (and the collector reclaim).
	pp := h.pages.Get().(*[]messages.Kline)
	defer func() {
		clear((*pp)[:cap(*pp)]) // drop symbol strings
		h.pages.Put(pp)
	}()
	bars := (*pp)[:0]
	if !q.emptyRange {
		var err error
		bars, err = h.node.AppendKlines(ctx, bars, q.symbol, q.iv, q.start, q.end, q.limit)
		if err != nil {
			h.klinesError(w, r, err)
			return
		}
		if cap(bars) <= MaxKlinesLimit+1 {
			*pp = bars
		}
	}
	if len(bars) == 0 && !h.fixed[q.symbol] {
		// No bars: an unknown symbol, or a range outside its data.
		known, err := h.node.HasSymbol(ctx, q.symbol)
		if err != nil {
			h.klinesError(w, r, err)
			return
		}
		if !known {
			writeBinanceError(w, http.StatusBadRequest, codeInvalidSymbol, "Invalid symbol.")
			return
		}
	}
	bp := h.out.Get().(*[]byte)
	b := append((*bp)[:0], '[')
	for i := range bars {
		if i > 0 {
			b = append(b, ',')
		}
		b = messages.AppendKlineRowJSON(b, &bars[i])
	}
	b = append(b, ']')
	writeRaw(w, http.StatusOK, b)
	*bp = b
	h.out.Put(bp)
}

func (h *handler) klinesError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, actors.ErrUnknownInterval):
		writeBinanceError(w, http.StatusBadRequest, codeInvalidInterval, "Invalid interval.")
		return
	case errors.Is(err, actors.ErrBusy):
		// The node's query queue is full: it drains; retry.
		w.Header().Set("Retry-After", "1")
		writeBinanceError(w, http.StatusServiceUnavailable, codeDisconnected,
			"Internal error; unable to process your request. Please try again.")
	case errors.Is(err, actors.ErrClosed), errors.Is(err, actors.ErrActorStopped), errors.Is(err, storage.ErrUnavailable), errors.Is(err, storage.ErrClosed):
		writeBinanceError(w, http.StatusServiceUnavailable, codeDisconnected,
			"Internal error; unable to process your request. Please try again.")
	default:
		writeBinanceError(w, http.StatusInternalServerError, codeUnknown,
			"An unknown error occurred while processing the request.")
	}
	if r.Context().Err() != nil {
		h.log.Debug("request abandoned by the client", "path", r.URL.Path, "err", err)
		return
	}
	h.log.Warn("klines query failed", "path", r.URL.Path, "query", r.URL.RawQuery, "err", err)
}

// exchangeInfo is the GET /api/v3/exchangeInfo answer: Binance's shape,
// reduced to what the node knows.
type exchangeInfo struct {
	Timezone   string         `json:"timezone"`
	ServerTime int64          `json:"serverTime"`
	Symbols    []symbolStatus `json:"symbols"`
}

type symbolStatus struct {
	Symbol string `json:"symbol"`
	Status string `json:"status"`
}

// getExchangeInfo lists every symbol with state on the node, plus the
// fixed symbol list when the node has one.
func (h *handler) getExchangeInfo(w http.ResponseWriter, r *http.Request) {
	syms, err := h.node.Symbols(r.Context())
	if err != nil {
		h.klinesError(w, r, err)
		return
	}
	known := len(syms)
	for s := range h.fixed {
		if _, found := slices.BinarySearch(syms[:known], s); !found {
			syms = append(syms, s)
		}
	}
	slices.Sort(syms)
	info := exchangeInfo{Timezone: "UTC", ServerTime: h.cfg.Now().UnixMilli(), Symbols: make([]symbolStatus, len(syms))}
	for i, s := range syms {
		info.Symbols[i] = symbolStatus{Symbol: s, Status: "TRADING"}
	}
	writeJSON(w, http.StatusOK, info)
}
