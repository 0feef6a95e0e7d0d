package httpapi

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors"
	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/storage"
)

// TestHTTPStorageFailureIs503 fails every storage write (a full disk, a
// failed fsync): ingest answers 503 with Retry-After and acknowledges
// nothing; once writes succeed again the same batch is accepted.
func TestHTTPStorageFailureIs503(t *testing.T) {
	var failing atomic.Bool
	scfg := storage.DefaultLocalConfig(t.TempDir())
	scfg.Logger = slog.New(slog.DiscardHandler)
	scfg.Faults = storage.FaultFunc(func(storage.FaultOp) error {
		if failing.Load() {
			return syscall.ENOSPC
		}
		return nil
	})
	st, err := storage.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ncfg := eventNodeConfig()
	ncfg.Store = st
	ncfg.CheckpointInterval = time.Hour
	api := startAPI(t, ncfg, Config{})
	trades := genTrades(t, 3, 600, 6*time.Hour, 4)
	body := ndjson(trades)

	failing.Store(true)
	code, _, hdr := api.do(t, http.MethodPost, "/api/v1/trades", bytes.NewReader(body))
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Fatalf("ingest with failing storage: %d, Retry-After %q; want 503 with Retry-After", code, hdr.Get("Retry-After"))
	}
	failing.Store(false)
	code, res, raw := api.postTrades(t, body)
	if code != http.StatusOK || res.Accepted+res.Duplicates != len(trades) || len(res.Rejected) != 0 {
		t.Fatalf("retry after recovery: %d %s", code, raw)
	}
}

// TestHTTPPartFailureIs500: trades that crash their shard every time (here
// a Sink that panics on them) fail the request with 500 and the reason,
// without Retry-After; once the cause is gone the retry is accepted.
func TestHTTPPartFailureIs500(t *testing.T) {
	var failing atomic.Bool
	ncfg := eventNodeConfig()
	ncfg.Logger = slog.New(slog.DiscardHandler)
	ncfg.Sink = actors.DeltaSinkFunc(func(int, *aggregate.Delta) {
		if failing.Load() {
			panic("sink drill")
		}
	})
	api := startAPI(t, ncfg, Config{})
	trades := genTrades(t, 3, 600, 6*time.Hour, 4)
	body := ndjson(trades)

	failing.Store(true)
	code, raw, hdr := api.do(t, http.MethodPost, "/api/v1/trades", bytes.NewReader(body))
	requireJSONError(t, code, raw, http.StatusInternalServerError, "sink drill")
	if hdr.Get("Retry-After") != "" {
		t.Errorf("Retry-After %q on a failure a retry cannot fix", hdr.Get("Retry-After"))
	}
	failing.Store(false)
	code, res, raw := api.postTrades(t, body)
	if code != http.StatusOK || res.Accepted+res.Duplicates != len(trades) || len(res.Rejected) != 0 {
		t.Fatalf("retry after recovery: %d %s", code, raw)
	}
}
