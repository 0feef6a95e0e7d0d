package shard

import (
	"github.com/vmihailenco/msgpack/v5"
	"reflect"
	"testing"
	"time"

	"github.com/klinecast/klinecast/actors/aggregate"
	"github.com/klinecast/klinecast/internal/gen"
	"github.com/klinecast/klinecast/messages"
)

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := aggregate.Config{Intervals: messages.DefaultIntervals(), AllowedLateness: 60_000}
	c, err := aggregate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	trades, err := gen.Collect(gen.Config{Symbols: gen.Symbols(5), Trades: 3000, Span: 6 * time.Hour, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trades {
		c.Apply(&tr)
	}
	c.Tick(trades[len(trades)-1].Time + 90_000) // closes bars: some stay in the lateness window
	c.Release(c.Ready())
	st := c.Snapshot()
	if len(st.Recent) == 0 || len(st.Symbols) != 5 {
		t.Fatalf("state has %d recent bars and %d symbols", len(st.Recent), len(st.Symbols))
	}
	b, err := encodeSnapshot(&st, 12345)
	if err != nil {
		t.Fatal(err)
	}
	got, clock, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if clock != 12345 {
		t.Fatalf("clock %d, want 12345", clock)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip differs:\n%+v\n%+v", got, st)
	}
	if _, err := aggregate.Restore(cfg, got); err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeSnapshot(b[:len(b)/2]); err == nil {
		t.Fatal("truncated snapshot decoded")
	}
}

// TestSnapshotReadsVersion1: a snapshot written before the complete clock
// was added still restores, its clock being its watermark.
func TestSnapshotReadsVersion1(t *testing.T) {
	v1 := shardSnapshotV1{Version: 1, Intervals: []messages.Interval{messages.Interval1m}, Watermark: 777}
	b, err := msgpack.Marshal(&v1)
	if err != nil {
		t.Fatal(err)
	}
	st, clock, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if clock != 777 || st.Watermark != 777 {
		t.Fatalf("clock %d, watermark %d; want 777 both", clock, st.Watermark)
	}
	v1.Version = 9
	if b, err = msgpack.Marshal(&v1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := decodeSnapshot(b); err == nil {
		t.Fatal("an unknown version decoded")
	}
}
