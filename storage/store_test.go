package storage

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/klinecast/klinecast/messages"
)

// Test kit: real badger in t.TempDir(), the in-memory reference backend,
// a log recorder, deterministic trade batches and a polling helper.

type backendKind string

const (
	onBadger backendKind = "badger"
	inMemory backendKind = "memory"
)

var allBackends = []backendKind{onBadger, inMemory}

// forEachBackend runs the conformance test body against every backend.
func forEachBackend(t *testing.T, body func(t *testing.T, kind backendKind)) {
	t.Helper()
	for _, k := range allBackends {
		t.Run(string(k), func(t *testing.T) { body(t, k) })
	}
}

// testConfig returns a small config for kind (dir ignored for memory).
func testConfig(t testing.TB, kind backendKind, dir string) Config {
	if dir == "" && kind == onBadger {
		dir = t.TempDir()
	}
	cfg := DefaultLocalConfig(dir)
	if kind == inMemory {
		cfg = Config{InMemory: true, GCInterval: -1}
	}
	cfg.Logger = newLogRecorder().logger()
	return cfg
}

// openStore opens a store and closes it at cleanup.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// logRecorder is a slog handler that keeps every record's text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func newLogRecorder() *logRecorder { return &logRecorder{} }

func (r *logRecorder) logger() *slog.Logger { return slog.New(r) }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// matching returns the recorded lines containing every one of subs.
func (r *logRecorder) matching(subs ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
next:
	for _, l := range r.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func recorderOf(cfg Config) *logRecorder { return cfg.Logger.Handler().(*logRecorder) }

// mkBatch returns n deterministic trades of sym; id makes batches distinct.
func mkBatch(sym string, id, n int) *messages.TradeBatch {
	tb := &messages.TradeBatch{
		TickBefore: 1_700_000_000_000 + int64(id)*60_000,
		TickAfter:  1_700_000_000_000 + int64(id+1)*60_000,
		Trades:     make([]messages.Trade, n),
	}
	for i := range n {
		a := int64(id*100000 + i)
		tb.Trades[i] = messages.Trade{
			Symbol:     sym,
			AggID:      a,
			Price:      messages.Decimal(4_200_000_000_000 + a%977),
			Quantity:   messages.Decimal(1 + a%100_000_000),
			FirstID:    3 * a,
			LastID:     3*a + 2,
			Time:       1_700_000_000_000 + a,
			BuyerMaker: a%3 == 0,
			EventTime:  1_700_000_000_005 + a,
		}
	}
	return tb
}

func sameTrades(a, b []messages.Trade) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// replayed is one record seen by a replay.
type replayed struct {
	shard      int
	seq        uint64
	tickBefore int64
	tickAfter  int64
	trades     []messages.Trade
}

func replayShard(t *testing.T, s *Store, shard int, after uint64) []replayed {
	t.Helper()
	var out []replayed
	err := s.ReplayWAL(context.Background(), shard, after, func(seq uint64, tb *messages.TradeBatch) error {
		if tb.Seq != seq {
			t.Errorf("tb.Seq = %d, seq = %d", tb.Seq, seq)
		}
		out = append(out, replayed{shard: shard, seq: seq, tickBefore: tb.TickBefore, tickAfter: tb.TickAfter, trades: append([]messages.Trade(nil), tb.Trades...)})
		return nil
	})
	if err != nil {
		t.Fatalf("ReplayWAL(shard %d, after %d): %v", shard, after, err)
	}
	return out
}

// rawPut writes a value bypassing the envelope: the fault hook behind the
// torn-tail and corruption tests.
func rawPut(t *testing.T, s *Store, key, val []byte) {
	t.Helper()
	if err := s.write(context.Background(), []kvOp{{key: key, val: val}}, spaceAny, true, nil); err != nil {
		t.Fatalf("rawPut %s: %v", formatKey(key), err)
	}
}

// rawGet returns a copy of a stored value.
func rawGet(t *testing.T, s *Store, key []byte) []byte {
	t.Helper()
	var out []byte
	if err := s.be.get(key, func(v []byte) error { out = bytes.Clone(v); return nil }); err != nil {
		t.Fatalf("rawGet %s: %v", formatKey(key), err)
	}
	return out
}

// corruptRecord flips one payload byte of the stored WAL record (shard, seq).
func corruptRecord(t *testing.T, s *Store, shard int, seq uint64) []byte {
	t.Helper()
	key := appendWALKey(nil, uint16(shard), seq)
	v := rawGet(t, s, key)
	v[len(v)-3] ^= 0x40
	rawPut(t, s, key, v)
	return key
}

// ---- backend conformance ----

func TestBackendConformanceIteration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		// Keys a|0000..a|0299 (more than one in-memory chunk), and
		// neighbours on both sides of the prefix.
		var kvs []kvOp
		for i := range 300 {
			kvs = append(kvs, kvOp{key: fmt.Appendf(nil, "a|%04d", i), val: fmt.Appendf(nil, "v%d", i)})
		}
		kvs = append(kvs, kvOp{key: []byte("a"), val: []byte("before")}, kvOp{key: []byte("b|0000"), val: []byte("after")})
		if err := s.write(context.Background(), kvs, spaceAny, false, nil); err != nil {
			t.Fatal(err)
		}
		collect := func(o iterOptions, seek string, max int) []string {
			it := s.be.iter(o)
			defer it.close()
			var out []string
			for it.seek([]byte(seek)); it.valid() && len(out) < max; it.next() {
				var v string
				if err := it.value(func(b []byte) error { v = string(b); return nil }); err != nil {
					t.Fatal(err)
				}
				out = append(out, string(it.key())+"="+v)
			}
			return out
		}
		p := []byte("a|")
		if got := collect(iterOptions{prefix: p}, "a|", 1000); len(got) != 300 || got[0] != "a|0000=v0" || got[299] != "a|0299=v299" {
			t.Fatalf("forward scan: %d items, first %q", len(got), got[0])
		}
		if got := collect(iterOptions{prefix: p}, "a|0150", 2); strings.Join(got, ",") != "a|0150=v150,a|0151=v151" {
			t.Fatalf("forward seek: %v", got)
		}
		if got := collect(iterOptions{prefix: p, reverse: true}, "a|\xff", 1000); len(got) != 300 || got[0] != "a|0299=v299" || got[299] != "a|0000=v0" {
			t.Fatalf("reverse scan: %d items", len(got))
		}
		if got := collect(iterOptions{prefix: p, reverse: true}, "a|0150x", 2); strings.Join(got, ",") != "a|0150=v150,a|0149=v149" {
			t.Fatalf("reverse seek: %v", got)
		}
		if got := collect(iterOptions{prefix: []byte("c")}, "c", 10); len(got) != 0 {
			t.Fatalf("empty prefix: %v", got)
		}
		// Overwrite and delete.
		if err := s.write(context.Background(), []kvOp{{key: []byte("a|0001"), val: []byte("new")}, {key: []byte("a|0002"), del: true}}, spaceAny, false, nil); err != nil {
			t.Fatal(err)
		}
		if got := collect(iterOptions{prefix: p}, "a|0000", 3); strings.Join(got, ",") != "a|0000=v0,a|0001=new,a|0003=v3" {
			t.Fatalf("after overwrite+delete: %v", got)
		}
		if err := s.be.get([]byte("a|0002"), func([]byte) error { return nil }); err != errNotFound {
			t.Fatalf("get deleted: %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("empty config validated")
	}
	if err := (Config{Dir: "x"}).Validate(); err != nil {
		t.Fatalf("Config{Dir} should be valid: %v", err)
	}
	if err := DefaultConfig("x").Validate(); err != nil {
		t.Fatal(err)
	}
	if err := DefaultLocalConfig("x").Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []Config{
		{Dir: "x", Durability: 7},
		{Dir: "x", SyncInterval: -1},
		{Dir: "x", MemoryBudget: 1 << 20},
		{Dir: "x", ValueLogFileSize: 4 << 30},
		{Dir: "x", GCDiscardRatio: 1.5},
		{Dir: "x", QueueDepth: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
	c := DefaultConfig("x")
	if c.DiskReserve != 256<<20 {
		t.Errorf("default reserve %d, want 256 MiB", c.DiskReserve)
	}
}

func TestConfigDurabilityText(t *testing.T) {
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		b, err := d.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Durability
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Fatalf("%v: round trip gave %v, %v", d, back, err)
		}
	}
	if _, err := ParseDurability("fsync"); err == nil {
		t.Fatal("ParseDurability accepted fsync")
	}
}
