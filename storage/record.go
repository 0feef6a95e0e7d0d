package storage

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/klinecast/klinecast/messages"
)

// Record kinds (byte 4 of every value, doc.go "Values").
const (
	kindWAL        = 1
	kindKline      = 2 // format 1 only
	kindSnapshot   = 3
	kindCheckpoint = 4
	kindMeta       = 5
	// kindChunk (6) is in chunk_store.go.
)

// headerLen is the size of the envelope before the payload:
// crc32c(4) | kind(1) | payload length(4).
const headerLen = 9

// MaxRecordBytes bounds one WAL record's payload (and one snapshot blob):
// larger values would not fit a value-log file comfortably and would make
// one append monopolise a group commit.
const MaxRecordBytes = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// beginRecord appends an envelope header with a zero checksum and length
// to b; finishRecord fills them in once the payload has been appended.
func beginRecord(b []byte, kind byte) []byte {
	return append(b, 0, 0, 0, 0, kind, 0, 0, 0, 0)
}

// finishRecord sets the payload length of the record starting at b[0] and
// returns the checksum of b[4:] alone; sealRecord completes it with the key.
// The split lets the (possibly large) payload be checksummed by the caller's
// goroutine while the key (which holds the WAL sequence) is only known in
// the committer.
func finishRecord(b []byte) (partial uint32) {
	binary.BigEndian.PutUint32(b[5:9], uint32(len(b)-headerLen))
	return crc32.Checksum(b[4:], castagnoli)
}

// sealRecord writes the final checksum crc32c(value[4:] || key).
func sealRecord(b []byte, partial uint32, key []byte) {
	binary.BigEndian.PutUint32(b[0:4], crc32.Update(partial, castagnoli, key))
}

// appendRecord builds a complete record in one go (non-WAL values).
func appendRecord(b []byte, kind byte, key []byte, payload []byte) []byte {
	start := len(b)
	b = beginRecord(b, kind)
	b = append(b, payload...)
	sealRecord(b[start:], finishRecord(b[start:]), key)
	return b
}

// openRecord checks a value's envelope against its key and expected kind
// and returns the payload (aliasing val).
func openRecord(key, val []byte, kind byte) ([]byte, error) {
	if len(val) < headerLen {
		return nil, corruptf(key, "value of %d bytes is shorter than the %d-byte header", len(val), headerLen)
	}
	n := binary.BigEndian.Uint32(val[5:9])
	if uint64(n) != uint64(len(val)-headerLen) {
		return nil, corruptf(key, "header announces %d payload bytes, value holds %d", n, len(val)-headerLen)
	}
	want := binary.BigEndian.Uint32(val[0:4])
	got := crc32.Update(crc32.Checksum(val[4:], castagnoli), castagnoli, key)
	if got != want {
		return nil, corruptf(key, "checksum mismatch: stored %08x, computed %08x", want, got)
	}
	if val[4] != kind {
		return nil, corruptf(key, "record kind %d, want %d", val[4], kind)
	}
	return val[headerLen:], nil
}

// decodeWALRecord verifies and decodes one WAL record into tb (reusing its
// capacity) and returns its shard and sequence, taken from the key. Every
// failure is a *CorruptError. It never panics, whatever the input (it is a
// fuzz target).
func decodeWALRecord(key, val []byte, tb *messages.TradeBatch) (shard uint16, seq uint64, err error) {
	shard, seq, ok := parseWALKey(key)
	if !ok {
		return 0, 0, corruptf(key, "not a WAL key")
	}
	payload, err := openRecord(key, val, kindWAL)
	if err != nil {
		return 0, 0, err
	}
	if err := messages.DecodeTradeBatchMsgpack(payload, tb); err != nil {
		return 0, 0, corruptf(key, "decoding trade batch: %w", err)
	}
	if len(tb.Trades) == 0 && tb.TickBefore == 0 && tb.TickAfter == 0 {
		return 0, 0, corruptf(key, "empty trade batch")
	}
	tb.Seq = seq
	return shard, seq, nil
}

// decodeKlineRecord verifies and decodes one format-1 kline value into k
// and checks that it belongs to its key: what the upgrade to format 2
// reads (migrate.go). Nothing writes kline records any more.
func decodeKlineRecord(key, val []byte, k *messages.Kline) error {
	sym, iv, open, ok := parseKlineKey(key)
	if !ok {
		return corruptf(key, "not a kline key")
	}
	payload, err := openRecord(key, val, kindKline)
	if err != nil {
		return err
	}
	rest, err := messages.DecodeKlineMsgpack(payload, k)
	if err != nil {
		return corruptf(key, "decoding kline: %w", err)
	}
	if len(rest) != 0 {
		return corruptf(key, "%d bytes after the kline", len(rest))
	}
	if k.Symbol != string(sym) || k.Interval != iv || k.OpenTime != open {
		return corruptf(key, "value is bar %s/%s/%d", k.Symbol, k.Interval, k.OpenTime)
	}
	return nil
}

// u64Record decodes the 8-byte payload of checkpoint and meta records.
func decodeU64Record(key, val []byte, kind byte) (uint64, error) {
	payload, err := openRecord(key, val, kind)
	if err != nil {
		return 0, err
	}
	if len(payload) != 8 {
		return 0, corruptf(key, "payload of %d bytes, want 8", len(payload))
	}
	return binary.BigEndian.Uint64(payload), nil
}

func u64Record(kind byte, key []byte, v uint64) []byte {
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], v)
	return appendRecord(nil, kind, key, p[:])
}

// seqsRecord is the payload of meta/seqs: the last assigned sequence and
// the last sequence known to be fsynced when the record was written.
func seqsRecord(last, durable uint64) []byte {
	var p [16]byte
	binary.BigEndian.PutUint64(p[0:8], last)
	binary.BigEndian.PutUint64(p[8:16], durable)
	return appendRecord(nil, kindMeta, metaSeqsKey, p[:])
}

func decodeSeqsRecord(val []byte) (last, durable uint64, err error) {
	payload, err := openRecord(metaSeqsKey, val, kindMeta)
	if err != nil {
		return 0, 0, err
	}
	if len(payload) != 16 {
		return 0, 0, corruptf(metaSeqsKey, "payload of %d bytes, want 16", len(payload))
	}
	return binary.BigEndian.Uint64(payload[0:8]), binary.BigEndian.Uint64(payload[8:16]), nil
}

// Snapshot payload: coveredSeq u64 | savedAt ms i64 | blob.
const snapshotHeaderLen = 16

func decodeSnapshotRecord(key, val []byte) (covered uint64, savedAt int64, blob []byte, err error) {
	payload, err := openRecord(key, val, kindSnapshot)
	if err != nil {
		return 0, 0, nil, err
	}
	if len(payload) < snapshotHeaderLen {
		return 0, 0, nil, corruptf(key, "snapshot payload of %d bytes is shorter than its %d-byte header", len(payload), snapshotHeaderLen)
	}
	return binary.BigEndian.Uint64(payload[0:8]), int64(binary.BigEndian.Uint64(payload[8:16])), payload[snapshotHeaderLen:], nil
}
