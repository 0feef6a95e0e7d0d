package storage

import (
	"errors"
	"testing"

	"github.com/klinecast/klinecast/messages"
)

// encodeWALRecord builds a record exactly as AppendBatch and the committer
// do between them.
func encodeWALRecord(shard uint16, seq uint64, tb *messages.TradeBatch) (key, val []byte) {
	plain := *tb
	plain.Seq = 0
	val = beginRecord(nil, kindWAL)
	val = messages.AppendTradeBatchMsgpack(val, &plain)
	partial := finishRecord(val)
	key = appendWALKey(nil, shard, seq)
	sealRecord(val, partial, key)
	return key, val
}

func TestWALRecordRoundTrip(t *testing.T) {
	tb := mkBatch("BTCUSDT", 3, 17)
	tb.Seq, tb.TickBefore, tb.TickAfter = 5, 1_700_000_000_000, 1_700_000_060_000
	key, val := encodeWALRecord(12, 99, tb)
	var got messages.TradeBatch
	shard, seq, err := decodeWALRecord(key, val, &got)
	if err != nil || shard != 12 || seq != 99 || got.Seq != 99 || !sameTrades(got.Trades, tb.Trades) || got.TickBefore != tb.TickBefore || got.TickAfter != tb.TickAfter {
		t.Fatalf("round trip: shard %d seq %d err %v", shard, seq, err)
	}
	// Every single-bit flip anywhere in key or value is detected.
	for i := range (len(key) + len(val)) * 8 {
		k, v := append([]byte(nil), key...), append([]byte(nil), val...)
		if byteIdx := i / 8; byteIdx < len(k) {
			k[byteIdx] ^= 1 << (i % 8)
		} else {
			v[byteIdx-len(k)] ^= 1 << (i % 8)
		}
		if _, _, err := decodeWALRecord(k, v, &got); !errors.Is(err, ErrCorrupt) {
			// A flip inside the key that still parses as a WAL key is
			// caught by the checksum too (it covers the key).
			t.Fatalf("bit %d flipped: err %v", i, err)
		}
	}
}

// FuzzDecodeWALRecord: the record decoder never panics, fails only with a
// *CorruptError naming the key, and what it accepts is consistent with its
// key and re-encodes to itself. Run it with a minimisation budget, or the
// fuzzer spends minutes minimising each new input (badger makes this test
// binary large and every execution correspondingly slower):
//
//	go test -run '^$' -fuzz FuzzDecodeWALRecord -fuzzminimizetime 200x ./storage
func FuzzDecodeWALRecord(f *testing.F) {
	k1, v1 := encodeWALRecord(0, 1, mkBatch("BTCUSDT", 0, 1))
	k2, v2 := encodeWALRecord(63, 123456789, mkBatch("ETHUSDT", 9, 40))
	f.Add(k1, v1)
	f.Add(k2, v2)
	f.Add(k2, v2[:len(v2)/2])                     // truncated
	f.Add(k1, append(append([]byte{}, v1...), 0)) // trailing byte
	f.Add(k1, []byte{})                           // empty value (what badger returns for an unreadable one)
	f.Add([]byte("w"), v1)                        // short key
	f.Add(k1, append([]byte{0, 0, 0, 0, kindKline, 0, 0, 0, 0}, v1[headerLen:]...))
	f.Fuzz(func(t *testing.T, key, val []byte) {
		var tb messages.TradeBatch
		shard, seq, err := decodeWALRecord(key, val, &tb)
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Key == "" {
				t.Fatalf("error is not a CorruptError naming the key: %v", err)
			}
			return
		}
		ks, kq, ok := parseWALKey(key)
		if !ok || ks != shard || kq != seq || tb.Seq != seq || (len(tb.Trades) == 0 && tb.TickBefore == 0 && tb.TickAfter == 0) {
			t.Fatalf("accepted record inconsistent with its key: %x -> shard %d seq %d", key, shard, seq)
		}
		// Whatever decodes re-encodes to a record that decodes the same.
		k2, v2 := encodeWALRecord(shard, seq, &tb)
		var again messages.TradeBatch
		if _, _, err := decodeWALRecord(k2, v2, &again); err != nil || !sameTrades(again.Trades, tb.Trades) || again.TickBefore != tb.TickBefore || again.TickAfter != tb.TickAfter {
			t.Fatalf("re-encoded record does not round-trip: %v", err)
		}
	})
}
