package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSnapshotSaveLoad(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		if _, _, ok, err := s.LoadSnapshot(5); ok || err != nil {
			t.Fatalf("missing snapshot: ok=%v err=%v", ok, err)
		}
		for i := range 10 {
			if _, err := s.AppendBatch(ctx, 5, mkBatch("S", i, 3)); err != nil {
				t.Fatal(err)
			}
		}
		blob := bytes.Repeat([]byte("open bars and watermarks "), 20_000) // 500 KB
		if err := s.SaveSnapshot(ctx, 5, 7, blob); err != nil {
			t.Fatal(err)
		}
		covered, got, ok, err := s.LoadSnapshot(5)
		if err != nil || !ok || covered != 7 || !bytes.Equal(got, blob) {
			t.Fatalf("LoadSnapshot: covered %d ok %v err %v equal %v", covered, ok, err, bytes.Equal(got, blob))
		}
		got[0] = 'X' // the caller owns the copy
		if _, again, _, _ := s.LoadSnapshot(5); again[0] != 'o' {
			t.Fatal("LoadSnapshot returned storage-owned memory")
		}
		// Replacing, equal coverage, empty blob.
		if err := s.SaveSnapshot(ctx, 5, 7, nil); err != nil {
			t.Fatal(err)
		}
		if covered, b, ok, _ := s.LoadSnapshot(5); covered != 7 || len(b) != 0 || b == nil || !ok {
			t.Fatalf("empty blob: %d %v %v", covered, b, ok)
		}
		// Going backwards or beyond the last sequence is refused.
		if err := s.SaveSnapshot(ctx, 5, 6, blob); err == nil || !strings.Contains(err.Error(), "older") {
			t.Fatalf("older snapshot: %v", err)
		}
		if err := s.SaveSnapshot(ctx, 5, 11, blob); err == nil || !strings.Contains(err.Error(), "last assigned") {
			t.Fatalf("snapshot beyond the last seq: %v", err)
		}
		// Other shards are independent.
		if err := s.SaveSnapshot(ctx, 6, 3, []byte("six")); err != nil {
			t.Fatal(err)
		}
		if c, b, _, _ := s.LoadSnapshot(6); c != 3 || string(b) != "six" {
			t.Fatalf("shard 6: %d %q", c, b)
		}
		if err := s.SaveSnapshot(ctx, 5, 7, make([]byte, s.maxRecord)); err == nil {
			t.Fatal("oversized snapshot accepted")
		}
	})
}

func TestSnapshotCorrupt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		if err := s.SaveSnapshot(ctx, 1, 0, []byte("state")); err != nil {
			t.Fatal(err)
		}
		v := rawGet(t, s, snapshotKey(1))
		v[len(v)-1] ^= 1
		rawPut(t, s, snapshotKey(1), v)
		_, _, _, err := s.LoadSnapshot(1)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "snapshot/shard=1") {
			t.Fatalf("corrupt snapshot: %v", err)
		}
	})
}

// TestSnapshotRecoveryCycle is the actor's recovery loop in miniature:
// append, snapshot, truncate, append more, "crash" (reopen), load the
// snapshot and replay the tail: exactly the records after the snapshot.
func TestSnapshotRecoveryCycle(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, onBadger, "")
	s := openStore(t, cfg)
	var covered uint64
	for i := range 30 {
		seq, err := s.AppendBatch(ctx, 2, mkBatch("Y", i, 10))
		if err != nil {
			t.Fatal(err)
		}
		if i == 19 {
			covered = seq
			if err := s.SaveSnapshot(ctx, 2, covered, fmt.Appendf(nil, "state@%d", covered)); err != nil {
				t.Fatal(err)
			}
			if n, err := s.TruncateWAL(ctx, 2, covered); err != nil || n != 20 {
				t.Fatalf("TruncateWAL: %d, %v", n, err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, cfg)
	c, blob, ok, err := s.LoadSnapshot(2)
	if err != nil || !ok || c != covered || string(blob) != fmt.Sprintf("state@%d", covered) {
		t.Fatalf("snapshot after reopen: %d %q %v %v", c, blob, ok, err)
	}
	tail := replayShard(t, s, 2, c)
	if len(tail) != 10 || tail[0].seq != covered+1 {
		t.Fatalf("tail: %d records from %d", len(tail), tail[0].seq)
	}
}

func TestCheckpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, kind backendKind) {
		s := openStore(t, testConfig(t, kind, ""))
		ctx := context.Background()
		if _, ok, err := s.GetCheckpoint("dash"); ok || err != nil {
			t.Fatalf("missing checkpoint: %v %v", ok, err)
		}
		for _, c := range []Checkpoint{{"dash", 10}, {"archiver", 99}, {"dash", 12}, {"zeta", 1}} {
			if err := s.PutCheckpoint(ctx, c.Consumer, c.Seq); err != nil {
				t.Fatal(err)
			}
		}
		if seq, ok, err := s.GetCheckpoint("dash"); seq != 12 || !ok || err != nil {
			t.Fatalf("dash: %d %v %v", seq, ok, err)
		}
		if err := s.PutCheckpoint(ctx, "dash", 4); err != nil { // rewinds are allowed
			t.Fatal(err)
		}
		all, err := s.Checkpoints()
		if err != nil || fmt.Sprint(all) != "[{archiver 99} {dash 4} {zeta 1}]" {
			t.Fatalf("Checkpoints() = %v, %v", all, err)
		}
		if err := s.DeleteCheckpoint(ctx, "zeta"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCheckpoint(ctx, "never"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.GetCheckpoint("zeta"); ok {
			t.Fatal("deleted checkpoint still there")
		}
		if err := s.PutCheckpoint(ctx, "", 1); err == nil {
			t.Fatal("empty consumer name accepted")
		}
		if err := s.PutCheckpoint(ctx, strings.Repeat("x", MaxConsumerLen+1), 1); err == nil {
			t.Fatal("overlong consumer name accepted")
		}
	})
}

func TestCheckpointsDurable(t *testing.T) {
	ctx := context.Background()
	for _, d := range []Durability{DurabilitySync, DurabilityBatch, DurabilityNone} {
		t.Run(d.String(), func(t *testing.T) {
			cfg := testConfig(t, onBadger, "")
			cfg.Durability = d
			s := openStore(t, cfg)
			before := s.Stats().Fsyncs
			if err := s.PutCheckpoint(ctx, "c", 42); err != nil {
				t.Fatal(err)
			}
			if s.Stats().Fsyncs == before {
				t.Fatalf("PutCheckpoint returned without an fsync in %s mode", d)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, cfg)
			if seq, ok, err := s.GetCheckpoint("c"); seq != 42 || !ok || err != nil {
				t.Fatalf("after reopen: %d %v %v", seq, ok, err)
			}
		})
	}
}
