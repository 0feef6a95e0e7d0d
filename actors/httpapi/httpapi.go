package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/messages"
	"github.com/klinecast/klinecast/storage"
)

// DefaultMaxBodyBytes bounds a POST /api/v1/trades body when
// Config.MaxBodyBytes is zero: 16 MiB, about 90,000 aggTrade events.
const DefaultMaxBodyBytes = 16 << 20

// Klines limits, as Binance's: limit defaults to 500, and larger values
// than 1000 are clamped to 1000.
const (
	DefaultKlinesLimit = 500
	MaxKlinesLimit     = 1000
)

// Config configures the handler. The zero value is valid.
type Config struct {
	// MaxBodyBytes bounds the body of POST /api/v1/trades; a larger body is
	// answered 413 without being read further. Zero: DefaultMaxBodyBytes.
	// Negative is invalid.
	MaxBodyBytes int64
	// Logger receives a line for every request answered with a server-side
	// error (5xx) and, at debug level, for requests the client abandoned.
	// Nil: nothing is logged.
	Logger *slog.Logger
	// Now is the clock of exchangeInfo's serverTime. Nil: time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults: a 16 MiB body limit, no logging.
func DefaultConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports an invalid configuration.
func (c Config) Validate() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("httpapi: invalid config: MaxBodyBytes = %d, want ≥ 0", c.MaxBodyBytes)
	}
	return nil
}

// handler serves one node.
type handler struct {
	node      *actors.Node
	cfg       Config
	log       *slog.Logger
	mux       *http.ServeMux
	intervals []messages.Interval
	fixed     map[string]bool // the node's fixed symbol list (nil: dynamic)

	ingest sync.Pool // *ingestScratch
	out    sync.Pool // *[]byte response buffers
	pages  sync.Pool // *[]messages.Kline klines pages
}

// New returns the HTTP API of node (see the package documentation for the
// endpoints). It panics if cfg does not pass Validate, as http.ServeMux
// panics on a bad pattern: a configuration mistake is a programming error.
func New(node *actors.Node, cfg Config) http.Handler {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.setDefaults()
	ncfg := node.Config()
	h := &handler{node: node, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), intervals: ncfg.Intervals}
	if len(ncfg.Symbols) > 0 {
		h.fixed = make(map[string]bool, len(ncfg.Symbols))
		for _, s := range ncfg.Symbols {
			h.fixed[messages.NormalizeSymbol(s)] = true
		}
	}
	h.ingest.New = func() any { return &ingestScratch{cache: messages.NewSymbolCache(0)} }
	h.out.New = func() any { b := make([]byte, 0, 64<<10); return &b }
	h.pages.New = func() any { p := make([]messages.Kline, 0, MaxKlinesLimit+1); return &p }

	h.route(http.MethodPost, "/api/v1/trades", h.postTrades)
	h.route(http.MethodGet, "/api/v3/klines", h.getKlines)
	h.route(http.MethodGet, "/api/v3/exchangeInfo", h.getExchangeInfo)
	h.route(http.MethodGet, "/healthz", h.getHealth)
	h.route(http.MethodGet, "/api/v1/actors", h.getActors)
	h.route(http.MethodGet, "/api/v1/stats", h.getStats)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return h.mux
}

// route registers fn for exactly one method (GET also serves HEAD); other
// methods get 405 with an Allow header.
func (h *handler) route(method, path string, fn http.HandlerFunc) {
	h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			allow := method
			if method == http.MethodGet {
				allow = "GET, HEAD"
			}
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, path, allow))
			return
		}
		fn(w, r)
	})
}

// errorBody is the error answer of the non-Binance endpoints.
type errorBody struct {
	Error string `json:"error"`
	// Offset is the byte offset in the request body where decoding
	// stopped, for a malformed ingest body.
	Offset *int `json:"offset,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are marshalled: this is a bug.
		status, b = http.StatusInternalServerError, []byte(`{"error":"httpapi: encoding the answer failed"}`)
	}
	writeRaw(w, status, append(b, '\n'))
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // a write error means the client went away
}

// serverError logs and answers a failure of the node.
func (h *handler) serverError(w http.ResponseWriter, r *http.Request, status int, err error) {
	if r.Context().Err() != nil {
		// The client is gone: nobody reads the answer.
		h.log.Debug("request abandoned by the client", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		h.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if errors.Is(err, actors.ErrBusy) || errors.Is(err, storage.ErrUnavailable) {
		// Both pass: a full shard drains, a full disk or failed fsync
		// recovers when the operator acts; nothing was acknowledged.
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, status, err.Error())
}

func (h *handler) getHealth(w http.ResponseWriter, _ *http.Request) {
	rep := h.node.Health()
	status := http.StatusOK
	if rep.State == actors.Failed {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rep)
}

func (h *handler) getActors(w http.ResponseWriter, _ *http.Request) {
	tree := h.node.Actors()
	if tree == nil {
		tree = []actors.ActorInfo{}
	}
	writeJSON(w, http.StatusOK, tree)
}

func (h *handler) getStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.node.Stats())
}
